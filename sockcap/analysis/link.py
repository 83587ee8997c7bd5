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

from bisect import bisect_right
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import NamedTuple

from sockcap.analysis.conversation import Annotated
from sockcap.codes import Note
from sockcap.decode import decode_frame
from sockcap.decode.records import RawFrame, TcpFlags

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
    copies: int = 0  # arrived this many times more than it was sent (duplicated on the link)
    late: bool = False  # arrived after a frame its sender sent later (reordered on the link)

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
    hops = [Hop(frame, sender, _arrival(arrivals.get((receiver, frame.data))))
            for frame, sender, receiver in sent]
    return _reordered(_duplicated(hops, arrivals, [r for _f, _s, r in sent]))


def _arrival(times: deque[int] | None) -> int:
    return times.popleft() if times else NOT_RECEIVED


def _duplicated(hops: list[Hop], arrivals: dict[tuple[str, bytes], deque[int]],
                receivers: list[str]) -> list[Hop]:
    """Arrivals left over once every frame sent has its own: copies the link made, counted
    on the last frame sent with those bytes."""
    last: dict[tuple[str, bytes], int] = {}
    for i, (hop, receiver) in enumerate(zip(hops, receivers, strict=True)):
        last[(receiver, hop.frame.data)] = i
    for key, i in last.items():
        extra = len(arrivals.get(key, ()))
        if extra and not hops[i].lost:
            hops[i] = hops[i]._replace(copies=extra)
    return hops


def _reordered(hops: list[Hop]) -> list[Hop]:
    """Each frame that arrived after a frame its sender put on the link later is late."""
    earliest_after: dict[str, int] = {}  # by sender: the first arrival among frames sent later
    for i in range(len(hops) - 1, -1, -1):
        hop = hops[i]
        if hop.lost:
            continue
        later = earliest_after.get(hop.sender)
        if later is not None and later < hop.received_ns:
            hops[i] = hop._replace(late=True)
        earliest_after[hop.sender] = min(hop.received_ns, later or hop.received_ns)
    return hops


class CwndSample(NamedTuple):
    """The client's congestion state at one moment (Linux's ``struct tcp_info``)."""

    ts_ns: int  # on the captures' clock
    cwnd: int  # segments
    ssthresh: int  # segments; SSTHRESH_INFINITE before the first loss
    rtt_us: int  # smoothed round-trip time
    ca_state: int  # 0 open, 1 disorder, 2 CWR, 3 recovery, 4 loss (tcp_ca_state)


SSTHRESH_INFINITE = 0x7FFFFFFF


@dataclass(frozen=True, slots=True)
class Delivery:
    """What the applications saw of one exchange (told by the edge that ran it)."""

    messages: tuple[bytes, ...]  # what the client sent, message by message
    replies: tuple[bytes | None, ...]  # what came back for each (None: nothing)
    received_bytes: int  # bytes the server's application read
    finished: bool = True  # False: the lab's deadline stopped the exchange
    cwnd: tuple[CwndSample, ...] = ()  # the client's congestion window, each change (TCP)


RTO_MIN_S, RTO_MAX_S = 0.2, 120.0  # Linux's TCP_RTO_MIN and TCP_RTO_MAX


@dataclass(frozen=True, slots=True)
class Timing:
    """Where TCP's time went (seconds)."""

    handshake: float  # the client's first SYN to its ACK of the SYN-ACK
    rtt: float  # the first round trip: SYN sent to SYN-ACK received (0: none seen)
    in_timeouts: float  # waiting for retransmission timeouts (data and FIN)
    timeouts: int  # ... how many


@dataclass(frozen=True, slots=True)
class Stall:
    """The segment TCP was still retransmitting when the lab stopped it."""

    message: int  # the message it carries (1 = the first; its echo when the server sent it)
    from_client: bool
    tries: int  # times it was sent
    first_wait: float  # the sender's first retransmission timeout (seconds)
    last_wait: float  # ... its longest: the timeout backing off


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
    timing: Timing = Timing(0.0, 0.0, 0.0, 0)
    finished: bool = True  # False: stopped by the lab's deadline
    stall: Stall | None = None  # what was being retransmitted then
    needless: int = 0  # spurious retransmissions: an earlier copy arrived, no ACK was lost
    needless_queued: int = 0  # ... of which the earlier copy was still on its way
    needless_gap: float = 0.0  # the longest time between the resend and the copy's arrival
    to_server: float = 0.0  # seconds from the first packet to the last byte the server got

    @property
    def goodput(self) -> float:
        """Bytes per second the server's application got (until it had the last)."""
        return self.delivered_bytes / self.to_server if self.to_server > 0 else 0.0


