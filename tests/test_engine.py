"""The engine's twins, in-process, through one fixture (``engine_twin``: compiled, pure).

Every test here runs once for ``sockcap._speedups.Engine`` and once for
``sockcap.pipeline.engine.PureEngine`` and holds each to the same answer: the golden
timelines, and for captures made by hypothesis the reference — the pure modules driven by
:class:`sockcap.pipeline.Pipeline` (decoder, tracker, expert analysis, timeline view) —
packet by packet through the engine API (``frame``/``packet``, then ``take()`` and
``state()`` after each), for the whole file through the one loop
(:class:`~sockcap.pipeline.engine.EngineRun`), and for the stats rows
(``conversation(i)``). ``fuzz/differential.py`` (tests/test_speedups.py) stays the
end-to-end check through the commands.
"""

from __future__ import annotations

import io
import shlex
from typing import Any

import pytest
from conftest import CORPUS, ROOT
from hypothesis import HealthCheck, given, settings
from test_speedups import LINK_HEADS, _ip, _tcp, captures, pcapng_file

from sockcap.analysis.conversation import Annotated, Conversation
from sockcap.analysis.direction import Direction
from sockcap.analysis.stats import conversation_stats
from sockcap.errors import SockcapError
from sockcap.pcapfile.reader import open_capture
from sockcap.pipeline import Pipeline
from sockcap.pipeline.engine import EngineRun, feed_decoded, stats_run
from sockcap.pipeline.select import EngineSelect
from sockcap.render.explain import PacketExplainer
from sockcap.render.packets import PacketView

GOLDEN = ROOT / "tests" / "golden"


def plain_cases() -> list[tuple[str, Any, str, list[str]]]:
    """The golden cases of the view every twin writes: plain text, ``--hex``, ``-c``."""
    out = []
    for line in (GOLDEN / "TESTLIST").read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, capture, expected, *options = shlex.split(line)
        if set(options) - {"--hex", "-c"} - {o for o in options if o.isdigit()}:
            continue
        path = (CORPUS / capture.removeprefix("corpus:") if capture.startswith("corpus:")
                else GOLDEN / capture)
        out.append((name, path, expected, options))
    return out


def run_engine(engine_class: Any, data: bytes, *, hex_: bool = False, limit: int = 0,
               port: int = 0, lent: bool = False) -> tuple[str, str, Pipeline]:
    """The one loop over ``data``: the text, the damage that stopped it ("" if none), and
    the pipeline with the counters it was left."""
    pipeline = Pipeline(keep=False, port=port, limit=limit)
    out: list[bytes] = []
    damage = ""
    # lent (show's way): write is handed a view it may read only while it runs
    write = (lambda chunk: out.append(bytes(chunk))) if lent else out.append
    try:
        EngineRun(engine_class, pipeline, hex_=hex_).run(open_capture(io.BytesIO(data)),
                                                         write, lent=lent)
    except SockcapError as e:
        damage = str(e)
    return b"".join(out).decode("utf-8"), damage, pipeline


def reference(data: bytes, *, hex_: bool = False, limit: int = 0,
              port: int = 0) -> tuple[str, str, Pipeline]:
    """The same with the pure modules alone: Pipeline.map and the timeline view."""
    pipeline = Pipeline(keep=False, port=port, limit=limit)
    view = PacketView(pipeline, hex_=hex_)
    lines: list[str] = []
    damage = ""
    try:
        for text in pipeline.map(open_capture(io.BytesIO(data)), view.text):
            lines.append(text + "\n")
    except SockcapError as e:
        damage = str(e)
    return "".join(lines), damage, pipeline


def counters(pipeline: Pipeline) -> tuple[Any, ...]:
    tracker = pipeline.tracker
    return (pipeline.first_ts, pipeline.last_ts, pipeline.shown, tracker.count,
            list(tracker.note_counts.items()))


