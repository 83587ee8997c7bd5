"""What a capture does that confuses learners, detected and explained (pure).

Each :class:`Confusion` is a code; its words are in the catalogue. ``--explain`` adds
the sentence under the packet that shows it (once per connection where it would repeat
on every packet) and counts them after the notes. Each is also a note in the timeline
(:class:`sockcap.codes.Note`; ``sockcap.pipeline.contract.CONFUSION_NOTES``), detected
per packet by both engines' conversation trackers, on the same packets as the sentence
here except "part of a larger message": its note is on the segment that continues the
message (the contract says why). The checks themselves are shared with the trackers
(:mod:`sockcap.analysis.offload`; the receiver's MSS is the tracker's ``Direction.mss``;
the Nagle thresholds are ``conversation.DELAYED_NS`` and ``RELEASED_NS``).

- partial checksum: on loopback and veth the kernel leaves the TCP checksum to the
  network card (checksum offload), so the capture holds only the pseudo-header's sum
  (Linux's CHECKSUM_PARTIAL); Wireshark 4.2 labels it "partial". Detected by computing
  the pseudo-header sum first and the real checksum (RFC 9293 3.1) only when the field
  equals it.
- larger than the MTU: a segment whose IP packet is longer than the link's MTU (1500 on
  Ethernet; the SYN's MSS when the handshake was seen) was handed to the capture before
  the kernel or the card cut it (TSO/GSO; GRO on receive).
- window scale unknown: the handshake is not in the file, so the window field cannot be
  scaled (Wireshark: "window size scaling factor: -1 (unknown)").
- part of a larger message: a data segment without PSH is followed by more bytes of the
  same write (Linux sets PSH on the last segment of a send()); TCP has no message
  boundaries, so a message may span segments ("TCP segment of a reassembled PDU").
- Nagle with delayed ACK: a data segment sent right after (within
  :data:`RELEASED_NS`) the peer's pure ACK of this side's previous data, that ACK having
  come :data:`DELAYED_NS` or more after that data (Linux delays an ACK up to 40 ms): the
  sender held the bytes (Nagle, RFC 896) until the delayed ACK came.
- TIME_WAIT: the end that closed first acknowledges the other's FIN and stays in
  TIME_WAIT (60 s on Linux): binding its port again fails with EADDRINUSE until then.
- port reuse: a SYN on the same addresses and ports as an earlier connection of the
  capture (tshark's ``tcp.analysis.reused_ports``), within the last
  :data:`TUPLE_WINDOW` SYNs (below).

The 4-tuples remembered for the port-reuse sentence are bounded by a window of SYNs, not
by the file: every packet with SYN that reaches :meth:`ConfusionFinder.find` (a SYN or a
SYN-ACK) is numbered n = 1, 2, ...; a 4-tuple is filed with the number of its last SYN m
and is seen by SYN n only while ``n - m <`` :data:`TUPLE_WINDOW`. Without a bound the table
grew by a 4-tuple a connection (two with the SYN-ACK's), hundreds of MB for millions of
connections. 65,536 SYNs is more than twice Linux's ephemeral port range (32768-60999:
28,232 ports), so a client that goes through all its ports towards one server and starts
again is still named even when each of its connections counts two SYNs (SYN and SYN-ACK);
a reuse after more than 65,536 other SYNs goes unsaid. The compiled twin keeps the same
window (``TUPLE_WINDOW`` in the contract's header; a ring of the window's SYNs beside an
open-addressing table, ``sockcap/_speedups_explain.h``); both take another window at
construction (``ConfusionFinder(window=)``, ``PacketExplainer(tuple_window=)``, the engine's
``explain={..., "tuple_window": N}``), which ``SOCKCAP_TUPLE_WINDOW`` sets for ``show``
(:func:`sockcap.speedups.tuple_window`), so tests see both edges of the window on small
captures.
"""

from __future__ import annotations

import enum
from collections import deque

from sockcap.analysis.conversation import DELAYED_NS, RELEASED_NS, Annotated
from sockcap.analysis.offload import (
    SMALLEST_MTU_PAYLOAD,
    address_sum,
    mtu_cut,
    partial_checksum,
    tcp_start,
)
from sockcap.decode.records import TcpFlags
from sockcap.i18n import N_, _

FIN, SYN, RST, ACK, PSH = (int(f) for f in (TcpFlags.FIN, TcpFlags.SYN, TcpFlags.RST,
                                            TcpFlags.ACK, TcpFlags.PSH))