@dataclass(frozen=True, slots=True)
class UdpVerdict:
    sent: int  # datagrams the client sent
    delivered: int  # ... that reached the server
    lost_numbers: tuple[int, ...]  # their numbers (1 = the first datagram sent)
    echoes_sent: int  # datagrams the server sent back
    echoes_delivered: int
    seconds: float
    resent: int  # datagrams sent beyond one per message (UDP resends nothing by itself)
    delivered_bytes: int = 0  # payload bytes of the datagrams that reached the server
    fragments: int = 0  # IP fragments the client's datagrams went as (0: none was cut)
    by_a_fragment: tuple[int, ...] = ()  # lost datagrams of which some fragments arrived
    finished: bool = True  # False: stopped by the lab's deadline
    to_server: float = 0.0  # seconds from the first packet to the last datagram the server got

    @property
    def lost(self) -> int:
        return len(self.lost_numbers)

    @property
    def goodput(self) -> float:
        return self.delivered_bytes / self.to_server if self.to_server > 0 else 0.0


def of_proto(hops: Sequence[Hop], annotated: Sequence[Annotated],
             proto: int) -> list[tuple[Hop, Annotated]]:
    """The hops of one protocol, each with its annotated packet (the pipeline annotates
    the hops' frames in order, one packet each)."""
    return [(hop, a) for hop, a in zip(hops, annotated, strict=True) if a.packet.proto == proto]


def tcp_verdict(pairs: Sequence[tuple[Hop, Annotated]], delivery: Delivery,
                client: str = "") -> TcpVerdict:
    timeout = sum(1 for _hop, a in pairs if BY_TIMEOUT.intersection(a.notes))
    fast = sum(1 for _hop, a in pairs if FAST.intersection(a.notes))
    intact = sum(1 for sent, back in zip(delivery.messages, delivery.replies, strict=True)
                 if back == sent)
    needless = _needless(pairs)
    return TcpVerdict(
        messages=len(delivery.messages), intact=intact,
        sent_bytes=sum(len(m) for m in delivery.messages),
        delivered_bytes=delivery.received_bytes,
        seconds=_seconds(pairs) if delivery.finished else _span(pairs),
        lost_segments=sum(1 for hop, _a in pairs if hop.lost),
        retransmissions=timeout + fast, by_timeout=timeout, fast=fast,
        timing=tcp_timing(pairs, client), finished=delivery.finished,
        stall=None if delivery.finished else stall(pairs, delivery.messages, client),
        needless=len(needless), needless_queued=sum(1 for gap in needless if gap > 0),
        needless_gap=max((abs(gap) for gap in needless), default=0.0),
        to_server=_seconds(pairs, client))


def _sends(pairs: Sequence[tuple[Hop, Annotated]]) -> dict[tuple[str, int], list[Hop]]:
    """Each TCP segment that carries data, a SYN or a FIN, by (sender, absolute seq):
    every time it was put on the link."""
    sends: dict[tuple[str, int], list[Hop]] = {}
    for hop, a in pairs:
        p = a.packet
        if p.payload_len > 0 or p.flags & (TcpFlags.SYN | TcpFlags.FIN):
            sends.setdefault((hop.sender, p.seq), []).append(hop)
    return sends


def tcp_timing(pairs: Sequence[tuple[Hop, Annotated]], client: str) -> Timing:
    """The handshake, the first round trip and the time spent in retransmission
    timeouts (the wait before each retransmission by timeout of data or a FIN)."""
    syn = next((hop for hop, a in pairs if hop.sender == client
                and a.packet.flags & TcpFlags.SYN), None)
    synack = next((hop for hop, a in pairs if hop.sender != client and not hop.lost
                   and a.packet.flags & TcpFlags.SYN), None)
    done = next((hop for hop, a in pairs if synack is not None and hop.sender == client
                 and hop.frame.ts_ns >= synack.received_ns
                 and not a.packet.flags & TcpFlags.SYN), None)
    handshake = (done.frame.ts_ns - syn.frame.ts_ns) / 1e9 if syn and done else 0.0
    rtt = (synack.received_ns - syn.frame.ts_ns) / 1e9 if syn and synack else 0.0
    waits = _timeout_waits(pairs)
    covered, until = 0, 0  # the waits overlap when both ends wait at once: their union
    for start, end in sorted(waits):
        covered += max(0, end - max(start, until))
        until = max(until, end)
    return Timing(max(0.0, handshake), max(0.0, rtt), covered / 1e9, len(waits))


