"""The bridge to Wireshark (``--filters``): for each packet the display filter that finds
it there, and for each conversation the menus that show it (Follow, Flow Graph).

Pure: annotated packets in, strings out. The filters use Wireshark's own field names and
numbers: ``tcp.stream`` / ``udp.stream`` as Wireshark counts streams, and relative
``tcp.seq`` / ``tcp.ack`` (Wireshark's default, as the timeline shows them).
"""

from __future__ import annotations

from sockcap.analysis.conversation import Annotated
from sockcap.decode.records import IPPROTO_UDP, TcpFlags
from sockcap.i18n import _

ACK = int(TcpFlags.ACK)
UDP_HEADER = 8


def display_filter(a: Annotated) -> str:
    """``tcp.stream eq 0 && tcp.srcport == 40000 && tcp.flags == 0x018 && tcp.seq == 1 &&
    tcp.ack == 1 && tcp.len == 5``: the packet's conversation, side, flags, numbers and
    length, which find it
    alone unless it is sent again (a retransmission matches too); ``frame.number == N``
    for a packet of no TCP/UDP conversation."""
    p, conv = a.packet, a.conv
    if conv is None:
        return f"frame.number == {a.no}"
    if conv.proto == IPPROTO_UDP:
        return (f"udp.stream eq {conv.stream} && udp.srcport == {p.sport} && "
                f"udp.length == {p.payload_len + UDP_HEADER}")
    ack = f" && tcp.ack == {a.ack}" if p.flags & ACK else ""
    return (f"tcp.stream eq {conv.stream} && tcp.srcport == {p.sport} && "
            f"tcp.flags == 0x{p.flags & 0xFFF:03x} && tcp.seq == {a.seq}{ack} && "
            f"tcp.len == {p.payload_len}")


def wireshark_menus(streams: list[tuple[int, int]]) -> list[str]:
    """What to open in Wireshark for each (proto, stream) seen, in the order seen."""
    lines = []
    for proto, stream in streams:
        if proto == IPPROTO_UDP:
            lines.append(_("udp stream {stream} in Wireshark: display filter udp.stream eq "
                           "{stream}; Analyze > Follow > UDP Stream; Statistics > Flow Graph "
                           "(Limit to display filter)").format(stream=stream))
        else:
            lines.append(_("tcp stream {stream} in Wireshark: display filter tcp.stream eq "
                           "{stream}; Analyze > Follow > TCP Stream; Statistics > Flow Graph "
                           "(Limit to display filter, Flow type: TCP Flows)").format(
                               stream=stream))
    return lines
