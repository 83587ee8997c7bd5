"""``show --json`` on each twin: the compiled engine writes it itself (``Style.JSON`` in
its ``styles``), the pure twin hands each packet to the JSON view
(:func:`sockcap.render.timeline.json_line`), the reference. Both must give the reference's
bytes: over the goldens, the corpus, captures made by hypothesis (with ``--hex``, ``-c``,
``--port``), timestamps of every pcapng resolution and offset, and packets whose text
fields hold characters JSON escapes. ``fuzz/differential.py`` (tests/test_speedups.py)
runs the command itself on both paths with the JSON option sets.
"""

from __future__ import annotations

import io
import json
import random
import shlex
import struct
from pathlib import Path
from typing import Any

import pytest
from conftest import CORPUS, ROOT, sockcap
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_speedups import LINK_HEADS, _ip, captures

from sockcap.decode.records import Packet
from sockcap.errors import SockcapError
from sockcap.pcapfile.reader import open_capture
from sockcap.pipeline import Pipeline
from sockcap.pipeline.contract import Style
from sockcap.pipeline.engine import EngineRun
from sockcap.render.packets import PacketView

GOLDEN = ROOT / "tests" / "golden"


def json_run(engine_class: Any, data: bytes, *, hex_: bool = False, limit: int = 0,
             port: int = 0) -> tuple[str, str]:
    """``show --json``'s loop on ``data`` as the command sets it up for this twin: the
    engine's own JSON when it lists it, else the JSON view handed each packet."""
    pipeline = Pipeline(keep=False, port=port, limit=limit)
    if Style.JSON in engine_class.styles:
        extra: dict[str, Any] = {"style": Style.JSON}
    else:
        extra = {"view": PacketView(pipeline, json=True, hex_=hex_).text, "clock": pipeline}
    out: list[bytes] = []
    damage = ""
    try:
        EngineRun(engine_class, pipeline, hex_=hex_, **extra).run(
            open_capture(io.BytesIO(data)), out.append)
    except SockcapError as e:
        damage = str(e)
    return b"".join(out).decode("utf-8"), damage


def reference(data: bytes, *, hex_: bool = False, limit: int = 0,
              port: int = 0) -> tuple[str, str]:
    """The pure modules alone: Pipeline.map with the JSON view."""
    pipeline = Pipeline(keep=False, port=port, limit=limit)
    view = PacketView(pipeline, json=True, hex_=hex_)
    lines: list[str] = []
    damage = ""
    try:
        for text in pipeline.map(open_capture(io.BytesIO(data)), view.text):
            lines.append(text + "\n")
    except SockcapError as e:
        damage = str(e)
    return "".join(lines), damage


def test_the_compiled_engine_lists_json() -> None:
    from sockcap.speedups import compiled_class

    compiled = compiled_class()
    if compiled is None:
        pytest.skip("the compiled extension is not built (or SOCKCAP_PURE is set)")
    assert Style.JSON in compiled.styles


def json_cases() -> list[tuple[str, Path, str, list[str]]]:
    out = []
    for line in (GOLDEN / "TESTLIST").read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, capture, expected, *options = shlex.split(line)
        if "--json" not in options:
            continue
        path = (CORPUS / capture.removeprefix("corpus:") if capture.startswith("corpus:")
                else GOLDEN / capture)
        out.append((name, path, expected, options))
    return out


@pytest.mark.parametrize("case", json_cases(), ids=lambda c: c[0])
def test_golden_json(engine_twin: Any, case: tuple[str, Path, str, list[str]]) -> None:
    _name, path, expected_file, options = case
    if not path.exists():
        pytest.skip(f"corpus not present at {CORPUS}")
    expected = (GOLDEN / expected_file).read_text(encoding="utf-8").split("--- exit")[0]
    limit = int(options[options.index("-c") + 1]) if "-c" in options else 0
    text, _damage = json_run(engine_twin, path.read_bytes(), hex_="--hex" in options,
                             limit=limit)
    assert text == expected


def test_corpus_json(engine_twin: Any) -> None:
    files = sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.suffix in
                   (".pcap", ".pcapng", ".cap", ".gz", ".zst", ".lz4", ".xz", ".bz2"))
    if not files:
        pytest.skip(f"corpus not present at {CORPUS}")
    differing = [p.name for p in files
                 if json_run(engine_twin, p.read_bytes()) != reference(p.read_bytes())]
    assert differing == []


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=captures())
def test_captures_as_the_reference(engine_twin: Any, data: bytes) -> None:
    for options in ({}, {"hex_": True}, {"limit": 3}, {"port": 80}):
        assert json_run(engine_twin, data, **options) == reference(data, **options), options


