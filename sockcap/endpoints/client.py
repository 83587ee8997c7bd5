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
* UDP has no connection and no guarantee: the client (:mod:`sockcap.endpoints.udp_client`,
  sockcap's one UDP echo client) waits ``timeout`` for each reply and records ``None``
  when none came. A "port unreachable" answer from the kernel means
  nothing listens there and is reported as an error. Silence says only what is known: the
  datagram was sent and nothing came back; on loopback a datagram is not lost on the way,
  so there the reason is a program that has the port open and does not answer.
* Every reply is compared with what was sent (:func:`echo_difference`): extra bytes (in
  hex), missing bytes or the first byte that differs. An echo server must echo; for a
  server that is not one, the check is turned off (``--no-echo-check``).
* A server that does not answer our FIN with its own within ``timeout`` is said
  (:class:`ServerKeptOpenError`): its side of the connection is left in CLOSE_WAIT.

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
    is_loopback,
    parse_host,
    printable,
)
from sockcap.endpoints.recorded import CallRecorder, RecordedSocket
from sockcap.endpoints.udp_client import UdpEchoClient
from sockcap.errors import EndpointError, ExitCode
from sockcap.i18n import _

QUIT = "quit"  # the message after which the client closes
READ_SIZE = 65536
HEX_BYTES = 16  # bytes of a difference shown in hex


class ServerKeptOpenError(EndpointError):
    """The server did not close its side after our FIN (its socket is in CLOSE_WAIT)."""


def echo_difference(sent: bytes, reply: bytes) -> str:
    """How ``reply`` differs from ``sent``, in one clause; ``""`` when it is an echo."""
    if reply == sent:
        return ""
    if reply.startswith(sent):
        extra = reply[len(sent):]
        return _("{count} extra bytes after the echo: {hex}").format(
            count=len(extra), hex=hex_bytes(extra))
    if sent.startswith(reply):
        missing = sent[len(reply):]
        return _("{count} bytes missing at the end: {hex}").format(
            count=len(missing), hex=hex_bytes(missing))
    at = next(i for i, (a, b) in enumerate(zip(sent, reply, strict=False)) if a != b)
    return _("differs from byte {offset} on: sent {sent}, got {got} ({got_len} bytes for "
             "{sent_len} sent)").format(offset=at, sent=hex_bytes(sent[at:]),
                                         got=hex_bytes(reply[at:]), got_len=len(reply),
                                         sent_len=len(sent))


def hex_bytes(data: bytes) -> str:
    """``68 69 0a``, the first HEX_BYTES bytes, then ``...``."""
    text = data[:HEX_BYTES].hex(" ")
    return text + " ..." if len(data) > HEX_BYTES else text


def echo_problems(exchanges: Iterable[tuple[str, bytes | None]]) -> list[str]:
    """One sentence per reply that is not an echo of its message (UDP silence aside)."""
    problems = []
    for number, (message, reply) in enumerate(exchanges, 1):
        how = "" if reply is None else echo_difference(message.encode(), reply)
        if how:
            problems.append(_("reply {number} is not an echo of {message!r}: {how}").format(
                number=number, message=message, how=how))
    return problems


class Exchange(NamedTuple):
    """One message sent and what came back (``None``: no UDP reply within the timeout)."""

    message: str
    reply: bytes | None


class _EchoClient(Protocol):
    local: str
    loopback: bool

    async def send(self, message: str) -> bytes | None: ...

    async def close(self) -> None: ...

    def abort(self) -> None: ...


async def tcp_exchange(
    host: str, port: int, messages: Iterable[str], *, timeout: float = 5.0,
    strict_close: bool = True, recorder: CallRecorder | None = None,
) -> list[Exchange]:
    """Connect over TCP, send each message and read its echo, then close gracefully.

    Stops after a ``quit`` message. Raises EndpointError (refused, timeout, early close;
    with ``strict_close`` a server that does not close after our FIN). ``recorder``:
    record every socket call (:mod:`sockcap.endpoints.recorded`).
    """
    todo = list(messages)
    client = await TcpEchoClient.open(host, port, timeout=timeout, total=len(todo),
                                      recorder=recorder)
    client.strict_close = strict_close
    return await _exchange_all(client, todo)


