"""What a capture does that confuses learners, detected and explained (pure).

Each :class:`Confusion` is a code; its words are in the catalogue. ``--explain`` adds
the sentence under the packet that shows it (once per connection where it would repeat
on every packet) and counts them after the notes. Three of them are also notes in the
timeline (:class:`sockcap.codes.Note` ``PORT_REUSE``, ``WINDOW_SCALE_UNKNOWN``,
``TIME_WAIT``; ``sockcap.pipeline.contract.CONFUSION_NOTES``), detected per packet by
both engines' conversation trackers; the contract says why the others are not.

- partial checksum: on loopback and veth the kernel leaves the TCP checksum to the
  network card (checksum offload), so the capture holds only the pseudo-header's sum
  (Linux's CHECKSUM_PARTIAL); Wireshark 4.2 labels it "partial". Detected by computing
  the real checksum (RFC 9293 3.1) and the pseudo-header sum.
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
  capture (tshark's ``tcp.analysis.reused_ports``).
"""

from __future__ import annotations

import enum
import functools
import ipaddress
import struct
import sys

from sockcap.analysis.conversation import Annotated
from sockcap.decode.records import IPPROTO_TCP, Packet, TcpFlags, TcpOptionKind
from sockcap.decode.transport import TCP_OFFSET_BYTE, tcp_header_len
from sockcap.i18n import N_, _
from sockcap.render.fields import header_fields

FIN, SYN, RST, ACK, PSH = (int(f) for f in (TcpFlags.FIN, TcpFlags.SYN, TcpFlags.RST,
                                            TcpFlags.ACK, TcpFlags.PSH))
