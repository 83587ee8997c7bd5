"""Timeline speed: ``sockcap show`` against tshark and tcpdump on the same file, same run.

Usage::

    python bench/make_capture.py                    # once: bench/data/loopback-1m.pcap
    python bench/show_bench.py [--file F] [--repeat 1] [--write bench/SHOW_RESULTS.md]

Each command reads the whole file with its output going to ``/dev/null``; one process
per command, started here and waited for with ``os.wait4``, whose ``ru_maxrss`` is that
process's peak resident set. The commands:

* ``sockcap show FILE``, ``sockcap show --json FILE``, ``sockcap show --hex FILE``;
* ``tshark -r FILE -T fields`` with the fields the timeline shows (time, addresses,
  ports, flags, seq, ack, length) and relative sequence numbers, as the timeline has;
* ``tcpdump -nn -r FILE`` (the plain one-line-per-packet anchor) and
  ``tcpdump -nn -X -r FILE`` (the hex anchor).

The figures are ratios of packets per second against the anchors measured in the same
run on the same machine (issue #3's targets: timeline >= 8x tshark and >= 1.0x
``tcpdump -nn``; hex >= 1.0x ``tcpdump -nn -X``; peak RSS < 100 MB), never absolute
times asserted in a test. ``--repeat N`` keeps each command's fastest of N runs.

Also measured: ``sockcap --help`` wall time (median of 10) and whether ``python -X
importtime`` shows scapy, pyshark or rich being imported on that path (it must not).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

from make_capture import RecordCounter

BENCH = Path(__file__).resolve().parent
HEAVY_MODULES = ("scapy", "pyshark", "rich")
TSHARK_FIELDS = ["frame.time_relative", "ip.src", "ip.dst", "ipv6.src", "ipv6.dst",
                 "tcp.srcport", "tcp.dstport", "udp.srcport", "udp.dstport", "tcp.flags.str",
                 "tcp.seq", "tcp.ack", "tcp.len"]


class Result(NamedTuple):
    name: str
    argv: list[str]
    seconds: float
    max_rss_mb: float
    status: int


def sockcap_argv() -> list[str]:
    """The installed ``sockcap`` script next to this interpreter, else ``python -m``."""
    script = Path(sys.executable).with_name("sockcap")
    return [str(script)] if script.exists() else [sys.executable, "-m", "sockcap"]


def commands(path: str) -> list[tuple[str, list[str]]]:
    sockcap = sockcap_argv()
    fields = [arg for f in TSHARK_FIELDS for arg in ("-e", f)]
    return [
        ("sockcap show", [*sockcap, "show", path]),
        ("sockcap show --json", [*sockcap, "show", "--json", path]),
        ("sockcap show --hex", [*sockcap, "show", "--hex", path]),
        ("tshark -T fields", ["tshark", "-r", path, "-T", "fields", *fields,
                              "-o", "tcp.relative_sequence_numbers:TRUE"]),
        ("tcpdump -nn", ["tcpdump", "-nn", "-r", path]),
        ("tcpdump -nn -X", ["tcpdump", "-nn", "-X", "-r", path]),
    ]


def run_once(name: str, argv: list[str]) -> Result:
    """Run ``argv`` with stdout and stderr to /dev/null; wall time and the child's peak RSS."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        actions = [(os.POSIX_SPAWN_DUP2, devnull, 1), (os.POSIX_SPAWN_DUP2, devnull, 2)]
        exe = shutil.which(argv[0]) or argv[0]
        start = time.perf_counter()
        pid = os.posix_spawn(exe, argv, os.environ, file_actions=actions)
        _, status, usage = os.wait4(pid, 0)
        seconds = time.perf_counter() - start
    finally:
        os.close(devnull)
    # ru_maxrss is in kilobytes on Linux
    return Result(name, argv, seconds, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status))


def best_of(name: str, argv: list[str], repeat: int) -> Result:
    runs = [run_once(name, argv) for _ in range(repeat)]
    return min(runs, key=lambda r: r.seconds)


def help_startup(runs: int = 10) -> tuple[float, list[str]]:
    """Median wall time of ``sockcap --help``, and heavy modules seen by ``-X importtime``.

    A failing ``--help`` is reported as an infinite time (and its stderr shown), not
    raised: the timings of the other commands are still worth having.
    """
    argv = [*sockcap_argv(), "--help"]
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        times.append(time.perf_counter() - start)
        if done.returncode:
            print(f"sockcap --help failed: {done.stderr.strip().splitlines()[-1:]}",
                  file=sys.stderr)
            return float("inf"), []
    trace = subprocess.run([sys.executable, "-X", "importtime", "-m", "sockcap", "--help"],
                           capture_output=True, text=True).stderr
    imported = {line.rsplit("|", 1)[-1].strip().split(".")[0]
                for line in trace.splitlines() if line.startswith("import time:")}
    return statistics.median(times), sorted(imported & set(HEAVY_MODULES))


def _own_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def count_packets(path: Path) -> int:
    counter = RecordCounter(path)
    counter.update()
    return counter.count


