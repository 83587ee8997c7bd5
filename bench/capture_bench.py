"""Capture benchmark: does a capture keep every packet? sockcap's backends against tcpdump,
dumpcap and scapy's ``sniff``, on the same traffic, in the same run.

Usage (as root)::

    python bench/capture_bench.py [--seconds 1] [--write bench/CAPTURE_RESULTS.md]

Traffic: ``bench/c/udp_flood.c`` (compiled here with gcc) sends 64-byte frames (22-byte UDP
payloads) to 127.0.0.1 with ``sendmmsg``, paced per batch, at 10k, 50k, 100k and 200k
packets/s and then as fast as it can, ``--seconds`` worth each (the "max" run sends as
many packets as the 200k run, twice over). A bound socket that never reads is the
destination, so no ICMP errors are generated. Every count is bounded (packets and time).

Each capturer runs alone, one at a time, with the filter ``udp port P``, writing a file:

* ``sockcap/<backend>``: ``sockcap capture --backend B -q -w FILE`` (no timeline: the
  same job as ``tcpdump -w``);
* ``tcpdump``: ``tcpdump -i lo -w FILE`` (libpcap's default buffering);
* ``dumpcap``: ``dumpcap -i lo -w FILE -q``;
* ``scapy sniff``: ``sniff(iface="lo", filter=..., store=False)`` counting packets, the
  way tutorials capture; it sees each loopback packet twice, so distinct payloads are
  counted too.

Measured per run: packets sent, packets in the file (or counted), the drop count the
tool reports, and the tool's CPU time (user + system, its children included, from
``wait4``) per captured packet. Capturers are started and stopped by their PID.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RATES = [10_000, 50_000, 100_000, 200_000, 0]  # 0: as fast as the sender can
READY_SECONDS = 20.0
SCAPY_SNIFF = r"""
import signal, sys
from scapy.all import sniff
seen, distinct = [0], set()
def count(p):
    seen[0] += 1
    distinct.add(bytes(p)[42:50])
