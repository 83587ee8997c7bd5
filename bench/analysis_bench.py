"""Follow and stats speed: ``sockcap follow`` / ``sockcap stats`` against tshark, same run.

Usage::

    python bench/make_capture.py                      # once: bench/data/loopback-1m.pcap
    python bench/analysis_bench.py [--file F] [--stream N] [--repeat 1]
                                   [--write bench/ANALYSIS_RESULTS.md]

Pairs, each reading the whole file with output to /dev/null, one process per command
(wall time and peak RSS from ``os.wait4``, as bench/show_bench.py does):

* ``sockcap follow --raw --stream N FILE`` against ``tshark -q -z follow,tcp,raw,N``,
  for a stream near the start and for one that starts halfway through the file;
* ``sockcap stats FILE`` against ``tshark -q -z conv,tcp``;
* ``sockcap show FILE`` against ``tcpdump -nn -r FILE`` (the timeline must stay near
  tcpdump's speed with the expert analysis on).

The stream followed by default is the one with the most payload bytes among the first
thousand packets' conversations, found with sockcap itself before timing. Figures are
ratios to the anchor measured in the same run (issue #4's target: follow and stats
>= 5x tshark), never absolute times asserted in a test.
"""

from __future__ import annotations

import argparse
import datetime
import io
import itertools
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from show_bench import Result, best_of, count_packets, sockcap_argv, tool_version

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_FILE = ROOT / "bench" / "data" / "loopback-1m.pcap"
TARGET = 5.0


def busiest_stream(path: Path, packets: int = 1000) -> int:
    """A TCP stream with data near the start of the file (what a user would follow)."""
    from sockcap.pcapfile.reader import open_capture
    from sockcap.pipeline import Pipeline

    view = Pipeline()
    with open(path, "rb") as f:
        head = io.BytesIO(f.read(4 << 20))
    for _ in view.packets(itertools.islice(open_capture(head), packets)):
        pass
    tcp = [c for c in view.tracker.conversations if c.proto == 6]
    best = max(tcp, key=lambda c: c.dirs[0].payload_bytes + c.dirs[1].payload_bytes)
    return best.stream


def middle_stream(path: Path, packets: int) -> int:
    """The first TCP stream that starts in the second half of the file: following it,
    sockcap numbers every packet of the first half before its prefilter can help."""
    from sockcap.analysis.conversation import ConversationTracker
    from sockcap.decode import decode_frame
    from sockcap.pcapfile.reader import open_capture

    tracker = ConversationTracker(analyze=False)
    with open(path, "rb") as f:
        for frame in itertools.islice(open_capture(f), packets // 2):
            tracker.locate(decode_frame(frame))
    return sum(1 for c in tracker.conversations if c.proto == 6)


def pairs(path: str, stream: int, middle: int) -> list[tuple[str, list[str], str, list[str]]]:
    sc = sockcap_argv()
    return [
        (f"sockcap follow --raw --stream {stream}",
         [*sc, "follow", "--raw", "--stream", str(stream), path],
         "tshark follow,tcp,raw", ["tshark", "-q", "-r", path, "-z", f"follow,tcp,raw,{stream}"]),
        (f"sockcap follow --raw --stream {middle}",
         [*sc, "follow", "--raw", "--stream", str(middle), path],
         "tshark follow,tcp,raw", ["tshark", "-q", "-r", path, "-z", f"follow,tcp,raw,{middle}"]),
        ("sockcap stats", [*sc, "stats", path],
         "tshark conv,tcp", ["tshark", "-q", "-r", path, "-z", "conv,tcp"]),
        ("sockcap show", [*sc, "show", path],
         "tcpdump -nn", ["tcpdump", "-nn", "-r", path]),
    ]


def measure(path: Path, stream: int, middle: int,
            repeat: int) -> list[tuple[Result, Result]]:
    out = []
    for name, argv, anchor, anchor_argv in pairs(str(path), stream, middle):
        mine = best_of(name, argv, repeat)
        theirs = best_of(anchor, anchor_argv, repeat)
        out.append((mine, theirs))
        print(f"{name}: {mine.seconds:.2f} s ({mine.max_rss_mb:.0f} MB), {anchor}: "
              f"{theirs.seconds:.2f} s ({theirs.max_rss_mb:.0f} MB), "
              f"ratio {theirs.seconds / mine.seconds:.2f}x", flush=True)
    return out


def report(path: Path, packets: int, stream: int, middle: int,
           results: list[tuple[Result, Result]]) -> list[str]:
    lines = [
        "# Follow and stats speed (issue #4)",
        "",
        f"Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}; "
        f"file: `{path.name}` ({packets} packets, {path.stat().st_size >> 20} MiB); "
        f"streams followed: {stream} (the busiest near the start) and {middle} (the first "
        "to start in the second half).",
        f"tshark: {tool_version(['tshark', '--version'])}; "
        f"tcpdump: {tool_version(['tcpdump', '--version'])}; Python {sys.version.split()[0]}.",
        "Command: `python bench/analysis_bench.py` (each command's best of the repeats, output "
        "to /dev/null, same machine and run).",
        "",
        "| command | seconds | peak RSS MB | anchor | seconds | peak RSS MB | speed vs anchor | target |",
        "| --- | ---: | ---: | --- | ---: | ---: | ---: | --- |",
    ]
    for mine, theirs in results:
        ratio = theirs.seconds / mine.seconds
        target = f">= {TARGET:.0f}x" if "tshark" in theirs.name else "~1x"
        verdict = "met" if ratio >= (TARGET if "tshark" in theirs.name else 0.8) else "NOT met"
        lines.append(f"| `{mine.name}` | {mine.seconds:.2f} | {mine.max_rss_mb:.0f} | "
                     f"`{theirs.name}` | {theirs.seconds:.2f} | {theirs.max_rss_mb:.0f} | "
                     f"{ratio:.2f}x | {target}: {verdict} |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--file", type=Path, default=DEFAULT_FILE)
    ap.add_argument("--stream", type=int, default=None)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--write", type=Path, default=None)
    args = ap.parse_args()
    if not args.file.exists():
        sys.exit(f"{args.file} is missing: run python bench/make_capture.py first")
    stream = args.stream if args.stream is not None else busiest_stream(args.file)
    packets = count_packets(args.file)
    middle = middle_stream(args.file, packets)
    results = measure(args.file, stream, middle, args.repeat)
    text = "\n".join(report(args.file, packets, stream, middle, results)) + "\n"
    print(text)
    if args.write:
        args.write.write_text(text)


if __name__ == "__main__":
    main()
