"""Scenarios on demand: small socket programs on loopback, each made to put one lesson on
the wire (``sockcap run --capture --scenario NAME``), and used by the tests as captures.

Each scenario is a blocking function of the address and a :class:`CallLog`: a server in a
thread and a client in the caller, real sockets, every wait bounded by :data:`DEADLINE`
and every loop by a byte count. The log records the socket calls each side made, with the
time and the result (a byte count, or the errno the call failed with), so the timeline can
say which call a packet answered.

Run as a script for the tests' captures: ``python -m sockcap.endpoints.scenarios NAME PORT``.
"""

from __future__ import annotations

import contextlib
import errno
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from sockcap.analysis.calls import Call
from sockcap.decode.strace import KINDS
from sockcap.i18n import N_

HOST = "127.0.0.1"
DEADLINE = 10.0  # no wait in a scenario is longer than this
CONNECT_TIMEOUT = 3.2  # the timeout scenario: the SYN is sent at 0, 1 and 3 s


@dataclass
class CallLog:
    """The calls of one scenario, in order (appended from both threads)."""

    calls: list[Call] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, side: str, call: str, nbytes: int = -1, error: str = "",
            since: int = 0, sock: socket.socket | None = None,
            ends: tuple[str, str] | None = None) -> None:
        """Record a call that returns now; ``since``: when it began (0: it took no time
        to speak of). The timeline places it where it began, and a call that waited
        while packets came (connect, accept, recv) once more where it returned
        (:func:`sockcap.analysis.story.story`). ``sock``: its socket, for the addresses
        that tie it to its conversation; ``ends``: those addresses, read before a call
        that ends the connection (close(), shutdown(): after it, the peer's address may
        be gone: ENOTCONN once the socket is closed or in TIME_WAIT)."""
        now = time.monotonic_ns()
        local, remote = ends or (_ends(sock) if sock is not None else ("", ""))
        kind = KINDS.get(call.partition("(")[0])
        with self.lock:
            self.calls.append(Call(since or now, side, call, nbytes, error, now, kind,
                                   local=local, remote=remote,
                                   proto="TCP" if sock is not None or ends else ""))

    def failed(self, side: str, call: str, e: OSError, since: int = 0,
               sock: socket.socket | None = None) -> None:
        name = errno.errorcode.get(e.errno or 0, "") if e.errno else ""
        if isinstance(e, TimeoutError) and not name:
            name = "ETIMEDOUT"
        self.add(side, call, error=name or type(e).__name__, since=since, sock=sock)


def _ends(sock: socket.socket) -> tuple[str, str]:
    """The socket's two addresses as ``127.0.0.1:5001`` ("" where it has none)."""
    ends = []
    for get in (sock.getsockname, sock.getpeername):
        try:
            host, port = get()[:2]
            ends.append(f"{host}:{port}" if port else "")
        except OSError:
            ends.append("")
    return ends[0], ends[1]


def _short(data: bytes) -> str:
    text = repr(data[:16])
    return text + ("…" if len(data) > 16 else "")


def _send(log: CallLog, side: str, s: socket.socket, data: bytes) -> None:
    since = time.monotonic_ns()
    s.sendall(data)
    log.add(side, f"send({_short(data)})", len(data), since=since, sock=s)


def _recv(log: CallLog, side: str, s: socket.socket, size: int = 65536) -> bytes:
    since = time.monotonic_ns()
    try:
        data = s.recv(size)
    except OSError as e:
        log.failed(side, "recv()", e, since=since, sock=s)
        raise
    log.add(side, "recv()", len(data), since=since, sock=s)
    return data


def _listener(port: int, backlog: int = 1, rcvbuf: int = 0) -> socket.socket:
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if rcvbuf:
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # inherited by accept
    srv.bind((HOST, port))
    srv.listen(backlog)
    srv.settimeout(DEADLINE)
    return srv


