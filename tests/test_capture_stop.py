"""How `sockcap capture` ends: after a command (--linger, --duration as the whole length),
real loopback traffic, real captures read back with tshark."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import ROOT, needs_capture, needs_tshark, sockcap, tshark_fields

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
