"""Where each header field of a frame lies in its bytes: the report's byte view.

Pure: a decoded :class:`~sockcap.decode.records.Packet` in, :class:`Field` records out,
each with its layer, name, value as text and byte range in ``packet.data``, as Wireshark
highlights a field's bytes in its packet bytes pane. Only what was captured is listed: a
field cut off by the snap length is left out; an unknown link type gives no fields.
"""

from __future__ import annotations

from typing import NamedTuple

from sockcap.decode.ip import walk_ipv6_chain
from sockcap.decode.link import ETHER_HEADER_LEN, LINK_HEADER_LEN, VLAN_TPIDS
from sockcap.decode.records import (
    IPPROTO_TCP,
    IPPROTO_UDP,
    LINKTYPE_ETHERNET,
    Packet,
)
from sockcap.decode.transport import TCP_OFFSET_BYTE, tcp_header_len
from sockcap.i18n import N_
from sockcap.render.timeline import flag_names, preview


class Field(NamedTuple):
    layer: str  # "Ethernet", "IPv4", "IPv6", "TCP", "UDP", "payload"
    name: str  # in English (a catalogue message: a view translates it with _())
    start: int  # first byte in the frame
    end: int  # byte after the last
    value: str


def header_fields(p: Packet) -> list[Field]:
    """The fields of ``p``'s headers and its payload, in frame order."""
    fields: list[Field] = []
    net = _link(p, fields)
    if net < 0:
        return fields
    transport = -1
    if p.net == "IPv4":
        transport = _ipv4(p, net, fields)
    elif p.net == "IPv6":
        transport = _ipv6(p, net, fields)
    if transport >= 0 and p.sport >= 0 and not p.fragment:
        if p.proto == IPPROTO_TCP:
            _tcp(p, transport, fields)
        elif p.proto == IPPROTO_UDP:
            _udp(p, transport, fields)
    if p.sport >= 0 and p.payload_len > 0 and p.payload_off < len(p.data):
        end = min(len(p.data), p.payload_off + p.payload_len)
        fields.append(Field("payload", N_("data"), p.payload_off, end,
                            f"{p.payload_len} bytes {preview(p.payload)}"))
    return [f for f in fields if f.end <= len(p.data)]


def _u(data: bytes, start: int, size: int) -> int:
    return int.from_bytes(data[start : start + size], "big")


def _link(p: Packet, fields: list[Field]) -> int:
    """The link layer's fields; the offset of the network header (-1: unknown)."""
    data = p.data
    if p.linktype != LINKTYPE_ETHERNET:
        return LINK_HEADER_LEN.get(p.linktype, -1)
    if len(data) < ETHER_HEADER_LEN:
        return -1
    mac = ":".join
    fields += [Field("Ethernet", N_("destination"), 0, 6, mac(f"{b:02x}" for b in data[0:6])),
               Field("Ethernet", N_("source"), 6, 12, mac(f"{b:02x}" for b in data[6:12]))]
    off = 12
    while _u(data, off, 2) in VLAN_TPIDS and off + 6 <= len(data):
        fields.append(Field("Ethernet", N_("VLAN tag"), off, off + 4, f"id {_u(data, off + 2, 2) & 0xFFF}"))
        off += 4
    fields.append(Field("Ethernet", N_("type"), off, off + 2, f"0x{_u(data, off, 2):04x}"))
    return off + 2


