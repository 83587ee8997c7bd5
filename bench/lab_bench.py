"""The lab's delay line against the kernel's bridge: how much it costs, how true it is.

Usage (root, or a user allowed to make user namespaces)::

    python bench/lab_bench.py [--rounds 3] [--mbytes 5]

The anchor is the lab's other link, the kernel's own bridge (``sockcap lab`` with no
link option): the same two hosts, the same captures, frames forwarded by the kernel.
``--seed 0`` alone puts sockcap's delay line (:mod:`sockcap.lab.forwarder`, one Python
process reading and writing both ports) in its place and changes nothing else. Rounds
interleave the two, and the medians are compared:

* capacity: the goodput of one TCP stream of ``--mbytes`` MB (``--pattern stream``),
  and the ratio delay line / bridge;
* truth: the client's round trip (the SYN to the SYN-ACK, as captured) with ``--delay``
  20 and 100 ms, against twice the delay;
* a ``--rate 10mbit`` stream: the goodput against the rate.

Every figure comes from ``sockcap lab --json``; each run is a process this script starts
and waits for (a time limit of 300 s each).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def lab(*args: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run([sys.executable, "-m", "sockcap", "lab", "--json", "--out",
                               str(Path(tmp) / "lab"), *args], cwd=ROOT, capture_output=True,
                              text=True, timeout=300, check=False)
    if done.returncode != 0:
        raise SystemExit(f"sockcap lab {' '.join(args)}: {done.stderr.strip()}")
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--mbytes", type=float, default=5)
    opts = parser.parse_args()
    size = str(int(opts.mbytes * 1_000_000))
    stream = ("--tcp", "--pattern", "stream", "--count", "1", "--size", size)
    goodput: dict[str, list[float]] = {"bridge": [], "delay line": []}
    rtt: dict[int, list[float]] = {20: [], 100: []}
    rated: list[float] = []
    for _round in range(opts.rounds):
        goodput["bridge"].append(lab(*stream)["tcp"]["goodput_bps"])
        goodput["delay line"].append(lab(*stream, "--seed", "0")["tcp"]["goodput_bps"])
        for delay in rtt:
            rtt[delay].append(lab("--tcp", "--count", "3", "--delay", str(delay))
                              ["tcp"]["rtt_seconds"])
        rated.append(lab("--tcp", "--pattern", "stream", "--count", "1", "--size", "2000000",
                         "--rate", "10mbit")["tcp"]["goodput_bps"])
    bridge, line = (statistics.median(goodput[k]) for k in ("bridge", "delay line"))
    print(f"| one TCP stream of {opts.mbytes:g} MB | bridge (kernel), anchor | "
          f"{bridge / 1e6:.1f} Mbit/s | |")
    print(f"| | delay line (sockcap) | {line / 1e6:.1f} Mbit/s | {line / bridge:.3f} |")
    for delay, values in rtt.items():
        got = statistics.median(values)
        print(f"| round trip, --delay {delay} | 2 x delay = {2 * delay} ms | {got * 1000:.1f} ms "
              f"| {got / (2 * delay / 1000):.3f} |")
    got = statistics.median(rated)
    print(f"| goodput, --rate 10mbit | 10 Mbit/s | {got / 1e6:.2f} Mbit/s | {got / 1e7:.3f} |")


if __name__ == "__main__":
    main()
