"""decode_frame: one captured frame in, one flat Packet out, for any bytes.

The promise (tested with hypothesis): for any ``data`` and any ``linktype`` the result is
a :class:`Packet`. Damage becomes a note, bytes that end inside a header set
``truncated`` to that layer (tcpdump's ``[|tcp]``), and nothing is dropped: a frame of an
unknown link type or ethertype is still a Packet, with its bytes in ``data``.
"""

from __future__ import annotations

import struct

from sockcap.codes import CountedNote, Note
from sockcap.decode.ip import (
    IPV4_FRAGMENT_BITS,
    NOP_NOP_TIMESTAMPS,
    TCP_FLAG_BITS,
    cached_ipv4_text,
    decode_ipv4,
    decode_ipv6,
    ipv4_text,
    new_tuple,
    read_nops_timestamps,
)
from sockcap.decode.link import (
    ETHER_MAX_LENGTH,
    ETHERTYPE_ARP,
    ETHERTYPE_IPV4,
    ETHERTYPE_IPV6,
    FAMILY_ETHERTYPES,
    LINK_DECODERS,
    NO_NETWORK,
    VLAN_TPIDS,
)
from sockcap.decode.records import (
    IPPROTO_TCP,
    LINKTYPE_ETHERNET,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_NULL,
    Packet,
    RawFrame,
    TcpOption,
)
from sockcap.decode.transport import NOP, tcp_options_or_none
from sockcap.decode.tunnel import (
    ETHERTYPE_PPPOE_DISCOVERY,
    ETHERTYPE_PPPOE_SESSION,
    pppoe_discovery,
    pppoe_session,
)

MAX_VLAN_TAGS = 8  # 802.1ad uses 2; Wireshark stops at 20, Linux's stack at 8
VLAN_TAG_LEN = 4
ARP_HEADER = struct.Struct("!HHBBH").unpack_from  # hardware, protocol, hlen, plen, operation
ARP_FIXED_LEN = 8
ARP_IPV4 = 0x0800

ETHERTYPE_NAMES = {
    ETHERTYPE_IPV4: "IPv4",
    ETHERTYPE_IPV6: "IPv6",
    ETHERTYPE_ARP: "ARP",
    0x8035: "RARP",
}

NOTE_VLAN_DEPTH = Note.VLAN_DEPTH

_U16 = struct.Struct("!H").unpack_from
_U32_LE = struct.Struct("<I").unpack_from
# Ethernet type, then as ip._IPV4_TCP without the protocol (checked before the read)
_ETHER_IPV4_TCP = struct.Struct("!12xHBxHHHBxxxIIHHIIHH").unpack_from
# NULL's address family, read little-endian, as written by either kind of host
NULL_FAMILIES = {
    **FAMILY_ETHERTYPES,
    **{family << 24: ethertype for family, ethertype in FAMILY_ETHERTYPES.items()},
}


def decode_frame(frame: RawFrame) -> Packet:
    """Decode the link, network and transport headers of one captured frame."""
    ts_ns, linktype, data, wirelen, _ = frame
    end = len(data)
    # Inlined for speed, in three steps of decreasing specialisation:
    # 1. Ethernet/IPv4/TCP, the most common frame, in one struct read and no call.
    if linktype == LINKTYPE_ETHERNET:
        if end >= 54 and data[23] == IPPROTO_TCP:
            (ethertype, version_ihl, total, ip_id, frag, ttl, s, d, sport, dport, seq, ack,
             offset_flags, window) = _ETHER_IPV4_TCP(data)  # fmt: skip
            hlen = (offset_flags >> 12) << 2
            payload_off = 34 + hlen
            if (
                ethertype == ETHERTYPE_IPV4
                and version_ihl == 0x45
                and not frag & IPV4_FRAGMENT_BITS
                and 20 <= hlen <= total - 20
                and 14 + total <= wirelen
                and payload_off <= end
            ):
                options: tuple[TcpOption, ...] | None = ()
                if hlen == 32:
                    head, value = read_nops_timestamps(data, 54)
                    if head == NOP_NOP_TIMESTAMPS:
                        options = (NOP, NOP, new_tuple(TcpOption, (8, value)))
                if hlen != 20 and not options:
                    options = tcp_options_or_none(data, 54, payload_off)
                if options is not None:
                    return new_tuple(Packet, (
                        ts_ns, linktype, wirelen, data, "IPv4",
                        cached_ipv4_text(s) or ipv4_text(s), cached_ipv4_text(d) or ipv4_text(d),
                        IPPROTO_TCP, sport, dport, seq, ack, offset_flags & TCP_FLAG_BITS,
                        window, options, payload_off, total - 20 - hlen, "", (), ip_id, ttl,
                        False, "",
                    ))  # fmt: skip
        if end < 14:
            return decode_link(ts_ns, linktype, wirelen, data)
        ethertype, off = data[12] << 8 | data[13], 14
    # 2. The other link types of loopback captures: find the network header without a call.
    elif linktype == LINKTYPE_LINUX_SLL and end >= 16:
        ethertype, off = data[14] << 8 | data[15], 16
    elif linktype == LINKTYPE_NULL and end >= 4:
        ethertype, off = NULL_FAMILIES.get(_U32_LE(data)[0], NO_NETWORK), 4
    elif linktype == LINKTYPE_LINUX_SLL2 and end >= 20:
        ethertype, off = data[0] << 8 | data[1], 20
    else:
        return decode_link(ts_ns, linktype, wirelen, data)
    # 3. IPv4 and IPv6 have their own fast paths; everything else takes the general one.
    if ethertype == ETHERTYPE_IPV4:
        return decode_ipv4(ts_ns, linktype, wirelen, data, off)
    if ethertype == ETHERTYPE_IPV6:
        return decode_ipv6(ts_ns, linktype, wirelen, data, off)
    return decode_link(ts_ns, linktype, wirelen, data)


