"""The echo server: one asyncio event loop serving every client, TCP or UDP.

Why an event loop rather than the classic ``fork()`` per connection: a process per client
costs a few megabytes and a context switch per message, and a forked child that never
reads its socket again is invisible to the parent. One loop holds thousands of idle
connections in a few kilobytes each, and can enforce limits on all of them.

Design, and the reason for each choice:

* TCP is served by :class:`_TcpEcho`, an :class:`asyncio.BufferedProtocol`. Bytes are
  echoed as they arrive: TCP is a byte stream, so there are no "messages", only reads.
  All connections share one receive buffer of ``max_message`` bytes; each read is copied
  out at once (the copy is what gets queued for sending), so a thousand idle connections
  cost no buffers at all.
* Back-pressure: when a client does not read its echoes, the transport's send buffer
  passes its high-water mark (64 KiB), asyncio calls ``pause_writing`` and the server
  stops reading that one client. The client's own sends then fill the kernel buffers and
  block, so the server's memory stays bounded and every other client is still served.
* End of a conversation: when the client sends FIN (EOF), the server finishes sending
  what it owes and closes its side, so the capture shows the full four-way teardown.
  ``quit`` is not special here: the classic C client stops after sending it and closes.
* Limits: ``max_clients`` open connections (one more is accepted and closed at once, and
  logged), ``idle_timeout`` seconds of silence before a connection is closed (checked
  four times per timeout, so it closes after 1 to 1.25 times it; aborted if the client is
  not even reading), ``max_message`` bytes per read or datagram (a larger datagram is
  dropped and logged).
* :meth:`EchoServer.wait_idle` tells an in-process caller (``sockcap run --capture``)
  when every connection has closed its socket, so the whole teardown is on the wire.
* UDP is served by :class:`_UdpEcho`: each datagram goes back to its sender, an empty
  datagram gets an empty reply, and nothing a client sends can stop the server.
* Logging goes through a ``log`` callback (one line per connection, message and close,
  each with a timestamp) and costs nothing when ``log`` is ``None``. The class never
  prints: :func:`run_server`, the ``sockcap server`` command, supplies the callback.

Several worker processes (``run_server(workers=N)``, ``sockcap server --workers N``), as
nginx does: one event loop uses one CPU, so on a machine with several, N processes each
run the same :class:`EchoServer` on the same port. How they share it, and why:

* The parent binds N listening sockets with ``SO_REUSEPORT`` *before* forking, then
  each worker keeps one and the parent closes its copies. The kernel hashes each new
  connection (each UDP client address, for UDP) to one of the N sockets, so clients are
  spread evenly and each stays with its worker. The simpler alternative, one listening
  socket inherited by every worker, spreads badly under asyncio: every worker's epoll
  wakes for each new connection and asyncio then accepts in a loop until the queue is
  empty, so whichever worker wakes first takes most of a burst (measured, 100
  connections made at once on two workers: 91/9 to 72/28 with one shared socket,
  58/42 to 49/51 with SO_REUSEPORT).
* Before binding the N sockets the parent binds one probe socket *without*
  ``SO_REUSEPORT`` (and closes it): that fails, with the same one-line errors as a
  single server, when anything already holds the port, including another sockcap
  server with workers (``SO_REUSEPORT`` sockets of the same user would otherwise
  silently join its group and take half of its clients).
* Binding everything in the parent means a worker never fails to bind, no worker
  races another, ``--port 0`` works, and the port is ready when the parent says so.
* Workers die with the parent (``PR_SET_PDEATHSIG``, Linux), even when it is killed
  with SIGKILL; on Ctrl-C or SIGTERM the parent sends SIGTERM to each worker by its
  PID, waits for them (SIGKILL after 10 s) and returns. A worker that dies on its own
  is logged; its socket closes with it, so the kernel sends new clients to the rest.
* ``max_clients`` applies to each worker. Every log line says which worker (PID)
  wrote it, and workers write whole lines (line-buffered stdout) so their lines never
  cut into each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import datetime
import io
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, cast

from sockcap.endpoints.address import (
    bind_error,
    check_port,
    format_address,
    is_wildcard,
    parse_host,
    preview,
    udp_socket,
)
from sockcap.errors import EndpointError, ExitCode, SockcapError
from sockcap.i18n import _
from sockcap.signals import exit_code_for

if TYPE_CHECKING:
    from typing_extensions import Self

Log = Callable[[str], None]
MakeServer = Callable[[socket.socket, str], "EchoServer"]  # (socket, log label) -> server

BACKLOG = 4096  # connections the kernel queues before accept(); capped by somaxconn
IDLE_TICKS = 4  # idle checks per idle_timeout
CLOSE_GRACE = 2.0  # seconds close() lets connections send what they owe before aborting
WORKER_GRACE = 10.0  # seconds the parent waits for stopped workers before SIGKILL
PR_SET_PDEATHSIG = 1  # prctl(2) option: signal this process when its parent dies


@dataclass
class ServerStats:
    """Live counters of an :class:`EchoServer`; read them at any time."""

    connections: int = 0  # TCP connections accepted and served
    refused: int = 0  # TCP connections closed at once because max_clients were open
    active: int = 0  # TCP connections open now
    messages: int = 0  # TCP reads or UDP datagrams echoed
    bytes: int = 0  # bytes echoed


class EchoServer:
    """An echo server on ``host:port``; ``async with EchoServer(...) as server`` runs it.

    ``port=0`` lets the kernel pick a free port; after :meth:`start`, :attr:`port` and
    :attr:`address` tell the real one.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 5001,
        *,
        udp: bool = False,
        max_clients: int = 1024,
        idle_timeout: float | None = 300.0,
        max_message: int = 65536,
        log: Log | None = None,
        sock: socket.socket | None = None,
        label: str = "",
    ) -> None:
        """``sock``: a socket already bound to ``host:port`` to serve on (the workers of
        :func:`run_server` get theirs from the parent); ``label`` starts every log line."""
        self.host = host
        self.port = port
        self.udp = udp
        self.max_clients = max_clients
        self.idle_timeout = idle_timeout if idle_timeout else None
        self.max_message = max_message
        self.stats = ServerStats()
        self._log = log
        self.label = label
        self.logging = log is not None
        self._sock = sock
        self.read_buffer = memoryview(bytearray(max(max_message, 1)))
        self._connections: set[_TcpEcho] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._server: asyncio.Server | None = None
        self._udp: asyncio.DatagramTransport | None = None

    @property
    def address(self) -> str:
        """``127.0.0.1:5001`` (the real port once started)."""
        return format_address(self.host, self.port)

    @property
    def protocol(self) -> str:
        return "UDP" if self.udp else "TCP"

    async def start(self) -> None:
        """Bind and start serving; raise EndpointError if the address cannot be used."""
        self.host = parse_host(self.host)
        check_port(self.port, allow_zero=True)
        if self.max_message < 1 or self.max_clients < 1:
            raise EndpointError(_("max_message and max_clients must be at least 1"))
        try:
            sockname = await (self._bind_udp() if self.udp else self._bind_tcp())
        except OSError as err:
            raise bind_error(err, self.host, self.port) from None
        self.port = sockname[1]

    async def _bind_tcp(self) -> tuple[str, int]:
        loop = asyncio.get_running_loop()
        if self._sock is not None:
            self._server = await loop.create_server(
                lambda: _TcpEcho(self), sock=self._sock, backlog=BACKLOG
            )
        else:
            self._server = await loop.create_server(
                lambda: _TcpEcho(self), self.host, self.port, backlog=BACKLOG
            )
        sockname: tuple[str, int] = self._server.sockets[0].getsockname()
        return sockname

    async def _bind_udp(self) -> tuple[str, int]:
        loop = asyncio.get_running_loop()
        sock = self._sock or _bound(udp_socket(self.host), self.host, self.port)
        self._udp, _ = await loop.create_datagram_endpoint(
            lambda: _UdpEcho(self, sock), sock=sock
        )
        sockname: tuple[str, int] = self._udp.get_extra_info("sockname")
        return sockname

    async def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until no accepted TCP connection is open; False if ``timeout`` ran out.

        A connection counts as closed once its socket is closed, so after this returns
        True the server's FIN (or RST) for every connection so far is on the wire.
        """
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    async def close(self) -> None:
        """Stop listening, let open connections send what they owe, then close them."""
        if self._udp is not None:
            self._udp.close()
        if self._server is not None:
            self._server.close()
        for conn in list(self._connections):
            conn.transport.close()
        if not await self.wait_idle(CLOSE_GRACE):
            for conn in list(self._connections):
                conn.transport.abort()
            await self.wait_idle(CLOSE_GRACE)
        if self._server is not None:
            await self._server.wait_closed()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- called by the protocols -------------------------------------------------------

    def say(self, line: str) -> None:
        """Log ``line`` with a timestamp, if there is a log."""
        if self._log is not None:
            self._log(stamped(self.label + line))

    def admit(self, conn: _TcpEcho) -> bool:
        """Register a new connection; False if it must be refused (max_clients open)."""
        self._connections.add(conn)
        self._idle.clear()
        if self.stats.active >= self.max_clients:
            self.stats.refused += 1
            self.say(_("{peer} refused: {max_clients} connections already open").format(peer=conn.peer, max_clients=self.max_clients))
            return False
        self.stats.active += 1
        self.stats.connections += 1
        self.say(_("{peer} connected ({active} open)").format(peer=conn.peer, active=self.stats.active))
        return True

    def forget(self, conn: _TcpEcho) -> None:
        """A connection's socket is closed."""
        self._connections.discard(conn)
        if conn.admitted:
            self.stats.active -= 1
        if not self._connections:
            self._idle.set()

    def echoed(self, peer: str, data: bytes) -> None:
        """Count (and log) one UDP datagram echoed."""
        self.stats.messages += 1
        self.stats.bytes += len(data)
        if self._log is not None:
            self.say(_("{peer} echo {data} bytes {data2}").format(peer=peer, data=len(data), data2=preview(data)))