def tool_version(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "missing"
    return (out.stdout or out.stderr).splitlines()[0].strip()


def table(results: list[Result], packets: int) -> list[str]:
    by_name = {r.name: r for r in results}

    def ratio(r: Result, anchor: str) -> str:
        a = by_name.get(anchor)
        return f"{a.seconds / r.seconds:.2f}x" if a and a.status == 0 else "-"

    rows = ["| command | exit | seconds | packets/s | peak RSS (MB) | vs tshark"
            " | vs tcpdump -nn | vs tcpdump -nn -X |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in results:
        rows.append(f"| `{r.name}` | {r.status} | {r.seconds:.2f} | {packets / r.seconds:,.0f}"
                    f" | {r.max_rss_mb:.0f} | {ratio(r, 'tshark -T fields')}"
                    f" | {ratio(r, 'tcpdump -nn')} | {ratio(r, 'tcpdump -nn -X')} |")
    return rows


def verdicts(results: list[Result], help_s: float, heavy: list[str]) -> list[str]:
    """Issue #3's targets, each with the measured figure and met / NOT met."""
    t = {r.name: r for r in results}

    def speed(name: str, anchor: str, target: float) -> str:
        if name not in t or anchor not in t:
            return f"- `{name}` vs `{anchor}`: not measured"
        x = t[anchor].seconds / t[name].seconds
        return (f"- `{name}` >= {target:g}x `{anchor}`: {x:.2f}x, "
                f"{'met' if x >= target else 'NOT met'}")

    rss = max(r.max_rss_mb for r in results if r.name.startswith("sockcap"))
    return [
        speed("sockcap show", "tshark -T fields", 8.0),
        speed("sockcap show", "tcpdump -nn", 1.0),
        speed("sockcap show --hex", "tcpdump -nn -X", 1.0),
        f"- peak RSS of `sockcap show*` < 100 MB: {rss:.0f} MB, "
        f"{'met' if rss < 100 else 'NOT met'}",
        f"- `sockcap --help` < 0.25 s: {help_s:.3f} s (median of 10), "
        f"{'met' if help_s < 0.25 else 'NOT met'}",
        f"- `sockcap --help` imports none of {', '.join(HEAVY_MODULES)}: "
        + ("yes" if not heavy else f"NO, imports {', '.join(heavy)}"),
    ]


def report(path: Path, packets: int, results: list[Result], help_s: float,
           heavy: list[str], repeat: int) -> str:
    size = path.stat().st_size / 1e6
    lines = [
        "# `sockcap show` speed",
        "",
        f"Measured {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z} with"
        f" `python bench/show_bench.py --repeat {repeat}`",
        f"on `{path.name}` ({packets:,} packets, {size:.0f} MB, made by"
        " `python bench/make_capture.py`), output to /dev/null, fastest of"
        f" {repeat} run(s) per command.",
        "",
        f"Machine: {os.cpu_count()} CPUs ({platform.processor() or platform.machine()}),"
        f" Linux {platform.release()}, Python {platform.python_version()},"
        f" {tool_version(['tshark', '--version'])}, {tool_version(['tcpdump', '--version'])}.",
        "",
        *table(results, packets),
        "",
        f"Peak RSS is `ru_maxrss` from `os.wait4`; on Linux a spawned child starts from"
        f" its parent's peak, so figures near this script's own ({_own_rss_mb():.0f} MB) are"
        " that floor, not the tool's.",
        "",
        "Targets (issue #3):",
        "",
        *verdicts(results, help_s, heavy),
        "",
        "Commands:",
        "",
        *[f"- {r.name}: `{' '.join(Path(a).name if i == 0 else a for i, a in enumerate(r.argv))}`"
          for r in results],
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--file", type=Path, default=BENCH / "data" / "loopback-1m.pcap")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--only", action="append", default=[],
                    help="run only commands whose name contains this (repeatable)")
    ap.add_argument("--write", type=Path, help="also write the report to this file")
    args = ap.parse_args()
    if not args.file.exists():
        raise SystemExit(f"{args.file} is missing: run python bench/make_capture.py first")
    packets = count_packets(args.file)
    help_s, heavy = help_startup()
    subprocess.run(["cat", str(args.file)], stdout=subprocess.DEVNULL, check=True)  # warm cache
    results = []
    for name, argv in commands(str(args.file)):
        if args.only and not any(o in name for o in args.only):
            continue
        if shutil.which(argv[0]) is None:
            print(f"{name}: {argv[0]} not found, skipped", file=sys.stderr)
            continue
        results.append(best_of(name, argv, args.repeat))
        r = results[-1]
        print(f"{name}: {r.seconds:.2f} s, {packets / r.seconds:,.0f} packets/s,"
              f" {r.max_rss_mb:.0f} MB, exit {r.status}", file=sys.stderr, flush=True)
    text = report(args.file, packets, results, help_s, heavy, args.repeat)
    print(text)
    if args.write:
        args.write.write_text(text)


if __name__ == "__main__":
    main()
