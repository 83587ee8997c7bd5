"""IPv4 (RFC 791) and IPv6 (RFC 8200) headers, and the transport header after them.

:func:`decode_ipv4` and :func:`decode_ipv6` first try the common case inline: an
undamaged header followed by a whole TCP or UDP header, decoded with one precompiled
``struct`` call and no intermediate objects. Anything else (options, fragments, extension
headers, damage, a cut) goes to the ``*_general`` functions, which check every read.
A test checks that both paths give the same Packet wherever the fast one applies.
"""

from __future__ import annotations

import struct

# Pure conversions only (address bytes to text); the decoder opens no socket.
# From _socket, the C module socket.py wraps: the same functions, without socket.py's
# enums and selectors (a few milliseconds of every command's start-up).
from _socket import AF_INET6, inet_ntoa, inet_ntop

from sockcap.codes import Note
from sockcap.decode.link import ETHERTYPE_IPV4, ETHERTYPE_IPV6
from sockcap.decode.records import IPPROTO_UDP, TUNNEL_L2TP, Packet, TcpOption
from sockcap.decode.transport import (
    NOP,
    TransportFields,
    decode_transport,
    tcp_header_len,
    tcp_options_or_none,
)
from sockcap.decode.tunnel import L2TP_PORT, Inner, l2tp

IPV4_MIN_HEADER = 20
IPV6_HEADER_LEN = 40
IPV4_MF = 0x2000  # more fragments
IPV4_OFFSET_MASK = 0x1FFF  # fragment offset, in 8-byte units
IPV4_FRAGMENT_BITS = IPV4_MF | IPV4_OFFSET_MASK
TCP_FLAG_BITS = 0x1FF  # the nine flags below the data offset (RFC 9293 3.1, RFC 9768)

# Extension headers that carry a next-header byte and a length (RFC 8200 4, IANA
# "IPv6 Extension Header Types"): hop-by-hop, routing, fragment, AH, destination
# options, mobility, HIP, shim6.
IPV6_HOP_BY_HOP = 0
IPV6_FRAGMENT = 44
IPV6_AH = 51
IPV6_EXT_HEADERS = frozenset({0, 43, 44, 51, 60, 135, 139, 140})
IPV6_MAX_EXT_HEADERS = 16  # RFC 8200 needs at most 8; more is abuse (RFC 9098)
IPV6_JUMBO_OPTION = 0xC2  # RFC 2675 2
IPV6_PAD1 = 0

NOTE_IP_VERSION = Note.IP_VERSION
NOTE_IP_HLEN = Note.IP_HLEN
NOTE_IP_LEN = Note.IP_LEN
NOTE_IP_V6 = Note.IP_V6_IN_V4
NOTE_IP_LEN_FRAME = Note.IP_LEN_FRAME
NOTE_IP6_LEN_FRAME = Note.IP6_LEN_FRAME
NOTE_IP6_EXT_LEN = Note.IP6_EXT_LEN
NOTE_IP6_EXT_MANY = Note.IP6_EXT_MANY

# The common case in one read each (inlined below):
# version/IHL, total length, id, fragment field, TTL, protocol, src, dst, then TCP's
# sport, dport, seq, ack, data offset and flags (4 + 3 + 9 bits), window, or UDP's sport,
# dport, length.
_IPV4_TCP = struct.Struct("!BxHHHBBxxIIHHIIHH").unpack_from
_IPV4_UDP = struct.Struct("!BxHHHBBxxIIHHH").unpack_from
_IPV4 = struct.Struct("!BxHHHBBxxII").unpack_from
# payload length, next header, hop limit, src, dst, then TCP or UDP as above
_IPV6_TCP = struct.Struct("!4xHBB16s16sHHIIHH").unpack_from
_IPV6_UDP = struct.Struct("!4xHBB16s16sHHH").unpack_from
_IPV6 = struct.Struct("!4xHBB16s16s").unpack_from
_U16 = struct.Struct("!H").unpack_from
_U32 = struct.Struct("!I").unpack_from
read_nops_timestamps = struct.Struct("!I8s").unpack_from  # NOP, NOP, kind 8, length 10, value
NOP_NOP_TIMESTAMPS = 0x0101080A  # the options Linux puts on every segment after the SYN

