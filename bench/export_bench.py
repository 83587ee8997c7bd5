"""Export speed and memory: ``sockcap export`` against ``tshark -T json`` on the same file.

Usage::

    python bench/make_capture.py                    # once: bench/data/loopback-1m.pcap
    python bench/export_bench.py [--file F] [--packets N] [--parallel]

Each command reads the whole file; one process per command, started here and waited for
with ``os.wait4``, whose ``ru_maxrss`` is the peak resident set of that process and the
processes it waited for (the workers of ``--jobs``). The commands:

* ``sockcap export FILE --to DIR`` (Parquet, both tables), ``--tables packets``, and
  ``--format ndjson``;
* the anchor, ``tshark -T json -r FILE`` with its output written to a file (tshark keeps
  the whole file's state in memory and its JSON is what people load into other tools);
* with ``--parallel`` (``--parallel-only``: nothing else; ``--parallel-packets N``: copies
  of the first N packets): two copies of the file exported by one process (``--jobs 1``)
  and by two (``--jobs 2``), the gain from the process pool on this machine's cores; and
  beside it a control, the same CPU loop run twice one after the other and twice side by
  side, which says what two processes at once can gain on the machine at that moment
  (on a shared machine whose CPU is saturated, nothing: then the export's figure is not
  the pool's), and twice side by side each in a session of its own (``setsid``): Linux's
  autogroup scheduling shares a busy CPU between sessions, not processes, so this says
  whether the machine's load or our own processes set the figure.

``--packets N`` first cuts the file to its first N packets (with tcpdump -c), for a
quicker run on a shared machine. The figures are printed as a Markdown table for
bench/RESULTS.md; nothing is asserted (speed is never a test).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

BENCH = Path(__file__).resolve().parent


class Result(NamedTuple):
    name: str
    seconds: float
    cpu: float  # user + system seconds of the process and the workers it waited for
    max_rss_mb: float
    status: int
    out_bytes: int


def sockcap_argv() -> list[str]:
    script = Path(sys.executable).with_name("sockcap")
    return [str(script)] if script.exists() else [sys.executable, "-m", "sockcap"]


def run_once(name: str, argv: list[str], stdout: Path | None, measured: Path) -> Result:
    """Run ``argv`` (stdout to ``stdout`` or /dev/null); wall time, peak RSS, the size of
    ``measured`` (a file or folder) afterwards."""
    out = os.open(stdout or os.devnull, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        actions = [(os.POSIX_SPAWN_DUP2, out, 1), (os.POSIX_SPAWN_DUP2, devnull, 2)]
        exe = shutil.which(argv[0]) or argv[0]
        start = time.perf_counter()
        pid = os.posix_spawn(exe, argv, os.environ, file_actions=actions)
        _, status, usage = os.wait4(pid, 0)
        seconds = time.perf_counter() - start
    finally:
        os.close(out)
        os.close(devnull)
    size = (sum(f.stat().st_size for f in measured.rglob("*") if f.is_file())
            if measured.is_dir() else measured.stat().st_size if measured.exists() else 0)
    return Result(name, seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status), size)


def cut(path: Path, packets: int, folder: Path) -> Path:
    small = folder / f"{path.stem}-{packets}.pcap"
    subprocess.run(["tcpdump", "-r", str(path), "-c", str(packets), "-w", str(small)],
                   check=True, capture_output=True, timeout=600)
    return small


def count(path: Path) -> int:
    sys.path.insert(0, str(BENCH))
    from make_capture import RecordCounter

    counter = RecordCounter(path)
    counter.update()
    return int(counter.count)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--file", type=Path, default=BENCH / "data" / "loopback-1m.pcap")
    ap.add_argument("--packets", type=int, default=0, help="cut the file to this many first")
    ap.add_argument("--parallel", action="store_true", help="also 2 files, --jobs 1 vs 2")
    ap.add_argument("--no-tshark", action="store_true")
    ap.add_argument("--parquet-only", action="store_true",
                    help="leave out the --tables packets and --format ndjson runs")
    ap.add_argument("--parallel-only", action="store_true",
                    help="only the --parallel comparison (and its control)")
    ap.add_argument("--parallel-packets", type=int, default=0,
                    help="the two files of --parallel: the first N packets (default: all)")
    args = ap.parse_args()
    sockcap = sockcap_argv()
    with tempfile.TemporaryDirectory(prefix="sockcap-export-bench-",
                                     dir=BENCH / "data") as tmp_name:
        tmp = Path(tmp_name)
        path = cut(args.file, args.packets, tmp) if args.packets else args.file
        packets = count(path)
        runs: list[tuple[str, list[str], Path | None, Path]] = [
            ("sockcap export (parquet, both tables)",
             [*sockcap, "export", str(path), "--to", str(tmp / "a")], None, tmp / "a"),
            ("sockcap export --tables packets",
             [*sockcap, "export", str(path), "--to", str(tmp / "b"), "--tables", "packets"],
             None, tmp / "b"),
            ("sockcap export --format ndjson",
             [*sockcap, "export", str(path), "--to", str(tmp / "c"), "--format", "ndjson"],
             None, tmp / "c"),
        ]
        if args.parquet_only or args.parallel_only:
            runs = runs[:1] if not args.parallel_only else []
        if not args.no_tshark and not args.parallel_only:
            runs.append(("tshark -T json > out", ["tshark", "-T", "json", "-r", str(path)],
                         tmp / "tshark.json", tmp / "tshark.json"))
        results = []
        for name, argv, stdout, measured in runs:
            r = run_once(name, argv, stdout, measured)
            print(f"{name}: {r.seconds:.2f} s, CPU {r.cpu:.2f} s, {r.max_rss_mb:.0f} MB, exit {r.status}",
                  file=sys.stderr, flush=True)
            results.append(r)
            shutil.rmtree(measured, ignore_errors=True) if measured.is_dir() else measured.unlink(missing_ok=True)
        parallel: list[Result] = []
        if args.parallel or args.parallel_only:
            parallel += control(tmp)
            copies = [tmp / "one.pcap", tmp / "two.pcap"]
            source = cut(args.file, args.parallel_packets, tmp) if args.parallel_packets else path
            for c in copies:
                os.link(source, c) if source.stat().st_dev == tmp.stat().st_dev else shutil.copy(source, c)
            for jobs in (1, 2):
                out = tmp / f"p{jobs}"
                r = run_once(f"2 files, --jobs {jobs}", [*sockcap, "export", *map(str, copies),
                                                          "--to", str(out), "--jobs", str(jobs)],
                             None, out)
                print(f"{r.name}: {r.seconds:.2f} s, {r.max_rss_mb:.0f} MB", file=sys.stderr)
                parallel.append(r)
                shutil.rmtree(out, ignore_errors=True)
    print(report(args, path, packets, results, parallel))


LOAD_AT_START = os.getloadavg()
LOOP = "sum(range(3 * 10**7))"  # the control: pure CPU, no I/O, about a second


def control(tmp: Path) -> list[Result]:
    """What this machine gives two processes at once: the same CPU loop twice, one after
    the other and then side by side (a machine whose CPU share is fixed, as a container's
    can be, gains nothing however parallel the work is)."""
    loop = [sys.executable, "-c", LOOP]
    seq = run_once("control: 2 loops, one after the other",
                   ["/bin/sh", "-c", f"{' '.join(loop[:2])} '{LOOP}'; {' '.join(loop[:2])} '{LOOP}'"],
                   None, tmp / "none")
    par = run_once("control: 2 loops side by side",
                   ["/bin/sh", "-c", f"{' '.join(loop[:2])} '{LOOP}' & {' '.join(loop[:2])} '{LOOP}'; wait"],
                   None, tmp / "none")
    # the same, each loop in a session of its own: Linux's autogroup scheduling
    # (/proc/sys/kernel/sched_autogroup_enabled) shares the CPU between sessions first,
    # so under load a session's processes side by side get one session's share however
    # many they are, and two sessions get two (the export's workers are in its session)
    own = run_once("control: 2 loops side by side, a session each (setsid)",
                   ["/bin/sh", "-c", f"setsid -w {' '.join(loop[:2])} '{LOOP}' & "
                                     f"setsid -w {' '.join(loop[:2])} '{LOOP}'; wait"],
                   None, tmp / "none")
    for r in (seq, par, own):
        print(f"{r.name}: {r.seconds:.2f} s", file=sys.stderr)
    return [seq, par, own]


def report(args: argparse.Namespace, path: Path, packets: int, results: list[Result],
           parallel: list[Result]) -> str:
    anchor = next((r for r in results if r.name.startswith("tshark")), None)
    lines = [f"Run {datetime.date.today()}: `python bench/export_bench.py"
             f"{' --packets ' + str(args.packets) if args.packets else ''}"
             f"{' --parallel' if args.parallel else ''}"
             f"{' --parallel-packets ' + str(args.parallel_packets) if args.parallel_packets else ''}"
             f"{' --parquet-only' if args.parquet_only else ''}"
             f"{' --parallel-only' if args.parallel_only else ''}` on {path.name} "
             f"({packets:,} packets), {os.cpu_count()} cores shared, Python "
             f"{platform.python_version()}.", "",
             "| command | wall s | CPU s | packets/CPU s | peak RSS | output | vs tshark -T json (CPU) |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        ratio = f"{anchor.cpu / r.cpu:.2f}x" if anchor and r.status == 0 else ""
        lines.append(f"| `{r.name}` | {r.seconds:.2f} | {r.cpu:.2f} | {packets / r.cpu:,.0f} | "
                     f"{r.max_rss_mb:.0f} MB | {r.out_bytes / 1e6:.1f} MB | {ratio} |")
    each = args.parallel_packets or packets
    for pair in (parallel[0:3], parallel[3:5]):
        for r in pair:
            gain = (f"{pair[0].seconds / r.seconds:.2f}x the wall time above"
                    if r is not pair[0] else "")
            what = "" if r.name.startswith("control") else f" (2 x {each:,} packets)"
            rate = f"{2 * each / r.cpu:,.0f}" if what else ""
            lines.append(f"| `{r.name}`{what} | {r.seconds:.2f} | {r.cpu:.2f} | {rate} | "
                         f"{r.max_rss_mb:.0f} MB | {r.out_bytes / 1e6:.1f} MB | {gain} |")
    load = os.getloadavg()
    lines.append(f"\nLoad average at the end: {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}"
                 f" (at the start: {LOAD_AT_START[0]:.1f}/{LOAD_AT_START[1]:.1f}/"
                 f"{LOAD_AT_START[2]:.1f}).")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