def _timeout_waits(pairs: Sequence[tuple[Hop, Annotated]]) -> list[tuple[int, int]]:
    """For each retransmission by timeout of data or a FIN: (the send before, this one)."""
    waits = []
    earlier: dict[tuple[str, int], int] = {}
    for hop, a in pairs:
        key = (hop.sender, a.packet.seq)
        if a.packet.flags & TcpFlags.SYN:
            continue
        if key in earlier and BY_TIMEOUT.intersection(a.notes):
            waits.append((earlier[key], hop.frame.ts_ns))
        if a.packet.payload_len > 0 or a.packet.flags & TcpFlags.FIN:
            earlier[key] = hop.frame.ts_ns
    return waits


def stall(pairs: Sequence[tuple[Hop, Annotated]], messages: Sequence[bytes],
          client: str) -> Stall | None:
    """The segment retransmitted last — what TCP was still trying when stopped."""
    last = next((a for _hop, a in reversed(pairs)
                 if BY_TIMEOUT.intersection(a.notes) and a.packet.payload_len > 0), None)
    if last is None:
        return None
    hop0 = next(hop for hop, a in pairs if a is last)
    tries = len(_sends(pairs)[(hop0.sender, last.packet.seq)])
    ends = list(accumulate(len(m) for m in messages))
    message = min(bisect_right(ends, max(0, last.seq - 1)) + 1, len(messages))
    waits = [b - a for a, b in _timeout_waits(
        [(hop, a) for hop, a in pairs if hop.sender == hop0.sender])] or [0]
    return Stall(message, hop0.sender == client, tries, waits[0] / 1e9, max(waits) / 1e9)


def _needless(pairs: Sequence[tuple[Hop, Annotated]]) -> list[float]:
    """For each spurious retransmission — of a segment an earlier copy of which arrived,
    with nothing the receiver sent back lost on the link meanwhile (a lost ACK explains a
    retransmission; this is not that) — the seconds from the resend to that arrival:
    negative when the copy had arrived before, positive when it was still on its way (in
    the link's queue) as the timeout fired."""
    gaps = []
    first_sent: dict[tuple[str, int, int], Hop] = {}
    lost_at: dict[str, list[int]] = {}  # by sender: when its lost frames were sent
    for hop, a in pairs:
        p = a.packet
        if hop.lost:
            lost_at.setdefault(hop.sender, []).append(hop.frame.ts_ns)
        if p.payload_len == 0:
            continue
        key = (hop.sender, p.seq, p.payload_len)
        first = first_sent.get(key)
        if first is None:
            if not hop.lost:
                first_sent[key] = hop
            continue
        if not (BY_TIMEOUT | FAST).intersection(a.notes):
            continue
        window = (first.frame.ts_ns, max(first.received_ns, hop.frame.ts_ns))
        if not any(window[0] <= t <= window[1] for sender, times in lost_at.items()
                   if sender != hop.sender for t in times):
            gaps.append((first.received_ns - hop.frame.ts_ns) / 1e9)
    return gaps


@dataclass(frozen=True, slots=True)
class CwndStory:
    """The client's congestion window in three acts (segments; seconds from the first
    sample)."""

    start: int  # cwnd at the start (the initial window)
    peak: int  # the largest before the first fall (or overall, with no fall)
    peak_at: float
    fell_at: float  # the first loss seen (-1: none)
    fell_to: int  # the lowest cwnd before the sender left recovery
    ssthresh: int  # ssthresh set at the fall
    end: int  # cwnd at the end
    end_at: float
    rtt: float  # smoothed RTT at the end (seconds)


CA_RECOVERY, CA_LOSS = 3, 4  # tcp_ca_state: fast recovery, after a retransmission timeout


