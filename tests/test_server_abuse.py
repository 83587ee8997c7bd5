"""The echo server holds up under hostile input.

The server runs in its own process (``python -c`` with :class:`EchoServer`), so its
memory can be read from ``/proc/PID/status`` and a crash shows as a dead process. After
every abuse, :func:`assert_healthy` checks that the process is alive, that a
well-behaved client still gets its echo, and that the server's resident memory stays
under :data:`RSS_LIMIT_MB` (a few times what an idle server needs, far below what an
unbounded buffer would take).
"""

from __future__ import annotations

import asyncio
import os
import random
import resource
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import never_engine

pytestmark = [*never_engine(), pytest.mark.skipif(
    not Path("/proc/self/status").exists(), reason="reads memory use from /proc"
)]

RSS_LIMIT_MB = 150  # an idle server takes ~20 MB; 10,000 idle connections ~60 MB more
IDLE_TARGET = 10_000
# A client pushing without reading: 10 MB is what the issue asks for, but the kernel
# alone buffers ~9 MB on loopback (both ends' socket buffers), so the client offers
# 64 MB: without back-pressure the server would have to hold some 55 MB of it.
FLOOD_BYTES = 64 * 1024 * 1024

SERVER = """
import asyncio, sys
from sockcap.endpoints.server import EchoServer

async def main():
    server = EchoServer("127.0.0.1", 0, udp=sys.argv[1] == "udp", max_clients=20000,
                        idle_timeout=60)
    await server.start()
    print(server.port, flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


def raise_fd_limit() -> int:
    """Raise this process's open-file soft limit to the hard limit; return the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft


class Server:
    """An echo server subprocess (started by us, stopped by its PID)."""

    def __init__(self, kind: str) -> None:
        raise_fd_limit()  # the child inherits it
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SERVER, kind], stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())
        self.kind = kind

    def rss_mb(self) -> float:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        line = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
        return int(line.split()[1]) / 1024

    def open_fds(self) -> int:
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        assert self.proc.stdout is not None
        self.proc.stdout.close()


@pytest.fixture(scope="module")
def tcp_server() -> Iterator[Server]:
    server = Server("tcp")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def udp_server() -> Iterator[Server]:
    server = Server("udp")
    yield server
    server.stop()


def connect(port: int, timeout: float = 5.0) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def round_trip(port: int, message: bytes = b"well-behaved") -> bytes:
    """One polite client: send, read the whole echo, close."""
    with connect(port) as sock:
        sock.sendall(message)
        reply = b""
        while len(reply) < len(message):
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
        return reply


def udp_round_trip(port: int, tries: int = 5) -> bytes | None:
    """A polite UDP client retries: a datagram that arrives while the server's receive
    buffer is still full of someone else's burst is dropped by the kernel, by design."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(1)
        sock.connect(("127.0.0.1", port))
        for _ in range(tries):
            sock.send(b"well-behaved")
            try:
                return sock.recv(100)
            except TimeoutError:
                continue
    return None


def assert_healthy(server: Server) -> None:
    assert server.proc.poll() is None, "the server process died"
    if server.kind == "udp":
        assert udp_round_trip(server.port) == b"well-behaved"
    else:
        assert round_trip(server.port) == b"well-behaved"
    rss = server.rss_mb()
    assert rss < RSS_LIMIT_MB, f"server RSS {rss:.0f} MB over {RSS_LIMIT_MB} MB"


def reset(sock: socket.socket) -> None:
    """Close with RST instead of FIN (SO_LINGER on, timeout 0)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