new_tuple = tuple.__new__  # builds a NamedTuple without its __new__ (half the cost)
_ntoa = inet_ntoa
_ntop = inet_ntop
_AF_INET6 = AF_INET6

# Address text is cached: inet_ntoa costs about 0.3 us a call (measured), a fifth of the
# whole decode per address, and a capture has few distinct addresses. Bounded: the cache
# is cleared when full, so memory stays small whatever the capture holds.
ADDRESS_CACHE_SIZE = 4096
_V4_TEXT: dict[int, str] = {}
_V6_TEXT: dict[bytes, str] = {}
cached_ipv4_text = _V4_TEXT.get
cached_ipv6_text = _V6_TEXT.get

Frame = tuple[int, int, int, bytes]  # ts_ns, linktype, wirelen, data


def ipv4_text(addr: int) -> str:
    """Dotted-quad text of a 32-bit address."""
    text = _V4_TEXT.get(addr)
    if text is None:
        if len(_V4_TEXT) >= ADDRESS_CACHE_SIZE:
            _V4_TEXT.clear()
        text = _V4_TEXT[addr] = _ntoa(addr.to_bytes(4, "big"))
    return text


def ipv6_text(addr: bytes) -> str:
    """Compressed IPv6 text (RFC 5952, as tshark shows it)."""
    text = _V6_TEXT.get(addr)
    if text is None:
        if len(_V6_TEXT) >= ADDRESS_CACHE_SIZE:
            _V6_TEXT.clear()
        text = _V6_TEXT[addr] = _ntop(_AF_INET6, addr)
    return text


def decode_ipv4(
    ts_ns: int, linktype: int, wirelen: int, data: bytes, off: int,
    notes: tuple[str, ...] = (), tunnel: str = "",
) -> Packet:
    """IPv4 at ``off`` and the transport header after it (``tunnel``: what it came in)."""
    # Inlined for speed: a 20-byte header (0x45) then a whole TCP or UDP header, not a
    # fragment, lengths consistent with each other and with the frame.
    end = len(data)
    if end >= off + 28 and data[off] == 0x45:
        proto = data[off + 9]
        if proto == 6 and end >= off + 40:
            (_, total, ip_id, frag, ttl, _, s, d, sport, dport, seq, ack, offset_flags,
             window) = _IPV4_TCP(data, off)  # fmt: skip
            hlen = tcp_header_len(offset_flags >> 8)
            payload_off = off + 20 + hlen
            if (
                not frag & IPV4_FRAGMENT_BITS
                and 40 <= 20 + hlen <= total
                and off + total <= wirelen
                and payload_off <= end
            ):
                options: tuple[TcpOption, ...] | None = ()
                if hlen == 32:
                    head, value = read_nops_timestamps(data, off + 40)
                    if head == NOP_NOP_TIMESTAMPS:
                        options = (NOP, NOP, new_tuple(TcpOption, (8, value)))
                if hlen != 20 and not options:
                    options = tcp_options_or_none(data, off + 40, payload_off)
                if options is not None:
                    return new_tuple(Packet, (
                        ts_ns, linktype, wirelen, data, "IPv4",
                        cached_ipv4_text(s) or ipv4_text(s), cached_ipv4_text(d) or ipv4_text(d),
                        6, sport, dport, seq, ack, offset_flags & TCP_FLAG_BITS, window,
                        options, payload_off, total - 20 - hlen, "", notes, ip_id, ttl, False,
                        tunnel,
                    ))  # fmt: skip
        elif proto == 17:
            _, total, ip_id, frag, ttl, _, s, d, sport, dport, length = _IPV4_UDP(data, off)
            if (
                not frag & IPV4_FRAGMENT_BITS
                and length == total - 20 >= 8
                and off + total <= wirelen
                and sport != L2TP_PORT != dport
            ):
                return new_tuple(Packet, (
                    ts_ns, linktype, wirelen, data, "IPv4",
                    cached_ipv4_text(s) or ipv4_text(s), cached_ipv4_text(d) or ipv4_text(d),
                    17, sport, dport, -1, -1, 0, -1, (), off + 28, length - 8, "", notes,
                    ip_id, ttl, False, tunnel,
                ))  # fmt: skip
    return decode_ipv4_general(ts_ns, linktype, wirelen, data, off, notes, tunnel)


