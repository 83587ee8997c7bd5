"""Two captures of one link merged into one timeline, and what TCP and UDP made of it.

Pure: frames in, records out. The lab captures at both ends of a link that forwards each
frame unchanged (:mod:`sockcap.lab.wire`), so the frame a host sends and the frame the
other host receives hold the same bytes. :func:`merge_ends` pairs them by their bytes:

- every frame a host sent is one :class:`Hop` of the merged timeline, at the time it was
  sent, with the time it arrived at the other end — or ``lost`` when the other end's
  capture never saw it (*lost on the link*);
- two frames with the same bytes (a retransmission can repeat a segment exactly) are
  paired in order: the first one sent with the first one received.

:func:`tcp_verdict` and :func:`udp_verdict` read the merged timeline once the pipeline
has annotated it: segments lost, retransmissions (from the expert notes, as Wireshark
counts them: by timeout or fast), datagrams lost and their numbers, and the time from the
first packet sent to the last payload delivered.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from sockcap.analysis.conversation import Annotated
from sockcap.codes import Note
from sockcap.decode import decode_frame
from sockcap.decode.records import RawFrame

IPPROTO_TCP, IPPROTO_UDP = 6, 17
NOT_RECEIVED = -1
BY_TIMEOUT = frozenset({Note.RETRANSMISSION, Note.SYN_RETRANSMITTED,
                        Note.SPURIOUS_RETRANSMISSION})
FAST = frozenset({Note.FAST_RETRANSMISSION})


class Hop(NamedTuple):
    """One frame put on the link: sent by ``sender`` at ``frame.ts_ns``, received at
    ``received_ns`` (:data:`NOT_RECEIVED`: lost on the link)."""

    frame: RawFrame
    sender: str  # the address of the host that sent it
    received_ns: int

    @property
    def lost(self) -> bool:
        return self.received_ns == NOT_RECEIVED


def merge_ends(ends: Sequence[tuple[str, Iterable[RawFrame]]]) -> list[Hop]:
    """Merge the captures taken at each end of the link (``(address, frames)`` pairs:
    the host's address and what its capture holds, both ways) into the frames put on the
    link, in the order they were sent. A frame is sent by the end whose address is its
    source, received by the end whose address is its destination."""
    sent: list[tuple[RawFrame, str, str]] = []  # frame, sender, receiver
    arrivals: dict[tuple[str, bytes], deque[int]] = {}
    for address, frames in ends:
        for frame in frames:
            p = decode_frame(frame)
            if p.src == address:
                sent.append((frame, address, p.dst))
            elif p.dst == address:
                arrivals.setdefault((address, frame.data), deque()).append(frame.ts_ns)
    sent.sort(key=lambda item: item[0].ts_ns)  # stable: one end's order is kept
    return [Hop(frame, sender, _arrival(arrivals.get((receiver, frame.data))))
            for frame, sender, receiver in sent]


def _arrival(times: deque[int] | None) -> int:
    return times.popleft() if times else NOT_RECEIVED


@dataclass(frozen=True, slots=True)
class Delivery:
    """What the applications saw of one exchange (told by the edge that ran it)."""

    messages: tuple[bytes, ...]  # what the client sent, message by message
    replies: tuple[bytes | None, ...]  # what came back for each (None: nothing)
    received_bytes: int  # bytes the server's application read


@dataclass(frozen=True, slots=True)
class TcpVerdict:
    messages: int
    intact: int  # messages whose echo came back byte for byte
    sent_bytes: int
    delivered_bytes: int  # bytes the server's application read
    seconds: float  # first packet sent to last payload delivered
    lost_segments: int  # TCP segments lost on the link, both ways
    retransmissions: int
    by_timeout: int
    fast: int


@dataclass(frozen=True, slots=True)
class UdpVerdict:
    sent: int  # datagrams the client sent
    delivered: int  # ... that reached the server
    lost_numbers: tuple[int, ...]  # their numbers (1 = the first datagram sent)
    echoes_sent: int  # datagrams the server sent back
    echoes_delivered: int
    seconds: float
    resent: int  # datagrams sent beyond one per message (UDP resends nothing by itself)

    @property
    def lost(self) -> int:
        return len(self.lost_numbers)


def of_proto(hops: Sequence[Hop], annotated: Sequence[Annotated],
             proto: int) -> list[tuple[Hop, Annotated]]:
    """The hops of one protocol, each with its annotated packet (the pipeline annotates
    the hops' frames in order, one packet each)."""
    return [(hop, a) for hop, a in zip(hops, annotated, strict=True) if a.packet.proto == proto]


def tcp_verdict(pairs: Sequence[tuple[Hop, Annotated]], delivery: Delivery) -> TcpVerdict:
    timeout = sum(1 for _hop, a in pairs if BY_TIMEOUT.intersection(a.notes))
    fast = sum(1 for _hop, a in pairs if FAST.intersection(a.notes))
    intact = sum(1 for sent, back in zip(delivery.messages, delivery.replies, strict=True)
                 if back == sent)
    return TcpVerdict(
        messages=len(delivery.messages), intact=intact,
        sent_bytes=sum(len(m) for m in delivery.messages),
        delivered_bytes=delivery.received_bytes, seconds=_seconds(pairs),
        lost_segments=sum(1 for hop, _a in pairs if hop.lost),
        retransmissions=timeout + fast, by_timeout=timeout, fast=fast)


def udp_verdict(pairs: Sequence[tuple[Hop, Annotated]], client: str,
                messages: int) -> UdpVerdict:
    requests = [hop for hop, _a in pairs if hop.sender == client]
    echoes = [hop for hop, _a in pairs if hop.sender != client]
    return UdpVerdict(
        sent=len(requests), delivered=sum(1 for hop in requests if not hop.lost),
        lost_numbers=tuple(n for n, hop in enumerate(requests, 1) if hop.lost),
        echoes_sent=len(echoes), echoes_delivered=sum(1 for hop in echoes if not hop.lost),
        seconds=_seconds(pairs), resent=max(0, len(requests) - messages))


def _seconds(pairs: Sequence[tuple[Hop, Annotated]]) -> float:
    """From the first packet sent to the last payload delivered (or the last packet)."""
    if not pairs:
        return 0.0
    start = pairs[0][0].frame.ts_ns
    ends = [hop.received_ns for hop, a in pairs if not hop.lost and a.packet.payload_len > 0]
    end = max(ends) if ends else max(hop.frame.ts_ns for hop, _a in pairs)
    return max(0, end - start) / 1e9
