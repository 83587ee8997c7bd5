"""sockcap's own TCP test client: a plain blocking-with-deadline socket on loopback.

(Its UDP echo is sockcap's one UDP echo client, :mod:`sockcap.endpoints.udp_client`, from
the port :func:`free_udp_port` chooses.)

Every wait has a deadline, every loop a bound. A client sends and reads at the same time
(``select``), so a 100 kB message cannot deadlock against a server that echoes while the
client is still writing. ``split`` writes one byte per segment (``TCP_NODELAY``, one
``send`` per byte), which is how a server that assumes one ``read()`` per message is found
out.
"""

from __future__ import annotations

import select
import socket
import time

REPLY_SECONDS = 1.0  # longest wait for an echo
EXTRA_SECONDS = 0.05  # after the echo is complete, how long extra bytes are waited for
SPLIT_GAP_SECONDS = 0.001  # between one-byte writes
MAX_SPLIT_BYTES = 256  # a split message is at most this long (bounds the segment count)


class EchoClient:
    """One TCP connection to the server under test."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.sock: socket.socket | None = None
        self.error = ""  # "refused", "timeout", ... when connect failed
        self.received = bytearray()
        self.closed_by_server = False

    def connect(self, seconds: float = 2.0) -> bool:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(seconds)
        try:
            sock.connect((self.host, self.port))
        except ConnectionRefusedError:
            self.error = "refused"
        except OSError as e:
            self.error = e.strerror or type(e).__name__
        if self.error:
            sock.close()
            return False
        sock.setblocking(False)
        self.sock = sock
        return True

    def exchange(self, message: bytes, *, split: bool = False,
                 seconds: float = REPLY_SECONDS) -> bytes:
        """Send ``message`` and read until as many bytes came back (or the time is up)."""
        sock = self.sock
        if sock is None:
            return b""
        if split:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            message = message[:MAX_SPLIT_BYTES]
        start = len(self.received)
        sent = 0
        deadline = time.monotonic() + seconds + len(message) / 1e6
        quiet_until = 0.0
        while time.monotonic() < deadline and not self.closed_by_server:
            want_write = [sock] if sent < len(message) else []
            readable, writable, _ = select.select([sock], want_write, [], 0.01)
            if readable:
                self._read()
            if writable:
                sent += self._write(message[sent:], split)
                if split:
                    time.sleep(SPLIT_GAP_SECONDS)
            if sent == len(message) and len(self.received) - start >= len(message):
                quiet_until = quiet_until or time.monotonic() + EXTRA_SECONDS
                if time.monotonic() >= quiet_until:
                    break
        return bytes(self.received[start:])

    def send_only(self, message: bytes) -> None:
        if self.sock is not None:
            self.sock.setblocking(True)
            self.sock.settimeout(REPLY_SECONDS)
            try:
                self.sock.sendall(message)
            except OSError:
                pass
            self.sock.setblocking(False)

    def _write(self, data: bytes, split: bool) -> int:
        assert self.sock is not None
        try:
            return self.sock.send(data[:1] if split else data)
        except (BlockingIOError, InterruptedError):
            return 0
        except OSError:
            self.closed_by_server = True
            return 0

    def _read(self) -> None:
        assert self.sock is not None
        try:
            data = self.sock.recv(1 << 16)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.closed_by_server = True
            return
        if not data:
            self.closed_by_server = True
        self.received += data

    def finish(self, seconds: float) -> bool:
        """Send FIN (shutdown for writing) and wait up to ``seconds`` for the server's FIN,
        reading whatever it still sends; True if the server closed."""
        sock = self.sock
        if sock is None:
            return False
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            return self.closed_by_server
        deadline = time.monotonic() + seconds
        while not self.closed_by_server and time.monotonic() < deadline:
            readable, _, _ = select.select([sock], [], [], 0.02)
            if readable:
                self._read()
        return self.closed_by_server

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def free_udp_port(host: str, server_port: int) -> int:
    """A UDP port for sockcap's client to send from (free now, and not the server's): it is
    captured with the server's port, so a reply that comes from another port is seen."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _attempt in range(8):
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.bind((host, 0))
            port = int(s.getsockname()[1])
        if port != server_port:
            return port
    return server_port + 1 if server_port < 65535 else server_port - 1
