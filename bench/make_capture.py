"""Capture a real loopback file of about a million packets for bench/show_bench.py.

Usage (as root, or with CAP_NET_RAW for tcpdump)::

    python bench/make_capture.py [--packets 1000000] [--out bench/data/loopback-1m.pcap]

tcpdump captures ``lo`` into the file while ``bench/c/tcp_churn.c`` (compiled here with
gcc) plays both sides of the traffic a socket course produces, on 127.0.0.1 only: many
short TCP echo conversations (connect, 1-6 small messages, close), a 4 MiB bulk transfer
every 4000 conversations (lo uses GSO, so these are ~64 KiB segments), and a UDP echo
datagram every second conversation. The generator is C because the capture must be made
of real kernel packets at a rate far above what the decoder reads, in seconds.

The script counts the records tcpdump has written (it writes each packet at once with
``-U``) by walking the record headers of the growing file; once ``--packets`` are there
it stops the generator, then tcpdump, and cuts the file after exactly ``--packets``
records, so every benchmark run reads the same number of packets. Every wait is bounded
(``--max-seconds``, 5 minutes by default), and the processes started here are stopped by
their PIDs. ``bench/data/`` is git-ignored: the file is regenerated, never committed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
PCAP_HEADER = 24
RECORD_HEADER = 16


class RecordCounter:
    """Counts complete pcap records in a file that another process is still writing."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = PCAP_HEADER
        self.count = 0
        self.endian = "<"

    def update(self, stop_at: int = 0) -> int:
        """Walk the record headers written since the last call; return the count.

        With ``stop_at``, stops once that many records are counted, leaving ``offset``
        at the end of the last one (where the file is cut). Reads by seeking from header
        to header, so memory stays small however big the file is.
        """
        fmt = struct.Struct(self.endian + "IIII")
        with open(self.path, "rb") as f:
            if self.offset == PCAP_HEADER:
                magic = f.read(4)
                if len(magic) < 4:
                    return 0
                self.endian = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
                fmt = struct.Struct(self.endian + "IIII")
            size = os.fstat(f.fileno()).st_size
            f.seek(self.offset)
            while not (stop_at and self.count >= stop_at):
                head = f.read(RECORD_HEADER)
                if len(head) < RECORD_HEADER:
                    break
                end = self.offset + RECORD_HEADER + fmt.unpack(head)[2]
                if end > size:
                    break
                f.seek(end)
                self.offset = end
                self.count += 1
        return self.count


def free_port_block(start: int = 21000, stop: int = 32000, size: int = 3) -> int:
    """A base port P with P..P+size-1 free for TCP and UDP, below the ephemeral range."""
    for base in range(start, stop, 10):
        if all(_bindable(base + i, kind) for i in range(size)
               for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM)):
            return base
    raise SystemExit("no free port block on 127.0.0.1")


def _bindable(port: int, kind: int) -> bool:
    with socket.socket(socket.AF_INET, kind) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def build_generator(workdir: Path) -> Path:
    """Compile bench/c/tcp_churn.c into ``workdir``; returns the binary's path."""
    if shutil.which("gcc") is None:
        raise SystemExit("gcc is needed to build bench/c/tcp_churn.c")
    binary = workdir / "tcp_churn"
    subprocess.run(["gcc", "-O2", "-Wall", "-o", str(binary), str(BENCH / "c" / "tcp_churn.c")],
                   check=True)
    return binary


def start_tcpdump(out: Path, ports: list[int]) -> subprocess.Popen[bytes]:
    """Start tcpdump on lo and wait (bounded) until it says it is listening."""
    expr = " or ".join(f"port {p}" for p in ports)
    cmd = ["tcpdump", "-i", "lo", "-w", str(out), "-U", "--immediate-mode", "-B", "65536", expr]
    print("$", " ".join(cmd[:-1]), repr(expr), flush=True)
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    line = proc.stderr.readline().decode(errors="replace")  # "listening on lo, ..." or an error
    if "listening" not in line:
        proc.wait(timeout=5)
        raise SystemExit(f"tcpdump did not start: {line.strip()}")
    for _ in range(50):  # the file header appears once the capture is set up
        if out.exists() and out.stat().st_size >= PCAP_HEADER:
            break
        time.sleep(0.1)
    return proc


def stop(proc: subprocess.Popen[Any], sig: int = signal.SIGTERM, timeout: float = 10) -> None:
    """Stop one process we started, by its PID; kill it if it ignores the signal."""
    if proc.poll() is None:
        os.kill(proc.pid, sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=timeout)


def capture(out: Path, packets: int, max_seconds: float, rate: int) -> None:
    """Run tcpdump and the generator until ``packets`` records are written (bounded)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        generator = build_generator(Path(tmp))
        base = free_port_block()
        tcpdump = start_tcpdump(out, [base, base + 1, base + 2])
        # niced, so that tcpdump gets the CPU first and drops as little as it can
        cmd = ["nice", "-n", "10", str(generator), str(base), str(max_seconds), str(packets),
               "16", str(rate)]
        print("$", " ".join(cmd), flush=True)
        gen = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        counter = RecordCounter(out)
        start = time.monotonic()
        try:
            while counter.update() < packets and gen.poll() is None:
                if time.monotonic() - start > max_seconds:
                    print(f"stopped after {max_seconds:.0f} s", file=sys.stderr)
                    break
                time.sleep(0.25)
        finally:
            stop(gen)
            time.sleep(0.5)  # let the last packets reach the file
            stop(tcpdump, signal.SIGINT)
        assert gen.stdout is not None and tcpdump.stderr is not None
        print("generator:", gen.stdout.read().strip())
        print("tcpdump:", " ".join(tcpdump.stderr.read().decode(errors="replace").split()))
    counter.update()
    cut = RecordCounter(out)
    cut.update(stop_at=packets)
    os.truncate(out, cut.offset)
    print(f"{out}: {cut.count} packets, {cut.offset / 1e6:.1f} MB "
          f"({time.monotonic() - start:.1f} s; {counter.count - cut.count} packets cut off the end)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--out", type=Path, default=BENCH / "data" / "loopback-1m.pcap")
    ap.add_argument("--packets", type=int, default=1_000_000)
    ap.add_argument("--max-seconds", type=float, default=300.0)
    ap.add_argument("--rate", type=int, default=1500,
                    help="conversations per second at most (tcpdump must keep up)")
    args = ap.parse_args()
    if shutil.which("tcpdump") is None:
        raise SystemExit("tcpdump is needed")
    capture(args.out, args.packets, args.max_seconds, args.rate)


if __name__ == "__main__":
    main()
