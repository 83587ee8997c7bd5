"""The UDP echo client: one datagram a message, each reply awaited for a bounded time.

sockcap has one UDP echo client, and three places use it, each with the socket it needs:

* ``sockcap client --udp`` and ``sockcap run --udp`` (:mod:`sockcap.endpoints.client`):
  a *connected* socket, so the kernel's "port unreachable" reaches it and is said in one
  line (nothing listens there);
* ``sockcap check --udp``'s echo (:mod:`sockcap.check.runner`) and its large datagram
  over the lab's link (:mod:`sockcap.check.lab_link`): an *unconnected* socket
  (``connect=False``), from a chosen port, so a reply from another address is received
  too (the capture holds it and the judging names the address);
* ``sockcap lab`` (:mod:`sockcap.lab.session`): a socket the caller made in the client
  host's network namespace (``sock=``), over a link that loses datagrams, where a lost
  echo or an ICMP error is what the lab shows, not an error (``errors=False``), and where
  every datagram that came back counts, also one that came late (:attr:`received`).

UDP has no connection and no guarantee: :meth:`UdpEchoClient.send` waits ``timeout`` for
the next datagram and returns ``None`` when none came; a reply that comes after its wait
is kept in :attr:`~UdpEchoClient.received` but never taken for the next message's.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterable

from sockcap.endpoints.address import (
    check_port,
    format_address,
    is_loopback,
    parse_host,
    udp_socket,
)
from sockcap.endpoints.recorded import CallRecorder, RecordedSocket
from sockcap.errors import EndpointError
from sockcap.i18n import _

# The largest UDP payload one datagram carries: 65,535 bytes of IPv4 packet less its 20-byte
# header and UDP's 8 (RFC 768, RFC 791); IPv6's payload length counts neither its own
# 40-byte header, so 65,535 less UDP's 8 (RFC 8200; jumbograms aside).
UDP_MAX_PAYLOAD = {socket.AF_INET: 65_507, socket.AF_INET6: 65_527}


class _UdpReplies(asyncio.DatagramProtocol):
    """Every datagram (and error) that arrives: queued for the waiting send, and kept."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes | Exception] = asyncio.Queue()
        self.received: list[bytes] = []

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.received.append(data)
        self.queue.put_nowait(data)

    def error_received(self, exc: Exception) -> None:
        self.queue.put_nowait(exc)


