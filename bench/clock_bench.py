"""How well the kernel's events and strace's calls line up with the packets' clock.

Two measurements, each over ``--runs`` real runs on loopback (root: the capture and
tracefs):

* kernel: ``sockcap run --capture --kernel --json``; for each state change the kernel
  makes on *receiving* a packet (SYN_SENT → ESTABLISHED after the SYN-ACK, ESTABLISHED →
  CLOSE_WAIT after the FIN, ...), the event's time minus the time of the packet it is
  tied to. Both are stamped by the kernel of one machine; the difference is the time the
  stack took plus the error of mapping the trace's CLOCK_MONOTONIC onto the packets'
  CLOCK_REALTIME (:func:`sockcap.capture.kernel.clock_offset`). A negative difference
  would be an event placed before its cause: the mapping's error.
* strace: ``sockcap capture --calls -- ./client`` (tests/c/echo_client.c) against the C
  echo server; for each ``write()``, the time of the first segment it sent minus the
  time strace wrote for the call's start. Positive: strace's clock reading came before
  the kernel ran the call (strace reads the clock itself when it handles the stop).

usage: sudo python bench/clock_bench.py [--runs 20]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECEIVED = {("SYN_SENT", "ESTABLISHED"), ("SYN_RECV", "ESTABLISHED"),
            ("ESTABLISHED", "CLOSE_WAIT"), ("FIN_WAIT1", "FIN_WAIT2"),
            ("FIN_WAIT2", "TIME_WAIT"), ("LAST_ACK", "CLOSE")}


def sockcap(*args: str, stdin: str | None = None) -> list[dict[str, object]]:
    res = subprocess.run([sys.executable, "-m", "sockcap", *args], capture_output=True,
                         text=True, timeout=120, cwd=ROOT, input=stdin, check=True)
    return [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]


def kernel_gaps(runs: int, folder: str) -> list[float]:
    gaps = []
    for i in range(runs):
        rows = sockcap("run", "--capture", "--kernel", "--json", "--force", "--out",
                       os.path.join(folder, f"k{i}.pcap"))
        times = {r["no"]: r["time"] for r in rows if r["type"] == "packet"}
        for r in rows:
            if (r["type"] == "kernel" and r["event"] == "inet_sock_set_state"
                    and (r["old_state"], r["new_state"]) in RECEIVED and r["packets"]):
                gaps.append((r["time"] - times[r["packets"][0]]) * 1e6)  # type: ignore[operator]
    return gaps


def strace_gaps(runs: int, folder: str) -> list[float]:
    c = ROOT / "tests" / "c"
    subprocess.run(["gcc", "-O1", "-o", f"{folder}/server", str(c / "echo_server.c")], check=True)
    subprocess.run(["gcc", "-O1", "-o", f"{folder}/client", str(c / "echo_client.c")], check=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([f"{folder}/server", str(port)], stdout=subprocess.DEVNULL)
    gaps = []
    try:
        time.sleep(0.5)
        for _ in range(runs):
            rows = sockcap("capture", "--calls", "--json", "-f", f"tcp port {port}", "--",
                           f"{folder}/client", "127.0.0.1", str(port), stdin="hello\nworld\n")
            times = {r["no"]: r["time"] for r in rows if r.get("type") == "packet"}
            for r in rows:
                if r.get("type") == "call" and r["syscall"] == "write" and r["packets"]:
                    first = times[r["packets"][0]]  # type: ignore[index]
                    gaps.append((first - r["begin"]) * 1e6)  # type: ignore[operator]
    finally:
        server.terminate()
        server.wait(10)
    return gaps


def summary(name: str, gaps: list[float]) -> str:
    q = statistics.quantiles(gaps, n=20)
    return (f"{name}: n={len(gaps)} min {min(gaps):.0f} µs, median {statistics.median(gaps):.0f}"
            f" µs, p95 {q[-1]:.0f} µs, max {max(gaps):.0f} µs")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as folder:
        gaps = kernel_gaps(runs, folder)
        print(summary("kernel event - its packet", gaps))
        print("  lowest:", " ".join(f"{g:.0f}" for g in sorted(gaps)[:5]))
        print(summary("write()'s first segment - strace's start", strace_gaps(runs, folder)))


if __name__ == "__main__":
    main()