TUPLE_WINDOW = 65_536  # SYNs a 4-tuple is remembered for after its last SYN (see above)


class Confusion(enum.Enum):
    PARTIAL_CHECKSUM = "partial checksum"
    LARGER_THAN_MTU = "larger than the MTU"
    WINDOW_SCALE_UNKNOWN = "window scale unknown"
    PART_OF_MESSAGE = "part of a larger message"
    NAGLE_STALL = "nagle stall"
    TIME_WAIT = "time-wait"
    PORT_REUSE = "port reuse"


WORDS = {
    Confusion.PARTIAL_CHECKSUM: N_(
        "Its TCP checksum ({checksum}) is not the real one ({real}): on loopback and veth "
        "the kernel leaves the checksum to the network card (checksum offload), so the "
        "capture holds only the pseudo-header's partial sum; Wireshark 4.2 calls it "
        "partial. Nothing is wrong (said once per connection)."),
    Confusion.LARGER_THAN_MTU: N_(
        "At {size} bytes this IP packet is larger than the MTU ({mtu}): the kernel handed "
        "the capture one {length}-byte chunk before cutting it (TSO/GSO; GRO when "
        "receiving); on a real wire it leaves as {count} segments of {segment} bytes."),
    Confusion.WINDOW_SCALE_UNKNOWN: N_(
        "The handshake is not in the file, so the window scale is unknown: Win={window} is "
        "the raw field, and the real window may be up to 2^14 times larger."),
    Confusion.PART_OF_MESSAGE: N_(
        "No PSH: more bytes of the same write follow in the next segment. TCP carries a "
        "stream of bytes without message boundaries, so one message can span segments "
        "(Wireshark: \"TCP segment of a reassembled PDU\")."),
    Confusion.NAGLE_STALL: N_(
        "{side} sends these bytes only now, {ms} ms after its previous ones: Nagle's "
        "algorithm held them while its earlier small segment was unacknowledged, and "
        "{other} delayed that ACK (up to 40 ms on Linux) hoping to send data with it. The "
        "program wrote one message in pieces: write it whole, or set TCP_NODELAY."),
    Confusion.TIME_WAIT: N_(
        "{side} closed first, so it now stays in TIME_WAIT (60 s on Linux) to answer a "
        "FIN that might come again: until then, binding port {port} again fails with "
        "EADDRINUSE (unless SO_REUSEADDR)."),
    Confusion.PORT_REUSE: N_(
        "The same addresses and ports as stream {stream}, which ended: a new connection "
        "may reuse them once the old one is over (TIME_WAIT passed, or SO_REUSEADDR)."),
}

SUMMARY = {
    Confusion.PARTIAL_CHECKSUM: N_("  read closely: {count} packets carry a partial checksum "
                                   "(checksum offload, not damage)."),
    Confusion.LARGER_THAN_MTU: N_("  read closely: {count} packets are larger than the MTU "
                                  "(TSO/GSO: cut into segments after the capture)."),
    Confusion.NAGLE_STALL: N_("  read closely: {count} times a sender waited for a delayed "
                              "ACK (Nagle with delayed ACK)."),
}