class _TcpEcho(asyncio.BufferedProtocol):
    """One TCP connection: echo every read, stop reading while the client is not.

    ``buffer_updated`` runs once per read of every connection, so it does the least it
    can: copy, write, count, and build a log line only when there is a log. Silence is
    detected by a timer that ticks every quarter of ``idle_timeout`` and compares the
    read counter, rather than by reading the clock on every read.
    """

    def __init__(self, server: EchoServer) -> None:
        self.server = server
        self.stats = server.stats
        self.buffer = server.read_buffer
        self.transport: asyncio.Transport
        self.peer = "?"
        self.admitted = False
        self.messages = 0
        self.bytes = 0
        self.closed_by = "server"
        self._seen = 0  # self.messages at the last idle tick
        self._quiet_ticks = 0
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.peer = format_address(peer[0], peer[1])
        self.admitted = self.server.admit(self)
        if not self.admitted:
            transport.close()
        elif self.server.idle_timeout is not None:
            self._arm_idle_timer()

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.buffer

    def buffer_updated(self, nbytes: int) -> None:
        data = bytes(self.buffer[:nbytes])  # the shared buffer is reused by the next read
        self.transport.write(data)
        self.messages += 1
        self.bytes += nbytes
        self.stats.messages += 1
        self.stats.bytes += nbytes
        if self.server.logging:
            self.server.say(_("{peer} echo {nbytes} bytes {data}").format(peer=self.peer, nbytes=nbytes, data=preview(data)))

    def eof_received(self) -> bool:
        self.closed_by = "client"
        self.server.say(_("{peer} sent FIN: closing after the last echo").format(peer=self.peer))
        return False  # asyncio then closes our side once the send buffer is empty

    def pause_writing(self) -> None:
        self.transport.pause_reading()  # back-pressure: the client is not reading

    def resume_writing(self) -> None:
        self.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self.server.forget(self)
        if self.admitted:
            how = f"reset ({exc})" if exc else f"closed by {self.closed_by}"
            self.server.say(
                _("{peer} {how} after {messages} messages, {bytes} bytes").format(peer=self.peer, how=how, messages=self.messages, bytes=self.bytes)
            )

    def _arm_idle_timer(self) -> None:
        timeout = self.server.idle_timeout
        assert timeout is not None
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(timeout / IDLE_TICKS, self._idle_tick)

    def _idle_tick(self) -> None:
        """Close after ``idle_timeout`` (to 1.25 times it) without a byte from the client."""
        if self.messages != self._seen:
            self._seen, self._quiet_ticks = self.messages, 0
        else:
            self._quiet_ticks += 1
        if self._quiet_ticks < IDLE_TICKS:
            self._arm_idle_timer()
            return
        self.server.say(_("{peer} silent for {idle_timeout:g} s: closing").format(peer=self.peer, idle_timeout=self.server.idle_timeout))
        self.closed_by = "server (idle)"
        if self.transport.get_write_buffer_size():
            self.transport.abort()  # it is not reading either: nothing to flush to
        else:
            self.transport.close()


