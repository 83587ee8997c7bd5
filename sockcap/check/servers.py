"""sockcap's own server, for checking a student's client.

One listening socket (made by the caller's thread, so in the sandbox's network when the
caller is inside it) and one thread that serves connections one after the other, each
bounded in time. Two behaviours, one per client scenario:

- :attr:`ServerMode.SLOW_ECHO`: every chunk read is echoed in pieces of
  :data:`PIECE_BYTES` (``TCP_NODELAY``), each sent only once the client's program has
  read the one before (its socket's receive queue, in ``/proc/net/tcp``, is empty), so
  a reply reaches the client as several segments and every ``read()`` returns one piece,
  however loaded the machine. A client that takes one ``read()`` for the whole reply
  gets part of it, and shows it on the wire: it closes while the rest is still coming.
  After the client's FIN the server closes with FIN.
- :attr:`ServerMode.CLOSE_FIRST`: the first message is read and the connection closed
  without a reply (FIN): does the client notice and stop with an error?

Everything here is on sockets the caller's network namespace holds; nothing is printed.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager

from sockcap.check.programs import unread_bytes
from sockcap.codes import Code

PIECE_BYTES = 10  # an echo is sent in pieces of this many bytes ...
PIECE_GAP_SECONDS = 0.02  # ... at least this far apart ...
READ_WAIT_SECONDS = 2.0  # ... and once the client read the piece before (or after this)
CONNECTION_SECONDS = 30.0  # longest a connection is served
FIRST_MESSAGE_SECONDS = 2.0  # CLOSE_FIRST: how long it waits for the first message


class ServerMode(Code):
    SLOW_ECHO = "slow echo"
    CLOSE_FIRST = "close first"


class OwnServer:
    """Listens on ``host:port`` at once (in the calling thread's network namespace) and
    serves in a thread of its own until :meth:`close`."""

    def __init__(self, host: str, port: int, mode: ServerMode,
                 inside: Callable[[], AbstractContextManager[None]] = contextlib.nullcontext) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.mode = mode
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(8)
        self.served = 0
        self._finishing = threading.Event()  # no new client will come: say when all is served
        self._done = threading.Event()
        self._stop = threading.Event()
        self._inside = inside  # puts the serving thread where the socket is, to read /proc
        self._thread = threading.Thread(target=self._serve, name="sockcap-check-server",
                                        daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        with self._inside():
            self._accept()

    def _accept(self) -> None:
        while not self._stop.is_set():
            readable, _, _ = select.select([self.sock], [], [], 0.05)
            if not readable:
                if self._finishing.is_set():
                    self._done.set()
                continue
            try:
                conn, _peer = self.sock.accept()
            except OSError:
                continue
            try:
                with conn:
                    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    if self.mode is ServerMode.SLOW_ECHO:
                        self._slow_echo(conn)
                    else:
                        self._close_first(conn)
            except OSError:
                pass
            finally:
                self.served += 1

    def _slow_echo(self, conn: socket.socket) -> None:
        deadline = time.monotonic() + CONNECTION_SECONDS
        while not self._stop.is_set() and time.monotonic() < deadline:
            readable, _, _ = select.select([conn], [], [], 0.05)
            if not readable:
                continue
            data = conn.recv(1 << 16)
            if not data:
                return  # the client's FIN: close with ours
            for start in range(0, len(data), PIECE_BYTES):
                if start:
                    self._wait_read(conn)
                conn.sendall(data[start : start + PIECE_BYTES])

    def _wait_read(self, conn: socket.socket) -> None:
        """Until the client's program has read everything sent so far (bounded)."""
        self._stop.wait(PIECE_GAP_SECONDS)
        mine, peer = conn.getsockname()[1], conn.getpeername()[1]
        deadline = time.monotonic() + READ_WAIT_SECONDS
        while not self._stop.is_set() and time.monotonic() < deadline:
            if not unread_bytes(peer, mine):
                return
            self._stop.wait(0.005)

    def _close_first(self, conn: socket.socket) -> None:
        readable, _, _ = select.select([conn], [], [], FIRST_MESSAGE_SECONDS)
        if readable:
            conn.recv(1 << 16)

    def finish(self, seconds: float) -> bool:
        """Once the client has exited: wait until every connection it made was served to
        its end (the server's FIN sent) and none waits to be accepted; False when the time
        ran out."""
        self._finishing.set()
        return self._done.wait(seconds)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5.0)
        self.sock.close()