class ConfusionFinder:
    """Feed TCP packets in order; :meth:`find` says what in each would confuse a learner."""

    def __init__(self, window: int = TUPLE_WINDOW) -> None:
        if window < 1:
            raise ValueError(_("tuple window: 1 or more SYNs expected, not {window}").format(
                window=window))
        self.counts: dict[Confusion, int] = {}
        self._said: set[tuple[int, Confusion]] = set()  # (stream, kind) said once
        self._window = window
        self._syns = 0  # SYNs seen (SYN-ACKs too): the last one's number
        # 4-tuple -> (last stream on it, the number of its last SYN), for ``window`` SYNs
        self._ended: dict[tuple[object, ...], tuple[int, int]] = {}
        self._order: deque[tuple[int, tuple[object, ...]]] = deque()  # (SYN number, 4-tuple)
        self._data: dict[tuple[int, bool], tuple[int, int]] = {}  # side -> (next seq, ts)
        self._acked: dict[tuple[int, bool], tuple[int, int]] = {}  # side -> (pure ACK, ts)

    def find(self, a: Annotated, own_fin: bool, acks_peer_fin: bool) -> list[str]:
        """Sentences for ``a`` (a TCP packet with a conversation); ``own_fin``: its sender
        sent a FIN before, ``acks_peer_fin``: it acknowledges the peer's FIN."""
        conv, p = a.conv, a.packet
        assert conv is not None
        out: list[str] = []
        stream = conv.stream
        key = (p.src, p.sport, p.dst, p.dport)
        if p.flags & SYN:
            n = self._syns = self._syns + 1
            self._forget(n - self._window)
            if not p.flags & ACK:
                earlier = self._ended.get(key)
                if earlier is not None and earlier[0] != stream:
                    out.append(self._say(Confusion.PORT_REUSE, stream=earlier[0]))
            self._ended[key] = (stream, n)
            self._order.append((n, key))
        checksum = partial_checksum(p, tcp_start(p), address_sum(p))
        if checksum is not None:
            self._count(Confusion.PARTIAL_CHECKSUM)
            if self._once(stream, Confusion.PARTIAL_CHECKSUM):
                out.append(self._say(Confusion.PARTIAL_CHECKSUM, checksum=f"0x{checksum[0]:04x}",
                                     real=f"0x{checksum[1]:04x}"))
        mss = conv.dirs[1 if a.from_client else 0].mss  # what the receiver offered (-1: none)
        bound = SMALLEST_MTU_PAYLOAD if mss < 0 else min(SMALLEST_MTU_PAYLOAD, mss - 40)
        big = self._larger_than_mtu(a) if p.payload_len > bound else ""
        if big:
            self._count(Confusion.LARGER_THAN_MTU)
            out.append(big)
        if conv.syn_ts < 0 and conv.synack_ts < 0 and \
                self._once(stream, Confusion.WINDOW_SCALE_UNKNOWN):
            out.append(self._say(Confusion.WINDOW_SCALE_UNKNOWN, window=p.window))
        if p.payload_len > 0 and not p.flags & (PSH | FIN | SYN | RST):
            out.append(self._say(Confusion.PART_OF_MESSAGE))
        stall = self._nagle(a)
        if stall:
            self._count(Confusion.NAGLE_STALL)
            out.append(stall)
        if acks_peer_fin and own_fin:
            side = _("the client") if a.from_client else _("the server")
            out.append(self._say(Confusion.TIME_WAIT, side=side[:1].upper() + side[1:],
                                 port=p.sport))
        return out

    def _forget(self, last: int) -> None:
        """Forget the 4-tuples whose last SYN is number ``last`` or before (one at most
        a SYN: each SYN files one)."""
        order, ended = self._order, self._ended
        while order and order[0][0] <= last:
            m, key = order.popleft()
            if ended[key][1] == m:  # not filed again by a later SYN
                del ended[key]

    def _nagle(self, a: Annotated) -> str:
        p = a.packet
        assert a.conv is not None
        me, peer = (a.conv.stream, a.from_client), (a.conv.stream, not a.from_client)
        if p.flags & (SYN | FIN | RST):
            return ""
        if p.payload_len == 0:
            if p.flags & ACK:
                self._acked[me] = (a.ack, p.ts_ns)
            return ""
        before, acked = self._data.get(me), self._acked.get(peer)
        self._data[me] = (a.seq + p.payload_len, p.ts_ns)
        if before is None or acked is None or a.seq != before[0] or acked[0] != before[0]:
            return ""
        waited, released = acked[1] - before[1], p.ts_ns - acked[1]
        if waited < DELAYED_NS or not 0 <= released <= RELEASED_NS:
            return ""
        side = _("the client") if a.from_client else _("the server")
        other = _("the server") if a.from_client else _("the client")
        return self._say(Confusion.NAGLE_STALL, side=side[:1].upper() + side[1:], other=other,
                         ms=f"{(p.ts_ns - before[1]) / 1e6:.1f}")

    def _once(self, stream: int, kind: Confusion) -> bool:
        if (stream, kind) in self._said:
            return False
        self._said.add((stream, kind))
        return True

    def _count(self, kind: Confusion) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1

    def _say(self, kind: Confusion, **values: object) -> str:
        return _(WORDS[kind]).format(**values)

    def _larger_than_mtu(self, a: Annotated) -> str:
        p = a.packet
        conv = a.conv
        assert conv is not None
        cut = mtu_cut(p, conv.dirs[1 if a.from_client else 0].mss)  # the receiver's MSS
        if cut is None:
            return ""
        size, mtu, count, segment = cut
        return self._say(Confusion.LARGER_THAN_MTU, size=size, mtu=mtu, length=p.payload_len,
                         count=count, segment=segment)
