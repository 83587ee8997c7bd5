"""ICMP and ICMPv6: a UDP datagram to a closed port on loopback, captured for real, is
answered by "port unreachable"; sockcap names it as Wireshark does (tshark as the
oracle), notes it in the UDP conversation it quotes, counts it in stats, and the capture
filters built for a port keep it."""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

from conftest import ROOT, needs_capture, needs_tshark, sockcap

from sockcap.capture.bpf import Insn, icmp_quoting, port_filter_with_icmp
from sockcap.capture.filters import compile_filter, with_icmp_errors


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _capture(tmp_path: Path, expr: str, count: int, send: object) -> tuple[Path, str]:
    """``sockcap capture -f EXPR -c COUNT`` while ``send()`` is called until it ends."""
    out = tmp_path / "icmp.pcap"
    proc = subprocess.Popen([sys.executable, "-m", "sockcap", "capture", "-q", "-f", expr,
                             "-c", str(count), "-w", str(out)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            env=dict(os.environ, NO_COLOR="1"))
    try:
        deadline = time.monotonic() + 30
        while not out.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)
        tries = 0
        while proc.poll() is None and tries < 100:
            send()  # type: ignore[operator]
            tries += 1
            time.sleep(0.1)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    return out, err


def _tshark(path: Path, *fields: str) -> list[list[str]]:
    cmd = ["tshark", "-r", str(path), "-T", "fields", "-E", "separator=\t"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True).stdout
    return [line.split("\t") for line in out.splitlines()]


@needs_capture
@needs_tshark
def test_udp_to_a_closed_port_on_loopback(tmp_path: Path) -> None:
    port = _free_udp_port()

    def send() -> None:
        for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
            with socket.socket(family, socket.SOCK_DGRAM) as s:
                s.sendto(b"anyone?", (host, port))

    # "udp port P" alone would never see the answer: the filter is widened, and says so
    path, err = _capture(tmp_path, f"udp port {port}", 4, send)
    assert f"also keeps the ICMP errors that quote port {port}" in err
    oracle = _tshark(path, "frame.number", "_ws.col.Protocol", "_ws.col.Info")
    icmp_rows = [row for row in oracle if row[1].startswith("ICMP")]
    assert len(icmp_rows) == 2 and {r[1] for r in icmp_rows} == {"ICMP", "ICMPv6"}
    lines = sockcap("show", str(path)).stdout.splitlines()
    for no, proto, info in icmp_rows:
        line = lines[int(no) - 1]
        assert f" {proto} {info}  (" in line, (line, info)
        host = "127.0.0.1" if proto == "ICMP" else "[::1]"
        assert line.endswith(f"(port unreachable: nothing listens on {host}:{port})")
    report = json.loads(sockcap("stats", "--json", str(path)).stdout)
    assert report["icmp"] == {"ICMP Destination unreachable (Port unreachable)": 1,
                              "ICMPv6 Destination Unreachable (Port unreachable)": 1}
    assert all(c["notes"] == {"port unreachable": 1} for c in report["conversations"])
    assert report["notes"] == {"port unreachable": 2}
    records = [json.loads(x) for x in sockcap("show", "--json", str(path)).stdout.splitlines()]
    quoted = [r["icmp"]["quoted"] for r in records if r["proto"].startswith("ICMP")]
    assert all(q["proto"] == "UDP" and q["dport"] == port for q in quoted)
    # tcpdump's own words for the same file (--style tcpdump)
    dump = subprocess.run(["tcpdump", "-nn", "-r", str(path)], capture_output=True, text=True,
                          timeout=60, env=dict(os.environ, TZ="UTC")).stdout.splitlines()
    ours = sockcap("show", "--style", "tcpdump", str(path)).stdout.splitlines()
    assert [line.split("  (")[0] for line in ours] == dump


def _checksum(data: bytes) -> int:
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    return ~(total + (total >> 16)) & 0xFFFF


