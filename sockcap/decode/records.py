"""The records that flow through sockcap's pure core.

``RawFrame`` comes out of the I/O edge (a pcap/pcapng reader or a live capture backend),
and ``CaptureStats`` with the kernel's counters at the end of a live capture;
``Packet`` comes out of :func:`sockcap.decode.decode_frame`.

Design note: the records are ``typing.NamedTuple`` rather than frozen slotted
dataclasses. Both are immutable and typed, but a frozen dataclass's ``__init__`` sets each
field through ``object.__setattr__``, which costs about four times as much per packet as
building a tuple. The decoder builds one record per packet on a path that must keep up
with a million-packet file, so the cheaper immutable record wins (measured in bench/).
``Packet`` is deliberately flat (no Ethernet/IP/TCP object graph): the timeline needs the
fields below and nothing else, and the raw bytes stay in ``data`` for the hex view and for
anything that wants to look deeper.
"""

# No `from __future__ import annotations` here: with it, typing.NamedTuple compiles
# each field's annotation string into a ForwardRef at import (~99 fields on the path
# of `sockcap show`: a few ms of every start, bench/startup_bench.py).

import enum

from sockcap._typing import NamedTuple

# Link-layer header types (https://www.tcpdump.org/linktypes.html).
LINKTYPE_NULL = 0  # BSD loopback: 4-byte address family in the writer's byte order
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101  # raw IPv4 or IPv6, version from the first nibble
LINKTYPE_LOOP = 108  # OpenBSD loopback: 4-byte address family, big-endian
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276
# DLT_RAW's value on some BSDs (pcap files written there carry 12 or 14)
LINKTYPE_RAW_BSD = (12, 14)

LINKTYPE_NAMES = {
    LINKTYPE_NULL: "NULL",
    LINKTYPE_ETHERNET: "EN10MB",
    LINKTYPE_RAW: "RAW",
    12: "RAW",
    14: "RAW",
    LINKTYPE_LOOP: "LOOP",
    LINKTYPE_LINUX_SLL: "LINUX_SLL",
    LINKTYPE_IPV4: "IPV4",
    LINKTYPE_IPV6: "IPV6",
    LINKTYPE_LINUX_SLL2: "LINUX_SLL2",
}

# The ``ts_ns`` of a frame captured without a time: a pcapng Simple Packet Block has none.
# Every consumer treats a negative ``ts_ns`` as "no time" (pcap's seconds are unsigned, so
# a capture file cannot hold a time before 1970): the timeline prints ``-``, JSON
# ``null``, and relative times, durations and round trips count only the frames that
# have one. Today's views test ``ts_ns < 0`` (or ``>= 0``), so they need no import.
NO_TIMESTAMP = -1

IPPROTO_ICMP = 1
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_ICMPV6 = 58


TUNNEL_PPPOE = "pppoe"  # RFC 2516 session stage, ethertype 0x8864
TUNNEL_L2TP = "l2tp"  # RFC 2661 data message, UDP port 1701


class TcpFlags(enum.IntFlag):
    """TCP header flags (RFC 9293 3.1; ECE/CWR RFC 3168; AE RFC 9768, formerly NS)."""

    FIN = 0x001  # no more data from sender
    SYN = 0x002  # synchronize sequence numbers
    RST = 0x004  # reset the connection
    PSH = 0x008  # push function
    ACK = 0x010  # acknowledgment field significant
    URG = 0x020  # urgent pointer field significant
    ECE = 0x040  # ECN-Echo
    CWR = 0x080  # congestion window reduced
    AE = 0x100  # accurate ECN (the former NS bit)


class TcpOptionKind(enum.IntEnum):
    """TCP option kinds (IANA "TCP Option Kind Numbers")."""

    EOL = 0
    NOP = 1
    MSS = 2  # RFC 9293
    WSCALE = 3  # RFC 7323
    SACK_PERMITTED = 4  # RFC 2018
    SACK = 5  # RFC 2018
    TIMESTAMPS = 8  # RFC 7323
    MD5 = 19  # RFC 2385
    TCP_AO = 29  # RFC 5925
    MPTCP = 30  # RFC 8684
    FAST_OPEN = 34  # RFC 7413
    ACCECN0 = 172  # RFC 9768
    ACCECN1 = 174


