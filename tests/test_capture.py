"""`sockcap capture` on real loopback traffic: every backend against tcpdump, commands,
interrupts, kernel drops, and capture as an unprivileged user through dumpcap.

tcpdump (``-U --immediate-mode``) captures the same traffic at the same time and is the
oracle for "exactly once and complete"; tshark reads every file sockcap writes."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import ROOT, needs_capture, needs_tshark, never_engine, tshark_fields

from sockcap.capture.dumpcap import dumpcap_path, parse_report
from sockcap.capture.filters import FilterError, parse_ddd
from tests.conftest import free_port

pytestmark = never_engine()

TCPDUMP = shutil.which("tcpdump")
DUMPCAP = dumpcap_path()
needs_tcpdump = pytest.mark.skipif(TCPDUMP is None, reason="tcpdump is not installed")
needs_dumpcap = pytest.mark.skipif(DUMPCAP is None, reason="dumpcap is not installed")
needs_setcap = pytest.mark.skipif(shutil.which("setcap") is None or os.geteuid() != 0,
                                  reason="needs root and setcap (libcap2-bin)")
FIELDS = ("tcp.srcport", "tcp.dstport", "tcp.seq_raw", "tcp.ack_raw", "tcp.flags", "tcp.len")


def _has_scapy() -> bool:
    try:
        import scapy  # noqa: F401
    except ImportError:
        return False
    return True


BACKENDS = [
    pytest.param("afpacket", marks=needs_capture),
    pytest.param("dumpcap", marks=[needs_capture, needs_dumpcap]),
    pytest.param("scapy", marks=[needs_capture, pytest.mark.skipif(not _has_scapy(), reason="no scapy")]),
]


def run_sockcap(*args: str, env: dict[str, str] | None = None, user: str | None = None,
                cwd: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "sockcap", *args]
    if user is not None:
        gid = pwd.getpwnam(user).pw_gid
        cmd = ["setpriv", f"--reuid={user}", f"--regid={gid}", "--clear-groups",
               "--inh-caps=-all", *cmd]
    full_env = dict(os.environ, NO_COLOR="1", PYTHONDONTWRITEBYTECODE="1", PYTHONPATH=str(ROOT),
                    **(env or {}))
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd or ROOT,
                          env=full_env)



@contextmanager
def echo_server(port: int) -> Iterator[subprocess.Popen[bytes]]:
    """``sockcap server`` as a subprocess, stopped by its PID."""
    proc = subprocess.Popen([sys.executable, "-m", "sockcap", "server", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield proc
    finally:
        proc.terminate()
        proc.wait(10)


@contextmanager
def tcpdump(path: Path, expr: str) -> Iterator[None]:
    """tcpdump writing every packet at once, ready when it says it is listening."""
    assert TCPDUMP is not None
    proc = subprocess.Popen([TCPDUMP, "-i", "lo", "-U", "--immediate-mode", "-n", "-w", str(path),
                             expr], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        assert "listening on" in proc.stderr.readline()
        yield
        time.sleep(0.3)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(10)


def client_argv(port: int, *messages: str) -> list[str]:
    argv = [sys.executable, "-m", "sockcap", "client", "--port", str(port)]
    for m in messages:
        argv += ["-m", m]
    return argv


def plain_client_argv(port: int, *messages: str) -> list[str]:
    """A stdlib-only client run by the system python3, which any user can execute."""
    python = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable
    code = ("import socket, sys\n"
            f"s = socket.create_connection(('127.0.0.1', {port}))\n"
            "for m in sys.argv[1:]:\n"
            "    s.sendall(m.encode()); s.recv(100)\n"
            "s.shutdown(socket.SHUT_WR); s.recv(100); s.close()\n")
    return [python, "-c", code, *messages]


@needs_tcpdump
@needs_tshark
@pytest.mark.parametrize("backend", BACKENDS)
def test_backend_captures_a_command_exactly_like_tcpdump(tmp_path: Path, backend: str) -> None:
    port = free_port()
    ours, theirs = tmp_path / "sockcap.pcap", tmp_path / "tcpdump.pcap"
    with echo_server(port), tcpdump(theirs, f"tcp port {port}"):
        res = run_sockcap("capture", "--backend", backend, "--json", "-f", f"tcp port {port}",
                          "-w", str(ours), "--", *client_argv(port, "hello", "world", "quit"))
    assert res.returncode == 0, res.stderr
    rows = [json.loads(line) for line in res.stdout.splitlines()]
    summary = rows.pop()["summary"]
    assert summary["backend"] == backend and summary["dropped"] in (0, -1)
    assert summary["captured"] == summary["written"] == len(rows)
    assert f"with {backend}" in res.stderr
    mine, oracle = tshark_fields(ours, *FIELDS), tshark_fields(theirs, *FIELDS)
    assert mine == oracle  # same packets, same order: exactly once, none missing
    flags = [int(r[4], 16) for r in mine]
    assert flags[:3] == [0x002, 0x012, 0x010] and sum(f & 1 for f in flags) == 2
    assert flags[-1] == 0x010  # the teardown's last ACK is in
    payloads = [bytes.fromhex(r["payload_hex"]) for r in rows if r["len"]]
    assert payloads == [b"hello", b"hello", b"world", b"world", b"quit", b"quit"]
    assert os.stat(ours).st_mode & 0o777 == 0o600


@needs_capture
def test_udp_command_and_the_text_timeline(tmp_path: Path) -> None:
    port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", port))
        code = f"import socket; s=socket.socket(2, 2); [s.sendto(b'ping%d' % i, ('127.0.0.1', {port})) for i in range(5)]"
        res = run_sockcap("capture", "-f", f"udp port {port}", "--", sys.executable, "-c", code)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert len(lines) == 5 and all("UDP" in line for line in lines), res.stdout
    assert "5 packets captured" in res.stderr and "0 packets dropped by kernel" in res.stderr


@needs_capture
def test_count_stops_after_exactly_n_packets(tmp_path: Path) -> None:
    port = free_port()
    out = tmp_path / "c.pcap"
    code = (f"import socket, time; s=socket.socket(2, 2)\n"
            f"for i in range(200): s.sendto(b'x', ('127.0.0.1', {port})); time.sleep(0.005)")
    sender = subprocess.Popen([sys.executable, "-c", code])
    try:
        res = run_sockcap("capture", "-c", "7", "-q", "-f", f"udp port {port}", "-w", str(out))
    finally:
        sender.kill()
        sender.wait()
    assert res.returncode == 0, res.stderr
    assert res.stdout == "" and "7 packets captured" in res.stderr
    assert f"saved 7 packets to {out}" in res.stderr


@needs_capture
def test_existing_file_is_kept_without_force(tmp_path: Path) -> None:
    out = tmp_path / "keep.pcap"
    out.write_bytes(b"precious")
    res = run_sockcap("capture", "-c", "1", "-w", str(out), "--duration", "0.2")
    assert res.returncode == 2 and "exists" in res.stderr and "--force" in res.stderr
    assert out.read_bytes() == b"precious"


@needs_capture
@needs_tcpdump
def test_bad_filter_is_one_line() -> None:
    res = run_sockcap("capture", "-f", "tcp port", "--duration", "0.2")
    assert res.returncode == 2
    errors = [line for line in res.stderr.splitlines() if line.startswith("sockcap: ")]
    assert errors[-1].startswith("sockcap: bad capture filter 'tcp port': ") and "Traceback" not in res.stderr


@needs_capture
def test_unknown_interface_is_bad_usage() -> None:
    res = run_sockcap("capture", "-i", "nosuchif0", "--duration", "0.2")
    assert res.returncode == 2
    assert res.stderr == "sockcap: no such interface: nosuchif0 (see 'sockcap interfaces')\n"


@needs_capture
def test_a_command_that_does_not_exist_is_bad_usage(tmp_path: Path) -> None:
    res = run_sockcap("capture", "-w", str(tmp_path / "x.pcap"), "--", "no-such-command-here")
    assert res.returncode == 2
    assert res.stderr.splitlines()[-1] == "sockcap: command not found: no-such-command-here"
    assert "Traceback" not in res.stderr


def udp_sender(port: int, count: int, then: str = "") -> list[str]:
    """A command sending ``count`` datagrams to ``port``, 20 ms apart, then running ``then``."""
    code = (f"import socket, sys, time\ns = socket.socket(2, 2)\n"
            f"for i in range({count}): s.sendto(b'x', ('127.0.0.1', {port})); time.sleep(0.02)\n"
            f"{then}")
    return [sys.executable, "-c", code]


@needs_capture
def test_command_stopped_at_the_count_is_said_so(tmp_path: Path) -> None:
    port, out = free_port(), tmp_path / "c.pcap"
    res = run_sockcap("capture", "-c", "3", "-q", "-f", f"udp port {port}", "-w", str(out),
                      "--", *udp_sender(port, 500))
    assert res.returncode == 0, res.stderr
    assert f"sockcap: stopped {sys.executable} after the count (-c 3) was reached" in res.stderr
    assert "exited with status" not in res.stderr and f"saved 3 packets to {out}" in res.stderr


@needs_capture
def test_failing_command_is_captured_then_named_with_exit_1(tmp_path: Path) -> None:
    port, out = free_port(), tmp_path / "f.pcap"
    res = run_sockcap("capture", "--json", "-f", f"udp port {port}", "-w", str(out),
                      "--", *udp_sender(port, 4, then="sys.exit(3)"))
    assert res.returncode == 1, res.stderr
    rows = [json.loads(line) for line in res.stdout.splitlines()]
    summary = rows.pop()["summary"]
    # nothing listens on the port: each datagram is answered by ICMP port unreachable,
    # which the filter keeps ("udp port P" is widened to the ICMP errors quoting P)
    assert [r["proto"] for r in rows] == ["UDP", "ICMP"] * 4
    assert summary["command_exit"] == 3 and not summary["command_stopped"]
    assert f"saved 8 packets to {out}" in res.stderr and out.stat().st_size > 24
    assert res.stderr.splitlines()[-1] == f"sockcap: {sys.executable} exited with status 3"


@needs_capture
@needs_tshark
@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupt_leaves_a_valid_file_and_no_process(tmp_path: Path, sig: int, code: int) -> None:
    port, out, pidfile = free_port(), tmp_path / "i.pcap", tmp_path / "child.pid"
    child = f"import os, time; open({str(pidfile)!r}, 'w').write(str(os.getpid())); time.sleep(120)"
    proc = subprocess.Popen([sys.executable, "-m", "sockcap", "capture", "-f", f"udp port {port}",
                             "-w", str(out), "--", sys.executable, "-c", child],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            env=dict(os.environ, NO_COLOR="1"))
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            deadline = time.monotonic() + 30
            # the command has started (its pid is written) and traffic is being captured
            while ((not out.exists() or out.stat().st_size < 5000
                    or not (pidfile.exists() and pidfile.read_text()))
                   and time.monotonic() < deadline):
                s.sendto(b"traffic", ("127.0.0.1", port))
                time.sleep(0.001)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == code, err
    assert "Traceback" not in err
    rows = tshark_fields(out, "frame.number")
    assert len(rows) > 50 and f"saved {len(rows)} packets" in err
    pid = int(pidfile.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


@needs_capture
def test_kernel_drops_are_reported_not_hidden() -> None:
    port = free_port()
    burst = (f"import socket; s=socket.socket(2, 2)\n"
             f"for i in range(30000): s.sendto(b'b' * 64, ('127.0.0.1', {port}))")
    # "dst port": only the datagrams (a filter naming "udp port P" also keeps the ICMP
    # port unreachables that answer them)
    res = run_sockcap("capture", "--json", "-f", f"udp dst port {port}", "--", sys.executable,
                      "-c", burst, env={"SOCKCAP_CAPTURE_BUFFER": "8192"})
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout.splitlines()[-1])["summary"]
    assert summary["dropped"] > 0, summary
    assert summary["captured"] + summary["dropped"] == summary["received"] == 30000
    assert f"{summary['dropped']} packets dropped by kernel" in res.stderr
    assert "sockcap: warning: the kernel dropped" in res.stderr


def test_unprivileged_user_is_told_how_to_allow_capture(tmp_path: Path) -> None:
    os.chmod(tmp_path, 0o777)
    res = run_sockcap("capture", "-c", "1", user="nobody", cwd=tmp_path,
                      env={"SOCKCAP_DUMPCAP": "/nonexistent/dumpcap"} if DUMPCAP is None else None)
    assert res.returncode == 2, res.stderr
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and "root or CAP_NET_RAW" in lines[0] and "setcap" in lines[0]
    assert "Traceback" not in res.stderr


@pytest.fixture
def nobody_dir() -> Iterator[Path]:
    """A directory the user nobody can reach and write (pytest's tmp_path is root-only)."""
    path = Path(tempfile.mkdtemp(prefix="sockcap-nobody-"))
    os.chmod(path, 0o777)
    try:
        yield path
    finally:
        shutil.rmtree(path)


@pytest.fixture
def dumpcap_with_caps(nobody_dir: Path) -> Path:
    """A private copy of dumpcap with capture capabilities (removed with its directory)."""
    assert DUMPCAP is not None
    bindir = nobody_dir / "bin"
    bindir.mkdir()
    os.chmod(bindir, 0o755)
    copy = bindir / "dumpcap"
    shutil.copy2(os.path.realpath(DUMPCAP), copy)
    subprocess.run(["setcap", "cap_net_raw,cap_net_admin=eip", str(copy)], check=True, timeout=30)
    return copy


@needs_dumpcap
@needs_setcap
@needs_tshark
def test_unprivileged_capture_through_a_permitted_dumpcap(nobody_dir: Path,
                                                          dumpcap_with_caps: Path) -> None:
    port = free_port()
    out = nobody_dir / "nobody.pcap"
    with echo_server(port):
        res = run_sockcap("capture", "-f", f"tcp port {port}", "-w", str(out), "--",
                          *plain_client_argv(port, "hi", "quit"), user="nobody", cwd=nobody_dir,
                          env={"SOCKCAP_DUMPCAP": str(dumpcap_with_caps)})
    assert res.returncode == 0, res.stderr
    assert "with dumpcap" in res.stderr
    flags = [int(r[0], 16) for r in tshark_fields(out, "tcp.flags")]
    assert flags[:3] == [0x002, 0x012, 0x010] and flags[-1] == 0x010 and len(flags) >= 10


@needs_dumpcap
@needs_setcap
def test_unprivileged_run_capture_uses_dumpcap(nobody_dir: Path, dumpcap_with_caps: Path) -> None:
    res = run_sockcap("run", "--capture", "--json", "--udp", "-m", "a", "-m", "quit",
                      "--out", str(nobody_dir / "run.pcap"), user="nobody", cwd=nobody_dir,
                      env={"SOCKCAP_DUMPCAP": str(dumpcap_with_caps)})
    assert res.returncode == 0, res.stderr
    rows = [r for r in map(json.loads, res.stdout.splitlines()) if r["type"] == "packet"]
    assert [bytes.fromhex(r["payload_hex"]) for r in rows] == [b"a", b"a", b"quit", b"quit"]


def test_interfaces_lists_loopback() -> None:
    res = run_sockcap("interfaces", "--json")
    assert res.returncode == 0, res.stderr
    infos = {i["name"]: i for i in map(json.loads, res.stdout.splitlines())}
    assert infos["lo"]["up"] and any(a.startswith("127.0.0.1/") for a in infos["lo"]["addresses"])


def test_parse_ddd_and_its_damage() -> None:
    assert parse_ddd("2\n40 0 0 12\n6 0 0 262144\n") == [(40, 0, 0, 12), (6, 0, 0, 262144)]
    for bad in ("", "3\n6 0 0 0\n", "x\n", "1\n6 0 0\n"):
        with pytest.raises(FilterError):
            parse_ddd(bad)


def test_dumpcap_report_is_parsed() -> None:
    lines = ["Packets captured: 889085", "Packets received/dropped on interface 'Loopback: lo': "
             "889085/221831 (pcap:221831/dumpcap:0/flushed:0/ps_ifdrop:0) (80.0%)"]
    assert parse_report(lines) == (889085 + 221831, 221831)
    assert parse_report(["Capturing on 'Loopback: lo'"]) == (-1, -1)


def test_capture_module_imports_no_heavy_library() -> None:
    code = ("import sys, sockcap.cli, sockcap.commands.capture, sockcap.commands.interfaces; "
            "print(sorted(m for m in ('scapy', 'pyshark', 'rich') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         cwd=ROOT, check=True).stdout
    assert out.strip() == "[]"


