"""The echo client: send messages, read each echo back, close the way TCP should.

Two ways in:

* :func:`tcp_exchange` and :func:`udp_exchange` are coroutines for ``sockcap run``, which
  runs server, client and capture in one event loop.
* :func:`run_client` is the blocking ``sockcap client`` command. It drives the same
  client classes with its own event loop, one step per message, so that reading a line from the
  terminal happens outside the loop and Ctrl-C interrupts it at once.

What goes on the wire, and why:

* A message is sent as its UTF-8 bytes with no newline, as the classic C client does
  (``write(sock, word, strlen(word))``), so the capture shows exactly what was typed.
* TCP is a byte stream: an echo may come back in several pieces (the classic C server
  echoes at most 255 bytes per read), so the client reads until as many bytes as it sent
  have come back, within ``timeout``.
* After the last message the client sends FIN (``write_eof``), reads until the server's
  FIN, then closes: the capture shows the whole four-way teardown, and the client, which
  closed first, is the side that keeps TIME_WAIT.
* ``quit`` ends the exchange: it is sent and echoed like any message, then the client
  closes, just as the C client stops after it.
* UDP has no connection and no guarantee: the client waits ``timeout`` for each reply and
  records ``None`` when none came. A "port unreachable" answer from the kernel means
  nothing listens there and is reported as an error.

Every failure is an :class:`EndpointError` with one line that says what happened.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple, Protocol

from sockcap.endpoints.address import (
    check_port,
    format_address,
    parse_host,
    printable,
    udp_socket,
)
from sockcap.errors import EndpointError, ExitCode
from sockcap.i18n import _

QUIT = "quit"  # the message after which the client closes
READ_SIZE = 65536


class Exchange(NamedTuple):
    """One message sent and what came back (``None``: no UDP reply within the timeout)."""

    message: str
    reply: bytes | None


class _EchoClient(Protocol):
    local: str

    async def send(self, message: str) -> bytes | None: ...

    async def close(self) -> None: ...

    def abort(self) -> None: ...


async def tcp_exchange(
    host: str, port: int, messages: Iterable[str], *, timeout: float = 5.0
) -> list[Exchange]:
    """Connect over TCP, send each message and read its echo, then close gracefully.

    Stops after a ``quit`` message. Raises EndpointError (refused, timeout, early close).
    """
    todo = list(messages)
    client = await TcpEchoClient.open(host, port, timeout=timeout, total=len(todo))
    return await _exchange_all(client, todo)


async def udp_exchange(
    host: str, port: int, messages: Iterable[str], *, timeout: float = 5.0
) -> list[Exchange]:
    """Send each message as one UDP datagram and wait up to ``timeout`` for its reply."""
    client = await UdpEchoClient.open(host, port, timeout=timeout)
    return await _exchange_all(client, list(messages))


async def _exchange_all(client: _EchoClient, messages: list[str]) -> list[Exchange]:
    results: list[Exchange] = []
    try:
        for message in messages:
            results.append(Exchange(message, await client.send(message)))
            if message.strip() == QUIT:
                break
        await client.close()
    except BaseException:
        client.abort()
        raise
    return results


class TcpEchoClient:
    """A TCP connection to an echo server, one message at a time."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        address: str,
        timeout: float,
        total: int | None,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.address = address
        self.timeout = timeout
        self.total = total  # messages planned, for error messages; None when interactive
        self.done = 0  # messages whose echo came back in full
        sockname = writer.get_extra_info("sockname")
        self.local = format_address(sockname[0], sockname[1])

    @classmethod
    async def open(
        cls, host: str, port: int, *, timeout: float = 5.0, total: int | None = None
    ) -> TcpEchoClient:
        """Connect, or raise EndpointError saying why not."""
        host, port = parse_host(host), check_port(port)
        address = format_address(host, port)
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, limit=READ_SIZE), timeout
            )
        except ConnectionRefusedError:
            raise EndpointError(
                _("connection refused: nothing is listening on {address} (start 'sockcap server' first)").format(address=address)
            ) from None
        except asyncio.TimeoutError:
            raise EndpointError(_("no answer from {address} within {timeout:g} s").format(address=address, timeout=timeout)) from None
        except OSError as err:
            raise EndpointError(_("cannot connect to {address}: {strerror}").format(address=address, strerror=err.strerror)) from None
        return cls(reader, writer, address, timeout, total)

    async def send(self, message: str) -> bytes:
        """Send ``message`` and return its echo once as many bytes came back."""
        data = message.encode()
        try:
            # Read before draining: a message larger than the socket buffers only goes
            # out as fast as its echo is read back, so waiting for drain first would
            # deadlock both ends.
            self.writer.write(data)
            reply = await asyncio.wait_for(self._read(len(data)), self.timeout)
            await self.writer.drain()
        except asyncio.TimeoutError:
            raise EndpointError(
                _("no echo from {address} within {timeout:g} s (message {done})").format(address=self.address, timeout=self.timeout, done=self._progress(self.done + 1))
            ) from None
        except ConnectionError:
            raise self._closed_early("reset") from None
        self.done += 1
        return reply

    async def _read(self, size: int) -> bytes:
        reply = b""
        while len(reply) < size:
            chunk = await self.reader.read(READ_SIZE)
            if not chunk:
                raise self._closed_early("closed")
            reply += chunk
        return reply

    def _closed_early(self, how: str) -> EndpointError:
        return EndpointError(
            _("the server {how} the connection after {done} messages").format(how=how, done=self._progress(self.done))
        )

    def _progress(self, count: int) -> str:
        return f"{count} of {self.total}" if self.total is not None else str(count)

    async def close(self) -> None:
        """Send FIN, wait for the server's FIN (up to the timeout), then close."""
        try:
            self.writer.write_eof()
            await asyncio.wait_for(self._drain_to_eof(), self.timeout)
        except (asyncio.TimeoutError, ConnectionError):
            pass  # the server did not close in time or reset: close our side anyway
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except ConnectionError:
            pass

    async def _drain_to_eof(self) -> None:
        while await self.reader.read(READ_SIZE):
            pass

    def abort(self) -> None:
        """Close at once (RST if data is pending): used when something went wrong."""
        self.writer.transport.abort()


