"""What the capture session's batch path costs a packet, away from the kernel and the sender.

Usage::

    python bench/session_bench.py [--batches 800] [--repeat 5]

``capture_bench.py`` measures whole captures against tcpdump; on a shared machine its CPU
figures scatter by tens of percent. This measures the part sockcap's own code adds per
packet once a backend has handed over a batch: :meth:`CaptureSession.read` writes each
frame to a pcap file (the frame as the file holds it: time cut to the microsecond), flushes
the batch and hands it on. An in-memory backend hands out batches of 512 frames of 64
bytes (what a ring block holds at the benchmark's packet size) with a nanosecond time, so
every frame takes the "as stored" copy, as afpacket's do. CPU time (``time.process_time``),
the best of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sockcap.capture.session import CaptureSession
from sockcap.decode.records import LINKTYPE_ETHERNET, CaptureStats, RawFrame
from sockcap.owner import Owner

BATCH = 512
FRAME = RawFrame(1_700_000_000_123_456_789, LINKTYPE_ETHERNET, bytes(64), 64, 0)


class MemoryBackend:
    """Hands out ``batches`` batches of ``BATCH`` frames, then nothing."""

    name = "memory"
    linktype = LINKTYPE_ETHERNET
    settle_seconds = 0.1

    def __init__(self, batches: int) -> None:
        self.left = batches
        self.captured = 0

    def set_filter(self, expr: str, prog: object = None) -> None:
        pass

    def open(self) -> None:
        pass

    def start(self) -> None:
        pass

    def fileno(self) -> int:
        return -1

    def read(self, timeout: float) -> list[RawFrame]:
        if self.left <= 0:
            return []
        self.left -= 1
        self.captured += BATCH
        return [FRAME] * BATCH

    def stop(self) -> CaptureStats:
        return CaptureStats(self.captured, self.captured, 0)


def once(batches: int, path: str) -> float:
    """CPU seconds for ``batches`` batches through a session writing ``path``."""
    handed = [0]

    def sink(frames: list[RawFrame]) -> None:
        handed[0] += len(frames)

    backend = MemoryBackend(batches)
    session = CaptureSession(backend, sink, Owner())  # type: ignore[arg-type]
    session.open_file(path, force=True)
    start = time.process_time()
    while session.read(0.05):
        pass
    spent = time.process_time() - start
    session.finish()
    assert handed[0] == session.written == batches * BATCH
    return spent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batches", type=int, default=800)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "session.pcap")
        best = min(once(args.batches, path) for _ in range(args.repeat))
    packets = args.batches * BATCH
    print(f"{packets:,} packets in batches of {BATCH}: {best / packets * 1e6:.3f} us a packet "
          f"(CPU, best of {args.repeat})")


if __name__ == "__main__":
    main()