signal.signal(signal.SIGTERM, lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
sniff(iface="lo", filter=sys.argv[1], store=False, prn=count,
      started_callback=lambda: print("ready", file=sys.stderr, flush=True))
print(f"seen={seen[0]} distinct={len(distinct)}", file=sys.stderr, flush=True)
"""


@dataclass
class Row:
    tool: str
    rate: int
    sent: int
    seconds: float
    captured: int
    dropped: str
    cpu: float

    @property
    def lost(self) -> int:
        return self.sent - self.captured


@dataclass
class Tool:
    name: str
    argv: Callable[[Path, int], list[str]]
    ready: str  # text on stderr that says the capture is ready
    count: Callable[[Path, str], int]
    drops: Callable[[str], str]


def count_file(path: Path, _err: str) -> int:
    sys.path.insert(0, str(ROOT))
    from sockcap.pcapfile.reader import open_capture

    if not path.exists():
        return 0
    with open(path, "rb") as f:
        return sum(1 for _ in open_capture(f))


def drops_line(err: str) -> str:
    m = re.search(r"(\d+) packets dropped by kernel", err)
    return m.group(1) if m else "?"


def drops_dumpcap(err: str) -> str:
    m = re.search(r"received/dropped on interface .*: \d+/(\d+)", err)
    return m.group(1) if m else "?"


def count_scapy(_path: Path, err: str) -> int:
    m = re.search(r"distinct=(\d+)", err)
    return int(m.group(1)) if m else 0


def tools(which: list[str]) -> list[Tool]:
    py = sys.executable
    found = {
        "sockcap/afpacket": Tool("sockcap/afpacket", lambda f, p: [
            py, "-m", "sockcap", "capture", "--backend", "afpacket", "-q", "-f", f"udp port {p}",
            "-w", str(f)], "capturing on", count_file, drops_line),
        "sockcap/dumpcap": Tool("sockcap/dumpcap", lambda f, p: [
            py, "-m", "sockcap", "capture", "--backend", "dumpcap", "-q", "-f", f"udp port {p}",
            "-w", str(f)], "capturing on", count_file, drops_line),
        "sockcap/scapy": Tool("sockcap/scapy", lambda f, p: [
            py, "-m", "sockcap", "capture", "--backend", "scapy", "-q", "-f", f"udp port {p}",
            "-w", str(f)], "capturing on", count_file, drops_line),
        "tcpdump": Tool("tcpdump", lambda f, p: [
            "tcpdump", "-i", "lo", "-n", "-w", str(f), f"udp port {p}"], "listening on",
            count_file, drops_line),
        "dumpcap": Tool("dumpcap", lambda f, p: [
            "dumpcap", "-i", "lo", "-q", "-f", f"udp port {p}", "-w", str(f)], "File:",
            count_file, drops_dumpcap),
        "scapy sniff": Tool("scapy sniff", lambda f, p: [py, "-c", SCAPY_SNIFF, f"udp port {p}"],
                            "ready", count_scapy, lambda err: "?"),
    }
    return [found[name] for name in which]


def build_sender(tmp: Path) -> Path:
    exe = tmp / "udp_flood"
    subprocess.run(["gcc", "-O2", "-o", str(exe), str(ROOT / "bench" / "c" / "udp_flood.c")],
                   check=True, timeout=120)
    return exe


def wait_ready(proc: subprocess.Popen[str], text: str) -> list[str]:
    assert proc.stderr is not None
    lines: list[str] = []
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            raise RuntimeError(f"capturer exited before it was ready: {''.join(lines)}")
        lines.append(line)
        if text in line:
            return lines
    raise RuntimeError("capturer not ready in time")


def measure(tool: Tool, sender: Path, rate: int, count: int, tmp: Path) -> Row:
    out = tmp / f"{tool.name.replace('/', '-').replace(' ', '-')}-{rate}.pcap"
    out.unlink(missing_ok=True)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", 0))
        port = sink.getsockname()[1]
        proc = subprocess.Popen(tool.argv(out, port), stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                cwd=ROOT, env=dict(os.environ, NO_COLOR="1"))
        try:
            head = wait_ready(proc, tool.ready)
            res = subprocess.run([str(sender), str(port), str(rate), str(count), "22", "30"],
                                 capture_output=True, text=True, timeout=60, check=True)
            time.sleep(1.5)  # let the capturer write what it holds (libpcap: 1 s blocks)
        finally:
            proc.send_signal(signal.SIGINT)
        assert proc.stderr is not None
        err = "".join(head) + proc.stderr.read()  # to EOF: the capturer has exited
        proc.stderr.close()
        _, status, usage = os.wait4(proc.pid, 0)  # reaped here, for its CPU time
        proc.returncode = os.waitstatus_to_exitcode(status)
    cpu = usage.ru_utime + usage.ru_stime  # children included once they are reaped
    sent = int(re.search(r"sent=(\d+)", res.stdout).group(1))  # type: ignore[union-attr]
    seconds = float(re.search(r"seconds=([\d.]+)", res.stdout).group(1))  # type: ignore[union-attr]
    captured = tool.count(out, err)
    out.unlink(missing_ok=True)
    return Row(tool.name, rate, sent, seconds, captured, tool.drops(err),
               cpu / captured * 1e6 if captured else 0.0)


def table(rows: list[Row]) -> list[str]:
    out = ["| capturer | target pps | sent | achieved pps | captured | lost | tool says dropped |"
           " CPU us / captured packet |",
           "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        target = f"{r.rate:,}" if r.rate else "max"
        out.append(f"| {r.tool} | {target} | {r.sent:,} | {r.sent / r.seconds:,.0f} | "
                   f"{r.captured:,} | {r.lost:,} | {r.dropped} | {r.cpu:.2f} |")
    return out


def zero_loss(rows: list[Row]) -> list[str]:
    out = ["| capturer | highest rate with zero loss (achieved pps) |", "|---|---:|"]
    for name in dict.fromkeys(r.tool for r in rows):
        ok = [r.sent / r.seconds for r in rows if r.tool == name and r.lost == 0]
        out.append(f"| {name} | {max(ok):,.0f} |" if ok else f"| {name} | none |")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--tools", default="sockcap/afpacket,sockcap/dumpcap,sockcap/scapy,tcpdump,"
                                        "dumpcap,scapy sniff")
    ap.add_argument("--write", type=Path, default=None)
    args = ap.parse_args()
    names = [t for t in args.tools.split(",") if t]
    missing = [t for t in ("gcc", "tcpdump", "dumpcap") if shutil.which(t) is None]
    if missing:
        sys.exit(f"capture_bench: missing {', '.join(missing)}")
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        sender = build_sender(tmp)
        for rate in RATES:
            count = int((rate or 400_000) * args.seconds)
            for tool in tools(names):
                row = measure(tool, sender, rate, count, tmp)
                rows.append(row)
                print(table([row])[-1], flush=True)
    report(rows, args)


def report(rows: list[Row], args: argparse.Namespace) -> None:
    cmd = "python bench/capture_bench.py " + " ".join(sys.argv[1:])
    text = "\n".join([
        "# Capture benchmark", "",
        f"Command: `{cmd.strip()}`  ", f"Date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}  ",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Linux {platform.release()}, "
        f"Python {platform.python_version()}", "",
        "64-byte frames to a UDP port on 127.0.0.1; each capturer alone with the filter "
        "`udp port P`, writing a file (scapy sniff only counts). *lost* = sent - captured.", "",
        *table(rows), "", *zero_loss(rows), ""])
    print(text)
    if args.write:
        args.write.write_text(text)


if __name__ == "__main__":
    main()
