"""ICMP (RFC 792) and ICMPv6 (RFC 4443): type and code in Wireshark's words, echo
identifiers, and the datagram an error quotes (its addresses, protocol and ports), which
ties the error to the TCP or UDP conversation it answers.

Pure: a decoded :class:`~sockcap.decode.records.Packet` in, an :class:`IcmpMessage` out
(None when the packet is not ICMP or its header is cut short). Every read is bounded.
"""

# No `from __future__ import annotations` here: with it, typing.NamedTuple compiles
# each field's annotation string into a ForwardRef at import (~99 fields on the path
# of `sockcap show`: a few ms of every start, bench/startup_bench.py).

from sockcap._typing import NamedTuple
from sockcap.decode.ip import ipv4_text, ipv6_text
from sockcap.decode.records import IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP, Packet

# ICMPv4 types and codes as Wireshark's packet-icmp.c names them
ICMP_TYPES = {
    0: "Echo (ping) reply", 3: "Destination unreachable", 4: "Source quench (flow control)",
    5: "Redirect", 8: "Echo (ping) request", 9: "Router advertisement",
    10: "Router solicitation", 11: "Time-to-live exceeded", 12: "Parameter problem",
    13: "Timestamp request", 14: "Timestamp reply",
}
ICMP_CODES = {
    3: {0: "Network unreachable", 1: "Host unreachable", 2: "Protocol unreachable",
        3: "Port unreachable", 4: "Fragmentation needed", 5: "Source route failed",
        6: "Destination network unknown", 7: "Destination host unknown",
        9: "Destination network administratively prohibited",
        10: "Destination host administratively prohibited",
        13: "Communication administratively filtered"},
    5: {0: "Redirect for network", 1: "Redirect for host"},
    11: {0: "Time to live exceeded in transit", 1: "Fragment reassembly time exceeded"},
}
# ICMPv6 as Wireshark's packet-icmpv6.c names them
ICMPV6_TYPES = {
    1: "Destination Unreachable", 2: "Packet Too Big", 3: "Time Exceeded",
    4: "Parameter Problem", 128: "Echo (ping) request", 129: "Echo (ping) reply",
    133: "Router Solicitation", 134: "Router Advertisement", 135: "Neighbor Solicitation",
    136: "Neighbor Advertisement", 137: "Redirect",
}
ICMPV6_CODES = {
    1: {0: "no route to destination",
        1: "communication with destination administratively prohibited",
        2: "beyond scope of source address", 3: "Address unreachable", 4: "Port unreachable"},
    3: {0: "hop limit exceeded in transit", 1: "fragment reassembly time exceeded"},
}
V4_ERRORS = frozenset((3, 4, 5, 11, 12))
V6_ERRORS = frozenset((1, 2, 3, 4))
V4_ECHO = {8: "request", 0: "reply"}
V6_ECHO = {128: "request", 129: "reply"}
PORT_UNREACHABLE = {IPPROTO_ICMP: (3, 3), IPPROTO_ICMPV6: (1, 4)}


class Quoted(NamedTuple):
    """The header of the datagram an ICMP error quotes (the packet that caused it)."""

    src: str
    dst: str
    proto: int
    sport: int  # -1 when the quote is too short to hold ports
    dport: int


class IcmpMessage(NamedTuple):
    type: int
    code: int
    name: str  # "Destination unreachable (Port unreachable)", Wireshark's Info text
    echo: str  # "request" / "reply" for an echo, else ""
    ident: int  # echo identifier, -1 when not an echo
    seq: int  # echo sequence number, -1 when not an echo
    quoted: Quoted | None  # an error's quoted datagram
    port_unreachable: bool
    v6: bool  # ICMPv6


def decode_icmp(p: Packet) -> IcmpMessage | None:
    """The ICMP or ICMPv6 message of ``p``; None if it is neither or shorter than 4 bytes."""
    if p.proto not in (IPPROTO_ICMP, IPPROTO_ICMPV6) or p.sport >= 0:
        return None
    body = p.data[p.payload_off : p.payload_off + max(p.payload_len, 0)]
    if len(body) < 4:
        return None
    kind, code = body[0], body[1]
    v6 = p.proto == IPPROTO_ICMPV6
    types, codes = (ICMPV6_TYPES, ICMPV6_CODES) if v6 else (ICMP_TYPES, ICMP_CODES)
    name = types.get(kind, f"Unknown ICMP{'v6' if v6 else ''} type {kind}")
    if kind in codes:
        name += f" ({codes[kind].get(code, f'Unknown code: {code}')})"
    echo = (V6_ECHO if v6 else V4_ECHO).get(kind, "")
    ident = seq = -1
    if echo and len(body) >= 8:
        ident, seq = int.from_bytes(body[4:6], "big"), int.from_bytes(body[6:8], "big")
    quoted = None
    if kind in (V6_ERRORS if v6 else V4_ERRORS):
        quoted = _quoted_v6(body[8:]) if v6 else _quoted_v4(body[8:])
    return IcmpMessage(kind, code, name, echo, ident, seq, quoted,
                       (kind, code) == PORT_UNREACHABLE[p.proto], v6)


def _ports(proto: int, rest: bytes) -> tuple[int, int]:
    if proto in (IPPROTO_TCP, IPPROTO_UDP) and len(rest) >= 4:
        return int.from_bytes(rest[0:2], "big"), int.from_bytes(rest[2:4], "big")
    return -1, -1


def _quoted_v4(ip: bytes) -> Quoted | None:
    if len(ip) < 20 or ip[0] >> 4 != 4:
        return None
    hlen = (ip[0] & 0x0F) * 4
    if hlen < 20:
        return None
    proto = ip[9]
    sport, dport = _ports(proto, ip[hlen:])
    return Quoted(ipv4_text(int.from_bytes(ip[12:16], "big")),
                  ipv4_text(int.from_bytes(ip[16:20], "big")), proto, sport, dport)


def _quoted_v6(ip: bytes) -> Quoted | None:
    if len(ip) < 40 or ip[0] >> 4 != 6:
        return None
    proto = ip[6]
    sport, dport = _ports(proto, ip[40:])
    return Quoted(ipv6_text(ip[8:24]), ipv6_text(ip[24:40]), proto, sport, dport)
