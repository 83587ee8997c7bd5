"""Small things a new user tripped on: Wireshark's Info fields for a SYN, the flag column,
durations of packets out of time order, empty follow/show, one set of colours, plurals,
and a capture started with SIGINT ignored."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import CORPUS, ROOT, needs_capture, needs_corpus, needs_tshark, sockcap

GOLDEN = ROOT / "tests" / "golden"
FIELDS = re.compile(r"\[([A-Z, ]+)\]\s+(Seq=\d+(?: Ack=\d+)? Win=\d+ Len=\d+)")


def _info_fields(lines: list[str]) -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in map(FIELDS.search, lines) if m]


@needs_tshark
@pytest.mark.parametrize("capture", [GOLDEN / "echo-tcp.pcap", GOLDEN / "diagram-refused.pcap",
                                     GOLDEN / "diagram-reset.pcap"])
def test_seq_ack_win_len_as_tsharks_info_column(capture: Path) -> None:
    """No ``Ack=`` without the ACK flag (a SYN, a bare RST), as in Wireshark's Info."""
    info = subprocess.run(["tshark", "-r", str(capture), "-T", "fields", "-e", "_ws.col.Info"],
                          capture_output=True, text=True, timeout=60, check=True).stdout
    expected = _info_fields(info.splitlines())
    ours = _info_fields(sockcap("show", str(capture)).stdout.splitlines())
    assert ours == expected and any(flags == "SYN" for flags, _ in ours)
    assert all("Ack=" not in text for flags, text in ours if "ACK" not in flags)
    rows = [json.loads(line) for line in sockcap("show", "--json", str(capture)).stdout.splitlines()]
    assert rows[0]["flags"] == ["SYN"] and rows[0]["ack"] == 0  # JSON keeps the field


@needs_corpus
def test_fin_psh_ack_keeps_the_columns_aligned() -> None:
    lines = sockcap("show", str(CORPUS / "public" / "dns_tcp.pcap")).stdout.splitlines()
    assert any("[FIN, PSH, ACK]" in line for line in lines)
    columns = {line.index(" Seq=") - line.index("TCP [") for line in lines if " Seq=" in line}
    assert len(columns) == 1


def _shuffled_times(src: Path, dst: Path) -> list[float]:
    """``src`` with packets 2 and 3 swapped in time (out of time order); their times."""
    data = bytearray(src.read_bytes())
    offsets, pos = [], 24
    while pos < len(data):
        offsets.append(pos)
        pos += 16 + struct.unpack_from("<I", data, pos + 8)[0]
    second, third = data[offsets[1] : offsets[1] + 8], data[offsets[2] : offsets[2] + 8]
    data[offsets[1] : offsets[1] + 8], data[offsets[2] : offsets[2] + 8] = third, second
    data[offsets[-1] : offsets[-1] + 8] = data[offsets[0] : offsets[0] + 8]  # last = first
    dst.write_bytes(bytes(data))
    return [struct.unpack_from("<I", data, o)[0] + struct.unpack_from("<I", data, o + 4)[0] / 1e6
            for o in offsets]


def test_duration_of_packets_out_of_time_order(tmp_path: Path) -> None:
    path = tmp_path / "shuffled.pcap"
    times = _shuffled_times(GOLDEN / "echo-tcp.pcap", path)
    assert times[-1] < times[-2]  # the last packet is earlier than the one before it
    report = json.loads(sockcap("stats", "--json", str(path)).stdout)
    (conv,) = report["conversations"]
    assert conv["duration"] == pytest.approx(max(times) - min(times), abs=2e-6)
    assert conv["duration"] > 0


def test_follow_a_stream_without_payload_says_so() -> None:
    res = sockcap("follow", "--stream", "0", str(GOLDEN / "diagram-refused.pcap"))
    assert res.returncode == 0 and res.stdout == "no payload in tcp stream 0\n"


def test_show_an_empty_capture_says_zero_packets(tmp_path: Path) -> None:
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    res = sockcap("show", str(empty))
    assert res.returncode == 0 and res.stdout == "0 packets\n"
    assert sockcap("show", "--json", str(empty)).stdout == ""  # JSON lines: none


def test_timeline_and_follow_share_their_colours() -> None:
    from sockcap.pcapfile.reader import open_capture
    from sockcap.pipeline import Pipeline
    from sockcap.render.follow import follow_pairs
    from sockcap.render.timeline import style_of

    def annotated() -> list:  # type: ignore[type-arg]
        with (GOLDEN / "echo-tcp.pcap").open("rb") as f:
            return list(Pipeline().packets(open_capture(f)))

    timeline = {("client" if a.from_client else "server"): style_of(a)
                for a in annotated() if a.packet.payload_len}
    follow = {("client" if line[0] == ">" else "server"): style
              for line, style in follow_pairs(annotated(), (6, 0)) if line[:1] in "<>"}
    assert timeline == follow and timeline["client"] != timeline["server"]


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@needs_capture
def test_capture_started_with_sigint_ignored_still_stops_on_sigint(tmp_path: Path) -> None:
    port, out = _free_udp_port(), tmp_path / "bg.pcap"
    # a script's background job: the shell starts it with SIGINT ignored
    proc = subprocess.Popen(
        ["sh", "-c", 'trap "" INT; exec "$0" "$@"', sys.executable, "-m", "sockcap", "capture",
         "-q", "-f", f"udp port {port}", "-w", str(out), "--duration", "60"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env=dict(os.environ, NO_COLOR="1"))
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            deadline = time.monotonic() + 30
            while (not out.exists() or out.stat().st_size <= 24) and time.monotonic() < deadline:
                s.sendto(b"x", ("127.0.0.1", port))
                time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err


@needs_capture
def test_saved_one_packet_is_singular(tmp_path: Path) -> None:
    port, out = _free_udp_port(), tmp_path / "one.pcap"
    proc = subprocess.Popen(
        [sys.executable, "-m", "sockcap", "capture", "-q", "-c", "1", "-f", f"udp port {port}",
         "-w", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env=dict(os.environ, NO_COLOR="1"))
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            deadline = time.monotonic() + 30
            while proc.poll() is None and time.monotonic() < deadline:
                s.sendto(b"x", ("127.0.0.1", port))
                time.sleep(0.05)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert f"saved 1 packet to {out}" in err and "1 packets" not in err
    assert "1 packet captured" in err  # tcpdump's words too