class UdpEchoClient:
    """A UDP socket to an echo server: each message is one datagram, each reply awaited."""

    def __init__(self, transport: asyncio.DatagramTransport, replies: _UdpReplies,
                 sock: socket.socket, peer: tuple[str, int], timeout: float, *,
                 connected: bool = True, errors: bool = True) -> None:
        self.transport = transport
        self.replies = replies
        self.sock = sock
        self.peer = peer
        self.address = format_address(*peer)
        self.timeout = timeout
        self.connected = connected
        self.errors = errors  # False: an ICMP error is not an error (a lossy link's)
        sockname = transport.get_extra_info("sockname")
        self.local = format_address(sockname[0], sockname[1])
        self.loopback = is_loopback(peer[0])

    @classmethod
    async def open(cls, host: str, port: int, *, timeout: float = 5.0,
                   recorder: CallRecorder | None = None, sock: socket.socket | None = None,
                   local_port: int = 0, connect: bool = True,
                   errors: bool = True) -> UdpEchoClient:
        """A client of ``host:port``: on ``sock`` if given (made where it must live, as
        in a lab host's namespace), else on a new socket (from ``local_port`` if not 0).
        ``connect``: a connected socket (port unreachable is said); ``errors``: whether
        an ICMP error ends the exchange. Raises EndpointError saying why it cannot send."""
        host, port = parse_host(host), check_port(port)
        address = format_address(host, port)
        if sock is None:
            sock = udp_socket(host)
            if recorder is not None:
                sock = RecordedSocket.wrap(sock, recorder, "client")
        else:
            sock.setblocking(False)
        try:
            if local_port:
                sock.bind((host, local_port))
            if connect:
                sock.connect((host, port))
        except OSError as err:
            sock.close()
            raise EndpointError(_("cannot send to {address}: {strerror}").format(
                address=address, strerror=err.strerror)) from None
        loop = asyncio.get_running_loop()
        transport, replies = await loop.create_datagram_endpoint(_UdpReplies, sock=sock)
        return cls(transport, replies, sock, (host, port), timeout, connected=connect,
                   errors=errors)

    @property
    def received(self) -> list[bytes]:
        """Every datagram that came back, in order (late ones too)."""
        return self.replies.received

    def post(self, message: str | bytes) -> None:
        """Send one datagram, without waiting for its reply."""
        data = message.encode() if isinstance(message, str) else message
        limit = UDP_MAX_PAYLOAD[self.sock.family]
        if len(data) > limit:  # the kernel's answer would be "[Errno 90] Message too long"
            raise EndpointError(_("a UDP datagram holds at most {limit} bytes over {ip}, this "
                                  "message is {size}: send it over TCP (without --udp)").format(
                limit=f"{limit:,}", ip="IPv6" if self.sock.family == socket.AF_INET6 else "IPv4",
                size=f"{len(data):,}"))
        peer = () if self.connected else (self.peer,)
        try:
            if data:
                self.transport.sendto(data, *peer)
            elif self.connected:
                self.sock.send(b"")  # asyncio's sendto would drop an empty datagram
            else:
                self.sock.sendto(b"", self.peer)
        except OSError as err:
            raise EndpointError(_("cannot send to {address}: {strerror}").format(
                address=self.address, strerror=err.strerror)) from None

    async def send(self, message: str | bytes, timeout: float | None = None) -> bytes | None:
        """Send one datagram; the next datagram that came within ``timeout`` (default:
        the client's), or None."""
        queue = self.replies.queue
        while not queue.empty():
            queue.get_nowait()  # a late reply to an earlier message
        self.post(message)
        return await self.reply(self.timeout if timeout is None else timeout)

    async def reply(self, timeout: float) -> bytes | None:
        """The next datagram within ``timeout`` s, or None."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                reply = await asyncio.wait_for(self.replies.queue.get(),
                                               max(0.0, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                return None
            if not isinstance(reply, Exception):
                return reply
            if self.errors:
                raise self._error(reply)

    async def collect(self, expected: int, quiet: float, deadline: float) -> None:
        """Wait until :attr:`received` holds ``expected`` datagrams, none came for
        ``quiet`` s, or ``deadline`` (``time.monotonic()``) passed."""
        while len(self.received) < expected:
            left = deadline - time.monotonic()
            if left <= 0 or await self.reply(min(quiet, left)) is None:
                return

    def _error(self, error: Exception) -> EndpointError:
        if isinstance(error, ConnectionRefusedError):
            return EndpointError(_(
                "nothing is listening on UDP {address} (the kernel answered 'port "
                "unreachable'; start 'sockcap server --udp' first)").format(address=self.address))
        return EndpointError(_("cannot send to {address}: {reply}").format(
            address=self.address, reply=error))

    async def close(self) -> None:
        self.transport.close()

    def abort(self) -> None:
        self.transport.abort()


async def udp_echoes(host: str, port: int, messages: Iterable[bytes], *, timeout: float,
                     sock: socket.socket | None = None, local_port: int = 0,
                     connect: bool = True) -> list[bytes | None]:
    """Each message as one datagram and its reply (None: none came within ``timeout``),
    one after the other; the client's socket is closed after."""
    client = await UdpEchoClient.open(host, port, timeout=timeout, sock=sock,
                                      local_port=local_port, connect=connect)
    try:
        return [await client.send(message) for message in messages]
    finally:
        await client.close()
