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


# -- synthetic captures for the memory benchmarks (bench/memory_bench.py) ----------------
# Written record by record (nothing held), on 127.0.0.0/8 addresses: the shapes of file
# whose memory cost grew with the file before conversations were forgotten.

SYNTHETIC = ("one-stream", "syn-scan", "same-time", "finished")
_ETH_IP = bytes(12) + b"\x08\x00"
_TCP = struct.Struct("!HHIIBBHHH")
_IP = struct.Struct("!BBHHHBBH4s4s")
_REC = struct.Struct("<IIII")
T0 = 1_700_000_000


def _segment(src: int, sport: int, dport: int, seq: int, ack: int, flags: int,
             payload: bytes = b"", dst: int = 1) -> bytes:
    """An Ethernet/IPv4/TCP frame from 127.x.y.z (``src``, low 24 bits) to ``dst``."""
    tcp = _TCP.pack(sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4, flags, 65535, 0, 0)
    ip = _IP.pack(0x45, 0, 20 + len(tcp) + len(payload), 0, 0x4000, 64, 6, 0,
                  (0x7F000000 | src).to_bytes(4, "big"), (0x7F000000 | dst).to_bytes(4, "big"))
    return _ETH_IP + ip + tcp + payload


def _frames(kind: str, count: int):  # type: ignore[no-untyped-def]
    """(seconds, microseconds, frame) of one synthetic capture."""
    if kind == "one-stream":  # one TCP stream of ``count`` 64 KiB segments, client to server
        body = bytes(range(256)) * 253  # 64,768 bytes: the IPv4 total length fits 16 bits
        yield T0, 0, _segment(2, 40000, 5001, 999, 0, 0x02)
        yield T0, 1, _segment(1, 5001, 40000, 4999, 1000, 0x12, dst=2)
        for i in range(count):
            yield T0 + i // 1000, i % 1000 * 1000 + 2, _segment(
                2, 40000, 5001, 1000 + i * len(body), 5000, 0x18, body)
        return
    for i in range(count):  # ``count`` conversations, each from its own address and port
        src, sport = 2 + i // 50000, 10000 + i % 50000
        sec, usec = (T0, 0) if kind == "same-time" else (T0 + i // 100_000, i % 100_000 * 10)
        if kind == "syn-scan":  # a SYN that nothing answers
            yield sec, usec, _segment(src, sport, 5001, 1000, 0, 0x02)
        elif kind == "same-time":  # a SYN answered by RST: refused, over at once
            yield sec, usec, _segment(src, sport, 5001, 1000, 0, 0x02)
            yield sec, usec, _segment(1, 5001, sport, 0, 1001, 0x14, dst=src)
        else:  # finished: handshake, 5 bytes, FIN both ways
            c, s = 1000, 9000
            for seq, ack, flags, data, back in (
                    (c, 0, 0x02, b"", False), (s, c + 1, 0x12, b"", True),
                    (c + 1, s + 1, 0x10, b"", False), (c + 1, s + 1, 0x18, b"hello", False),
                    (c + 6, s + 1, 0x11, b"", False), (s + 1, c + 7, 0x11, b"", True),
                    (c + 7, s + 2, 0x10, b"", False)):
                yield sec, usec, (_segment(1, 5001, sport, seq, ack, flags, data, src) if back
                                  else _segment(src, sport, 5001, seq, ack, flags, data))


def synthetic(out: Path, kind: str, count: int) -> None:
    """Write a synthetic capture of ``kind`` (see :data:`SYNTHETIC`) to ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        for sec, usec, frame in _frames(kind, count):
            f.write(_REC.pack(sec, usec, len(frame), len(frame)))
            f.write(frame)
    print(f"{out}: {kind}, {out.stat().st_size / 1e6:.1f} MB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--out", type=Path, default=BENCH / "data" / "loopback-1m.pcap")
    ap.add_argument("--synthetic", choices=SYNTHETIC, default=None,
                    help="write a synthetic capture instead (no tcpdump): one 64 KiB-segment "
                         "stream, a SYN scan, refused connections all at one time, or "
                         "finished conversations; --count segments or conversations")
    ap.add_argument("--count", type=int, default=2_000_000)
    ap.add_argument("--packets", type=int, default=1_000_000)
    ap.add_argument("--max-seconds", type=float, default=300.0)
    ap.add_argument("--rate", type=int, default=1500,
                    help="conversations per second at most (tcpdump must keep up)")
    args = ap.parse_args()
    if args.synthetic is not None:
        synthetic(args.out, args.synthetic, args.count)
        return
    if shutil.which("tcpdump") is None:
        raise SystemExit("tcpdump is needed")
    capture(args.out, args.packets, args.max_seconds, args.rate)


if __name__ == "__main__":
    main()