@pytest.mark.parametrize("case", plain_cases(), ids=lambda c: c[0])
def test_golden_timeline(engine_twin: Any, case: tuple[str, Any, str, list[str]]) -> None:
    _name, path, expected_file, options = case
    if not path.exists():
        pytest.skip(f"corpus not present at {CORPUS}")
    expected = (GOLDEN / expected_file).read_text(encoding="utf-8")
    if "--- exit" in expected:
        expected = expected.split("--- exit")[0]
    limit = int(options[options.index("-c") + 1]) if "-c" in options else 0
    text, _damage, _pipeline = run_engine(engine_twin, path.read_bytes(),
                                          hex_="--hex" in options, limit=limit, lent=True)
    if text == "" and expected == "0 packets\n":  # the command says so, not the engine
        return
    assert text == expected


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=captures())
def test_whole_file_as_the_reference(engine_twin: Any, data: bytes) -> None:
    for options in ({}, {"hex_": True}, {"limit": 3}, {"port": 80}):
        got_text, got_damage, got = run_engine(engine_twin, data, **options)  # type: ignore[arg-type]
        want_text, want_damage, want = reference(data, **options)  # type: ignore[arg-type]
        assert got_text == want_text, options
        assert got_damage == want_damage
        assert counters(got) == counters(want), options
        lent_text, lent_damage, lent = run_engine(engine_twin, data, lent=True, **options)  # type: ignore[arg-type]
        assert (lent_text, lent_damage, counters(lent)) == (want_text, want_damage,
                                                            counters(want)), options


def test_write_to_never_changes_what_a_write_kept(engine_twin: Any) -> None:
    """``write_to`` hands the text out uncopied (the C twin: a view of its own buffer). A
    write() that keeps what it was handed finds it released (ValueError) or intact, never
    overwritten by the text made after it; a view taken of the view (an export the
    engine cannot end) keeps its bytes for good."""
    case = next(c for c in plain_cases() if c[1].exists() and not c[3])
    engine = EngineRun(engine_twin, Pipeline(keep=False), hex_=False).engine
    kept: list[tuple[Any, Any, bytes]] = []

    def write(chunk: Any) -> None:
        kept.append((chunk, memoryview(chunk)[:] if len(kept) % 2 else None, bytes(chunk)))

    handed = []
    for frame in open_capture(io.BytesIO(case[1].read_bytes())):
        if not engine.frame(frame):
            feed_decoded(engine, frame, analyze=True)
        pending = engine.pending
        handed.append(engine.write_to(write))
        assert handed[-1] == pending and engine.pending == 0
    assert engine.write_to(write) == 0  # nothing made: write() not called
    assert len(kept) == len(handed) >= 4
    released = 0
    for chunk, export, copy in kept:
        if export is not None:
            assert bytes(export) == copy
        try:
            assert bytes(chunk) == copy
        except ValueError:  # released when write() returned
            released += 1
    # only the C twin lends its buffer; it releases each view it handed (a view of the
    # view lives on, with the memory it shows)
    assert released == (0 if engine_twin.__name__ == "PureEngine" else len(kept))


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=captures())
def test_packet_by_packet_take_and_state(engine_twin: Any, data: bytes) -> None:
    """The engine API one frame at a time: after each, ``take()`` is that packet's text and
    ``state()`` the reference's counters so far."""
    engine = EngineRun(engine_twin, Pipeline(keep=False), hex_=False).engine
    ref = Pipeline(keep=False)
    view = PacketView(ref)
    frames = list(open_capture(io.BytesIO(data)))  # the reader's own loop: no sink
    for i, frame in enumerate(frames):
        if not engine.frame(frame):
            feed_decoded(engine, frame, analyze=True)
        want = [text + "\n" for text in ref.map([frame], view.text)]
        assert engine.pending == len(want[0].encode()), i
        assert engine.take().decode("utf-8") == want[0], i
        state = engine.state()
        assert (state["count"], state["shown"], state["last_ts"], state["input_first_ts"]) == (
            ref.tracker.count, ref.shown, ref.last_ts, ref.first_ts), i
        assert dict(state["note_counts"]) == ref.tracker.note_counts, i
    assert engine.take() == b"" and not engine.pending


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=captures())
def test_stats_rows_as_the_reference(engine_twin: Any, data: bytes) -> None:
    pipeline, others = Pipeline(), []
    run = stats_run(engine_twin, pipeline)
    run.run(open_capture(io.BytesIO(data)), lambda chunk: None, others.append)
    ref, ref_others = Pipeline(), []
    ref.run(open_capture(io.BytesIO(data)), ref_others.append)
    convs = sorted(ref.tracker.conversations, key=lambda c: (c.proto, c.stream))
    assert list(run.conversation_rows()) == [conversation_stats(c) for c in convs]
    assert others == ref_others
    assert counters(pipeline)[1:] == counters(ref)[1:]