def _serve(port: int, log: CallLog, handle: Callable[[socket.socket], None],
           rcvbuf: int = 0) -> threading.Thread:
    """A one-connection server in a thread: listen, accept, ``handle``, close."""
    srv = _listener(port, rcvbuf=rcvbuf)
    log.add("server", "listen()")

    def run() -> None:
        with srv:
            since = time.monotonic_ns()
            try:
                conn, _ = srv.accept()
            except OSError as e:
                log.failed("server", "accept()", e, since=since)
                return
            log.add("server", "accept()", since=since, sock=conn)
            with conn:
                conn.settimeout(DEADLINE)
                try:
                    handle(conn)
                except OSError:
                    pass  # recorded by the call that failed
                since = time.monotonic_ns()
                ends = _ends(conn)
            log.add("server", "close()", since=since, ends=ends)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def _shutdown_write(log: CallLog, side: str, sock: socket.socket) -> None:
    """``shutdown(SHUT_WR)``, recorded with the addresses the socket had before it."""
    ends = _ends(sock)
    since = time.monotonic_ns()
    sock.shutdown(socket.SHUT_WR)
    log.add(side, "shutdown(SHUT_WR)", since=since, ends=ends)


@contextlib.contextmanager
def _closed(log: CallLog, side: str, sock: socket.socket) -> Iterator[socket.socket]:
    """``with sock:`` that records the close() where it began (before its FIN or RST)."""
    try:
        yield sock
    finally:
        ends = _ends(sock)
        since = time.monotonic_ns()
        sock.close()
        log.add(side, "close()", since=since, ends=ends)


def _read_all(log: CallLog, side: str, conn: socket.socket, limit: int = 4 << 20) -> bytes:
    since = time.monotonic_ns()
    parts, got = [], 0
    while got < limit:
        try:
            chunk = conn.recv(65536)
        except OSError as e:
            log.failed(side, "recv() until EOF", e, since=since, sock=conn)
            raise
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    log.add(side, N_("recv() until EOF"), got, since=since, sock=conn)
    return b"".join(parts)


def _connect(log: CallLog, port: int, *, timeout: float = DEADLINE,
             setup: Callable[[socket.socket], None] | None = None) -> socket.socket | None:
    c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    c.settimeout(timeout)
    if setup is not None:
        setup(c)
    since = time.monotonic_ns()
    try:
        c.connect((HOST, port))
    except OSError as e:
        log.failed("client", "connect()", e, since=since)
        with log.lock:
            from dataclasses import replace

            log.calls[-1] = replace(log.calls[-1], remote=f"{HOST}:{port}", proto="TCP")
        c.close()
        return None
    log.add("client", "connect()", since=since, sock=c)
    return c


# --- the scenarios ---------------------------------------------------------------------

def echo(port: int, log: CallLog) -> None:
    """The README's exchange with every socket call shown: hello, world, quit echoed, then
    the client shuts down writing and both sides close."""

    def handle(conn: socket.socket) -> None:
        while True:
            data = _recv(log, "server", conn, 255)  # as the classic C server reads
            if not data:
                break
            _send(log, "server", conn, data)

    t = _serve(port, log, handle)
    c = _connect(log, port)
    if c is not None:
        with _closed(log, "client", c):
            for word in (b"hello", b"world", b"quit"):
                _send(log, "client", c, word)
                _recv(log, "client", c, 255)
            _shutdown_write(log, "client", c)
            _recv(log, "client", c, 255)
    t.join(DEADLINE)



def refused(port: int, log: CallLog) -> None:
    """connect() to a port nothing listens on: the kernel answers the SYN with RST, ACK."""
    c = _connect(log, port)
    if c is not None:
        c.close()


def reset(port: int, log: CallLog) -> None:
    """The client sends, then closes with SO_LINGER 0: an RST instead of a FIN, and the
    server's next recv() fails with ECONNRESET."""
    got = threading.Event()

    def handle(conn: socket.socket) -> None:
        _recv(log, "server", conn, 100)
        got.set()
        _recv(log, "server", conn, 100)

    t = _serve(port, log, handle)
    c = _connect(log, port)
    if c is not None:
        with _closed(log, "client", c):
            _send(log, "client", c, b"hello before the reset")
            got.wait(DEADLINE)
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            log.add("client", "setsockopt(SO_LINGER, 0)")
    t.join(DEADLINE)


def half_close(port: int, log: CallLog) -> None:
    """The client sends a request and shuts down writing (FIN); the server reads until
    EOF, then answers over the half that is still open."""

    def handle(conn: socket.socket) -> None:
        request = _read_all(log, "server", conn)
        for i in range(3):
            _send(log, "server", conn, b"response %d to %d bytes\n" % (i, len(request)))
            time.sleep(0.01)

    t = _serve(port, log, handle)
    c = _connect(log, port)
    if c is not None:
        with _closed(log, "client", c):
            _send(log, "client", c, b"GET / HTTP/1.0\r\n\r\n")
            _shutdown_write(log, "client", c)
            _read_all(log, "client", c)
    t.join(DEADLINE)


