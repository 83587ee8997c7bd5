"""What one conversation's packets say, read the same way by every judge.

The echo comparison works on the two reassembled byte streams (client -> server and
server -> client), not on segments, so a server that reads one byte at a time, or a
100 kB message cut into many segments, is judged on what it sent back and not on how.
Where the streams part, :func:`compare_echo` looks for the place where they meet again:
bytes the server sent that the client never sent there are *extra* (and *left over* when
they appeared earlier in what the client sent: the classic missing NUL), bytes the client
sent that never came back are *missing*, and anything else is *different*.

:func:`exchange_of` gives the facts a teacher's own test asserts on (the pytest
fixture's trace).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sockcap.analysis.check.codes import ACK, FIN, RST, SYN, Finding, ScenarioRun
from sockcap.analysis.conversation import Annotated, Conversation
from sockcap.analysis.follow import Follower
from sockcap.decode.records import IPPROTO_UDP

RESYNC_WINDOW = 4096  # how far ahead a parted stream is searched for where it meets again
RESYNC_BYTES = 8  # how many bytes must match for the streams to have met again
MAX_DIFFERENCES = 3  # differences reported per stream; the first ones matter
SHOWN_BYTES = 16  # bytes shown in hex in a finding


@dataclass
class Side:
    """One direction's reassembled bytes, and which packet carried each offset."""

    data: bytearray = field(default_factory=bytearray)
    starts: list[int] = field(default_factory=list)  # stream offset where a packet's bytes start
    packets: list[int] = field(default_factory=list)  # ... and that packet's number

    def add(self, data: bytes, no: int) -> None:
        if data:
            self.starts.append(len(self.data))
            self.packets.append(no)
            self.data += data

    def packet_at(self, offset: int) -> int:
        """The number of the packet that carried byte ``offset`` (the last one past the end)."""
        if not self.packets:
            return 0
        lo, hi = 0, len(self.starts) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.starts[mid] <= offset:
                lo = mid
            else:
                hi = mid - 1
        return self.packets[lo]

    def start_of(self, no: int) -> int:
        """The stream offset where packet ``no``'s bytes start (0: not among them)."""
        return self.starts[self.packets.index(no)] if no in self.packets else 0

    def packets_between(self, start: int, end: int) -> tuple[int, ...]:
        """The packets that carried bytes ``start`` up to ``end`` (exclusive)."""
        first = self.packet_at(start)
        last = self.packet_at(max(start, end - 1))
        return tuple(n for n in self.packets if first <= n <= last)


def streams(packets: Iterable[Annotated], conv: Conversation) -> tuple[Side, Side]:
    """What the client and the server of ``conv`` sent, reassembled in order."""
    follower = Follower(select=(conv.proto, conv.stream))
    sides = (Side(), Side())
    for a in packets:
        if a.conv is conv:
            for chunk in follower.feed(a):
                sides[0 if chunk.from_client else 1].add(chunk.data, chunk.no)
    for chunk in follower.finish(conv):
        sides[0 if chunk.from_client else 1].add(chunk.data, chunk.no)
    return sides


@dataclass(frozen=True, slots=True)
class Difference:
    finding: Finding  # ECHO_EXTRA, ECHO_LEFTOVER, ECHO_MISSING or ECHO_DIFFERENT
    sent_at: int  # offset in the client's stream
    got_at: int  # offset in the server's stream
    sent: bytes  # the client's bytes concerned (missing, or what differs)
    got: bytes  # the server's bytes concerned (extra, or what differs)


def compare_echo(sent: bytes, got: bytes) -> list[Difference]:
    """Where the server's bytes part from the client's, at most MAX_DIFFERENCES places."""
    out: list[Difference] = []
    i = j = 0
    while len(out) < MAX_DIFFERENCES:
        i, j = _common(sent, got, i, j)
        if i >= len(sent) or j >= len(got):
            break
        extra = _meet(got, sent[i : i + RESYNC_BYTES], j)
        missing = _meet(sent, got[j : j + RESYNC_BYTES], i)
        if extra >= 0 and (missing < 0 or extra - j <= missing - i):
            out.append(_extra(sent, got, i, j, extra))
            j = extra
        elif missing >= 0:
            out.append(Difference(Finding.ECHO_MISSING, i, j, sent[i:missing], b""))
            i = missing
        else:
            out.append(Difference(Finding.ECHO_DIFFERENT, i, j, sent[i : i + SHOWN_BYTES],
                                  got[j : j + SHOWN_BYTES]))
            return out
    if len(out) < MAX_DIFFERENCES and j < len(got):
        out.append(_extra(sent, got, i, j, len(got)))
    elif len(out) < MAX_DIFFERENCES and i < len(sent):
        out.append(Difference(Finding.ECHO_MISSING, i, j, sent[i:], b""))
    return out