class TcpOption(NamedTuple):
    """One TCP option as on the wire: its kind and the bytes after the length byte."""

    kind: int
    value: bytes


class RawFrame(NamedTuple):
    """One captured frame as the I/O edge delivers it."""

    ts_ns: int  # capture time, nanoseconds since the Unix epoch; NO_TIMESTAMP: none
    linktype: int  # LINKTYPE_* of the interface it was captured on
    data: bytes  # the captured bytes (may be shorter than wirelen: snap length)
    wirelen: int  # the frame's length on the wire
    interface: int = 0  # pcapng interface id (0 for pcap and live capture)


class CaptureStats(NamedTuple):
    """Counters as tcpdump reports them at the end of a live capture (the capture edge
    fills them in; the summary line of the pure core reads them)."""

    captured: int  # packets handed to sockcap
    received: int  # packets the filter accepted (captured + dropped), -1 unknown
    dropped: int  # packets dropped by the kernel for lack of buffer space, -1 unknown


class Packet(NamedTuple):
    """A decoded frame: the fields a timeline needs, flat, plus the raw bytes.

    Fields that a packet does not have hold a neutral value: ``""`` for text, ``-1`` for
    ports and numbers, ``0`` for flags, ``()`` for tuples. TCP sequence numbers are
    absolute here; relative numbers and window scaling are the analysis layer's job
    because they depend on the packets before this one.
    """

    ts_ns: int  # capture time, nanoseconds since the Unix epoch; NO_TIMESTAMP: none
    linktype: int
    wirelen: int  # original length on the wire
    data: bytes  # captured bytes of the whole frame
    net: str  # network protocol: "IPv4", "IPv6", "ARP", ... or the ethertype "0x88cc"; "" if none
    src: str  # network source address as text ("" when there is no network layer)
    dst: str
    proto: int  # IP protocol number (IPPROTO_TCP, IPPROTO_UDP, ...), -1 when not IP
    sport: int  # transport ports, -1 when not TCP/UDP
    dport: int
    seq: int  # TCP sequence number (absolute), -1 when not TCP
    ack: int  # TCP acknowledgment number (absolute), -1 when not TCP
    flags: int  # TcpFlags as an int, 0 when not TCP
    window: int  # TCP window as on the wire (unscaled), -1 when not TCP
    options: tuple[TcpOption, ...]  # TCP options in wire order (NOP/EOL left out)
    payload_off: int  # offset in ``data`` where the TCP/UDP payload (or IP payload) starts
    payload_len: int  # payload length the headers claim (tshark's tcp.len / udp.length-8)
    truncated: str  # "" or the layer at which the captured bytes ran out ("tcp", "ip", ...)
    notes: tuple[str, ...]  # damage found while decoding ("bad tcp option length", ...)
    ip_id: int = -1  # IPv4 identification, -1 when not IPv4
    ttl: int = -1  # IPv4 TTL or IPv6 hop limit
    fragment: bool = False  # an IP fragment (only the first carries the transport header)
    # The tunnel the frame came through: "" (none), TUNNEL_PPPOE (a PPPoE session) or
    # TUNNEL_L2TP (an L2TPv2 data message over UDP). When the tunnel carried IP, the fields
    # from ``net`` on are the inner packet's; else ``net`` names what it carried ("PPP
    # LCP"), with the outer addresses for L2TP. One tunnel deep: an L2TP datagram inside a
    # tunnel stays a UDP packet.
    tunnel: str = ""

    @property
    def payload(self) -> bytes:
        """The payload bytes that were captured (may be fewer than ``payload_len``)."""
        return self.data[self.payload_off : self.payload_off + self.payload_len]

    @property
    def is_tcp(self) -> bool:
        return self.proto == IPPROTO_TCP and self.seq >= 0

    @property
    def is_udp(self) -> bool:
        return self.proto == IPPROTO_UDP and self.sport >= 0
