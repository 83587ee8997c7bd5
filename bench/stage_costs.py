"""What each stage of the pipeline costs per packet, and the floor under ``sockcap stats``.

Usage::

    python bench/stage_costs.py [--file F]

Each row runs one more stage than the row before it over the whole file, in this process
(CPU seconds from ``time.process_time``; divide by the packet count for µs a packet):

1. ``read``: the reader's frames, nothing else;
2. ``+ decode``: ``decode_frame`` on each;
3. ``+ locate``: stream numbering (``ConversationTracker.locate``);
4. ``+ annotate``: counters, relative numbers and phase, without the expert analysis
   (what ``sockcap follow`` does for every packet it keeps);
5. ``+ analysis + totals``: the expert analysis and the protocol totals: the whole work of
   ``sockcap stats``.

Then the floor: the least a CPython loop can do and still give the numbers ``stats`` must
give for TCP. One loop over the file's bytes, no records: the pcap record header and the
Ethernet/IPv4/TCP header read with one ``unpack_from`` each, the 5-tuple as a slice of
the frame, one dict lookup, the packet and byte counters, then Wireshark's per-segment
analysis (``analyze_segment``, the function ``sockcap stats`` runs). It leaves out most
of what ``stats`` does besides (handshake, iRTT, how it ended, UDP, other link types), so
its time is below what any complete implementation in CPython could reach. Run it with and
without the analysis to see what that alone costs. It reads only little-endian
microsecond pcap files of Ethernet frames (the file bench/make_capture.py writes).
"""

from __future__ import annotations

import argparse
import gc
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sockcap.analysis.conversation import ConversationTracker, Direction  # noqa: E402
from sockcap.analysis.expert import analyze_segment  # noqa: E402
from sockcap.analysis.stats import StatsCollector  # noqa: E402
from sockcap.decode import decode_frame  # noqa: E402
from sockcap.pcapfile.reader import open_capture  # noqa: E402

DEFAULT_FILE = ROOT / "bench" / "data" / "loopback-1m.pcap"
RECORD = struct.Struct("<IIII").unpack_from
ETHER_IPV4_TCP = struct.Struct("!12xHBxHHHBxxxIIHHIIHH").unpack_from


def stage(path: Path, depth: int) -> int:
    """Run the first ``depth`` stages over the file; the packet count."""
    tracker = ConversationTracker()
    totals = StatsCollector()
    locate, annotate, count = tracker.locate, tracker.annotate, totals.count
    tracker.analyze = depth >= 5
    n = 0
    with path.open("rb") as f:
        for frame in open_capture(f):
            n += 1
            if depth >= 2:
                p = decode_frame(frame)
                if depth >= 3:
                    entry = locate(p)
                    if depth >= 4:
                        annotate(p, entry)
                        if depth >= 5 and entry is None:
                            count(p)  # as sockcap stats: conversations count their own
    return n


def floor(path: Path, analysis: bool) -> int:
    """The fused loop described in the module's docstring; the packet count."""
    table: dict[bytes, tuple[tuple[Direction, Direction], bool]] = {}
    n = 0
    with path.open("rb") as f:
        f.read(24)
        rest = b""
        while block := f.read(1 << 22):
            buf = rest + block
            pos, end = 0, len(buf)
            while end - pos >= 16:
                sec, usec, incl, orig = RECORD(buf, pos)
                stop = pos + 16 + incl
                if stop > end:
                    break
                n += 1
                if incl >= 54 and buf[pos + 39] == 6:
                    (_, _, total, _, _, _, _, _, _, _, seq, ack, offset_flags,
                     window) = ETHER_IPV4_TCP(buf, pos + 16)  # fmt: skip
                    entry = table.get(buf[pos + 42 : pos + 54])
                    if entry is None:
                        dirs = (Direction(), Direction())
                        entry = table[buf[pos + 42 : pos + 54]] = (dirs, True)
                        table[buf[pos + 46 : pos + 50] + buf[pos + 42 : pos + 46]
                              + buf[pos + 52 : pos + 54] + buf[pos + 50 : pos + 52]] = (dirs, False)
                    dirs, forward = entry
                    d, r = (dirs[0], dirs[1]) if forward else (dirs[1], dirs[0])
                    seglen = total - 20 - ((offset_flags >> 12) << 2)
                    d.packets += 1
                    d.bytes += orig
                    d.payload_bytes += seglen
                    if analysis:
                        analyze_segment(seq, ack, seglen, offset_flags & 0x1FF, window,
                                        sec * 1_000_000_000 + usec * 1000, d, r, 0, False)
                pos = stop
            rest = buf[pos:]
    return n


def timed(run: Callable[[], int]) -> tuple[float, int]:
    gc.disable()
    start = time.process_time()
    n = run()
    seconds = time.process_time() - start
    gc.enable()
    return seconds, n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--file", type=Path, default=DEFAULT_FILE)
    args = ap.parse_args()
    if not args.file.exists():
        sys.exit(f"{args.file} is missing: run python bench/make_capture.py first")
    names = ["read", "+ decode", "+ locate", "+ annotate (no analysis)",
             "+ analysis + totals (= stats)"]
    rows = [(name, *timed(lambda d=depth: stage(args.file, d)))
            for depth, name in enumerate(names, 1)]
    rows += [("floor: fused loop, no analysis", *timed(lambda: floor(args.file, False))),
             ("floor: fused loop + analyze_segment", *timed(lambda: floor(args.file, True)))]
    print("| stages | CPU seconds | µs a packet | step |")
    print("| --- | ---: | ---: | ---: |")
    previous = 0.0
    for name, seconds, n in rows:
        step = "" if name.startswith("floor") else f"{(seconds - previous) / n * 1e6:.2f}"
        previous = seconds
        print(f"| {name} | {seconds:.2f} | {seconds / n * 1e6:.2f} | {step} |")


if __name__ == "__main__":
    main()
