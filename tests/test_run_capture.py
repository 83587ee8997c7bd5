"""`sockcap run --capture` end to end: real sockets on 127.0.0.1, a real capture on lo,
and tshark as the independent oracle for every field sockcap prints."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from conftest import needs_capture, needs_tshark, sockcap, tshark_fields

HANDSHAKE = [["SYN"], ["SYN", "ACK"], ["ACK"]]


def run_json(tmp_path: Path, *args: str) -> tuple[list[dict], Path, str]:
    out = tmp_path / "run.pcap"
    res = sockcap("run", "--capture", "--json", "--out", str(out), *args)
    assert res.returncode == 0, res.stderr
    rows = [json.loads(line) for line in res.stdout.splitlines()]
    assert {r["type"] for r in rows} <= {"packet", "call"}
    return [r for r in rows if r["type"] == "packet"], out, res.stderr


@needs_capture
def test_tcp_run_tells_the_whole_story(tmp_path: Path) -> None:
    rows, out, err = run_json(tmp_path, "-m", "hello", "-m", "world", "-m", "quit")
    flags = [r["flags"] for r in rows]
    assert flags[:3] == HANDSHAKE
    assert [r["phase"] for r in rows[:3]] == ["handshake 1/3", "handshake 2/3", "handshake 3/3"]
    fins = [i for i, f in enumerate(flags) if "FIN" in f]
    assert len(fins) == 2, flags
    assert rows[-1]["flags"] == ["ACK"] and rows[-1]["phase"] == "teardown"
    data = [bytes.fromhex(r["payload_hex"]) for r in rows if r["len"]]
    assert data == [b"hello", b"hello", b"world", b"world", b"quit", b"quit"]
    assert all("RST" not in f for f in flags)
    # exactly once: no two packets with the same direction, seq, ack, flags and length
    keys = [(r["sport"], r["seq"], r["ack"], tuple(r["flags"]), r["len"]) for r in rows]
    assert len(keys) == len(set(keys))
    assert f"saved {len(rows)} packets to {out}" in err


@needs_capture
@needs_tshark
def test_pcap_agrees_with_tshark_packet_for_packet(tmp_path: Path) -> None:
    rows, out, _ = run_json(tmp_path, "-m", "hello", "-m", "world", "-m", "quit")
    ts = tshark_fields(out, "tcp.flags", "tcp.seq", "tcp.ack", "tcp.window_size", "tcp.len",
                       "tcp.srcport", "tcp.payload")
    assert len(ts) == len(rows)
    for r, (flags, seq, ack, win, length, sport, payload) in zip(rows, ts, strict=True):
        assert int(flags, 16) & 0x1FF == _flag_bits(r["flags"])
        assert int(seq) == r["seq"]
        assert int(ack or 0) == r["ack"]
        assert int(win) == r["win"]
        assert int(length) == r["len"]
        assert int(sport) == r["sport"]
        assert payload.replace(":", "") == r["payload_hex"]


@needs_capture
def test_live_timeline_is_the_saved_files_to_the_digit(tmp_path: Path) -> None:
    """What the run printed is what `sockcap show` (and Wireshark) read from its pcap:
    the live view shows each frame as the file holds it (time to the microsecond)."""
    for udp in ([], ["--udp"]):
        folder = tmp_path / ("udp" if udp else "tcp")
        folder.mkdir()
        rows, out, _ = run_json(folder, *udp)
        res = sockcap("show", "--json", str(out))
        assert res.returncode == 0 and [json.loads(x) for x in res.stdout.splitlines()] == rows


def packet_lines(text: str) -> list[str]:
    """The timeline without the socket calls' ``▸`` lines (and the kernel's ``◆``)."""
    return [line for line in text.splitlines() if not line.lstrip().startswith(("▸", "◆"))]


def _flag_bits(names: list[str]) -> int:
    order = ["FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR", "AE"]
    return sum(1 << order.index(n) for n in names)


@needs_capture
@needs_tshark
def test_pcap_opens_cleanly_and_is_private(tmp_path: Path) -> None:
    import subprocess

    rows, out, _ = run_json(tmp_path)
    res = subprocess.run(["tshark", "-r", str(out)], capture_output=True, text=True, timeout=60)
    noise = "Running as user"  # tshark's notice when run as root, not about the file
    assert res.returncode == 0
    assert [line for line in res.stderr.splitlines() if noise not in line] == []
    assert len(res.stdout.splitlines()) == len(rows)
    assert os.stat(out).st_mode & 0o777 == 0o600


@needs_capture
def test_udp_run_one_request_one_reply_per_message(tmp_path: Path) -> None:
    rows, _, _ = run_json(tmp_path, "--udp", "-m", "ping", "-m", "pong", "-m", "quit")
    assert [r["proto"] for r in rows] == ["UDP"] * 6
    payloads = [bytes.fromhex(r["payload_hex"]) for r in rows]
    assert payloads == [b"ping", b"ping", b"pong", b"pong", b"quit", b"quit"]
    assert [r["from"] for r in rows] == ["client", "server"] * 3


@needs_capture
def test_text_timeline_names_flags_roles_and_phases(tmp_path: Path) -> None:
    res = sockcap("run", "--capture", "--hex", "--out", str(tmp_path / "t.pcap"))
    assert res.returncode == 0, res.stderr
    lines = packet_lines(res.stdout)
    assert "client 127.0.0.1:" in lines[0] and "→ server 127.0.0.1:" in lines[0]
    assert "[SYN]" in lines[0] and "Seq=0" in lines[0] and "handshake 1/3" in lines[0]
    assert "[SYN, ACK]" in lines[1]
    assert any("[PSH, ACK]" in line and '"hello"' in line for line in lines)
    assert any(line.strip().startswith("0000  68 65 6c 6c 6f") and line.endswith("hello") for line in lines)
    assert any("[FIN, ACK]" in line and "teardown" in line for line in lines)
    assert "handshake RTT" in lines[-1]


@needs_capture
def test_tcpdump_style(tmp_path: Path) -> None:
    res = sockcap("run", "--capture", "--style", "tcpdump", "--out", str(tmp_path / "t.pcap"))
    assert res.returncode == 0, res.stderr
    lines = packet_lines(res.stdout)
    assert "Flags [S]," in lines[0] and "Flags [S.]," in lines[1]
    assert any("Flags [P.], seq 1:6, ack 1," in line for line in lines)


def test_run_without_capture_needs_no_privilege(tmp_path: Path) -> None:
    res = sockcap("run", "-m", "hi", "-m", "quit", user="nobody", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == ["> hi", "< hi", "> quit", "< quit"]


@pytest.mark.parametrize("args, named", [
    (["--json"], "--json needs"),
    (["--hex", "--style", "tcpdump"], "--hex, --style need"),
    (["--style", "wireshark"], "--style needs"),
    (["--follow"], "--follow needs"),
    (["--explain"], "--explain needs"),
    (["-w", "x.pcap", "--force"], "--write, --force need"),
    (["--out", "x.pcap"], "--out needs"),  # the older spelling, named as given
])
def test_capture_options_without_capture_are_bad_usage(tmp_path: Path, args: list[str],
                                                       named: str) -> None:
    res = sockcap("run", "-m", "quit", *args, cwd=tmp_path)
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr == (f"sockcap: {named} --capture: add --capture to capture the exchange "
                          "(see 'sockcap run --help')\n")
    assert not list(tmp_path.iterdir())


@needs_capture
def test_existing_out_file_is_bad_usage(tmp_path: Path) -> None:
    out = tmp_path / "keep.pcap"
    out.write_bytes(b"precious")
    res = sockcap("run", "--capture", "-m", "quit", "-w", str(out))
    assert res.returncode == 2
    assert res.stderr == f"sockcap: {out} exists; use --force to overwrite\n"
    assert out.read_bytes() == b"precious"


def test_capture_without_permission_or_namespace_says_what_is_needed(tmp_path: Path) -> None:
    """Where the kernel forbids user namespaces (nouserns.py) and no dumpcap may capture,
    nobody's run --capture says so in one line and starts nothing."""
    os.chmod(tmp_path, 0o777)
    res = sockcap("run", "--capture", user="nobody", cwd=tmp_path,
                  prefix=(sys.executable, str(Path(__file__).with_name("nouserns.py"))),
                  env={"SOCKCAP_DUMPCAP": "/nonexistent/dumpcap"})
    assert res.returncode == 2
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and "namespace" in lines[0] and "CAP_NET_RAW" in lines[0]
    assert "Traceback" not in res.stderr and res.stdout == ""
    assert not (tmp_path / "captures").exists()  # nothing was run half-way


