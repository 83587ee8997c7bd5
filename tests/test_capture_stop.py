"""How `sockcap capture` ends: after a command (--linger, --duration as the whole length),
real loopback traffic, real captures read back with tshark."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import ROOT, needs_capture, needs_tshark, never_engine, sockcap, tshark_fields

pytestmark = never_engine()

LATE_SECONDS = 1.5  # how long after the client's FIN the server sends its own


@contextmanager
def late_closing_server() -> Iterator[int]:
    """A TCP server on a free port that reads until the client's FIN and closes its own side
    LATE_SECONDS later; the thread ends on its own within bounded waits."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(30)

    def serve() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(30)
            while conn.recv(4096):
                pass
            threading.Event().wait(LATE_SECONDS)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        thread.join(40)
        listener.close()


def client_command(port: int) -> list[str]:
    """A client that sends one message, closes its side and exits at once."""
    code = (f"import socket; s = socket.create_connection(('127.0.0.1', {port})); "
            "s.sendall(b'hi'); s.shutdown(socket.SHUT_WR); s.close()")
    return [sys.executable, "-c", code]


def server_fins(pcap: Path, port: int) -> int:
    rows = tshark_fields(pcap, "tcp.srcport", "tcp.flags.fin")
    return sum(1 for sport, fin in rows if sport == str(port) and fin in ("1", "True"))


def capture_around_client(tmp_path: Path, *options: str) -> tuple[subprocess.CompletedProcess[str], Path, int]:
    pcap = tmp_path / f"c{len(list(tmp_path.iterdir()))}.pcap"
    with late_closing_server() as port:
        r = sockcap("capture", "-q", "-f", f"tcp port {port}", "-w", str(pcap), *options, "--",
                    *client_command(port), timeout=60)
    assert r.returncode == 0, r.stderr
    return r, pcap, port


@needs_capture
@needs_tshark
def test_the_default_drain_misses_a_late_fin_and_linger_or_duration_keep_it(
        tmp_path: Path) -> None:
    r, pcap, port = capture_around_client(tmp_path)
    assert server_fins(pcap, port) == 0  # today's short drain: the server's FIN came later
    r, pcap, port = capture_around_client(tmp_path, "--linger", "4")
    assert server_fins(pcap, port) == 1
    assert "the command ended" not in r.stderr  # not a terminal: no progress words
    r, pcap, port = capture_around_client(tmp_path, "--duration", "4")
    assert server_fins(pcap, port) == 1  # --duration is the whole capture's length


@needs_capture
def test_on_a_terminal_it_says_how_long_it_keeps_capturing(tmp_path: Path) -> None:
    master, slave = os.openpty()
    with late_closing_server() as port:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sockcap", "capture", "-q", "-f", f"tcp port {port}",
             "--linger", "2", "--", *client_command(port)],
            stdout=subprocess.DEVNULL, stderr=slave, cwd=ROOT,
            env=dict(os.environ, NO_COLOR="1"))
        os.close(slave)
        chunks = []
        try:
            while True:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: the other end is closed
                    break
                if not chunk:
                    break
                chunks.append(chunk)
        finally:
            os.close(master)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    text = b"".join(chunks).decode().replace("\r\n", "\n")
    assert proc.returncode == 0, text
    assert "sockcap: the command ended; capturing 2 s more\n" in text


def test_linger_needs_a_command() -> None:
    r = sockcap("capture", "--linger", "1")
    assert r.returncode == 2
    assert "--linger keeps capturing after a command" in r.stderr


@pytest.mark.parametrize("value", ["-1", "x"])
def test_linger_must_be_a_number_of_seconds(value: str) -> None:
    r = sockcap("capture", "--linger", value, "--", "true")
    assert r.returncode == 2 and "Traceback" not in r.stderr


# -- nothing the kernel accepted is lost at the stop ----------------------------------------


SENDER = """
import socket, sys, time
port, count, limit = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
payload, end, sent = b"x" * 64, time.monotonic() + limit, 0
while sent < count and time.monotonic() < end:
    for _ in range(1000):
        s.sendto(payload, ("127.0.0.1", port))
    sent += 1000
"""


def counters(stderr: str) -> dict[str, int]:
    """The closing lines' numbers: captured, received, dropped and (if said) unread."""
    found: dict[str, int] = {"unread": 0, "past_count": 0}
    for line in stderr.splitlines():
        words = line.split()
        for key, tail in (("captured", "packets captured"), ("received", "packets received by filter"),
                          ("dropped", "packets dropped by kernel"),
                          ("unread", "packets received but not read before the stop"),
                          ("past_count", "was reached, not kept")):
            if line.replace("packets", "packet").endswith(tail.replace("packets", "packet")):
                found[key] = int(words[0])
    return found


@needs_capture
@pytest.mark.parametrize("stop", ["--duration", "SIGINT", "-c"])
def test_a_stop_in_a_flood_writes_what_the_kernel_accepted_or_says_what_it_did_not(
        tmp_path: Path, stop: str) -> None:
    """A bounded sender floods a port while a small ring and a printed timeline starve the
    reader; the capture stops mid-flood. Every packet the filter accepted is written, dropped
    (said) or said as not read: written + dropped + unread = received by filter."""
    from sockcap.pcapfile.reader import open_capture

    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # bound, never read: no ICMP
    sink.bind(("127.0.0.1", 0))
    port = sink.getsockname()[1]
    pcap = tmp_path / "flood.pcap"
    sender = subprocess.Popen([sys.executable, "-c", SENDER, str(port), "3000000", "8"])
    try:
        cmd = [sys.executable, "-m", "sockcap", "capture", "-f", f"udp dst port {port}",
               "-w", str(pcap)] + {"--duration": ["--duration", "1.5"], "-c": ["-c", "20000"],
                                   "SIGINT": []}[stop]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                cwd=ROOT, env=dict(os.environ, NO_COLOR="1",
                                                   SOCKCAP_CAPTURE_BUFFER=str(1 << 20)))
        try:
            if stop == "SIGINT":
                assert proc.stderr is not None
                assert proc.stderr.readline().startswith("sockcap: capturing on lo")
                threading.Event().wait(1.5)
                proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        still_sending = sender.poll() is None
    finally:
        sender.kill()
        sender.wait()
        sink.close()
    assert proc.returncode == (130 if stop == "SIGINT" else 0), err
    assert still_sending  # the stop came in the middle of the flood
    assert out.count(" UDP ") > 0
    with pcap.open("rb") as f:
        written = sum(1 for _ in open_capture(f))
    c = counters(err)
    assert c["captured"] == written, err
    assert written + c["dropped"] + c["unread"] + c["past_count"] == c["received"], err
    if stop == "-c":
        assert written == 20000
    # and the ring's packets up to the stop were read and written (the stop may take up to
    # STOP_READ_SECONDS for them): nothing left to say as unread
    assert c["unread"] == 0 and "not read before the stop" not in err, err