def decode_ipv6(
    ts_ns: int, linktype: int, wirelen: int, data: bytes, off: int,
    notes: tuple[str, ...] = (), tunnel: str = "",
) -> Packet:
    """IPv6 at ``off``, its extension headers, and the transport header after them."""
    # Inlined for speed: TCP or UDP right after the fixed header, lengths consistent.
    end = len(data)
    if end >= off + 48 and data[off] >> 4 == 6:
        proto = data[off + 6]
        if proto == 6 and end >= off + 60:
            (plen, _, hop_limit, s, d, sport, dport, seq, ack, offset_flags,
             window) = _IPV6_TCP(data, off)  # fmt: skip
            hlen = tcp_header_len(offset_flags >> 8)
            payload_off = off + 40 + hlen
            if 20 <= hlen <= plen and off + 40 + plen <= wirelen and payload_off <= end:
                options: tuple[TcpOption, ...] | None = ()
                if hlen == 32:
                    head, value = read_nops_timestamps(data, off + 60)
                    if head == NOP_NOP_TIMESTAMPS:
                        options = (NOP, NOP, new_tuple(TcpOption, (8, value)))
                if hlen != 20 and not options:
                    options = tcp_options_or_none(data, off + 60, payload_off)
                if options is not None:
                    return new_tuple(Packet, (
                        ts_ns, linktype, wirelen, data, "IPv6",
                        cached_ipv6_text(s) or ipv6_text(s), cached_ipv6_text(d) or ipv6_text(d),
                        6, sport, dport, seq, ack, offset_flags & TCP_FLAG_BITS, window,
                        options, payload_off, plen - hlen, "", notes, -1, hop_limit, False,
                        tunnel,
                    ))  # fmt: skip
        elif proto == 17:
            plen, _, hop_limit, s, d, sport, dport, length = _IPV6_UDP(data, off)
            if length == plen >= 8 and off + 40 + plen <= wirelen and sport != L2TP_PORT != dport:
                return new_tuple(Packet, (
                    ts_ns, linktype, wirelen, data, "IPv6",
                    cached_ipv6_text(s) or ipv6_text(s), cached_ipv6_text(d) or ipv6_text(d),
                    17, sport, dport, -1, -1, 0, -1, (), off + 48, length - 8, "", notes,
                    -1, hop_limit, False, tunnel,
                ))  # fmt: skip
    return decode_ipv6_general(ts_ns, linktype, wirelen, data, off, notes, tunnel)


def no_transport(payload_off: int, payload_len: int, truncated: str = "") -> TransportFields:
    """Transport fields of a packet whose transport header is not (or cannot be) decoded."""
    return -1, -1, -1, -1, 0, -1, (), payload_off, payload_len, truncated, ()


def ip_packet(
    frame: Frame,
    net: str,
    addrs: tuple[str, str, int],
    transport: TransportFields,
    notes: tuple[str, ...],
    id_ttl_fragment: tuple[int, int, bool],
    tunnel: str = "",
) -> Packet:
    """Assemble a Packet; ``addrs`` is (src, dst, proto), the other tuples as named."""
    # TransportFields is in Packet field order from sport to truncated.
    return new_tuple(
        Packet,
        (*frame, net, *addrs, *transport[:10], notes + transport[10], *id_ttl_fragment,
         tunnel),
    )