class _UdpEcho(asyncio.DatagramProtocol):
    """Send every datagram back to its sender; nothing a client sends stops it."""

    def __init__(self, server: EchoServer, sock: socket.socket) -> None:
        self.server = server
        self.sock = sock  # for empty replies, which asyncio's sendto would drop
        self.transport: asyncio.DatagramTransport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        peer = format_address(str(addr[0]), int(addr[1]))
        if len(data) > self.server.max_message:
            self.server.say(_("{peer} dropped a {data}-byte datagram (over max_message)").format(peer=peer, data=len(data)))
            return
        if data:
            self.transport.sendto(data, addr)
        else:
            self._send_empty(peer, addr)
        self.server.echoed(peer, data)

    def _send_empty(self, peer: str, addr: tuple[str | int, ...]) -> None:
        try:
            self.sock.sendto(b"", addr)
        except OSError as err:
            self.server.say(_("{peer} empty reply not sent: {strerror}").format(peer=peer, strerror=err.strerror))

    def error_received(self, exc: Exception) -> None:
        self.server.say(_("UDP error ignored: {exc}").format(exc=exc))


def run_server(
    host: str = "127.0.0.1",
    port: int = 5001,
    *,
    udp: bool = False,
    max_clients: int = 1024,
    idle_timeout: float | None = 300.0,
    max_message: int = 65536,
    workers: int = 1,
    log: Log | None = None,
) -> ExitCode:
    """Serve until Ctrl-C or SIGTERM, then close cleanly and return (``sockcap server``).

    Returns the exit code for the signal that stopped it, with or without workers: 130
    after SIGINT (Ctrl-C), 143 after SIGTERM. ``workers`` > 1 serves from that many
    processes sharing the port (see the module docstring); ``max_clients`` then applies
    to each. Raises EndpointError when the address cannot be used.
    """

    def make(sock: socket.socket | None = None, label: str = "") -> EchoServer:
        return EchoServer(
            host,
            port,
            udp=udp,
            max_clients=max_clients,
            idle_timeout=idle_timeout,
            max_message=max_message,
            log=log,
            sock=sock,
            label=label,
        )

    if workers < 1:
        raise EndpointError(_("workers must be at least 1, not {workers}").format(workers=workers))
    if workers == 1:
        return exit_code_for(_run_loop(make()))
    host = parse_host(host)
    check_port(port, allow_zero=True)
    socks = _listen_shared(host, port, udp, workers)
    return exit_code_for(_run_workers(make, socks, log))


