"""Grading a class in parallel: ``sockcap grade -j 1`` against ``-j 2`` (and ``-j N``).

Usage::

    python bench/grade_bench.py [--students 8] [--jobs 1 2 4] [--rounds 2]
                                [--write bench/GRADE_RESULTS.md]

A class of ``--students`` submissions (each the C echo server and echo client of
tests/c/, every third with a planted bug, so findings and their packets are part of the
work) is graded with the same spec (build; the server's echo, close and concurrent; the
client's client_echo and client_close: not partial, whose outcome for the NUL bug depends
on how the kernel joins one-byte segments, so its score may differ from run to run) by
the real CLI, once per ``-j`` value per round, the values interleaved within a round so a
change of load hits all of them alike. The anchor is ``-j 1`` in the same round: the
figure is its wall time over the others'. The CPU
time of the grader and everything it started (``RUSAGE_CHILDREN``) is shown beside it,
to tell waiting (what parallel grading wins back) from work (what it cannot).
Every process the script starts is the CLI, waited for with a time limit.
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
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
C_DIR = ROOT / "tests" / "c"
SPEC = """
[build]
command = "gcc -O1 -o server echo_server.c && gcc -O1 -o client echo_client.c"

[programs]
server = "./server {port}"
client = "./client 127.0.0.1 {port}"

[[checks]]
name = "build"
points = 1
[[checks]]
name = "echo"
points = 3
[[checks]]
name = "close"
points = 2
[[checks]]
name = "concurrent"
points = 1
[[checks]]
name = "client_echo"
points = 2
[[checks]]
name = "client_close"
points = 1
"""
BUGS = [("", ""), ("BUG_NUL", ""), ("", "BUG_ONE_READ")]
RUN_SECONDS = 1200


def make_class(folder: Path, students: int) -> None:
    for n in range(students):
        sub = folder / "submissions" / f"student{n:02d}"
        sub.mkdir(parents=True)
        server_bug, client_bug = BUGS[n % len(BUGS)]
        for name, bug in (("echo_server.c", server_bug), ("echo_client.c", client_bug)):
            source = (C_DIR / name).read_text()
            (sub / name).write_text(f"#define {bug} 1\n{source}" if bug else source)
    (folder / "spec.toml").write_text(SPEC)


def grade_once(folder: Path, jobs: int) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds of the CLI and its children, and the scores printed."""
    out = folder / f"grades-j{jobs}"
    shutil.rmtree(out, ignore_errors=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "sockcap", "grade", "spec.toml",
                           "--submissions", "submissions", "--out", str(out), "-j", str(jobs)],
                          cwd=folder, capture_output=True, text=True, timeout=RUN_SECONDS,
                          check=False)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"grade -j {jobs} failed: {done.stderr.strip()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=8)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--write", type=Path, default=None)
    args = parser.parse_args()
    jobs = sorted(set(args.jobs) | {1})
    walls: dict[int, list[float]] = {j: [] for j in jobs}
    cpus: dict[int, list[float]] = {j: [] for j in jobs}
    with tempfile.TemporaryDirectory(prefix="sockcap-grade-bench-") as temp:
        folder = Path(temp)
        make_class(folder, args.students)
        scores: dict[int, str] = {}
        for round_ in range(args.rounds):
            order = jobs if round_ % 2 == 0 else list(reversed(jobs))
            for j in order:
                wall, cpu, printed = grade_once(folder, j)
                walls[j].append(wall)
                cpus[j].append(cpu)
                scores[j] = printed
                print(f"round {round_ + 1}: -j {j}: {wall:.1f} s wall, {cpu:.1f} s CPU",
                      flush=True)
        if len(set(scores.values())) != 1:
            raise SystemExit("the scores differ between -j values:\n"
                             + "\n".join(f"-j {j}:\n{s}" for j, s in scores.items()))
    anchor = statistics.median(walls[1])
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    command = (f"python bench/grade_bench.py --students {args.students} --jobs "
               f"{' '.join(map(str, jobs))} --rounds {args.rounds}")
    lines = [f"`{command}`, {when}; {os.cpu_count()} CPUs, {platform.platform()}, "
             f"load average before: {os.getloadavg()[0]:.1f}", "",
             "| -j | wall (median) | CPU (median) | -j 1 wall / this wall |",
             "| ---: | ---: | ---: | ---: |"]
    for j in jobs:
        wall = statistics.median(walls[j])
        lines.append(f"| {j} | {wall:.1f} s | {statistics.median(cpus[j]):.1f} s | "
                     f"{anchor / wall:.2f} |")
    lines.append("")
    lines.append("Every -j value gave the same scores.")
    text = "\n".join(lines)
    print(text)
    if args.write:
        args.write.write_text(f"# Grading a class in parallel\n\n{__doc__}\n\n{text}\n")


if __name__ == "__main__":
    main()
