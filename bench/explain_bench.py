"""``show --explain`` against plain ``show`` (issue 23's target: within 3x), CPU time,
start-up included, and the peak RSS of each.

Usage::

    python bench/explain_bench.py [--file F] [--rounds 5]

Each round runs, one after the other with output to /dev/null: ``sockcap show F``,
``sockcap show --explain F``, the same with ``--lang id``, and ``tcpdump -nn -r F``
(``TZ=UTC``) as the anchor; rounds interleaved so each command sees the same load. The
figure per command is the median over the rounds of the child's CPU time (user +
system, ``os.wait4``'s usage of the child) and its largest peak
RSS; the ratio to plain ``show`` beside it. sockcap is the one this interpreter imports
(``PYTHONPATH=TREE`` for another tree's).
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent


def cpu(argv: list[str], env: dict[str, str]) -> tuple[float, int]:
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, env=env)
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{argv}: exit {proc.returncode}")
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--file", type=Path, default=BENCH / "data" / "loopback-1m.pcap")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    f = str(args.file)
    sockcap = [sys.executable, "-m", "sockcap"]
    commands = {
        "sockcap show": [*sockcap, "show", f],
        "sockcap show --explain": [*sockcap, "show", "--explain", f],
        "sockcap --lang id show --explain": [*sockcap, "--lang", "id", "show", "--explain", f],
    }
    if shutil.which("tcpdump"):
        commands["tcpdump -nn (TZ=UTC), anchor"] = ["tcpdump", "-nn", "-r", f]
    env = {**os.environ, "TZ": "UTC", "NO_COLOR": "1"}
    times: dict[str, list[float]] = {name: [] for name in commands}
    rss: dict[str, int] = {name: 0 for name in commands}
    for _round in range(args.rounds):
        for name, argv in commands.items():
            spent, peak = cpu(argv, env)
            times[name].append(spent)
            rss[name] = max(rss[name], peak)
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"`python bench/explain_bench.py --file {args.file.name} --rounds {args.rounds}`, "
          f"{now}, load average {load}, median CPU seconds (user + system, start-up "
          f"included) of {args.rounds} interleaved rounds\n")
    print("| command | CPU s | / plain `show` | peak RSS MB |")
    print("| --- | ---: | ---: | ---: |")
    plain = statistics.median(times["sockcap show"])
    for name in commands:
        med = statistics.median(times[name])
        print(f"| `{name}` | {med:.2f} | {med / plain:.2f} | {rss[name] / 1024:.0f} |")


if __name__ == "__main__":
    main()
