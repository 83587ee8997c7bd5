"""The Packet the compiled engine makes for a view, against the reference decoder.

With a view (``--explain``, ``--filters``, and every notation still written in Python),
``sockcap._speedups.Engine`` reads records from the reader's buffer itself and hands the
view the ``Packet`` it makes from its own decode (``_speedups_packet.h``). For every frame
it decodes, that record must be the one :func:`sockcap.decode.decode_frame` makes: every
field equal, the same record types (``Packet``, ``TcpOption`` for each option, NOP and EOL
included), on the golden captures, every corpus file and captures made by hypothesis.
Frames it does not decode are the Python decoder's (``made`` says None for them).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from conftest import CORPUS, ROOT
from hypothesis import HealthCheck, given, settings
from test_speedups import captures

from sockcap.analysis.conversation import Annotated
from sockcap.decode import Packet, TcpOption, decode_frame
from sockcap.errors import SockcapError
from sockcap.pcapfile.reader import open_capture
from sockcap.pipeline import Pipeline
from sockcap.pipeline.contract import engine_words
from sockcap.pipeline.engine import EngineRun, PureEngine
from sockcap.speedups import compiled_class

GOLDEN = ROOT / "tests" / "golden"
ENGINE = compiled_class()
needs_engine = pytest.mark.skipif(ENGINE is None, reason="the compiled extension is not "
                                  "built (or SOCKCAP_PURE is set)")


def engine(cls: Any) -> Any:
    return cls(analyze=True, keep=False, port=0, limit=0, hex=False, **engine_words())


def frames(data: bytes) -> list[Any]:
    """Every frame the reader gives before any damage stops it."""
    out: list[Any] = []
    try:
        for frame in open_capture(io.BytesIO(data)):
            out.append(frame)
    except SockcapError:
        pass
    return out


def compare(data: bytes) -> tuple[int, int]:
    """(frames, frames made by the engine); asserts each made one is the decoder's."""
    e = engine(ENGINE)
    all_frames = frames(data)
    made = 0
    for frame in all_frames:
        got = e.made(frame)
        if got is None:
            continue
        made += 1
        want = decode_frame(frame)
        assert got == want, frame
        assert type(got) is Packet
        assert all(type(o) is TcpOption and type(o.value) is bytes for o in got.options)
        assert all(type(got[i]) is type(want[i]) for i in range(len(Packet._fields)))
    return len(all_frames), made


def inputs() -> list[Path]:
    files = sorted(GOLDEN.glob("*.pcap*"))
    if CORPUS.is_dir():
        files += sorted(CORPUS.rglob("*.pcap*"))
    return files


@needs_engine
def test_every_frame_made_is_the_decoders() -> None:
    total = made = 0
    for path in inputs():
        n, m = compare(path.read_bytes())
        total, made = total + n, made + m
    assert made > 200 and made < total  # both kinds of frame were met


@needs_engine
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=captures())
def test_hypothesis_frames_made_are_the_decoders(data: bytes) -> None:
    compare(data)


def test_the_pure_twin_makes_none() -> None:
    """The pure twin decodes nothing itself: every Packet is the decoder's."""
    frame = frames((GOLDEN / "echo-tcp.pcap").read_bytes())[0]
    assert engine(PureEngine).made(frame) is None


@needs_engine
def test_a_view_reads_records_from_the_buffer() -> None:
    """With a view the engine still takes the records from the reader's buffer: the
    reader yields none of the frames the engine decodes."""
    data = (GOLDEN / "echo-tcp.pcap").read_bytes()
    seen: list[Packet] = []

    def view(a: Annotated) -> str:
        seen.append(a.packet)
        return ""

    class Clock:
        first_ts = -1

    run = EngineRun(ENGINE, Pipeline(keep=False), hex_=False, view=view, clock=Clock())
    assert run.engine.reads_records
    reader = open_capture(io.BytesIO(data))
    yielded = list(reader)  # a reader with no sink yields every frame
    reader = open_capture(io.BytesIO(data))
    passed: list[Any] = []

    def counted() -> Any:
        for frame in reader:
            passed.append(frame)
            yield frame

    run.run(counted(), lambda _b: None, reader=reader)
    assert len(seen) == len(yielded) and len(passed) < len(yielded)
    assert seen == [decode_frame(f) for f in yielded]