@needs_capture
@needs_tshark
def test_echo_request_and_reply(tmp_path: Path) -> None:
    def ping() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as s:
            body = struct.pack("!BBHHH", 8, 0, 0, 0x1234, 1) + b"sockcap!"
            body = body[:2] + struct.pack("!H", _checksum(body)) + body[4:]
            s.sendto(body, ("127.0.0.1", 0))

    path, _ = _capture(tmp_path, "icmp[0] == 8 or icmp[0] == 0", 2, ping)
    oracle = [row[0] for row in _tshark(path, "_ws.col.Info")]
    lines = sockcap("show", str(path)).stdout.splitlines()
    assert [line.split("  ICMP ", 1)[1] for line in lines] == [
        "Echo (ping) request  id=0x1234, seq=1/256", "Echo (ping) reply  id=0x1234, seq=1/256"]
    for info, line in zip(oracle, lines, strict=True):
        ours = line.split("  ICMP ", 1)[1]
        assert info.startswith(ours.split("  ")[0]) and ours.split("  ")[1] in info


# -- the run filter, against libpcap's own compilation of the same words ----------------

def _bpf(prog: list[Insn], frame: bytes) -> int:
    """A classic BPF interpreter for the instructions these programs use."""
    a = x = 0
    pc = 0

    def load(off: int, size: int) -> int | None:
        return int.from_bytes(frame[off : off + size], "big") if off + size <= len(frame) else None

    while True:
        code, jt, jf, k = prog[pc]
        pc += 1
        if code in (0x28, 0x30, 0x48, 0x50):  # ldh/ldb abs/ind
            size = 2 if code in (0x28, 0x48) else 1
            value = load(k + (x if code in (0x48, 0x50) else 0), size)
            if value is None:
                return 0
            a = value
        elif code == 0xB1:  # ldx 4*([k]&0xf)
            value = load(k, 1)
            if value is None:
                return 0
            x = 4 * (value & 0xF)
        elif code == 0x15:
            pc += jt if a == k else jf
        elif code == 0x45:
            pc += jt if a & k else jf
        elif code == 0x06:
            return k
        else:
            raise AssertionError(f"opcode {code:#x} not interpreted")


@needs_capture
@needs_tshark
def test_run_filter_keeps_what_libpcap_keeps(tmp_path: Path) -> None:
    port = _free_udp_port()

    def send() -> None:
        for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
            with socket.socket(family, socket.SOCK_DGRAM) as s:
                s.sendto(b"x", (host, port))
                s.sendto(b"y", (host, port + 1 if port < 65535 else port - 1))

    path, _ = _capture(tmp_path, "udp or icmp or icmp6", 8, send)
    from sockcap.pcapfile.reader import open_capture

    with path.open("rb") as f:
        frames = [frame.data for frame in open_capture(f)]
    with (ROOT / "tests" / "golden" / "echo-tcp.pcap").open("rb") as f:
        frames += [frame.data for frame in open_capture(f)]
    words = f"tcp port {port} or udp port {port} or {icmp_quoting(port)}"
    libpcap = compile_filter(words, 1)
    ours = port_filter_with_icmp(port)
    kept = [bool(_bpf(libpcap, fr)) for fr in frames]
    assert [bool(_bpf(ours, fr)) for fr in frames] == kept
    assert 4 <= sum(kept) < len(frames)  # both UDP and both ICMP errors quoting the port


def test_filters_widened_only_when_they_name_one_port() -> None:
    assert with_icmp_errors("udp port 5999") == (f"(udp port 5999) or {icmp_quoting(5999)}", 5999)
    assert with_icmp_errors("tcp port 7 or udp port 7")[1] == 7
    for expr in ("", "udp", "udp port 1 or udp port 2", "host 10.0.0.1", "udp port 7 and len > 9"):
        assert with_icmp_errors(expr) == (expr, 0)