@pytest.mark.parametrize("args, words", [
    (["run", "--port", "70000"], "70000"),
    (["run", "--host", "example"], "not an IP address"),
    (["run", "--host", "10.1.2.3"], "not a loopback address"),
    (["client", "--port", "0"], "0"),
])
def test_bad_options_get_one_line(args: list[str], words: str) -> None:
    res = sockcap(*args)
    assert res.returncode == 2
    assert len(res.stderr.splitlines()) == 1 and words in res.stderr
    assert "Traceback" not in res.stderr


def test_port_in_use_is_one_line() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        res = sockcap("run", "--port", str(s.getsockname()[1]))
    assert res.returncode == 1
    assert len(res.stderr.splitlines()) == 1 and "in use" in res.stderr


def test_refused_connection_is_one_line() -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on: bound, never listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        res = sockcap("client", "--port", str(port), "-m", "hello")
    assert res.returncode == 1
    assert res.stderr.strip() == (f"sockcap: connection refused: nothing is listening on "
                                  f"127.0.0.1:{port} (start 'sockcap server' first)")


@needs_capture
def test_folder_that_cannot_be_made_is_one_line() -> None:
    res = sockcap("run", "--capture", "--out", "/proc/no-such-dir/x.pcap")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.splitlines() == [
        "sockcap: cannot write /proc/no-such-dir/x.pcap: no such folder /proc/no-such-dir "
        "(create it first; the one folder sockcap makes itself is captures/)"]


@needs_capture
@needs_tshark
@pytest.mark.parametrize("sig, code", [("INT", 130), ("TERM", 143)])
def test_interrupted_run_leaves_a_valid_pcap(tmp_path: Path, sig: str, code: int) -> None:
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "int.pcap"
    msgs = [a for i in range(50000) for a in ("-m", f"m{i}")]
    proc = subprocess.Popen([sys.executable, "-m", "sockcap", "run", "--capture", "--out",
                             str(out), *msgs], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, env=dict(os.environ, NO_COLOR="1"))
    try:
        deadline = time.monotonic() + 120  # a loaded machine parses 100k arguments slowly
        while (not out.exists() or out.stat().st_size < 20000) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert out.exists(), "the capture never started"
        assert proc.poll() is None, "the run ended before it could be interrupted"
        proc.send_signal(getattr(signal, "SIG" + sig))
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == code, err
    assert "Traceback" not in err and len(err.splitlines()) == 1
    assert f"the packets captured so far are in {out}" in err
    rows = tshark_fields(out, "frame.number")
    assert len(rows) > 10