def ip_transport_packet(
    frame: Frame,
    net: str,
    addrs: tuple[str, str, int],
    transport: TransportFields,
    notes: tuple[str, ...],
    id_ttl_fragment: tuple[int, int, bool],
    tunnel: str,
) -> Packet:
    """:func:`ip_packet`, or what an L2TP message on UDP port 1701 carries: on a plain
    link or inside PPPoE (a DSL line carrying an L2TP tunnel, as tshark decodes it), never
    inside L2TP itself (no recursion), nor in a fragment, which holds only part of it."""
    if (
        addrs[2] == IPPROTO_UDP
        and (transport[0] == L2TP_PORT or transport[1] == L2TP_PORT)
        and tunnel != TUNNEL_L2TP
        and not id_ttl_fragment[2]
        and not transport[9]
    ):
        start = transport[7]
        inner = l2tp(frame[3], start, start + transport[8])
        if inner is not None:
            return _l2tp_packet(frame, net, addrs, transport, notes + transport[10],
                                id_ttl_fragment, inner)
    return ip_packet(frame, net, addrs, transport, notes, id_ttl_fragment, tunnel)


def _l2tp_packet(
    frame: Frame,
    net: str,
    addrs: tuple[str, str, int],
    transport: TransportFields,
    notes: tuple[str, ...],
    id_ttl_fragment: tuple[int, int, bool],
    inner: Inner,
) -> Packet:
    """The IP packet an L2TP data message carries, else a line named for the message
    ("L2TP SCCRQ", "PPP LCP") between the outer addresses, without ports."""
    ethertype, off, name, tunnel, cut, more = inner
    ts_ns, linktype, wirelen, data = frame
    notes += more
    if ethertype == ETHERTYPE_IPV4:
        return decode_ipv4(ts_ns, linktype, wirelen, data, off, notes, tunnel)
    if ethertype == ETHERTYPE_IPV6:
        return decode_ipv6(ts_ns, linktype, wirelen, data, off, notes, tunnel)
    end = transport[7] + transport[8]
    rest = no_transport(len(data), 0, cut) if cut else no_transport(off, max(0, end - off))
    return ip_packet(frame, name, (addrs[0], addrs[1], -1), rest, notes, id_ttl_fragment,
                     tunnel)


def decode_ipv4_general(
    ts_ns: int, linktype: int, wirelen: int, data: bytes, off: int,
    notes: tuple[str, ...] = (), tunnel: str = "",
) -> Packet:
    """IPv4, however damaged or cut short (tcpdump's ip_print and Wireshark's rules)."""
    frame = (ts_ns, linktype, wirelen, data)
    captured = len(data) - off
    cut_here = no_transport(len(data), 0, "ip")
    if captured < 1:
        return ip_packet(frame, "IPv4", ("", "", -1), cut_here, notes, (-1, -1, False), tunnel)
    version, hlen = data[off] >> 4, (data[off] & 0x0F) * 4
    if version == 6:  # Wireshark decodes it as IPv6 too (seen with LINKTYPE_IPV4)
        return decode_ipv6_general(ts_ns, linktype, wirelen, data, off, (*notes, NOTE_IP_V6), tunnel)
    note = ""
    if version != 4:
        note = NOTE_IP_VERSION
    elif hlen < IPV4_MIN_HEADER:
        note = NOTE_IP_HLEN
    elif captured >= 4 and 0 < _U16(data, off + 2)[0] < hlen:
        note = NOTE_IP_LEN
    if note:  # like tcpdump and Wireshark, show nothing from a header that is not one
        stop = no_transport(off, 0)
        return ip_packet(frame, "IPv4", ("", "", -1), stop, (*notes, note), (-1, -1, False), tunnel)
    if captured < IPV4_MIN_HEADER:
        return _ipv4_partial(frame, off, notes, tunnel)
    _, total, ip_id, frag, ttl, proto, s, d = _IPV4(data, off)
    addrs = (ipv4_text(s), ipv4_text(d), proto)
    reported = max(wirelen, len(data)) - off  # what the frame could hold on the wire
    fragment = bool(frag & IPV4_FRAGMENT_BITS)
    ids = (ip_id, ttl, fragment)
    if total == 0:
        total = reported  # TCP segmentation offload: the NIC fills the length in later
    elif total > reported:
        notes += (NOTE_IP_LEN_FRAME,)
        total = reported
    if hlen > captured:
        return ip_packet(frame, "IPv4", addrs, cut_here, notes, ids, tunnel)
    if frag & IPV4_OFFSET_MASK:  # a later fragment: no transport header here
        later = no_transport(off + hlen, total - hlen)
        return ip_packet(frame, "IPv4", addrs, later, notes, ids, tunnel)
    transport = decode_transport(proto, data, off + hlen, total - hlen, fragment)
    return ip_transport_packet(frame, "IPv4", addrs, transport, notes, ids, tunnel)