@pytest.mark.slow
def test_many_idle_connections(tcp_server: Server) -> None:
    limit = raise_fd_limit()
    target = min(IDLE_TARGET, limit - 200)  # the server needs as many descriptors as we do
    if target < IDLE_TARGET:
        warnings.warn(
            f"open-file limit {limit} allows only {target} idle connections, "
            f"not {IDLE_TARGET}",
            stacklevel=1,
        )
    before = tcp_server.open_fds()
    held: list[socket.socket] = []
    start = time.monotonic()
    try:
        for _ in range(target):
            held.append(connect(tcp_server.port))
            assert time.monotonic() - start < 60, "connecting took too long"
        deadline = time.monotonic() + 10
        while tcp_server.open_fds() < before + target and time.monotonic() < deadline:
            time.sleep(0.1)
        assert tcp_server.open_fds() >= before + target
        assert_healthy(tcp_server)
        for sock in random.Random(1).sample(held, 10):  # idle ones are served too
            sock.sendall(b"still there?")
            assert sock.recv(100) == b"still there?"
    finally:
        for sock in held:
            sock.close()
    assert_healthy(tcp_server)


def test_slow_client(tcp_server: Server) -> None:
    with connect(tcp_server.port) as sock:
        for byte in b"slow!":
            sock.sendall(bytes([byte]))
            assert sock.recv(10) == bytes([byte])
            assert_healthy(tcp_server)  # others are served while it dawdles
            time.sleep(0.2)


@pytest.mark.slow
def test_client_that_never_reads(tcp_server: Server) -> None:
    baseline = tcp_server.rss_mb()
    sent = 0
    stuck = threading.Event()

    def flood(sock: socket.socket) -> None:
        nonlocal sent
        block = b"z" * 65536
        try:
            while sent < FLOOD_BYTES:
                sent += sock.send(block)
        except TimeoutError:
            stuck.set()  # the server stopped reading us: back-pressure works

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)  # before connect: fixed
    sock.settimeout(1.0)
    sock.connect(("127.0.0.1", tcp_server.port))
    thread = threading.Thread(target=flood, args=(sock,), daemon=True)
    thread.start()
    try:
        thread.join(20)
        assert not thread.is_alive()
        assert stuck.is_set(), f"all {sent} bytes went through without the server pausing"
        assert_healthy(tcp_server)
        growth = tcp_server.rss_mb() - baseline
        assert growth < 30, f"server grew {growth:.0f} MB while {sent} bytes were pushed"
        assert sent < FLOOD_BYTES
    finally:
        reset(sock)
    assert_healthy(tcp_server)


def test_half_closed_and_silent_connections(tcp_server: Server) -> None:
    silent = connect(tcp_server.port)  # connects and never says a word
    with connect(tcp_server.port) as sock:
        sock.sendall(b"half")
        sock.shutdown(socket.SHUT_WR)  # FIN: the server echoes, then closes its side
        data = b""
        while chunk := sock.recv(100):
            data += chunk
        assert data == b"half"
    assert_healthy(tcp_server)
    silent.close()


def test_reset_connections(tcp_server: Server) -> None:
    for i in range(100):
        sock = connect(tcp_server.port)
        if i % 3 == 1:
            sock.sendall(b"about to vanish")
        elif i % 3 == 2:
            sock.sendall(b"x" * 200_000)  # reset while the server still owes an echo
        reset(sock)
    assert_healthy(tcp_server)


def test_garbage_and_empty_udp_datagrams(udp_server: Server) -> None:
    rng = random.Random(7)
    sizes = [0, 1, 65507, *(rng.randrange(0, 2000) for _ in range(200))]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(30)
        sock.connect(("127.0.0.1", udp_server.port))
        for size in sizes[:3]:  # these must come back exactly
            payload = rng.randbytes(size)
            sock.send(payload)
            assert sock.recv(65535) == payload
        for size in sizes[3:]:  # a burst: replies may be dropped, the server may not crash
            sock.send(rng.randbytes(size))
    assert_healthy(udp_server)


@pytest.mark.slow
def test_burst_of_a_thousand_connects(tcp_server: Server) -> None:
    async def one(i: int) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", tcp_server.port)
        message = f"burst {i}".encode()
        writer.write(message)
        reply = await reader.readexactly(len(message))
        writer.close()
        await writer.wait_closed()
        return reply

    async def burst() -> list[bytes]:
        return await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(1000))), 30)

    replies = asyncio.run(burst())  # how fast is bench/'s to say, not a test's
    assert replies == [f"burst {i}".encode() for i in range(1000)]
    assert_healthy(tcp_server)