def _full_queue(port: int, log: CallLog) -> tuple[socket.socket, socket.socket | None]:
    """A listener with a backlog of 0 whose accept queue one connection fills: Linux drops
    the next SYNs, which the client's kernel then retransmits."""
    srv = _listener(port, backlog=0)
    log.add("server", "listen(backlog=0)")
    first = _connect(log, port)
    return srv, first


def timeout(port: int, log: CallLog) -> None:
    """connect() to a server whose accept queue is full and which never accepts: the SYN
    is dropped, sent again after 1 s and 3 s, and connect() gives up (ETIMEDOUT)."""
    srv, first = _full_queue(port, log)
    with srv:
        second = _connect(log, port, timeout=CONNECT_TIMEOUT)
        if second is not None:
            second.close()
        if first is not None:
            first.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            first.close()


def backlog(port: int, log: CallLog) -> None:
    """A second connect() while the server's accept queue is full: its SYN is dropped and
    sent again until the server accept()s the first connection, then it gets through."""
    srv, first = _full_queue(port, log)
    with srv:
        done = threading.Event()

        def accept_later() -> None:
            time.sleep(1.5)
            try:
                conns = [srv.accept()[0] for _ in range(2)]
            except OSError as e:
                log.failed("server", "accept()", e)
                done.set()
                return
            log.add("server", N_("accept() ×2"))
            done.wait(DEADLINE)
            for conn in conns:
                conn.close()

        t = threading.Thread(target=accept_later, daemon=True)
        t.start()
        second = _connect(log, port)
        done.set()
        for c in (second, first):
            if c is not None:
                c.close()
        t.join(DEADLINE)


def _small_sends(port: int, log: CallLog, nodelay: bool) -> None:
    words = (b"one ", b"two ", b"three ", b"four ", b"five")
    ready = threading.Event()

    def handle(conn: socket.socket) -> None:
        # delayed ACKs, as between two machines (on lo every segment is ACKed at once,
        # and Nagle's algorithm, which waits for that ACK, would have nothing to wait for)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 0)
        ready.set()
        time.sleep(0.3)  # the sends are all in the buffer by now: one recv() gets them all
        _recv(log, "server", conn)
        _recv(log, "server", conn)

    t = _serve(port, log, handle)
    c = _connect(log, port)
    if c is not None:
        with _closed(log, "client", c):
            ready.wait(DEADLINE)
            if nodelay:
                c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                log.add("client", "setsockopt(TCP_NODELAY, 1)")
            for word in words:
                _send(log, "client", c, word)
    t.join(DEADLINE)


def coalesce(port: int, log: CallLog) -> None:
    """Five quick small send()s with Nagle's algorithm on: after the first, the kernel holds
    the bytes until the ACK comes, so they leave as fewer segments; the server's one recv()
    returns them all. TCP is a byte stream: one send is not one recv."""
    _small_sends(port, log, nodelay=False)


def nodelay(port: int, log: CallLog) -> None:
    """The same five send()s with TCP_NODELAY: each leaves at once in its own segment."""
    _small_sends(port, log, nodelay=True)


LARGE = 100_000
LARGE_MSS = 1460  # an Ethernet-sized MSS (loopback's own MTU is 64 KiB)


def large(port: int, log: CallLog) -> None:
    """One send() of 100 kB with the MSS set to 1460 bytes (TCP_MAXSEG, as on Ethernet):
    the kernel cuts it into segments of at most one MSS."""

    def handle(conn: socket.socket) -> None:
        _read_all(log, "server", conn)

    def small_mss(s: socket.socket) -> None:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, LARGE_MSS)

    srv_thread = _serve(port, log, handle)
    c = _connect(log, port, setup=small_mss)
    if c is not None:
        with _closed(log, "client", c):
            _send(log, "client", c, bytes(i % 251 for i in range(LARGE)))
    srv_thread.join(DEADLINE)


