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


def make_capture(path: Path, conversations: int) -> None:
    def frames():  # one conversation per millisecond of capture time, client ports cycling
        for i in range(conversations):
            for j, data in enumerate(conversation(i)):
                ts = 1_700_000_000_000_000_000 + i * 1_000_000 + j * 1000
                yield RawFrame(ts, LINKTYPE_ETHERNET, data, len(data))

    write_pcap(str(path), frames(), LINKTYPE_ETHERNET)


def peak_rss_kb(path: Path) -> int:
    proc = subprocess.Popen([sys.executable, "-m", "sockcap", "show", str(path)],
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
