"""Addresses and the words that describe them, shared by the echo server and client.

Both ends accept only numeric IP addresses (plus ``localhost``, which means 127.0.0.1):
sockcap is about what a socket puts on the wire, and a name that resolves to different
addresses on different machines (``localhost`` is ``::1`` first on some) would make the
capture differ from what the user typed. Every check raises an :class:`EndpointError`
with one line that says what to do, never a bare ``OSError``.
"""

from __future__ import annotations

import errno
import ipaddress
import socket

from sockcap.errors import EndpointError
from sockcap.i18n import _

PREVIEW_CHARS = 40  # a log line shows at most this much of a message

_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}


def parse_host(host: str) -> str:
    """Return ``host`` as a numeric IP address string, or raise EndpointError."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        raise EndpointError(
            _("{host!r} is not an IP address (use a numeric address such as 127.0.0.1 or ::1)").format(host=host)
        ) from None


def check_port(port: int, *, allow_zero: bool = False) -> int:
    """Return ``port`` if it is a valid TCP/UDP port number, else raise EndpointError."""
    low = 0 if allow_zero else 1
    if not low <= port <= 65535:
        raise EndpointError(_("port {port} is out of range ({low}-65535)").format(port=port, low=low))
    return port


def format_address(host: str, port: int) -> str:
    """``127.0.0.1:5001`` or ``[::1]:5001``, as a browser or ss(8) writes it."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an IP address) is a loopback address (127.0.0.0/8, ::1)."""
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def is_wildcard(host: str) -> bool:
    """True for 0.0.0.0 and ::, which listen on every interface of the machine."""
    return ipaddress.ip_address(host).is_unspecified


def udp_socket(host: str) -> socket.socket:
    """A non-blocking UDP socket of the family of ``host`` (a numeric address).

    The echo ends make their own UDP sockets, rather than letting asyncio make them, so
    they can send an empty datagram: asyncio's ``sendto`` silently drops ``b""`` before
    Python 3.13, yet an empty datagram is a real packet a student may want to see.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.setblocking(False)
    return sock


def bound(sock: socket.socket, host: str, port: int) -> socket.socket:
    """``sock`` bound to ``host:port``; closed if that fails."""
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def bind_error(err: OSError, host: str, port: int) -> EndpointError:
    """Translate a failed bind into the one line a student can act on."""
    if err.errno == errno.EADDRINUSE:
        return EndpointError(
            _("port {port} is in use on {host} (pick another with --port, or stop the program holding it)").format(port=port, host=host)
        )
    if err.errno == errno.EACCES:
        return EndpointError(
            _("no permission to listen on port {port} of {host} (ports below 1024 need root; pick one above 1023 with --port)").format(port=port, host=host)
        )
    if err.errno == errno.EADDRNOTAVAIL:
        return EndpointError(
            _("cannot listen on {host}: no network interface on this machine has that address").format(host=host)
        )
    return EndpointError(_("cannot listen on {port}: {strerror}").format(port=format_address(host, port), strerror=err.strerror))


def preview(data: bytes, limit: int = PREVIEW_CHARS) -> str:
    """``data`` quoted and made printable (see :func:`printable`), cut at ``limit`` chars."""
    shown = printable(data[: limit * 4]).replace('"', '\\"')
    cut = shown[:limit]
    more = "..." if len(cut) < len(shown) or len(data) > limit * 4 else ""
    return f'"{cut}"{more}'


def printable(data: bytes) -> str:
    """``data`` as one line of text that is safe to print.

    Text is decoded as UTF-8; bytes that are not UTF-8 become ``\\xNN`` and control
    characters their usual escapes, so a line never holds a raw newline or terminal escape.
    A preview may cut an escape short; that is the price of a fixed width.
    """
    text = data.decode("utf-8", errors="surrogateescape")
    return "".join(_escape_char(char) for char in text)


def _escape_char(char: str) -> str:
    if char in _ESCAPES:
        return _ESCAPES[char]
    if char.isprintable():
        return char
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that is not UTF-8, kept by surrogateescape
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