def cwnd_story(samples: Sequence[CwndSample]) -> CwndStory | None:
    """Slow start (up to the peak before the first loss), the loss (the first time the
    sender entered recovery or set its slow-start threshold, and how low the window went
    before it left recovery), the recovery (to the end); None without samples."""
    if not samples:
        return None
    t0 = samples[0].ts_ns
    first = samples[0]
    hit = next((i for i, c in enumerate(samples) if c.ca_state in (CA_RECOVERY, CA_LOSS)
                or c.ssthresh != first.ssthresh), -1)
    last = samples[-1]
    if hit < 0:
        peak = max(samples, key=lambda c: c.cwnd)
        return CwndStory(first.cwnd, peak.cwnd, (peak.ts_ns - t0) / 1e9, -1.0, 0,
                         SSTHRESH_INFINITE, last.cwnd, (last.ts_ns - t0) / 1e9,
                         last.rtt_us / 1e6)
    peak = max(samples[:hit] or samples[:1], key=lambda c: c.cwnd)
    back = next((i for i in range(hit + 1, len(samples)) if samples[i].ca_state == 0),
                len(samples))
    low = min(samples[hit:back], key=lambda c: c.cwnd)
    return CwndStory(first.cwnd, peak.cwnd, (peak.ts_ns - t0) / 1e9,
                     (samples[hit].ts_ns - t0) / 1e9, low.cwnd, low.ssthresh, last.cwnd,
                     (last.ts_ns - t0) / 1e9, last.rtt_us / 1e6)


def give_up_seconds(retries2: int) -> float:
    """How long TCP retransmits one segment before it gives up, with ``tcp_retries2``
    tries, the timeout starting at its minimum and doubling up to its maximum (the
    kernel's own estimate: 924.6 s for the default 15)."""
    return float(sum(min(RTO_MIN_S * 2.0 ** i, RTO_MAX_S) for i in range(retries2 + 1)))


def datagrams(pairs: Sequence[tuple[Hop, Annotated]]) -> list[list[tuple[Hop, Annotated]]]:
    """The UDP datagrams, in the order their first frame was sent: one frame each, or the
    IP fragments it was cut into (same sender and IP identification; a datagram is
    delivered only when all of them are)."""
    found: list[list[tuple[Hop, Annotated]]] = []
    open_: dict[tuple[str, int], list[tuple[Hop, Annotated]]] = {}
    for hop, a in pairs:
        if not a.packet.fragment:
            found.append([(hop, a)])
            continue
        key = (hop.sender, a.packet.ip_id)
        if key not in open_:
            open_[key] = []
            found.append(open_[key])
        open_[key].append((hop, a))
        if not _more_fragments(a):
            del open_[key]  # the last fragment: the next with this id is a new datagram
    return found


def _more_fragments(a: Annotated) -> bool:
    data, off = a.packet.data, 14  # the lab's frames are Ethernet
    return len(data) >= off + 8 and bool(data[off + 6] & 0x20)


def udp_verdict(pairs: Sequence[tuple[Hop, Annotated]], client: str, messages: int,
                finished: bool = True) -> UdpVerdict:
    grams = datagrams(pairs)
    requests = [g for g in grams if g[0][0].sender == client]
    echoes = [g for g in grams if g[0][0].sender != client]

    def lost(g: list[tuple[Hop, Annotated]]) -> bool:
        return any(hop.lost for hop, _a in g)

    return UdpVerdict(
        sent=len(requests), delivered=sum(1 for g in requests if not lost(g)),
        lost_numbers=tuple(n for n, g in enumerate(requests, 1) if lost(g)),
        echoes_sent=len(echoes), echoes_delivered=sum(1 for g in echoes if not lost(g)),
        seconds=_seconds(pairs), resent=max(0, len(requests) - messages),
        delivered_bytes=sum(g[0][1].packet.payload_len for g in requests if not lost(g)),
        fragments=sum(len(g) for g in requests if len(g) > 1),
        by_a_fragment=tuple(n for n, g in enumerate(requests, 1)
                            if lost(g) and not all(hop.lost for hop, _a in g)),
        finished=finished, to_server=_seconds(pairs, client))


def _span(pairs: Sequence[tuple[Hop, Annotated]]) -> float:
    """From the first packet sent to the last (an exchange the deadline stopped)."""
    if not pairs:
        return 0.0
    return (pairs[-1][0].frame.ts_ns - pairs[0][0].frame.ts_ns) / 1e9


def _seconds(pairs: Sequence[tuple[Hop, Annotated]], sender: str = "") -> float:
    """From the first packet sent to the last payload delivered (or the last packet); with
    ``sender``, the last payload that host sent."""
    if not pairs:
        return 0.0
    start = pairs[0][0].frame.ts_ns
    ends = [hop.received_ns for hop, a in pairs if not hop.lost and a.packet.payload_len > 0
            and sender in ("", hop.sender)]
    end = max(ends) if ends else max(hop.frame.ts_ns for hop, _a in pairs)
    return max(0, end - start) / 1e9