def _run_loop(server: EchoServer) -> int:
    """Serve until a stop signal; the signal's number."""
    try:
        return asyncio.run(_serve(server))
    except KeyboardInterrupt:
        return signal.SIGINT  # Ctrl-C arrived before the loop's own handler was in place


def stamped(line: str) -> str:
    """``line`` after the wall-clock time, to the millisecond: ``12:00:01.234 line``."""
    return f"{datetime.datetime.now().strftime('%H:%M:%S.%f')[:-3]} {line}"


async def _serve(server: EchoServer) -> int:
    await server.start()
    stop = asyncio.Event()
    received: list[int] = []

    def on_signal(signum: int) -> None:
        received.append(signum)
        stop.set()

    _stop_on_signals(on_signal)
    server.say(_("listening on {address} ({protocol}); Ctrl-C stops").format(address=server.address, protocol=server.protocol))
    if is_wildcard(server.host):
        server.say(
            _("warning: {host} means every network interface: other machines can reach this server").format(host=server.host)
        )
    try:
        await stop.wait()
        return received[0]
    finally:
        server.say("stopping")
        await server.close()
        stats = server.stats
        server.say(
            _("stopped: {connections} connections, {messages} messages, {bytes} bytes echoed").format(connections=stats.connections, messages=stats.messages, bytes=stats.bytes)
        )


