"""Follow views: a conversation's bytes as the two sides sent them.

Pure: chunks in, ``(line, style)`` pairs out (the CLI colours them on a terminal only).
Each line starts with a direction marker, ``>`` client to server and ``<`` server to
client, so the view reads the same without colour; on a terminal the client's bytes and
the server's have the timeline's colours (one definition: :mod:`sockcap.render.timeline`).

Modes: ``ascii`` (printable bytes as text, others as ``.``, one line per line sent),
``hex`` (Wireshark's hex dump, offsets counted in each side's stream) and ``raw`` (one
line of hex per chunk, as ``tshark -z follow,tcp,raw``). A gap, bytes the capture does not
have, is one line: ``> [gap of 1448 bytes]``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from typing import Protocol

from sockcap.analysis.conversation import (
    ROLES_FIRST_SENDER,
    ROLES_GUESSED,
    Annotated,
    Conversation,
)
from sockcap.analysis.follow import Chunk, Follower
from sockcap.decode.records import IPPROTO_UDP, TcpFlags
from sockcap.i18n import _
from sockcap.render.timeline import CLIENT_STYLE, SERVER_STYLE, endpoint, hexdump

FIN, RST = int(TcpFlags.FIN), int(TcpFlags.RST)


class ChunkSink(Protocol):
    """Where ``--raw --out`` puts each chunk (an edge: files); told when a stream ends."""

    def write(self, chunk: Chunk) -> None: ...

    def end(self, conv: Conversation) -> None: ...

GAP_STYLE = "bold yellow"
MODES = ("ascii", "hex", "raw")
# bytes shown as themselves in ascii mode: printable ASCII and tab; the rest become "."
_ASCII = bytes(c if 32 <= c < 127 or c == 9 else 46 for c in range(256))


def stream_name(conv: Conversation) -> str:
    """``tcp stream 0`` / ``udp stream 2``, Wireshark's numbering."""
    if conv.proto == IPPROTO_UDP:
        return _("udp stream {stream}").format(stream=conv.stream)
    return _("tcp stream {stream}").format(stream=conv.stream)


def stream_header(conv: Conversation) -> str:
    """``== tcp stream 0: client 127.0.0.1:40000 (>) ⇄ server 127.0.0.1:5001 (<)``."""
    roles = {ROLES_GUESSED: _(" (no handshake seen: roles guessed from the ports)"),
             ROLES_FIRST_SENDER: _(" (client: the first sender)")}.get(conv.roles, "")
    return _("== {stream}: client {client} (>) ⇄ server {server} (<){roles}").format(
        stream=stream_name(conv), client=endpoint(*conv.client), server=endpoint(*conv.server),
        roles=roles)


def stream_footer(conv: Conversation, sent: tuple[int, int], gaps: tuple[int, int]) -> str:
    """``== tcp stream 0: client sent 12 bytes, server sent 12 bytes``, gaps if any."""
    text = _("== {stream}: client sent {client} bytes, server sent {server} bytes").format(
        stream=stream_name(conv), client=sent[0], server=sent[1])
    if gaps[0] or gaps[1]:
        text += _("; missing from the capture: {client} from the client, {server} from the "
                  "server").format(client=gaps[0], server=gaps[1])
    return text


def chunk_lines(chunk: Chunk, mode: str = "ascii") -> Iterator[tuple[str, str]]:
    """One chunk as ``(line, style)`` pairs."""
    mark = ">" if chunk.from_client else "<"
    if chunk.gap:
        yield _("{mark} [gap of {count} bytes]").format(mark=mark, count=chunk.gap), GAP_STYLE
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


def follow_pairs(annotated: Iterable[Annotated], select: tuple[int, int] | None,
                 mode: str = "ascii", sink: ChunkSink | None = None,
                 forgotten: deque[Conversation] | None = None) -> Iterator[tuple[str, str]]:
    """``(line, style)`` pairs of the follow view; ``sink`` also gets every chunk;
    ``forgotten``: as :class:`FollowView`'s."""
    view = FollowView(select, mode, sink, forgotten)
    for a in annotated:
        yield from view.feed(a)
    yield from view.finish()


