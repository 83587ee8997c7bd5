"""`sockcap show` streams: its memory does not grow with the file.

Two generated captures of many short TCP conversations (handshake, one data segment each
way, FIN teardown), one five times the other; the peak RSS of `sockcap show` on each, as
the kernel reports it for the child, must differ by far less than what keeping every
conversation would cost (about 1.7 KB each).
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import first_run_only

from sockcap.decode.records import LINKTYPE_ETHERNET, RawFrame
from sockcap.pcapfile.writer import write_pcap

ETH_IP = bytes(12) + b"\x08\x00"


def segment(sport: int, dport: int, seq: int, ack: int, flags: int, payload: bytes = b"") -> bytes:
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0)
    total = 20 + len(tcp) + len(payload)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 0, 0x4000, 64, 6, 0,
                     b"\x7f\x00\x00\x01", b"\x7f\x00\x00\x01")
    return ETH_IP + ip + tcp + payload


def conversation(i: int) -> list[bytes]:
    c, s = 20000 + i % 40000, 5001
    a, b = 1000, 9000
    return [
        segment(c, s, a, 0, 0x02), segment(s, c, b, a + 1, 0x12), segment(c, s, a + 1, b + 1, 0x10),
        segment(c, s, a + 1, b + 1, 0x18, b"hello"), segment(s, c, b + 1, a + 6, 0x18, b"hello"),
        segment(c, s, a + 6, b + 6, 0x11), segment(s, c, b + 6, a + 7, 0x11),
        segment(c, s, a + 7, b + 7, 0x10),
    ]


def make_capture(path: Path, conversations: int, gap_ns: int = 1_000_000) -> None:
    def frames():  # one conversation per ``gap_ns`` (a millisecond) of capture time,
        for i in range(conversations):  # client ports cycling
            for j, data in enumerate(conversation(i)):
                ts = 1_700_000_000_000_000_000 + i * gap_ns + j * 1000
                yield RawFrame(ts, LINKTYPE_ETHERNET, data, len(data))

    write_pcap(str(path), frames(), LINKTYPE_ETHERNET)


def peak_rss_kb(path: Path, *options: str) -> int:
    proc = subprocess.Popen([sys.executable, "-m", "sockcap", "show", *options, str(path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return usage.ru_maxrss


@pytest.mark.slow
def test_show_memory_does_not_grow_with_the_file(tmp_path: Path) -> None:
    small, big = tmp_path / "small.pcap", tmp_path / "big.pcap"
    # Both are longer than the time a finished conversation is still remembered
    # (RETIRE_IDLE_NS, 10 s of capture time), so both reach the plateau.
    make_capture(small, 16_000)  # 128k packets, 16 s of capture time
    make_capture(big, 48_000)  # 384k packets, 48 s
    growth_kb = peak_rss_kb(big) - peak_rss_kb(small)
    keeping_everything_kb = 32_000 * 1.7  # 32k more conversations, about 1.7 KB each
    assert growth_kb < keeping_everything_kb / 3, f"peak RSS grew by {growth_kb} KB"


@pytest.mark.slow
def test_show_explain_memory_does_not_grow_with_the_file(tmp_path: Path) -> None:
    """``--explain``: the compiled engine keeps its sentences' state beside each
    conversation and lets it go with it; what outlives a conversation is its summary row
    (on disk past a budget) and its SYNs' 4-tuples for the next 65,536 SYNs
    (tests/test_tuple_window.py), where the Python explainer kept every conversation (the
    pure twin's reference; ~5 KB each)."""
    from sockcap.speedups import compiled_class

    if compiled_class() is None:
        pytest.skip("the compiled extension is not built (or SOCKCAP_PURE is set)")
    small, big = tmp_path / "small.pcap", tmp_path / "big.pcap"
    make_capture(small, 16_000)
    make_capture(big, 48_000)
    growth_kb = peak_rss_kb(big, "--explain") - peak_rss_kb(small, "--explain")
    keeping_everything_kb = 32_000 * 1.7
    assert growth_kb < keeping_everything_kb / 3, f"peak RSS grew by {growth_kb} KB"


class _Writes:
    """A text stream that keeps only the size of each write."""

    encoding = "utf-8"

    def __init__(self) -> None:
        self.sizes: list[int] = []

    def write(self, text: str) -> int:
        self.sizes.append(len(text))
        return len(text)

    def flush(self) -> None:
        pass


def test_text_batches_are_bounded_in_bytes_not_lines() -> None:
    """4,096 texts of 64 kB (``--hex`` of loopback segments) were one 256 MB string."""
    from sockcap.output import BATCH_CHARS, Output

    stream = _Writes()
    big = "x" * 65536
    Output(stream=stream, err=stream, color=False).text(big for _ in range(4096))  # type: ignore[arg-type]
    assert sum(stream.sizes) == 4096 * (len(big) + 1)
    assert max(stream.sizes) <= BATCH_CHARS + len(big) + 1
    small = _Writes()
    Output(stream=small, err=small, color=False).text("y" * 100 for _ in range(100_000))  # type: ignore[arg-type]
    assert sum(small.sizes) == 100_000 * 101 and max(small.sizes) <= BATCH_CHARS + 101


# -- what the tracker forgets, and when: the same on both engines ---------------------------

def _scan(answer: str) -> tuple[bytes, int]:
    """A capture of ``n`` TCP conversations all at one timestamp (nothing is ever "idle"),
    then one more packet for each of them, in the same order; and ``n``.

    ``answer="syn-ack"``: a SYN scan (SYNs nothing answers), then a SYN-ACK for each SYN
    (an answer that came too late to be remembered starts a new stream). ``answer="rst"``:
    connections refused at once (SYN, RST), then the RST sent again for each."""
    from test_speedups import LINK_HEADS, _ip, _tcp

    from sockcap.analysis.conversation import RETIRE_MAX

    n = 2 * RETIRE_MAX + 4096  # more than the tracker may hold
    head, ts = LINK_HEADS[1](False), 1_700_000_000 * 10**9
    peers = [(2 + k // 60000, 1024 + k % 60000) for k in range(n)]

    def frame(src: int, dst: int, sport: int, dport: int, seq: int, ack: int, flags: int) -> bytes:
        data = head + _ip(False, src, dst, 6, _tcp(sport, dport, seq, ack, flags, 512, b"", b""))
        return struct.pack("<IIII", ts // 10**9, 0, len(data), len(data)) + data

    first, second = [], []
    for src, port in peers:
        first.append(frame(src, 1, port, 80, 100, 0, 0x002))
        if answer == "rst":
            first.append(frame(1, src, 80, port, 0, 101, 0x014))
            second.append(frame(1, src, 80, port, 0, 101, 0x014))
        else:
            second.append(frame(1, src, 80, port, 500, 101, 0x012))
    pcap_header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    return b"".join([pcap_header, *first, *second]), n


def _tracked(tracker: object) -> int:
    return len({id(entry[0]) for entry in tracker._by_key.values()})  # type: ignore[attr-defined]


@pytest.mark.slow
@first_run_only("it picks its engines itself")
@pytest.mark.parametrize("answer", ["syn-ack", "rst"])
def test_a_scan_at_one_timestamp_is_forgotten_on_both_engines(answer: str) -> None:
    """Two shapes of file whose conversations were never forgotten: a SYN scan (nothing
    ever ends) and refused connections within one timestamp (nothing is ever silent). The
    pure tracker never holds more than its bound, whatever the file; the compiled engine
    forgets the same conversations (the same text, the same stream numbers); and a
    tracker that keeps everything (stats) gives no new stream for the second round.

    It names its engines itself (the Python tracker, PureEngine, the compiled one where
    SOCKCAP_PURE leaves it), so .ci/run's second run would repeat a part of the first's."""
    import io

    from sockcap.analysis.conversation import RETIRE_MAX
    from sockcap.pcapfile.reader import open_capture
    from sockcap.pipeline import Pipeline
    from sockcap.pipeline.engine import PureEngine
    from sockcap.speedups import compiled_class

    data, n = _scan(answer)
    # each queue holds at most RETIRE_MAX + 1; a scan's conversations are in the open one
    bound = RETIRE_MAX + 1 if answer == "syn-ack" else 2 * (RETIRE_MAX + 1)
    pipeline, most = Pipeline(keep=False), 0
    for i, _a in enumerate(pipeline.packets(open_capture(io.BytesIO(data)))):
        if i % 1024 == 0:
            most = max(most, _tracked(pipeline.tracker))
    assert 0 < most <= bound
    forgotten = pipeline.tracker._streams[6] - n
    assert forgotten >= n - bound  # the second round found most of the first forgotten
    kept = Pipeline(keep=True)
    for _a in kept.packets(open_capture(io.BytesIO(data))):
        pass
    assert kept.tracker._streams[6] == n  # the same file, remembered: no new stream
    pure = _engine_streams(PureEngine, data)
    assert pure[0] == (n + forgotten, 0)
    compiled = compiled_class()
    if compiled is not None:
        assert _engine_streams(compiled, data) == pure


def _engine_streams(engine_class: object, data: bytes) -> tuple[tuple[int, int], str]:
    """The stream numbers an engine used on ``data`` (``state()``), and its text."""
    import io

    from sockcap.pcapfile.reader import open_capture
    from sockcap.pipeline import Pipeline
    from sockcap.pipeline.engine import EngineRun, feed_decoded

    engine = EngineRun(engine_class, Pipeline(keep=False), hex_=False).engine
    parts = []
    for frame in open_capture(io.BytesIO(data)):
        if not engine.frame(frame):
            feed_decoded(engine, frame, analyze=True)
        parts.append(engine.take())
    return tuple(engine.state()["streams"]), b"".join(parts).decode("utf-8")


@pytest.mark.slow
@first_run_only("it runs the Python tracker and follow view in this process, never the engine")
def test_follow_of_every_conversation_forgets_as_the_tracker_does() -> None:
    """``sockcap follow FILE`` (every conversation) held every conversation it had seen:
    1.2 GB for 570k SYNs. Now what it holds follows the tracker's bound, and a
    conversation that never ended is still shown once, whole, when it is forgotten.

    It runs the Python tracker and follow view in this process and no engine: the same
    whatever SOCKCAP_PURE says, so .ci/run's second run skips it."""
    import gc
    import io
    from collections import deque

    from test_speedups import LINK_HEADS, _ip, _tcp

    from sockcap.analysis.conversation import RETIRE_MAX, Conversation
    from sockcap.analysis.follow import _Stream
    from sockcap.pcapfile.reader import open_capture
    from sockcap.pipeline import Pipeline
    from sockcap.render.follow import follow_pairs

    data, _n = _scan("syn-ack")
    head = LINK_HEADS[1](False)
    talk = [head + _ip(False, 200, 1, 6, _tcp(9, 80, seq, ack, flags, 512, b"", body))
            for seq, ack, flags, body in ((1, 0, 0x002, b""), (2, 0, 0x018, b"hello"))]
    records = [struct.pack("<IIII", 1_700_000_000, 0, len(f), len(f)) + f for f in talk]
    data = data[:24] + b"".join(records) + data[24:]  # an open conversation comes first
    pipeline = Pipeline(analyze=False, keep=False)
    forgotten: deque[Conversation] = deque()
    pipeline.tracker.on_forget = forgotten.append
    most = [0]

    def sampled(packets):  # type: ignore[no-untyped-def]
        for i, a in enumerate(packets):
            if i % 8192 == 0:
                most[0] = max(most[0], sum(isinstance(o, _Stream) for o in gc.get_objects()))
            yield a

    lines = [line for line, _style in follow_pairs(
        sampled(pipeline.packets(open_capture(io.BytesIO(data)))), None, "ascii", None,
        forgotten)]
    assert lines[0].startswith("== tcp stream 0: client 10.0.0.200:9")
    assert lines[1:] == ["> hello", "== tcp stream 0: client sent 5 bytes, server sent 0 bytes"]
    assert 0 < most[0] <= 2 * (RETIRE_MAX + 1)