def _common(a: bytes, b: bytes, i: int, j: int) -> tuple[int, int]:
    """Advance both offsets over equal bytes (compared a block at a time)."""
    step = 1024
    while i < len(a) and j < len(b):
        n = min(step, len(a) - i, len(b) - j)
        if a[i : i + n] == b[j : j + n]:
            i, j = i + n, j + n
            continue
        if n == 1:
            break
        step = max(1, n // 2)
    return i, j


def _meet(stream: bytes, needle: bytes, start: int) -> int:
    """Where ``needle`` next occurs in ``stream`` after ``start`` (-1: not nearby)."""
    if not needle:
        return -1
    return stream.find(needle, start + 1, start + RESYNC_WINDOW + len(needle))


def _extra(sent: bytes, got: bytes, i: int, j: int, end: int) -> Difference:
    extra = got[j:end]
    leftover = len(extra) >= 2 and extra[:SHOWN_BYTES] in sent[:i]
    return Difference(Finding.ECHO_LEFTOVER if leftover else Finding.ECHO_EXTRA, i, j, b"",
                      extra)


def conversations_in(packets: Sequence[Annotated], run: ScenarioRun) -> list[Conversation]:
    """The conversations that began during the scenario, in order."""
    seen: dict[int, Conversation] = {}
    for a in packets:
        conv = a.conv
        if conv is not None and id(conv) not in seen and run.start_ns <= conv.first_ts < run.end_ns:
            seen[id(conv)] = conv
    return sorted(seen.values(), key=lambda c: c.first_ts)


def own(packets: Sequence[Annotated], conv: Conversation) -> list[Annotated]:
    return [a for a in packets if a.conv is conv]


def first_with(mine: Sequence[Annotated], from_client: bool, flag: int) -> int:
    """The number of the first packet from that side with ``flag`` set (0: none)."""
    return next((a.no for a in mine if a.from_client == from_client and a.packet.flags & flag), 0)


def answered_syn(mine: Sequence[Annotated]) -> bool:
    """Whether the server's SYN-ACK is among these packets."""
    return any(not a.from_client and a.packet.flags & SYN for a in mine)


def hex_bytes(data: bytes) -> str:
    """``6f 72 6c 64 …``: the first SHOWN_BYTES bytes in hex."""
    shown = " ".join(f"{b:02x}" for b in data[:SHOWN_BYTES])
    return shown + (" …" if len(data) > SHOWN_BYTES else "")


def endpoint_text(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


@dataclass(frozen=True, slots=True)
class Exchange:
    """The facts a teacher's test asserts on, for the first connection of a capture."""

    handshake_completed: bool
    closed_by_fin: bool
    reset: bool
    data_segments: tuple[tuple[int, bool, bytes], ...]  # (packet, from client, payload)
    sent: bytes
    replies: tuple[bytes, ...]  # the server's bytes, one entry per run of server segments
    received: bytes

    @property
    def echoed_exactly(self) -> bool:
        return bool(self.sent) and self.sent == self.received


def exchange_of(packets: Sequence[Annotated]) -> Exchange:
    """The facts of the first TCP or UDP conversation in ``packets``, read from these
    packets alone (the caller leaves out what came after the exchange, such as the FIN the
    kernel sends for a program that was stopped)."""
    conv = next((a.conv for a in packets if a.conv is not None), None)
    if conv is None:
        return Exchange(False, False, False, (), b"", (), b"")
    mine = own(packets, conv)
    segments = tuple((a.no, a.from_client, a.packet.payload) for a in mine
                     if a.packet.payload_len > 0)
    client, server = streams(mine, conv)
    reset = any(a.packet.flags & RST for a in mine)
    return Exchange(
        handshake_completed=conv.proto != IPPROTO_UDP and answered_syn(mine) and any(
            a.from_client and a.packet.flags & (SYN | ACK) == ACK for a in mine),
        closed_by_fin=bool(first_with(mine, True, FIN) and first_with(mine, False, FIN))
        and not reset,
        reset=reset,
        data_segments=segments,
        sent=bytes(client.data),
        replies=_replies(segments),
        received=bytes(server.data),
    )


def _replies(segments: Sequence[tuple[int, bool, bytes]]) -> tuple[bytes, ...]:
    out: list[bytes] = []
    previous_from_client = True
    for _, from_client, data in segments:
        if not from_client:
            if previous_from_client:
                out.append(data)
            else:
                out[-1] += data
        previous_from_client = from_client
    return tuple(out)
