"""The echo protocol: one asyncio event loop serving every client, TCP or UDP.

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
  prints: :func:`sockcap.endpoints.server.run_server`, the ``sockcap server`` command,
  supplies the callback.

Serving until a signal, and with several worker processes, is
:mod:`sockcap.endpoints.server` and :mod:`sockcap.endpoints.workers`.
"""

from __future__ import annotations

import asyncio
import datetime
import socket
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, cast

from sockcap.endpoints.address import (
    bind_error,
    bound,
    check_port,
    format_address,
    parse_host,
    preview,
    udp_socket,
)
from sockcap.endpoints.recorded import CallRecorder, RecordedSocket
from sockcap.errors import EndpointError
from sockcap.i18n import _

if TYPE_CHECKING:
    from typing_extensions import Self

Log = Callable[[str], None]

BACKLOG = 4096  # connections the kernel queues before accept(); capped by somaxconn
IDLE_TICKS = 4  # idle checks per idle_timeout
CLOSE_GRACE = 2.0  # seconds close() lets connections send what they owe before aborting


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
        recorder: CallRecorder | None = None,
    ) -> None:
        """``sock``: a socket already bound to ``host:port`` to serve on (the workers of
        :func:`~sockcap.endpoints.server.run_server` get theirs from the parent); ``label``
        starts every log line; ``recorder``: record every socket call of the server
        (:mod:`sockcap.endpoints.recorded`)."""
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
        self.recorder = recorder
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
        if self._sock is None and self.recorder is not None:
            self._sock = self._recorded_listener()
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

    def _recorded_listener(self) -> socket.socket:
        """The socket to listen on, made as asyncio makes one, each call recorded (asyncio
        calls its listen())."""
        assert self.recorder is not None
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = RecordedSocket.create(self.recorder, "server", family)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        return bound(sock, self.host, self.port)

    async def _bind_udp(self) -> tuple[str, int]:
        loop = asyncio.get_running_loop()
        sock = self._sock
        if sock is None and self.recorder is not None:
            made = RecordedSocket.create(self.recorder, "server",
                                         socket.AF_INET6 if ":" in self.host else socket.AF_INET,
                                         socket.SOCK_DGRAM)
            made.setblocking(False)
            sock = bound(made, self.host, self.port)
        sock = sock or bound(udp_socket(self.host), self.host, self.port)
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
            self.say(_("{peer} echo {nbytes} bytes {preview}").format(peer=peer, nbytes=len(data), preview=preview(data)))


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
            self.server.say(_("{peer} echo {nbytes} bytes {preview}").format(peer=self.peer, nbytes=nbytes, preview=preview(data)))

    def eof_received(self) -> bool:
        self.closed_by = "client"
        # the client's FIN comes first on the wire; the server's follows the last echo
        self.server.say(_("{peer} FIN received: the client is done sending; the server's "
                          "FIN follows its last echo").format(peer=self.peer))
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
            self.server.say(_("{peer} dropped a {nbytes}-byte datagram (over max_message)").format(peer=peer, nbytes=len(data)))
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


def stamped(line: str) -> str:
    """``line`` after the wall-clock time, to the millisecond: ``12:00:01.234 line``."""
    return f"{datetime.datetime.now().strftime('%H:%M:%S.%f')[:-3]} {line}"