class FollowView:
    """The follow view one packet at a time: what the engine hands each packet to
    (:mod:`sockcap.pipeline.engine`), and what :func:`follow_pairs` runs over a stream.

    :meth:`feed` gives the pairs a packet completes (a conversation's section when it ends,
    or its chunks at once with ``select``), :meth:`finish` the rest at the end of the input.

    ``forgotten``: where the tracker (its ``on_forget``, on either engine) puts each
    conversation it forgets. No packet can reach one any more, so its section is shown
    then (before the end of the file, for one that never ended) and everything this
    view held for it goes: the view's memory follows the tracker's, not the file.
    """

    def __init__(self, select: tuple[int, int] | None, mode: str = "ascii",
                 sink: ChunkSink | None = None,
                 forgotten: deque[Conversation] | None = None) -> None:
        self.select = select
        self.forgotten: deque[Conversation] = forgotten if forgotten is not None else deque()
        self.follower = Follower(select)
        self.sections = _Sections(mode, streaming=select is not None, sink=sink)
        self.fins: dict[int, int] = {}  # id(conv) -> FIN seen: 1 client, 2 server (3: both)

    def feed(self, a: Annotated) -> Iterator[tuple[str, str]]:
        chunks = self.follower.feed(a)
        conv, sections = a.conv, self.sections
        if (conv is not None and self.select is None and _ends(a, self.fins)
                and sections.is_open(conv)):
            chunks += self.follower.finish(conv)
            yield from sections.add(chunks)
            yield from sections.close(conv)
        elif chunks:
            yield from sections.add(chunks)
        yield from self.let_go()

    def let_go(self) -> Iterator[tuple[str, str]]:
        """The sections of the conversations the tracker forgot since the last packet."""
        forgotten, sections = self.forgotten, self.sections
        while forgotten:
            gone = forgotten.popleft()
            yield from sections.add(self.follower.finish(gone))
            if sections.is_open(gone):
                yield from sections.close(gone)
            self.follower.drop(gone)
            sections.drop(gone)
            self.fins.pop(id(gone), None)

    def finish(self) -> Iterator[tuple[str, str]]:
        yield from self.let_go()
        yield from self.sections.add(self.follower.finish())
        yield from self.sections.close_all()


def _ends(a: Annotated, fins: dict[int, int]) -> bool:
    """Does this packet end its TCP conversation (RST, or the second side's FIN)?

    Read from the packet rather than from the conversation's state, so that replaying
    packets annotated earlier (``sockcap run``) gives the same sections."""
    flags = a.packet.flags
    if not flags & (FIN | RST) or a.conv is None:
        return False
    if flags & RST:
        return True
    key = id(a.conv)
    fins[key] = fins.get(key, 0) | (1 if a.from_client else 2)
    return fins[key] == 3


class _Sections:
    """Groups chunks per conversation; prints a section as it ends (or at once, streaming)."""

    def __init__(self, mode: str, streaming: bool, sink: ChunkSink | None) -> None:
        self.mode = mode
        self.streaming = streaming
        self.sink = sink
        self.held: dict[int, list[Chunk]] = {}
        self.convs: dict[int, Conversation] = {}
        self.closed: set[int] = set()
        self.totals: dict[int, list[int]] = {}  # sent client, sent server, gap c, gap s

    def is_open(self, conv: Conversation) -> bool:
        return id(conv) in self.convs and id(conv) not in self.closed

    def add(self, chunks: list[Chunk]) -> Iterator[tuple[str, str]]:
        for chunk in chunks:
            key = id(chunk.conv)
            if key not in self.convs:
                self.convs[key] = chunk.conv
                self.totals[key] = [0, 0, 0, 0]
                if self.streaming:
                    yield stream_header(chunk.conv), "bold"
            side = 0 if chunk.from_client else 1
            self.totals[key][side + (2 if chunk.gap else 0)] += chunk.gap or len(chunk.data)
            if self.sink is not None:
                self.sink.write(chunk)
            if self.streaming:
                yield from chunk_lines(chunk, self.mode)
            else:
                self.held.setdefault(key, []).append(chunk)

    def close(self, conv: Conversation) -> Iterator[tuple[str, str]]:
        key = id(conv)
        self.closed.add(key)
        if not self.streaming:
            yield stream_header(conv), "bold"
            for chunk in self.held.pop(key, []):
                yield from chunk_lines(chunk, self.mode)
        t = self.totals[key]
        yield stream_footer(conv, (t[0], t[1]), (t[2], t[3])), "dim"
        if self.sink is not None:
            self.sink.end(conv)

    def drop(self, conv: Conversation) -> None:
        """Forget a conversation already closed (or never shown)."""
        key = id(conv)
        self.closed.discard(key)
        self.convs.pop(key, None)
        self.totals.pop(key, None)
        self.held.pop(key, None)

    def close_all(self) -> Iterator[tuple[str, str]]:
        rest = [c for k, c in self.convs.items() if k not in self.closed]
        for conv in sorted(rest, key=lambda c: (c.proto, c.stream)):
            yield from self.close(conv)