def _ipv4_partial(frame: Frame, off: int, notes: tuple[str, ...], tunnel: str) -> Packet:
    """The fields of an IPv4 header that fit in the fewer than 20 bytes captured."""
    data = frame[3]
    captured = len(data) - off
    _, _, ip_id, _, ttl, proto, s, _ = _IPV4(data[off:] + bytes(IPV4_MIN_HEADER - captured))
    addrs = (ipv4_text(s) if captured >= 16 else "", "", proto if captured >= 10 else -1)
    ids = (ip_id if captured >= 6 else -1, ttl if captured >= 9 else -1, False)
    return ip_packet(frame, "IPv4", addrs, no_transport(len(data), 0, "ip"), notes, ids, tunnel)


def decode_ipv6_general(
    ts_ns: int, linktype: int, wirelen: int, data: bytes, off: int,
    notes: tuple[str, ...] = (), tunnel: str = "",
) -> Packet:
    """IPv6 with any extension headers, however damaged or cut short."""
    frame = (ts_ns, linktype, wirelen, data)
    captured = len(data) - off
    cut_here = no_transport(len(data), 0, "ip6")
    if captured < 1:
        return ip_packet(frame, "IPv6", ("", "", -1), cut_here, notes, (-1, -1, False), tunnel)
    if data[off] >> 4 != 6:
        stop = no_transport(off, 0)
        return ip_packet(frame, "IPv6", ("", "", -1), stop, (*notes, NOTE_IP_VERSION),
                         (-1, -1, False), tunnel)  # fmt: skip
    if captured < IPV6_HEADER_LEN:
        return _ipv6_partial(frame, off, notes, tunnel)
    plen, next_header, hop_limit, s, d = _IPV6(data, off)
    addrs = (ipv6_text(s), ipv6_text(d), -1)
    reported = max(wirelen, len(data)) - off - IPV6_HEADER_LEN
    if plen > reported:
        notes += (NOTE_IP6_LEN_FRAME,)
    # A zero payload length means a jumbogram (RFC 2675) or segmentation offload; the
    # hop-by-hop walk below replaces it with the jumbo payload length if there is one.
    payload_end = off + IPV6_HEADER_LEN + (min(plen, reported) if plen else reported)
    chain = walk_ipv6_chain(data, off + IPV6_HEADER_LEN, next_header, payload_end, plen == 0)
    proto, pos, payload_end, fragment, later, cut, chain_notes = chain
    notes += chain_notes
    ids = (-1, hop_limit, fragment)
    if cut or proto < 0:
        stop = no_transport(len(data), 0, cut)
        return ip_packet(frame, "IPv6", addrs, stop, notes, ids, tunnel)
    addrs = (*addrs[:2], proto)
    if later:
        return ip_packet(frame, "IPv6", addrs, no_transport(pos, payload_end - pos), notes, ids, tunnel)
    transport = decode_transport(proto, data, pos, payload_end - pos, fragment)
    return ip_transport_packet(frame, "IPv6", addrs, transport, notes, ids, tunnel)