def decode_link(ts_ns: int, linktype: int, wirelen: int, data: bytes) -> Packet:
    """The general path from the link header on, for any link type and any bytes."""
    link = LINK_DECODERS.get(linktype)
    if link is None:
        note = CountedNote(Note.UNSUPPORTED_LINKTYPE, linktype)
        return _packet(ts_ns, linktype, wirelen, data, "", 0, "", (note,))
    ethertype, off, cut, notes = link(data)
    if cut or ethertype == NO_NETWORK:
        return _packet(ts_ns, linktype, wirelen, data, "", off, cut, notes)
    return decode_network(ts_ns, linktype, wirelen, data, ethertype, off, notes)


def decode_network(
    ts_ns: int,
    linktype: int,
    wirelen: int,
    data: bytes,
    ethertype: int,
    off: int,
    notes: tuple[str, ...] = (),
) -> Packet:
    """The network layer that ``ethertype`` names, after any VLAN tags."""
    for _ in range(MAX_VLAN_TAGS):
        if ethertype not in VLAN_TPIDS:
            break
        if len(data) < off + VLAN_TAG_LEN:
            return _packet(ts_ns, linktype, wirelen, data, "", len(data), "vlan", notes)
        ethertype = _U16(data, off + 2)[0]
        off += VLAN_TAG_LEN
    else:
        if ethertype in VLAN_TPIDS:
            notes += (NOTE_VLAN_DEPTH,)
    if ethertype == ETHERTYPE_IPV4:
        return decode_ipv4(ts_ns, linktype, wirelen, data, off, notes)
    if ethertype == ETHERTYPE_IPV6:
        return decode_ipv6(ts_ns, linktype, wirelen, data, off, notes)
    if ethertype == ETHERTYPE_ARP:
        return decode_arp(ts_ns, linktype, wirelen, data, off, notes)
    if ethertype == ETHERTYPE_PPPOE_SESSION:
        return decode_pppoe_session(ts_ns, linktype, wirelen, data, off, notes)
    if ethertype == ETHERTYPE_PPPOE_DISCOVERY:
        name, cut = pppoe_discovery(data, off)
        return _packet(ts_ns, linktype, wirelen, data, name, off, cut, notes)
    return _packet(ts_ns, linktype, wirelen, data, ethertype_name(ethertype), off, "", notes)


def ethertype_name(ethertype: int) -> str:
    """Name of an ethertype: "IPv4", "ARP", "LLC" (802.3 length), else hex "0x88cc"."""
    name = ETHERTYPE_NAMES.get(ethertype)
    if name is not None:
        return name
    return "LLC" if ethertype <= ETHER_MAX_LENGTH else f"0x{ethertype:04x}"


def decode_arp(
    ts_ns: int, linktype: int, wirelen: int, data: bytes, off: int, notes: tuple[str, ...]
) -> Packet:
    """ARP (RFC 826): sender and target protocol addresses as src and dst when IPv4."""
    if len(data) < off + ARP_FIXED_LEN:
        return _packet(ts_ns, linktype, wirelen, data, "ARP", len(data), "arp", notes)
    _, protocol, hlen, plen, _ = ARP_HEADER(data, off)
    if protocol != ARP_IPV4 or plen != 4:
        return _packet(ts_ns, linktype, wirelen, data, "ARP", off, "", notes)
    sender = off + ARP_FIXED_LEN + hlen
    target = sender + 4 + hlen
    if len(data) < target + 4:
        return _packet(ts_ns, linktype, wirelen, data, "ARP", len(data), "arp", notes)
    src = ipv4_text(struct.unpack_from("!I", data, sender)[0])
    dst = ipv4_text(struct.unpack_from("!I", data, target)[0])
    return Packet(
        ts_ns, linktype, wirelen, data, "ARP", src, dst, -1, -1, -1, -1, -1, 0, -1, (),
        off, max(wirelen, len(data)) - off, "", notes,
    )  # fmt: skip


def decode_pppoe_session(
    ts_ns: int, linktype: int, wirelen: int, data: bytes, off: int, notes: tuple[str, ...]
) -> Packet:
    """PPPoE session stage (RFC 2516 6): the IP packet its PPP frame carries, else a line
    named for the PPP protocol ("PPP LCP")."""
    ethertype, inner, name, tunnel, cut, more = pppoe_session(data, off, wirelen)
    notes += more
    if ethertype == ETHERTYPE_IPV4:
        return decode_ipv4(ts_ns, linktype, wirelen, data, inner, notes, tunnel)
    if ethertype == ETHERTYPE_IPV6:
        return decode_ipv6(ts_ns, linktype, wirelen, data, inner, notes, tunnel)
    return _packet(ts_ns, linktype, wirelen, data, name, inner, cut, notes, tunnel)


def _packet(
    ts_ns: int,
    linktype: int,
    wirelen: int,
    data: bytes,
    net: str,
    off: int,
    truncated: str,
    notes: tuple[str, ...],
    tunnel: str = "",
) -> Packet:
    """A Packet without an IP layer; its payload is the rest of the frame on the wire.

    When the bytes end inside a header (``truncated``), the payload is empty.
    """
    if truncated:
        off, length = len(data), 0
    else:
        off = min(off, len(data))
        length = max(wirelen, len(data)) - off
    return Packet(
        ts_ns, linktype, wirelen, data, net, "", "", -1, -1, -1, -1, -1, 0, -1, (),
        off, length, truncated, notes, tunnel=tunnel,
    )  # fmt: skip