async def udp_exchange(
    host: str, port: int, messages: Iterable[str], *, timeout: float = 5.0,
    recorder: CallRecorder | None = None,
) -> list[Exchange]:
    """Send each message as one UDP datagram and wait up to ``timeout`` for its reply."""
    client = await UdpEchoClient.open(host, port, timeout=timeout, recorder=recorder)
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
        self.strict_close = True  # close() raises when the server keeps its side open
        sockname = writer.get_extra_info("sockname")
        self.local = format_address(sockname[0], sockname[1])
        self.loopback = is_loopback(sockname[0])

    @classmethod
    async def open(
        cls, host: str, port: int, *, timeout: float = 5.0, total: int | None = None,
        recorder: CallRecorder | None = None,
    ) -> TcpEchoClient:
        """Connect, or raise EndpointError saying why not."""
        host, port = parse_host(host), check_port(port)
        address = format_address(host, port)
        try:
            reader, writer = await asyncio.wait_for(
                _open_connection(host, port, recorder), timeout
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
        """Send FIN, wait for the server's FIN (up to the timeout), then close.

        Raises ServerKeptOpenError, once our side is closed, when no FIN came in time.
        """
        kept_open = False
        try:
            self.writer.write_eof()
            await asyncio.wait_for(self._drain_to_eof(), self.timeout)
        except asyncio.TimeoutError:
            kept_open = True  # close our side anyway, then say it
        except ConnectionError:
            pass  # a reset ends the connection on both sides
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except ConnectionError:
            pass
        if kept_open and self.strict_close:
            raise ServerKeptOpenError(_(
                "the server did not close its side within {timeout:g} s after our FIN (its "
                "connection is left in CLOSE_WAIT)").format(timeout=self.timeout))

    async def _drain_to_eof(self) -> None:
        while await self.reader.read(READ_SIZE):
            pass

    def abort(self) -> None:
        """Close at once (RST if data is pending): used when something went wrong."""
        self.writer.transport.abort()


async def _open_connection(host: str, port: int, recorder: CallRecorder | None,
                           ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """asyncio's open_connection; with a recorder, on a socket that records its calls
    (connected by the loop, so the connect is recorded from its start to its end)."""
    if recorder is None:
        return await asyncio.open_connection(host, port, limit=READ_SIZE)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = RecordedSocket.create(recorder, "client", family)
    sock.setblocking(False)
    try:
        await asyncio.get_running_loop().sock_connect(sock, (host, port))
    except BaseException as e:
        sock.connected(e if isinstance(e, OSError) else TimeoutError())
        sock.close()
        raise
    sock.connected()
    return await asyncio.open_connection(sock=sock, limit=READ_SIZE)


def run_client(
    host: str,
    port: int,
    *,
    udp: bool = False,
    messages: list[str] | None,
    out: Callable[[str], None],
    input_lines: Iterable[str] | None = None,
    timeout: float = 5.0,
    echo_check: bool = True,
    note: Callable[[str], None] | None = None,
) -> int:
    """Send ``messages`` (or each line of ``input_lines``/stdin) and show every reply.

    Returns the exit code: 0; 1 when a UDP datagram got no reply (the exchange goes on to
    the end, as over TCP every message needs its echo), when a reply was not an echo of
    its message (unless not ``echo_check``) or when the server kept its side open after
    our FIN; 130 after Ctrl-C. Each problem is one line to ``note`` (default ``out``).
    Raises EndpointError on failure.
    """
    address = format_address(parse_host(host), check_port(port))
    lines = messages if messages is not None else _typed_lines(input_lines)
    say = note or out
    loop = asyncio.new_event_loop()
    client: _EchoClient | None = None
    try:
        client = loop.run_until_complete(_open(host, port, udp, timeout))
        to = _("sending to") if udp else _("connected to")
        out(_("{to} {address} from {local}").format(to=to, address=address, local=client.local))
        exchanges = _converse(loop, client, lines, out, timeout, echo_check)
        problems = _problems(exchanges, echo_check)
        try:
            loop.run_until_complete(client.close())
            out("closed")
        except ServerKeptOpenError as e:
            problems.append(str(e))
        finally:
            client = None
        for problem in problems:
            say(_("sockcap: {problem}").format(problem=problem))
        unanswered = any(reply is None for _message, reply in exchanges)
        return ExitCode.ERROR if unanswered or problems else ExitCode.OK
    except KeyboardInterrupt:
        out("interrupted")
        return ExitCode.INTERRUPTED
    finally:
        _shut_down(loop, client)


def _problems(exchanges: list[Exchange], echo_check: bool) -> list[str]:
    """The replies that were not echoes, said with the way out for a non-echo server."""
    if not echo_check:
        return []
    problems = echo_problems(exchanges)
    if problems:
        problems.append(_("{count} of {total} replies were not an echo of what was sent (for a "
                          "server that is not an echo server, add --no-echo-check)").format(
            count=len(problems), total=len(exchanges)))
    return problems


def _converse(
    loop: asyncio.AbstractEventLoop,
    client: _EchoClient,
    lines: Iterable[str],
    out: Callable[[str], None],
    timeout: float,
    echo_check: bool = True,
) -> list[Exchange]:
    """Send each line and show its reply (and how it differs from an echo)."""
    exchanges: list[Exchange] = []
    for message in lines:
        out(_("> {message}").format(message=message))
        reply = loop.run_until_complete(client.send(message))
        out(_show_reply(reply, timeout, client.loopback))
        how = echo_difference(message.encode(), reply) if echo_check and reply is not None else ""
        if how:
            out(_("! not an echo: {how}").format(how=how))
        exchanges.append(Exchange(message, reply))
        if message.strip() == QUIT:
            break
    return exchanges


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


def _show_reply(reply: bytes | None, timeout: float, loopback: bool) -> str:
    if reply is None:
        return "< " + silence(timeout, loopback)
    return f"< {printable(reply)}"


def silence(timeout: float, loopback: bool) -> str:
    """What is known when a UDP datagram got no reply."""
    if loopback:
        return _("(sent; no reply within {timeout:g} s and no 'port unreachable': a program "
                 "has the port open and did not answer; on loopback the datagram was not "
                 "lost on the way)").format(timeout=timeout)
    return _("(sent; no reply within {timeout:g} s: the datagram or its reply may have been "
             "lost on the way, or the server did not answer)").format(timeout=timeout)
