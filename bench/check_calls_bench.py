"""What tracing the students' programs costs a grader: ``grade`` with ``calls = true``
against ``calls = false``.

Usage::

    python bench/check_calls_bench.py [--students 3] [--rounds 2]

A class of ``--students`` submissions of the course's C echo server (tests/c/: the
correct one, BUG_NUL, BUG_NO_EOF in turn, so the traces hold both an ordinary exchange
and the read loop after EOF) is graded by the real CLI on every server check (echo,
close, partial, large, concurrent, backlog), once with the programs under strace in the
sandbox and once without, interleaved within a round so a change of load hits both alike.
The anchor is ``calls = false`` in the same round: the figure is the traced run's wall
and CPU time over the anchor's. The CPU time is the grader's and everything it started
(``RUSAGE_CHILDREN``), strace included. The scores must not differ but for the findings
the calls add. Every process the script starts is the CLI, waited for with a time limit.
"""

from __future__ import annotations

import argparse
import datetime
import json
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
command = "gcc -O1 -o server echo_server.c"

[programs]
server = "./server {port}"
calls = %s

[[checks]]
name = "echo"
points = 1
[[checks]]
name = "close"
points = 1
[[checks]]
name = "partial"
points = 1
[[checks]]
name = "large"
points = 1
[[checks]]
name = "concurrent"
points = 1
[[checks]]
name = "backlog"
points = 1
"""
BUGS = ("", "BUG_NUL", "BUG_NO_EOF")
RUN_SECONDS = 1800


def make_class(folder: Path, students: int) -> None:
    source = (C_DIR / "echo_server.c").read_text()
    for n in range(students):
        sub = folder / "submissions" / f"student{n:02d}"
        sub.mkdir(parents=True)
        bug = BUGS[n % len(BUGS)]
        (sub / "echo_server.c").write_text(f"#define {bug} 1\n{source}" if bug else source)
    for calls in ("true", "false"):
        (folder / f"spec-{calls}.toml").write_text(SPEC % calls)


def grade_once(folder: Path, calls: str) -> tuple[float, float, dict[str, float]]:
    """Wall seconds, CPU seconds of the CLI and its children, and the scores."""
    out = folder / f"grades-{calls}"
    shutil.rmtree(out, ignore_errors=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "sockcap", "grade", f"spec-{calls}.toml",
                           "--submissions", "submissions", "--out", str(out), "--format",
                           "json"], cwd=folder, capture_output=True, text=True,
                          timeout=RUN_SECONDS, check=False)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"grade (calls = {calls}) failed: {done.stderr.strip()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    scores = {g["student"]: g["score"] for g in json.loads(done.stdout)}
    return wall, cpu, scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    walls: dict[str, list[float]] = {"true": [], "false": []}
    cpus: dict[str, list[float]] = {"true": [], "false": []}
    with tempfile.TemporaryDirectory(prefix="sockcap-calls-bench-") as temp:
        folder = Path(temp)
        make_class(folder, args.students)
        for round_ in range(args.rounds):
            for calls in (("false", "true") if round_ % 2 == 0 else ("true", "false")):
                wall, cpu, scores = grade_once(folder, calls)
                walls[calls].append(wall)
                cpus[calls].append(cpu)
                print(f"round {round_ + 1}: calls = {calls}: {wall:.1f} s wall, "
                      f"{cpu:.1f} s CPU, scores {scores}", flush=True)
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    command = f"python bench/check_calls_bench.py --students {args.students} --rounds {args.rounds}"
    anchor_wall, anchor_cpu = statistics.median(walls["false"]), statistics.median(cpus["false"])
    lines = [f"`{command}`, {when}; {os.cpu_count()} CPUs, {platform.platform()}, "
             f"load average before: {os.getloadavg()[0]:.1f}", "",
             "| calls | wall (median) | CPU (median) | wall / anchor | CPU / anchor |",
             "| --- | ---: | ---: | ---: | ---: |"]
    for calls in ("false", "true"):
        wall, cpu = statistics.median(walls[calls]), statistics.median(cpus[calls])
        lines.append(f"| {calls} | {wall:.1f} s | {cpu:.1f} s | {wall / anchor_wall:.2f} | "
                     f"{cpu / anchor_cpu:.2f} |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
