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
* with ``--parallel``: two copies of the file exported by one process (``--jobs 1``) and
  by two (``--jobs 2``), the gain from the process pool on this machine's cores.

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
        if not args.no_tshark:
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
        if args.parallel:
            copies = [tmp / "one.pcap", tmp / "two.pcap"]
            for c in copies:
                os.link(path, c) if path.stat().st_dev == tmp.stat().st_dev else shutil.copy(path, c)
            for jobs in (1, 2):
                out = tmp / f"p{jobs}"
                r = run_once(f"2 files, --jobs {jobs}", [*sockcap, "export", *map(str, copies),
                                                          "--to", str(out), "--jobs", str(jobs)],
                             None, out)
                print(f"{r.name}: {r.seconds:.2f} s, {r.max_rss_mb:.0f} MB", file=sys.stderr)
                parallel.append(r)
                shutil.rmtree(out, ignore_errors=True)
    print(report(args, path, packets, results, parallel))


def report(args: argparse.Namespace, path: Path, packets: int, results: list[Result],
           parallel: list[Result]) -> str:
    anchor = next((r for r in results if r.name.startswith("tshark")), None)
    lines = [f"Run {datetime.date.today()}: `python bench/export_bench.py"
             f"{' --packets ' + str(args.packets) if args.packets else ''}"
             f"{' --parallel' if args.parallel else ''}` on {path.name} "
             f"({packets:,} packets), {os.cpu_count()} cores shared, Python "
             f"{platform.python_version()}.", "",
             "| command | wall s | CPU s | packets/CPU s | peak RSS | output | vs tshark -T json (CPU) |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        ratio = f"{anchor.cpu / r.cpu:.2f}x" if anchor and r.status == 0 else ""
        lines.append(f"| `{r.name}` | {r.seconds:.2f} | {r.cpu:.2f} | {packets / r.cpu:,.0f} | "
                     f"{r.max_rss_mb:.0f} MB | {r.out_bytes / 1e6:.1f} MB | {ratio} |")
    for r in parallel:
        lines.append(f"| `{r.name}` | {r.seconds:.2f} | {r.cpu:.2f} | {2 * packets / r.cpu:,.0f} | "
                     f"{r.max_rss_mb:.0f} MB | {r.out_bytes / 1e6:.1f} MB | |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