def pcapng_timed(tsresol: int, offset_s: int, units: list[int]) -> bytes:
    """A pcapng file whose interface counts time in ``if_tsresol`` units from
    ``if_tsoffset`` seconds, one UDP datagram at each of ``units``."""

    def block(btype: int, body: bytes) -> bytes:
        body += bytes(-len(body) % 4)
        return struct.pack("<II", btype, 12 + len(body)) + body + struct.pack("<I", 12 + len(body))

    options = (struct.pack("<HHB3x", 9, 1, tsresol) + struct.pack("<HHq", 14, 8, offset_s)
               + struct.pack("<HH", 0, 0))
    out = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    out += block(1, struct.pack("<HHI", 1, 0, 0) + options)
    frame = LINK_HEADS[1](False) + _ip(False, 1, 2, 17, struct.pack("!HHHH", 40000, 53, 9, 0)
                                       + b"\xe9")
    for u in units:
        out += block(6, struct.pack("<IIIII", 0, u >> 32, u & 0xFFFFFFFF, len(frame),
                                    len(frame)) + frame)
    return out


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tsresol=st.one_of(st.integers(0, 19), st.integers(0x80, 0x80 + 63)),
       offset=st.sampled_from([0, 0, 1, -1, 1_700_000_000, -2**40, 2**40, 2**62]),
       units=st.lists(st.one_of(st.integers(0, 2**64 - 1), st.integers(0, 10**7),
                                st.integers(2**52, 2**55)), min_size=1, max_size=12))
def test_times_as_python_writes_them(engine_twin: Any, tsresol: int, offset: int,
                                     units: list[int]) -> None:
    """"ts" (repr of ts_ns / 1e9) and "time" (repr of round(... / 1e9, 9)) for any
    timestamp the readers make: every if_tsresol (powers of 10 and of 2), offsets past
    64-bit nanoseconds, differences around 2**22 s where the exact path ends."""
    data = pcapng_timed(tsresol, offset, sorted(units))
    assert json_run(engine_twin, data) == reference(data)


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=st.integers(0, 2**62), deltas=st.lists(
    st.one_of(st.integers(-2**22 * 10**9 - 5, 2**22 * 10**9 + 5),
              st.integers(-10**6, 10**6),
              st.sampled_from([0, 1, 10, 100_000, 99_999, 4_194_304 * 10**9,
                               4_194_304 * 10**9 - 1, -(4_194_304 * 10**9) + 1])),
    min_size=1, max_size=10))
