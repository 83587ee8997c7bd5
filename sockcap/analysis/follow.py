"""Follow a conversation: each side's bytes in sequence order, as the application saw them.

Pure: annotated packets in, :class:`Chunk` records out. :class:`Follower` reassembles TCP
per direction and passes UDP datagrams through; a renderer shows the chunks and the CLI
decides where they go.

TCP reassembly, per direction, on sequence numbers unwrapped to 64 bits (streams longer
than 4 GiB stay in order):

- The stream starts after the SYN's sequence number, or at the first segment seen when
  the capture has no SYN (as ``tshark -z follow`` does).
- A segment at the next expected byte is delivered at once, then any held segments it
  makes contiguous. Bytes already delivered are never delivered again: a retransmission
  or an overlap gives only its new tail, and the first copy of a byte wins.
- A segment beyond the next expected byte is held until the hole fills. The hole is
  declared missing (a gap chunk; bytes are never invented) when the other side ACKs past
  it, since the receiver had the bytes and only the capture lacks them (tshark's rule), or
  when more than ``hold_limit`` bytes are held, or at the end.

Chunks are produced in the order of the packets that complete them, which interleaves
the two sides as they talked. Memory: held out-of-order bytes per direction (bounded),
nothing for delivered bytes, and nothing at all for conversations not selected.
"""

from __future__ import annotations

import heapq
from typing import NamedTuple

from sockcap.analysis.conversation import Annotated, Conversation
from sockcap.decode.records import IPPROTO_TCP, IPPROTO_UDP, TcpFlags

MOD32 = 1 << 32
HALF32 = 1 << 31
SYN, ACK = int(TcpFlags.SYN), int(TcpFlags.ACK)
END = 1 << 62  # past any stream offset
HOLD_LIMIT = 16 << 20  # bytes held out of order per direction before a hole is declared


class Chunk(NamedTuple):
    """Bytes one side sent, in order; or a gap: bytes the capture does not have."""

    conv: Conversation
    from_client: bool
    offset: int  # position of the first byte in this side's stream (gaps count)
    data: bytes  # b"" for a gap
    gap: int  # number of missing bytes (0 for data)
    no: int  # packet number that delivered it
    ts_ns: int


class _Side:
    """Reassembly state of one TCP direction."""

    __slots__ = ("base", "next", "held", "heap", "held_bytes", "delivered")

    def __init__(self) -> None:
        self.base = -1  # absolute sequence number of stream offset 0; -1 until known
        self.next = 0  # stream offset of the next byte expected
        self.held: dict[int, bytes] = {}  # stream offset -> bytes, beyond ``next``
        self.heap: list[int] = []  # the offsets in ``held``
        self.held_bytes = 0
        self.delivered = 0  # bytes delivered (gaps not counted)

    def offset_of(self, seq: int) -> int:
        """Stream offset of absolute ``seq``: the one nearest ``next`` (unwrapping)."""
        delta = (seq - self.base - self.next) % MOD32
        return self.next + (delta - MOD32 if delta >= HALF32 else delta)


class _Stream:
    __slots__ = ("sides", "udp_offsets")

    def __init__(self) -> None:
        self.sides = (_Side(), _Side())  # client -> server, server -> client
        self.udp_offsets = [0, 0]