class _UdpReplies(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes | Exception] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.queue.put_nowait(data)

    def error_received(self, exc: Exception) -> None:
        self.queue.put_nowait(exc)


class UdpEchoClient:
    """A connected UDP socket: each message is one datagram, each reply is awaited."""

    def __init__(
        self,
        transport: asyncio.DatagramTransport,
        replies: _UdpReplies,
        sock: socket.socket,
        address: str,
        timeout: float,
    ) -> None:
        self.transport = transport
        self.replies = replies
        self.sock = sock
        self.address = address
        self.timeout = timeout
        sockname = transport.get_extra_info("sockname")
        self.local = format_address(sockname[0], sockname[1])

    @classmethod
    async def open(cls, host: str, port: int, *, timeout: float = 5.0) -> UdpEchoClient:
        host, port = parse_host(host), check_port(port)
        address = format_address(host, port)
        loop = asyncio.get_running_loop()
        sock = udp_socket(host)
        try:
            sock.connect((host, port))
        except OSError as err:
            sock.close()
            raise EndpointError(_("cannot send to {address}: {strerror}").format(address=address, strerror=err.strerror)) from None
        transport, replies = await loop.create_datagram_endpoint(_UdpReplies, sock=sock)
        return cls(transport, replies, sock, address, timeout)

    async def send(self, message: str) -> bytes | None:
        """Send one datagram; its reply, or None if none came within the timeout."""
        queue = self.replies.queue
        while not queue.empty():
            queue.get_nowait()  # a late reply to an earlier message
        data = message.encode()
        try:
            if data:
                self.transport.sendto(data)
            else:
                self.sock.send(b"")  # asyncio's sendto would drop an empty datagram
        except OSError as err:
            raise EndpointError(_("cannot send to {address}: {strerror}").format(address=self.address, strerror=err.strerror)) from None
        try:
            reply = await asyncio.wait_for(queue.get(), self.timeout)
        except asyncio.TimeoutError:
            return None
        if isinstance(reply, ConnectionRefusedError):
            raise EndpointError(
                _("nothing is listening on UDP {address} (the kernel answered 'port unreachable'; start 'sockcap server --udp' first)").format(address=self.address)
            )
        if isinstance(reply, Exception):
            raise EndpointError(_("cannot send to {address}: {reply}").format(address=self.address, reply=reply))
        return reply

    async def close(self) -> None:
        self.transport.close()

    def abort(self) -> None:
        self.transport.abort()