def _ipv6_partial(frame: Frame, off: int, notes: tuple[str, ...], tunnel: str) -> Packet:
    """The fields of an IPv6 header that fit in the fewer than 40 bytes captured."""
    data = frame[3]
    captured = len(data) - off
    _, _, hop_limit, s, _ = _IPV6(data[off:] + bytes(IPV6_HEADER_LEN - captured))
    addrs = (ipv6_text(s) if captured >= 24 else "", "", -1)
    ids = (-1, hop_limit if captured >= 8 else -1, False)
    return ip_packet(frame, "IPv6", addrs, no_transport(len(data), 0, "ip6"), notes, ids, tunnel)


# upper-layer protocol (-1 if not reached), its offset, end of the IPv6 payload, fragment,
# later fragment, truncated layer, notes
Ipv6Chain = tuple[int, int, int, bool, bool, str, tuple[str, ...]]


def walk_ipv6_chain(
    data: bytes, pos: int, next_header: int, payload_end: int, jumbo_possible: bool
) -> Ipv6Chain:
    """Follow the extension headers from ``pos``; iterative and bounded."""
    fragment = False
    first = pos  # a hop-by-hop header is only valid here, right after the fixed header
    for _ in range(IPV6_MAX_EXT_HEADERS):
        if next_header not in IPV6_EXT_HEADERS:
            return next_header, pos, payload_end, fragment, False, "", ()
        if pos + 2 > len(data) or pos + 2 > payload_end:
            return _chain_stop(pos + 2, payload_end, fragment)
        if next_header == IPV6_FRAGMENT:
            hlen = 8
        elif next_header == IPV6_AH:
            hlen = (data[pos + 1] + 2) * 4  # RFC 4302 2.2: in 4-byte units, minus 2
        else:
            hlen = (data[pos + 1] + 1) * 8
        if pos + hlen > len(data) or pos + hlen > payload_end:
            return _chain_stop(pos + hlen, payload_end, fragment)
        if next_header == IPV6_FRAGMENT:
            offset_flags = _U16(data, pos + 2)[0]
            fragment = True
            if offset_flags & 0xFFF8:  # a later fragment: the upper header is not here
                return data[pos], pos + 8, payload_end, True, True, "", ()
            fragment = bool(offset_flags & 1)  # M flag; offset 0 and no M is "atomic"
        elif next_header == IPV6_HOP_BY_HOP and jumbo_possible and pos == first:
            payload_end = _jumbo_end(data, pos, hlen, payload_end)
        next_header = data[pos]
        pos += hlen
    if next_header not in IPV6_EXT_HEADERS:
        return next_header, pos, payload_end, fragment, False, "", ()
    return -1, pos, payload_end, fragment, False, "", (NOTE_IP6_EXT_MANY,)


def _chain_stop(need: int, payload_end: int, fragment: bool) -> Ipv6Chain:
    """An extension header runs past the payload (damage) or the capture (a cut)."""
    if need > payload_end:
        return -1, payload_end, payload_end, fragment, False, "", (NOTE_IP6_EXT_LEN,)
    return -1, payload_end, payload_end, fragment, False, "ip6", ()


def _jumbo_end(data: bytes, pos: int, hlen: int, payload_end: int) -> int:
    """End of the payload per a Jumbo Payload option in this hop-by-hop header, if any."""
    i, stop = pos + 2, pos + hlen
    while i + 1 < stop:
        kind = data[i]
        if kind == IPV6_PAD1:
            i += 1
            continue
        length = data[i + 1]
        if kind == IPV6_JUMBO_OPTION and length == 4 and i + 6 <= stop:
            # the jumbo length counts from the end of the fixed header, where this one starts
            jumbo: int = _U32(data, i + 2)[0]
            return min(payload_end, pos + jumbo)
        i += 2 + length
    return payload_end