@pytest.mark.parametrize("stream", [0, 1, 2, 7])
def test_follow_hands_the_stream_over_with_its_numbers(engine_twin: Any, stream: int) -> None:
    """``follow --stream N``: the engine numbers what comes before stream N, the pipeline
    reads it on; the packets and their numbers are the reference's."""
    head = LINK_HEADS[1](False)
    records = []
    for i in range(6):
        port = 40000 + i
        for src, dst, sp, dp, seq, ack, flags, body in (
                (1, 2, port, 80, 100, 0, 0x002, b""), (2, 1, 80, port, 500, 101, 0x012, b""),
                (1, 2, port, 80, 101, 501, 0x018, b"hi"), (2, 1, 80, port, 501, 103, 0x018, b"ok")):
            frame = head + _ip(False, src, dst, 6, _tcp(sp, dp, seq, ack, flags, 512, b"", body))
            records.append((1_700_000_000 * 10**9 + len(records) * 1000, frame, len(frame)))
    data = pcapng_file(1, records)
    pipeline = Pipeline(analyze=False)
    got = [(a.no, a.packet.payload) for a in
           EngineSelect(engine_twin, pipeline, 6, stream).select(open_capture(io.BytesIO(data)))]
    ref = Pipeline(analyze=False)
    reader = open_capture(io.BytesIO(data))
    want = [(a.no, a.packet.payload) for a in ref.select(reader, 6, stream, skipper=reader)]
    assert got == want
    assert (pipeline.first_ts, pipeline.tracker.count) == (ref.first_ts, ref.tracker.count)


# ---------------------------------------------------------------- the hand-over to a view

CONV_FIELDS = (*(s for s in Conversation.__slots__ if s != "dirs"),
               "irtt_ns", "ended", "end_state")


def conv_snapshot(conv: Any) -> tuple[Any, ...] | None:
    """Every attribute of a conversation and of its two directions, as a view reads them
    at the moment it is handed a packet (conversations are live: read now, not later)."""
    if conv is None:
        return None
    dirs = tuple(tuple(getattr(d, s) for s in Direction.__slots__) for d in conv.dirs)
    values = (getattr(conv, s) for s in CONV_FIELDS)
    # a dict is copied (and compared with its order): the tracker's goes on changing
    return (*(list(v.items()) if isinstance(v, dict) else v for v in values), dirs)