class Follower:
    """Turns annotated packets into chunks, for one conversation or for all.

    ``select``: ``(proto, stream)`` to follow only that conversation (IPPROTO_TCP or
    IPPROTO_UDP and its stream number), or None for every TCP and UDP conversation.
    """

    def __init__(self, select: tuple[int, int] | None = None,
                 hold_limit: int = HOLD_LIMIT) -> None:
        self.select = select
        self.hold_limit = hold_limit
        self._streams: dict[int, _Stream] = {}  # id(conv) -> state
        self._convs: dict[int, Conversation] = {}
        self._done: set[int] = set()  # conversations already finished

    def feed(self, a: Annotated) -> list[Chunk]:
        """The chunks this packet completes (usually none or one)."""
        conv = a.conv
        if conv is None or (self.select is not None
                            and (conv.proto, conv.stream) != self.select):
            return []
        state = self._streams.get(id(conv))
        if state is None:
            if id(conv) in self._done:
                return []
            state = self._streams[id(conv)] = _Stream()
            self._convs[id(conv)] = conv
        if conv.proto == IPPROTO_UDP:
            return self._udp(a, conv, state)
        if conv.proto == IPPROTO_TCP and a.seq >= 0:
            return self._tcp(a, conv, state)
        return []

    def finish(self, conv: Conversation | None = None) -> list[Chunk]:
        """Whatever is still held, with gaps for the holes: for ``conv``, or for all."""
        keys = [id(conv)] if conv is not None else list(self._streams)
        out: list[Chunk] = []
        for key in keys:
            state = self._streams.pop(key, None)
            c = self._convs.pop(key, None)
            if state is None or c is None:
                continue
            self._done.add(key)
            for i, side in enumerate(state.sides):
                out += _flush(side, c, i == 0, END, -1, c.last_ts)
        return out

    def drop(self, conv: Conversation) -> None:
        """Forget a conversation the tracker forgot (after :meth:`finish`): no packet can
        reach it any more, so nothing about it is kept."""
        self._done.discard(id(conv))
        self._streams.pop(id(conv), None)
        self._convs.pop(id(conv), None)

    def _udp(self, a: Annotated, conv: Conversation, state: _Stream) -> list[Chunk]:
        p = a.packet
        data = p.payload
        i = 0 if a.from_client else 1
        off = state.udp_offsets[i]
        state.udp_offsets[i] = off + len(data)
        return [Chunk(conv, a.from_client, off, data, 0, a.no, p.ts_ns)]

    def _tcp(self, a: Annotated, conv: Conversation, state: _Stream) -> list[Chunk]:
        p = a.packet
        side = state.sides[0 if a.from_client else 1]
        if side.base < 0:
            side.base = (p.seq + 1) % MOD32 if p.flags & SYN else p.seq
        out: list[Chunk] = []
        other = state.sides[1 if a.from_client else 0]
        if p.flags & ACK and other.base >= 0 and other.held:
            # The peer ACKs bytes the capture lacks: they were received, so the hole is
            # missing data, not data still to come.
            out += _flush(other, conv, not a.from_client, other.offset_of(p.ack), a.no,
                          p.ts_ns)
        if p.payload_len > 0:
            data = p.payload  # what the capture has (may be cut by the snap length)
            start = side.offset_of((p.seq + (1 if p.flags & SYN else 0)) % MOD32)
            out += _add(side, conv, a.from_client, start, data, a.no, p.ts_ns,
                        self.hold_limit)
        return out


def _add(side: _Side, conv: Conversation, from_client: bool, start: int, data: bytes,
         no: int, ts: int, hold_limit: int) -> list[Chunk]:
    end = start + len(data)
    if end <= side.next or not data:
        return []  # all of it delivered before: a retransmission
    if start > side.next:
        if start not in side.held or len(side.held[start]) < len(data):
            if start not in side.held:
                heapq.heappush(side.heap, start)
            side.held_bytes += len(data) - len(side.held.get(start, b""))
            side.held[start] = data
        if side.held_bytes > hold_limit:
            return _flush(side, conv, from_client, side.heap[0], no, ts)
        return []
    new = data[side.next - start:]
    out = [_deliver(side, conv, from_client, new, no, ts)]
    return out + _drain(side, conv, from_client, no, ts)


def _deliver(side: _Side, conv: Conversation, from_client: bool, data: bytes, no: int,
             ts: int) -> Chunk:
    chunk = Chunk(conv, from_client, side.next, data, 0, no, ts)
    side.next += len(data)
    side.delivered += len(data)
    return chunk


def _drain(side: _Side, conv: Conversation, from_client: bool, no: int,
           ts: int) -> list[Chunk]:
    """Deliver held segments that now start at or before the next expected byte."""
    out: list[Chunk] = []
    while side.heap and side.heap[0] <= side.next:
        start = heapq.heappop(side.heap)
        data = side.held.pop(start)
        side.held_bytes -= len(data)
        if start + len(data) > side.next:
            out.append(_deliver(side, conv, from_client, data[side.next - start:], no, ts))
    return out


def _flush(side: _Side, conv: Conversation, from_client: bool, upto: int, no: int,
           ts: int) -> list[Chunk]:
    """Declare the holes before ``upto`` missing and deliver what follows each of them."""
    out: list[Chunk] = []
    while side.heap and side.heap[0] <= upto:
        start = side.heap[0]
        if start > side.next:
            out.append(Chunk(conv, from_client, side.next, b"", start - side.next, no, ts))
            side.next = start
        out += _drain(side, conv, from_client, no, ts)
    return out