ETHERNET_MTU = 1500
DELAYED_NS = 20_000_000  # an ACK this late after the data was delayed on purpose
RELEASED_NS = 10_000_000  # bytes sent this soon after that ACK were waiting for it
# a payload this small fits any MTU an MSS can come from (the IPv6 minimum MTU, 1280, less
# 60 + 60 bytes of IP and TCP headers at most): no need to look further
SMALLEST_MTU_PAYLOAD = 1160


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

    def __init__(self) -> None:
        self.counts: dict[Confusion, int] = {}
        self._said: set[tuple[int, Confusion]] = set()  # (stream, kind) said once
        self._mss: dict[tuple[int, bool], int] = {}  # (stream, from_client) -> MSS it offered
        self._ended: dict[tuple[object, ...], int] = {}  # 4-tuple -> last stream on it
        self._data: dict[tuple[int, bool], tuple[int, int]] = {}  # side -> (next seq, ts)
        self._acked: dict[tuple[int, bool], tuple[int, int]] = {}  # side -> (pure ACK, ts)

    def find(self, a: Annotated, own_fin: bool, acks_peer_fin: bool) -> list[str]:
        """Sentences for ``a`` (a TCP packet with a conversation); ``own_fin``: its sender
        sent a FIN before, ``acks_peer_fin``: it acknowledges the peer's FIN."""
        conv, p = a.conv, a.packet
        assert conv is not None
        out: list[str] = []
        stream = conv.stream
        if p.flags & SYN:
            key = (p.src, p.sport, p.dst, p.dport)
            for o in p.options:
                if o.kind == TcpOptionKind.MSS and len(o.value) == 2:
                    self._mss[(stream, a.from_client)] = int.from_bytes(o.value, "big")
            if not p.flags & ACK:
                earlier = self._ended.get(key)
                if earlier is not None and earlier != stream:
                    out.append(self._say(Confusion.PORT_REUSE, stream=earlier))
            self._ended[key] = stream
        checksum = _partial_checksum(p, _tcp_start(p))
        if checksum is not None:
            self._count(Confusion.PARTIAL_CHECKSUM)
            if self._once(stream, Confusion.PARTIAL_CHECKSUM):
                out.append(self._say(Confusion.PARTIAL_CHECKSUM, checksum=f"0x{checksum[0]:04x}",
                                     real=f"0x{checksum[1]:04x}"))
        mss = self._mss.get((stream, not a.from_client))  # what the receiver offered
        bound = SMALLEST_MTU_PAYLOAD if mss is None else min(SMALLEST_MTU_PAYLOAD, mss - 40)
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
        ip_off, tcp_off = _offsets(p)
        if tcp_off < 0 or ip_off < 0:
            return ""
        headers = p.payload_off - ip_off
        size = headers + p.payload_len
        mss = self._mss.get((conv.stream, not a.from_client))  # what the receiver offered
        tcp_options = p.payload_off - tcp_off - 20
        if mss is not None:
            segment = mss - tcp_options
            mtu = mss + 40 if ":" not in p.src else mss + 60
        else:
            mtu = ETHERNET_MTU
            segment = mtu - headers
        if size <= mtu or segment <= 0:
            return ""
        count = -(-p.payload_len // segment)
        return self._say(Confusion.LARGER_THAN_MTU, size=size, mtu=mtu, length=p.payload_len,
                         count=count, segment=segment)


def _offsets(p: Packet) -> tuple[int, int]:
    """Where the IP and the TCP headers start in the frame (-1: not found), from the
    report's field map (:func:`~sockcap.render.fields.header_fields`: it walks every
    layer, so it is asked only for the rare segment that may be larger than an MTU)."""
    ip = tcp = -1
    for f in header_fields(p):
        if ip < 0 and f.layer in ("IPv4", "IPv6"):
            ip = f.start
        elif f.layer == "TCP":
            tcp = f.start
            break
    return ip, tcp


def _tcp_start(p: Packet) -> int:
    """Where the TCP header starts: the one place before the payload where the ports
    and the header's own length (data offset) agree (-1: none).

    The ports are compared as one 32-bit number read in place (no slice nor ``to_bytes``
    a try: most segments carry 12 bytes of options, the fourth length tried, and this
    runs for every TCP packet ``--explain`` reads)."""
    data, end = p.data, p.payload_off
    ports = p.sport << 16 | p.dport
    size = len(data)
    for length in range(20, 64, 4):
        start = end - length
        if start < 0:
            break
        if start + 13 <= size and _U32(data, start)[0] == ports \
                and tcp_header_len(data[start + TCP_OFFSET_BYTE]) == length:
            return start
    return -1


_U32 = struct.Struct("!I").unpack_from
_LITTLE = sys.byteorder == "little"


@functools.lru_cache(maxsize=256)
def _address_sum(address: str) -> int:
    """The sum of an address' big-endian 16-bit words (its part of the pseudo-header's
    sum); -1 for text that is no address."""
    try:
        packed = ipaddress.ip_address(address).packed
    except ValueError:
        return -1
    return sum(memoryview(packed).cast("H")) if not _LITTLE else \
        sum(packed[i] << 8 | packed[i + 1] for i in range(0, len(packed), 2))


def _partial_checksum(p: Packet, start: int = -2) -> tuple[int, int] | None:
    """``(field, real)`` when the TCP checksum field holds the pseudo-header's sum (the
    real checksum left to the card), None when it is right or cannot be checked.
    ``start``: where the TCP header starts, when the caller knows.

    One's-complement sums (RFC 1071) are added before they are folded, the same sum as
    folding each part first (2(C)): the pseudo-header's (RFC 9293 3.1: the addresses,
    the protocol, the segment's length; for IPv6, RFC 8200 8.1, the same words) from each
    address' cached sum, the segment's summed in place as native words (``memoryview``:
    no copy, the checksum field taken out of the sum rather than zeroed in a copy) and
    swapped back on a little-endian machine (2(B)). Only a field equal to the partial sum
    needs the real checksum."""
    if p.proto != IPPROTO_TCP or p.fragment or p.truncated:
        return None
    if start == -2:
        start = _tcp_start(p)
    end = p.payload_off + p.payload_len
    data = p.data
    if start < 0 or end > len(data):
        return None
    length = end - start
    if length > 0xFFFF:
        return None  # BIG TCP: larger than the pseudo-header's length field
    src, dst = _address_sum(p.src), _address_sum(p.dst)
    if src < 0 or dst < 0:
        return None
    pseudo = src + dst + IPPROTO_TCP + length
    field = data[start + 16] << 8 | data[start + 17]
    if field != _fold(pseudo):
        return None
    even = end - (length & 1)
    native = sum(memoryview(data)[start:even].cast("H"))
    if _LITTLE:
        native -= data[start + 17] << 8 | data[start + 16]  # the field, as a native word
        native = _fold(native)
        segment = (native & 0xFF) << 8 | native >> 8
    else:
        segment = native - field
    if even != end:
        segment += data[even] << 8  # the odd last byte, padded with a zero (RFC 1071)
    real = ~_fold(pseudo + segment) & 0xFFFF
    if field == real:
        return None
    return field, real


def _fold(total: int) -> int:
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total