def _stop_on_signals(stop: Callable[[int], None]) -> None:
    """Make SIGINT (Ctrl-C) and SIGTERM call ``stop(signum)`` instead of killing the process."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop, sig)
        except (NotImplementedError, RuntimeError, ValueError):
            pass  # not the main thread, or Windows: KeyboardInterrupt still ends run()


def _bound(sock: socket.socket, host: str, port: int) -> socket.socket:
    """``sock`` bound to ``host:port``; closed if that fails."""
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


# -- worker processes (run_server(workers=N)) ------------------------------------------


def _listen_shared(host: str, port: int, udp: bool, count: int) -> list[socket.socket]:
    """``count`` sockets on ``host:port`` in one SO_REUSEPORT group, TCP ones listening.

    A probe bound without SO_REUSEPORT first makes "port in use" an error even when the
    holder uses SO_REUSEPORT itself. Raises EndpointError with bind_error's one line.
    """
    socks: list[socket.socket] = []
    try:
        _bound(_socket(host, udp, reuseport=False), host, port).close()
        for _ in range(count):
            socks.append(_bound(_socket(host, udp, reuseport=True), host, port))
            port = socks[0].getsockname()[1]  # port 0: the rest join the first one's
            if not udp:
                socks[-1].listen(BACKLOG)
    except OSError as err:
        for sock in socks:
            sock.close()
        raise bind_error(err, host, port) from None
    return socks


def _socket(host: str, udp: bool, *, reuseport: bool) -> socket.socket:
    """A socket set up as asyncio sets up a server's (SO_REUSEADDR and IPV6_V6ONLY for
    TCP), plus SO_REUSEPORT when asked."""
    if udp:
        sock = udp_socket(host)
    else:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    if reuseport:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    return sock


STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}
PARENT_SIGNALS = {*STOP_SIGNALS, signal.SIGCHLD}


def _run_workers(make: MakeServer, socks: list[socket.socket], log: Log | None) -> int:
    """Fork one worker per socket, wait until Ctrl-C or SIGTERM, stop them all, return
    the signal's number.

    The parent blocks its signals and takes them one at a time with sigwaitinfo rather
    than from handlers: a handler could interrupt it between reaping a worker and
    noting it, and it might then signal a PID the system has already reused.
    """
    workers = _Workers(log)
    address = format_address(*socks[0].getsockname()[:2])
    kind = "UDP" if socks[0].type == socket.SOCK_DGRAM else "TCP"
    workers.say(_("listening on {address} ({kind}) with {socks} workers").format(address=address, kind=kind, socks=len(socks)))
    signal.pthread_sigmask(signal.SIG_BLOCK, PARENT_SIGNALS)
    try:
        for sock in socks:
            workers.fork(make, sock, socks)
        for sock in socks:
            sock.close()  # a worker's socket must close when the worker dies
        workers.say(_("workers {alive}; Ctrl-C stops").format(alive=', '.join(map(str, workers.alive))))
        return workers.wait_for_stop()
    finally:
        for sock in socks:
            sock.close()
        workers.stop()
        while signal.sigtimedwait(PARENT_SIGNALS, 0) is not None:
            pass  # a second Ctrl-C during the stop was already answered
        signal.pthread_sigmask(signal.SIG_UNBLOCK, PARENT_SIGNALS)


class _Workers:
    """The worker processes, seen from the parent (which blocks PARENT_SIGNALS)."""

    def __init__(self, log: Log | None) -> None:
        self.log = log
        self.alive: list[int] = []

    def say(self, line: str) -> None:
        if self.log is not None:
            self.log(stamped(line))

    def fork(self, make: MakeServer, sock: socket.socket, socks: list[socket.socket]) -> None:
        """Start a worker serving on ``sock``, one of ``socks`` (the others it closes)."""
        sys.stdout.flush()  # or the child would print the parent's buffered lines again
        sys.stderr.flush()
        parent = os.getpid()
        pid = os.fork()
        if pid:
            self.alive.append(pid)
            return
        _worker_main(make, sock, socks, parent)

    def wait_for_stop(self) -> int:
        """Return the signal's number on Ctrl-C or SIGTERM; reap workers that exit
        meanwhile, and raise EndpointError if none is left."""
        count = len(self.alive)
        while (signum := signal.sigwaitinfo(PARENT_SIGNALS).si_signo) == signal.SIGCHLD:
            self.reap(log=True)
            if not self.alive:
                raise EndpointError(_("all {count} workers exited").format(count=count))
        return signum

    def reap(self, *, log: bool) -> None:
        """Forget the workers that have exited (without waiting for the others)."""
        for pid in list(self.alive):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done == pid:
                self.alive.remove(pid)
                if log:
                    code = os.waitstatus_to_exitcode(status)
                    self.say(_("worker {pid} exited ({code}); {alive} left").format(pid=pid, code=_exit_words(code), alive=len(self.alive)))

    def stop(self) -> None:
        """SIGTERM every live worker, reap them all (SIGKILL after WORKER_GRACE s)."""
        if not self.alive:
            return
        self.say(_("stopping workers {alive}").format(alive=', '.join(map(str, self.alive))))
        for pid in self.alive:
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + WORKER_GRACE
        while self.alive:
            signal.sigtimedwait({signal.SIGCHLD}, 0.1)
            self.reap(log=False)
            if self.alive and time.monotonic() > deadline:
                for pid in self.alive:
                    os.kill(pid, signal.SIGKILL)
                deadline = float("inf")
        self.say("stopped")


def _exit_words(code: int) -> str:
    return f"killed by signal {-code}" if code < 0 else f"exit code {code}"


def _worker_main(
    make: MakeServer, sock: socket.socket, socks: list[socket.socket], parent: int
) -> None:
    """The whole life of a forked worker: it ends with os._exit, never returns."""
    code = 1
    try:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, PARENT_SIGNALS)
        _die_with_parent(parent)
        if isinstance(sys.stdout, io.TextIOWrapper):
            sys.stdout.reconfigure(line_buffering=True)  # one write per line
        for other in socks:
            if other is not sock:
                other.close()
        _run_loop(make(sock, f"worker {os.getpid()}: "))
        code = 0
    except SockcapError as err:
        sys.stderr.write(f"sockcap: worker {os.getpid()}: {err}\n")
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _die_with_parent(parent: int) -> None:
    """Ask Linux to send SIGTERM when the parent dies; exit now if it already has."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(0)