def run_client(
    host: str,
    port: int,
    *,
    udp: bool = False,
    messages: list[str] | None,
    out: Callable[[str], None],
    input_lines: Iterable[str] | None = None,
    timeout: float = 5.0,
) -> int:
    """Send ``messages`` (or each line of ``input_lines``/stdin) and show every reply.

    Returns the exit code: 0; 1 when a UDP datagram got no reply (the exchange goes on to
    the end, as over TCP every message needs its echo); 130 after Ctrl-C. Raises
    EndpointError on failure.
    """
    address = format_address(parse_host(host), check_port(port))
    lines = messages if messages is not None else _typed_lines(input_lines)
    loop = asyncio.new_event_loop()
    client: _EchoClient | None = None
    try:
        client = loop.run_until_complete(_open(host, port, udp, timeout))
        out(_("{to} {address} from {local}").format(to='sending to' if udp else 'connected to', address=address, local=client.local))
        unanswered = _converse(loop, client, lines, out, timeout)
        loop.run_until_complete(client.close())
        client = None
        out("closed")
        return ExitCode.ERROR if unanswered else ExitCode.OK
    except KeyboardInterrupt:
        out("interrupted")
        return ExitCode.INTERRUPTED
    finally:
        _shut_down(loop, client)


def _converse(
    loop: asyncio.AbstractEventLoop,
    client: _EchoClient,
    lines: Iterable[str],
    out: Callable[[str], None],
    timeout: float,
) -> int:
    """Send each line and show its reply; the number of messages that got none (UDP)."""
    unanswered = 0
    for message in lines:
        out(_("> {message}").format(message=message))
        reply = loop.run_until_complete(client.send(message))
        out(_show_reply(reply, timeout))
        unanswered += reply is None
        if message.strip() == QUIT:
            break
    return unanswered


def _shut_down(loop: asyncio.AbstractEventLoop, client: _EchoClient | None) -> None:
    """Abort a client that did not close normally, cancel what is left, close the loop."""
    if client is not None:
        client.abort()
    loop.run_until_complete(_cancel_others())
    loop.close()


async def _cancel_others() -> None:
    """Cancel tasks an interrupt left behind; one loop pass also lets an abort finish."""
    others = asyncio.all_tasks() - {asyncio.current_task()}
    for task in others:
        task.cancel()
    await asyncio.gather(*others, asyncio.sleep(0), return_exceptions=True)


async def _open(host: str, port: int, udp: bool, timeout: float) -> _EchoClient:
    if udp:
        return await UdpEchoClient.open(host, port, timeout=timeout)
    return await TcpEchoClient.open(host, port, timeout=timeout)


def _typed_lines(input_lines: Iterable[str] | None) -> Iterator[str]:
    """Lines without their newline; blank lines are skipped (nothing to send)."""
    for line in sys.stdin if input_lines is None else input_lines:
        text = line.rstrip("\r\n")
        if text.strip():
            yield text


def _show_reply(reply: bytes | None, timeout: float) -> str:
    if reply is None:
        return f"< (no reply within {timeout:g} s: UDP datagrams can be lost)"
    return f"< {printable(reply)}"