def test_time_differences_as_python_writes_them(engine_twin: Any, first: int,
                                                deltas: list[int]) -> None:
    """Packets handed one by one (``packet()``), at nanosecond times around the first:
    the "time" and "ts" keys as the view writes them (json.loads gives back the floats)."""
    packets = [_udp_packet(first)] + [_udp_packet(max(first + d, 0)) for d in deltas]
    got, want = by_packet(engine_twin, packets), by_packet(None, packets)
    assert got == want
    for line, p in zip(want.splitlines(), packets, strict=True):
        assert json.loads(line)["ts"] == p.ts_ns / 1e9


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32), bits=st.integers(30, 100))
def test_timestamps_as_repr_writes_them(engine_twin: Any, seed: int, bits: int) -> None:
    """"ts" over many timestamps: random ones of ``bits`` bits (past 64 bits: the times a
    pcapng resolution or offset makes), whole and round seconds, micro- and milliseconds,
    powers of two and their neighbours (where a double's rounding interval is uneven)."""
    rng = random.Random(seed)
    stamps = [rng.getrandbits(bits) for _ in range(400)]
    stamps += [rng.getrandbits(bits) // 10**k * 10**k for k in (3, 6, 9) for _ in range(50)]
    stamps += [(2**b * 10**9 >> s) + d for b in range(0, 34) for s in (0, 30)
               for d in (-1, 0, 1)]
    stamps = [t for t in stamps if t >= 0]
    packets = [_udp_packet(t) for t in stamps]
    want = by_packet(None, packets)
    assert by_packet(engine_twin, packets) == want
    for line, t in zip(want.splitlines(), stamps, strict=True):
        assert line.split(',"ts":', 1)[1].split(",", 1)[0] == repr(t / 1e9)


def _udp_packet(ts_ns: int, **fields: Any) -> Packet:
    frame = LINK_HEADS[1](False) + _ip(False, 1, 2, 17, struct.pack("!HHHH", 40000, 53, 10, 0)
                                       + b"hi")
    values: dict[str, Any] = dict(
        ts_ns=ts_ns, linktype=1, wirelen=len(frame), data=frame, net="IPv4", src="10.0.0.1",
        dst="10.0.0.2", proto=17, sport=40000, dport=53, seq=-1, ack=-1, flags=0, window=-1,
        options=(), payload_off=len(frame) - 2, payload_len=2, truncated="", notes=())
    values.update(fields)
    return Packet(**values)


def by_packet(engine_class: Any | None, packets: list[Packet], *,
              words: list[tuple[Any, Any]] | None = None) -> str:
    """The JSON lines of ``packets`` handed to ``packet()`` one by one (``words``: each
    one's where and protocol name, for packets outside any conversation); None: the
    reference, the pure twin with the JSON view."""
    from sockcap.pipeline.engine import PureEngine

    pipeline = Pipeline(keep=False)
    if engine_class is None:
        engine_class = PureEngine
        extra: dict[str, Any] = {"view": PacketView(pipeline, json=True).text, "clock": pipeline}
    elif Style.JSON in engine_class.styles:
        extra = {"style": Style.JSON}
    else:
        extra = {"view": PacketView(pipeline, json=True).text, "clock": pipeline}
    run = EngineRun(engine_class, pipeline, hex_=False, **extra)
    engine = run.engine
    for i, p in enumerate(packets):
        where, proto = (None, None) if words is None else words[i]
        engine.packet(p, p.notes, where, proto)
    return engine.take().decode("utf-8")


ODD = ["é→✓", "a\"b\\c", "\x00\x01\x1f\x7f", "\b\f\n\r\t", "", "\u2028\u00a0", "x" * 70]


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(src=st.sampled_from(ODD), dst=st.sampled_from(ODD), net=st.sampled_from(ODD),
       truncated=st.sampled_from(ODD), tunnel=st.sampled_from(ODD),
       notes=st.lists(st.sampled_from(ODD), max_size=3), located=st.booleans())
def test_strings_escaped_as_json_dumps(engine_twin: Any, src: str, dst: str, net: str,
                                       truncated: str, tunnel: str, notes: list[str],
                                       located: bool) -> None:
    """Every text key of a packet decoded by Python (addresses, protocol, truncation,
    tunnel, notes), with non-ASCII and control characters: json.dumps' escapes with
    ensure_ascii=False."""
    from sockcap.render.timeline import packet_where, proto_name

    if located:  # a UDP datagram of a conversation: its addresses must be addresses
        p = _udp_packet(10**18, truncated=truncated, tunnel=tunnel, notes=tuple(notes))
        words: list[tuple[Any, Any]] = [(None, None)]
    else:  # the words feed_decoded gives: the protocol's name is the net's here
        p = _udp_packet(10**18, src=src, dst=dst, net=net, proto=-1, sport=-1, dport=-1,
                        truncated=truncated, tunnel=tunnel, notes=tuple(notes))
        words = [(packet_where(p), proto_name(p))]
    want = by_packet(None, [p], words=words)
    assert by_packet(engine_twin, [p], words=words) == want
    assert json.loads(want)["notes"] == notes


@pytest.mark.parametrize("lang", ["en", "id"])
def test_json_does_not_depend_on_the_language(sockcap_path: dict[str, str | None],
                                              lang: str) -> None:
    """--lang id translates no key and no value of --json (codes, not words)."""
    for name in ("echo-tcp.pcap", "diagram-refused.pcap"):  # phases; a note
        capture = str(GOLDEN / name)
        got = sockcap("--lang", lang, "show", "--json", capture, env=sockcap_path)
        assert got.returncode == 0, got.stderr
        want = sockcap("show", "--json", capture, env={"SOCKCAP_PURE": "1", "LANGUAGE": "en"})
        assert got.stdout == want.stdout and got.stdout.count("\n") > 1