def _ipv4(p: Packet, o: int, fields: list[Field]) -> int:
    data = p.data
    if len(data) < o + 20:
        return -1
    ihl = (data[o] & 15) * 4
    flags = data[o + 6] >> 5
    fields += [
        Field("IPv4", N_("version, header length"), o, o + 1, f"4, {ihl} bytes"),
        Field("IPv4", N_("DSCP, ECN"), o + 1, o + 2, f"0x{data[o + 1]:02x}"),
        Field("IPv4", N_("total length"), o + 2, o + 4, str(_u(data, o + 2, 2))),
        Field("IPv4", N_("identification"), o + 4, o + 6, f"0x{_u(data, o + 4, 2):04x}"),
        Field("IPv4", N_("flags, fragment offset"), o + 6, o + 8,
              ", ".join(n for bit, n in ((2, "DF"), (1, "MF")) if flags & bit) or "none"),
        Field("IPv4", N_("TTL"), o + 8, o + 9, str(data[o + 8])),
        Field("IPv4", N_("protocol"), o + 9, o + 10, str(data[o + 9])),
        Field("IPv4", N_("header checksum"), o + 10, o + 12, f"0x{_u(data, o + 10, 2):04x}"),
        Field("IPv4", N_("source"), o + 12, o + 16, p.src),
        Field("IPv4", N_("destination"), o + 16, o + 20, p.dst),
    ]
    if ihl > 20:
        fields.append(Field("IPv4", N_("options"), o + 20, o + ihl, f"{ihl - 20} bytes"))
    return o + ihl if ihl >= 20 else -1


def _ipv6(p: Packet, o: int, fields: list[Field]) -> int:
    data = p.data
    if len(data) < o + 40:
        return -1
    fields += [
        Field("IPv6", N_("version, class, flow label"), o, o + 4, f"0x{_u(data, o, 4):08x}"),
        Field("IPv6", N_("payload length"), o + 4, o + 6, str(_u(data, o + 4, 2))),
        Field("IPv6", N_("next header"), o + 6, o + 7, str(data[o + 6])),
        Field("IPv6", N_("hop limit"), o + 7, o + 8, str(data[o + 7])),
        Field("IPv6", N_("source"), o + 8, o + 24, p.src),
        Field("IPv6", N_("destination"), o + 24, o + 40, p.dst),
    ]
    plen = _u(data, o + 4, 2)
    try:
        chain = walk_ipv6_chain(data, o + 40, data[o + 6], o + 40 + plen, plen == 0)
    except IndexError:
        return -1
    transport = chain[1]
    if transport > o + 40:
        fields.append(Field("IPv6", N_("extension headers"), o + 40, transport,
                            f"{transport - o - 40} bytes"))
    return transport


def _tcp(p: Packet, t: int, fields: list[Field]) -> None:
    data = p.data
    if len(data) < t + 20:
        return
    hlen = tcp_header_len(data[t + TCP_OFFSET_BYTE])
    names = ", ".join(flag_names(p.flags)) or "none"
    fields += [
        Field("TCP", N_("source port"), t, t + 2, str(p.sport)),
        Field("TCP", N_("destination port"), t + 2, t + 4, str(p.dport)),
        Field("TCP", N_("sequence number"), t + 4, t + 8, str(p.seq)),
        Field("TCP", N_("acknowledgment number"), t + 8, t + 12, str(p.ack)),
        Field("TCP", N_("header length, flags"), t + 12, t + 14, f"{hlen} bytes, {names}"),
        Field("TCP", N_("window"), t + 14, t + 16, str(p.window)),
        Field("TCP", N_("checksum"), t + 16, t + 18, f"0x{_u(data, t + 16, 2):04x}"),
        Field("TCP", N_("urgent pointer"), t + 18, t + 20, str(_u(data, t + 18, 2))),
    ]
    if hlen > 20:
        kinds = ", ".join(str(o.kind) for o in p.options)
        fields.append(Field("TCP", N_("options"), t + 20, t + hlen,
                            f"{hlen - 20} bytes (kinds {kinds})" if kinds else f"{hlen - 20} bytes"))


def _udp(p: Packet, t: int, fields: list[Field]) -> None:
    data = p.data
    if len(data) < t + 8:
        return
    fields += [
        Field("UDP", N_("source port"), t, t + 2, str(p.sport)),
        Field("UDP", N_("destination port"), t + 2, t + 4, str(p.dport)),
        Field("UDP", N_("length"), t + 4, t + 6, str(_u(data, t + 4, 2))),
        Field("UDP", N_("checksum"), t + 6, t + 8, f"0x{_u(data, t + 6, 2):04x}"),
    ]
