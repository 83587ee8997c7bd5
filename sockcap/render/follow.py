"""Follow views: a conversation's bytes as the two sides sent them.

Pure: chunks in, ``(line, style)`` pairs out (the CLI colours them on a terminal only).
Each line starts with a direction marker, ``>`` client to server and ``<`` server to
client, so the view reads the same without colour; on a terminal the client's bytes are
red and the server's blue, as in Wireshark's Follow TCP Stream window.

Modes: ``ascii`` (printable bytes as text, others as ``.``, one line per line sent),
``hex`` (Wireshark's hex dump, offsets counted in each side's stream) and ``raw`` (one
line of hex per chunk, as ``tshark -z follow,tcp,raw``). A gap, bytes the capture does not
have, is one line: ``> [gap of 1448 bytes]``.
"""

from __future__ import annotations

from collections.abc import Iterator

from sockcap.analysis.conversation import ROLES_FIRST_SENDER, ROLES_GUESSED, Conversation
from sockcap.analysis.follow import Chunk
from sockcap.decode.records import IPPROTO_UDP
from sockcap.render.timeline import endpoint, hexdump

CLIENT_STYLE = "red"
SERVER_STYLE = "blue"
GAP_STYLE = "bold yellow"
MODES = ("ascii", "hex", "raw")
# bytes shown as themselves in ascii mode: printable ASCII and tab; the rest become "."
_ASCII = bytes(c if 32 <= c < 127 or c == 9 else 46 for c in range(256))


def stream_name(conv: Conversation) -> str:
    """``tcp stream 0`` / ``udp stream 2``, Wireshark's numbering."""
    return f"{'udp' if conv.proto == IPPROTO_UDP else 'tcp'} stream {conv.stream}"


def stream_header(conv: Conversation) -> str:
    """``== tcp stream 0: client 127.0.0.1:40000 (>) ⇄ server 127.0.0.1:5001 (<)``."""
    roles = {ROLES_GUESSED: " (no handshake seen: roles guessed from the ports)",
             ROLES_FIRST_SENDER: " (client: the first sender)"}.get(conv.roles, "")
    return (f"== {stream_name(conv)}: client {endpoint(*conv.client)} (>) ⇄ "
            f"server {endpoint(*conv.server)} (<){roles}")


def stream_footer(conv: Conversation, sent: tuple[int, int], gaps: tuple[int, int]) -> str:
    """``== tcp stream 0: client sent 12 bytes, server sent 12 bytes``, gaps if any."""
    text = f"== {stream_name(conv)}: client sent {sent[0]} bytes, server sent {sent[1]} bytes"
    if gaps[0] or gaps[1]:
        text += f"; missing from the capture: {gaps[0]} from the client, {gaps[1]} from the server"
    return text


def chunk_lines(chunk: Chunk, mode: str = "ascii") -> Iterator[tuple[str, str]]:
    """One chunk as ``(line, style)`` pairs."""
    mark = ">" if chunk.from_client else "<"
    if chunk.gap:
        yield f"{mark} [gap of {chunk.gap} bytes]", GAP_STYLE
        return
    style = CLIENT_STYLE if chunk.from_client else SERVER_STYLE
    if mode == "raw":
        yield f"{mark} {chunk.data.hex()}", style
    elif mode == "hex":
        for line in hexdump(chunk.data):
            off, rest = line.split("  ", 1)
            yield f"{mark} {int(off, 16) + chunk.offset:08x}  {rest}", style
    else:
        yield from _ascii_lines(chunk.data, mark, style)


def _ascii_lines(data: bytes, mark: str, style: str) -> Iterator[tuple[str, str]]:
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()  # the chunk ended with a newline
    for line in lines:
        if line.endswith(b"\r"):
            line = line[:-1]
        yield f"{mark} {line.translate(_ASCII).decode('ascii')}", style