def handed(engine_class: Any | None, data: bytes, **options: Any) -> list[tuple[Any, ...]]:
    """What a view is handed, packet by packet: the Annotated's fields with its
    conversation read at once, and which conversation (by first appearance) it is. With
    ``engine_class`` None, the reference: :meth:`Pipeline.packets`."""
    pipeline = Pipeline(keep=False, **options)
    order: dict[int, int] = {}
    got: list[tuple[Any, ...]] = []
    keep: list[Any] = []  # the conversations stay alive, so ids are not reused

    def record(a: Annotated) -> str:
        conv = a.conv
        which = None
        if conv is not None:
            keep.append(conv)
            which = order.setdefault(id(conv), len(order))
        got.append((a.no, a.packet, a.from_client, a.seq, a.ack, a.win, a.phase, a.notes,
                    which, conv_snapshot(conv)))
        return f"{a.no}"

    try:
        if engine_class is None:
            for a in pipeline.packets(open_capture(io.BytesIO(data))):
                record(a)
        else:
            EngineRun(engine_class, pipeline, hex_=False, view=record, clock=pipeline).run(
                open_capture(io.BytesIO(data)), lambda chunk: None)
    except SockcapError:
        pass
    return got


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=captures())
def test_a_view_is_handed_the_reference_records(engine_twin: Any, data: bytes) -> None:
    """Both twins hand a view the records the reference pipeline yields: the same Packet,
    numbers, phase and notes, and a conversation with the same attributes (the compiled
    twin's is a view of its own), the same object for every packet of one conversation."""
    for options in ({}, {"limit": 3}, {"port": 80}):
        got, want = handed(engine_twin, data, **options), handed(None, data, **options)
        assert got == want, options


VIEW_OPTIONS = ({"json": True}, {"style": "tcpdump"}, {"filters": True},
                {"explainer": True}, {"json": True, "filters": True}, {"style": "tcpdump",
                                                                     "hex_": True})


@pytest.mark.parametrize("options", VIEW_OPTIONS, ids=",".join)
@pytest.mark.parametrize("name", ["echo-tcp.pcap", "echo-udp.pcap", "diagram-refused.pcap",
                                  "diagram-reset.pcap", "diagram-rto.pcap", "l2tp.pcap",
                                  "scenario-half-close.pcap", "scenario-timeout.pcap"])
def test_views_handed_over_write_the_reference_text(engine_twin: Any, name: str,
                                                     options: dict[str, Any]) -> None:
    """JSON, tcpdump's notation, --filters, --explain through the one loop on each twin:
    the text of the pure modules (Pipeline.map with the same view)."""
    path = GOLDEN / name
    if not path.exists():
        pytest.skip(f"{name} is not among the goldens")

    def view_of(pipeline: Pipeline) -> PacketView:
        explain = options.get("explainer", False)
        rest = {k: v for k, v in options.items() if k != "explainer"}
        return PacketView(pipeline, explainer=PacketExplainer() if explain else None, **rest)

    pipeline = Pipeline(keep=False)
    view = view_of(pipeline)
    out: list[bytes] = []
    EngineRun(engine_twin, pipeline, hex_=False, view=view.text, clock=pipeline).run(
        open_capture(io.BytesIO(path.read_bytes())), out.append)
    ref = Pipeline(keep=False)
    ref_view = view_of(ref)
    want = "".join(t + "\n" for t in ref.map(open_capture(io.BytesIO(path.read_bytes())),
                                             ref_view.text))
    assert want and b"".join(out).decode("utf-8") == want
    assert list(view.streams) == list(ref_view.streams)
    if view.explainer is not None:
        assert list(view.explainer.summary()) == list(ref_view.explainer.summary())


def test_a_notation_the_twin_does_not_list_is_refused(engine_twin: Any) -> None:
    """``styles``/``colors`` say what a twin writes itself; asked for anything else, it
    refuses (the command gives that notation's Python view instead)."""
    from sockcap.pipeline.contract import Style

    assert Style.WIRESHARK in engine_twin.styles
    pipeline = Pipeline(keep=False, port=0, limit=0)
    EngineRun(engine_twin, pipeline, hex_=False)  # the Wireshark-style text: every twin's
    for style in Style:
        for color in (False, True):
            if style in engine_twin.styles and (style in engine_twin.colors or not color):
                continue
            with pytest.raises(ValueError, match="not written by this engine"):
                EngineRun(engine_twin, Pipeline(keep=False, port=0, limit=0), hex_=False,
                          style=style, color=color)