def zero_window(port: int, log: CallLog) -> None:
    """The receiver (4 KiB buffer) stops reading while the sender floods 256 KiB: its window
    falls to 0, the sender probes, then the receiver reads and opens the window again."""
    release = threading.Event()
    total = 256 << 10

    def handle(conn: socket.socket) -> None:
        release.wait(DEADLINE)
        _read_all(log, "server", conn, total)

    t = _serve(port, log, handle, rcvbuf=4096)
    c = _connect(log, port)
    if c is not None:
        with _closed(log, "client", c):
            c.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
            c.setblocking(False)
            block = bytes(range(256)) * 64
            sent, start = 0, time.monotonic()  # the same clock as monotonic_ns
            while sent < total and time.monotonic() - start < 1.0:
                try:
                    sent += c.send(block[: total - sent])
                except BlockingIOError:
                    time.sleep(0.01)
            log.add("client", N_("send() ×n (non-blocking)"), sent, "EAGAIN",
                    since=int(start * 1e9), sock=c)
            time.sleep(0.5)
            release.set()
    t.join(DEADLINE)


def time_wait(port: int, log: CallLog) -> None:
    """The client closes first, so its side of the connection stays in TIME_WAIT; a new
    socket bound to the same client port (without SO_REUSEADDR) fails with EADDRINUSE."""

    def handle(conn: socket.socket) -> None:
        _send(log, "server", conn, _recv(log, "server", conn, 100))
        _recv(log, "server", conn, 100)

    t = _serve(port, log, handle)
    c = _connect(log, port)
    if c is None:
        return
    local = c.getsockname()
    with _closed(log, "client", c):
        _send(log, "client", c, b"hello")
        _recv(log, "client", c, 100)
        _shutdown_write(log, "client", c)
        _recv(log, "client", c, 100)
    t.join(DEADLINE)
    again = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        again.bind(local)
        log.add("client", f"bind({local[0]}:{local[1]})")
    except OSError as e:
        log.failed("client", f"bind({local[0]}:{local[1]})", e)
    finally:
        again.close()


@dataclass(frozen=True, slots=True)
class Lesson:
    """What ``--scenario NAME`` runs: a socket program made to put one lesson on the wire.

    Named for what it is, so that it is not taken for the exchanges ``sockcap check``
    runs against a student's server (:class:`sockcap.analysis.check.codes.Scenario`)."""

    name: str
    run: Callable[[int, CallLog], None]
    summary: str  # one line, marked with N_() and translated where shown
    listens: bool = True  # False: nothing listens on the port (refused)


SCENARIOS: dict[str, Lesson] = {s.name: s for s in (
    Lesson("echo", echo, N_("The README's echo exchange (hello, world, quit) with every socket call in place."), ),
    Lesson("refused", refused, N_("connect() to a port nothing listens on: RST answers the SYN (ECONNREFUSED)."), listens=False),
    Lesson("reset", reset, N_("The client closes with SO_LINGER 0: RST instead of FIN; the server's recv() fails (ECONNRESET)."), ),
    Lesson("half-close", half_close, N_("The client shuts down writing (FIN) and still receives the server's answer."), ),
    Lesson("timeout", timeout, N_("The server's accept queue is full: the SYN is sent again and again until connect() gives up (ETIMEDOUT)."), ),
    Lesson("coalesce", coalesce, N_("Five quick small send()s with Nagle's algorithm: fewer segments, and one recv() gets them all."), ),
    Lesson("nodelay", nodelay, N_("The same five send()s with TCP_NODELAY: one segment each."), ),
    Lesson("large", large, N_("One send() of 100 kB: on lo the kernel hands the capture chunks larger than any MTU (GSO: each a multiple of the segment size, 1448 bytes when timestamps take 12 of the MSS's 1460); on a real wire each would leave as several segments."), ),
    Lesson("zero-window", zero_window, N_("The receiver stops reading: its window falls to 0 and the sender must wait."), ),
    Lesson("backlog", backlog, N_("A second connect() while the accept queue is full: its SYN is sent again until the server accepts."), ),
    Lesson("time-wait", time_wait, N_("The client closes first and keeps TIME_WAIT: binding its port again fails (EADDRINUSE)."), ),
)}


if __name__ == "__main__":
    calls = CallLog()
    SCENARIOS[sys.argv[1]].run(int(sys.argv[2]), calls)
    for call in calls.calls:
        print(call.side, call.call, call.nbytes, call.error)
