"""TCP and UDP headers (RFC 9293, RFC 768), decoded from the bytes after the IP header.

This is the general path: it handles every damaged or cut-short header. The undamaged
common case is decoded inline in :mod:`sockcap.decode.ip` and must agree with this module
(a test checks that both give the same Packet).

Two limits bound every read: ``seg_len``, the length the IP header gives its payload, and
``len(data)``, what was captured. Running past the first is damage (a note); running past
the second is a snap-length cut (``truncated``), as tcpdump's ``[|tcp]``.
"""

from __future__ import annotations

import struct

from sockcap.codes import Note
from sockcap.decode.records import IPPROTO_TCP, IPPROTO_UDP, TcpOption

# sport, dport, seq, ack, data offset byte, flags byte, window (the urgent pointer and
# checksum are not needed by the timeline)
TCP_HEADER = struct.Struct("!HHIIBBH")
UDP_HEADER = struct.Struct("!HHH")  # sport, dport, length (checksum not needed)
TCP_MIN_HEADER = 20
TCP_OFFSET_BYTE = 12  # the byte of a TCP header whose high four bits are its data offset


def tcp_header_len(offset_byte: int) -> int:
    """A TCP header's length in bytes, options included, from its data-offset byte: the
    high four bits count 32-bit words (RFC 9293 3.1). The one definition: the decoder,
    the field view, tcpdump's notation and the confusions read it here, and the C engine
    from ``TCP_HEADER_LEN`` in the header generated from ``pipeline/contract.py``."""
    return (offset_byte >> 4) * 4

UDP_HEADER_LEN = 8
OPT_EOL = 0
OPT_NOP = 1
OPT_SACK = 5

# Option kinds whose length is fixed by their RFC (kind: total length with kind and length).
TCP_OPTION_LENGTHS = {
    2: 4,  # MSS, RFC 9293 3.2
    3: 3,  # window scale, RFC 7323 2.2
    4: 2,  # SACK permitted, RFC 2018 2
    8: 10,  # timestamps, RFC 7323 3.2
}

NOTE_TCP_HLEN = Note.TCP_HLEN
NOTE_TCP_OPTLEN = Note.TCP_OPTLEN
NOTE_TCP_SHORT = Note.TCP_SHORT
NOTE_UDP_LEN = Note.UDP_LEN
NOTE_UDP_SHORT = Note.UDP_SHORT

# What decode_transport returns, in Packet field order:
# sport, dport, seq, ack, flags, window, options, payload_off, payload_len, truncated, notes
TransportFields = tuple[
    int, int, int, int, int, int, tuple[TcpOption, ...], int, int, str, tuple[str, ...]
]

_tuple_new = tuple.__new__


NOP = _tuple_new(TcpOption, (OPT_NOP, b""))  # one record for every NOP: they are all alike
EOL = _tuple_new(TcpOption, (OPT_EOL, b""))


def parse_tcp_options(data: bytes, start: int, stop: int) -> tuple[tuple[TcpOption, ...], bool]:
    """Options in ``data[start:stop]``, NOP and EOL included as on the wire (tcpdump prints
    them), and whether one was malformed. Nothing after an EOL is read.

    ``stop`` is where the header ends; reads never pass ``len(data)`` either: an option cut
    by the capture ends the list without a complaint (the caller marks the packet cut).
    A length under 2, past the header's end, or wrong for a kind of fixed length is
    malformed: parsing stops there, as in tcpdump's ``[bad opt]``.
    """
    options: list[TcpOption] = []
    end = min(stop, len(data))
    i = start
    while i < end:
        kind = data[i]
        if kind == OPT_NOP:
            options.append(NOP)
            i += 1
            continue
        if kind == OPT_EOL:
            options.append(EOL)
            break
        if i + 1 >= end:
            return tuple(options), i + 1 >= stop  # no length byte inside the header?
        length = data[i + 1]
        after = i + length
        if length < 2 or after > stop or not _length_fits(kind, length):
            return tuple(options), True
        if after > end:
            break  # cut by the capture
        options.append(_tuple_new(TcpOption, (kind, data[i + 2 : after])))
        i = after
    return tuple(options), False


def tcp_options_or_none(data: bytes, start: int, stop: int) -> tuple[TcpOption, ...] | None:
    """The options of an undamaged header, or None if one is malformed (fast paths)."""
    options, bad = parse_tcp_options(data, start, stop)
    return None if bad else options


def _length_fits(kind: int, length: int) -> bool:
    if kind == OPT_SACK:
        return length >= 10 and (length - 2) % 8 == 0
    return TCP_OPTION_LENGTHS.get(kind, length) == length


def decode_transport(
    proto: int, data: bytes, off: int, seg_len: int, first_fragment: bool = False
) -> TransportFields:
    """Decode the transport header at ``off``; ``seg_len`` is the IP payload length."""
    if proto == IPPROTO_TCP:
        return decode_tcp(data, off, seg_len)
    if proto == IPPROTO_UDP:
        return decode_udp(data, off, seg_len, first_fragment)
    return -1, -1, -1, -1, 0, -1, (), off, seg_len, "", ()


def decode_tcp(data: bytes, off: int, seg_len: int) -> TransportFields:
    """A TCP header, however damaged or cut short."""
    captured = len(data) - off
    if captured < TCP_MIN_HEADER or seg_len < TCP_MIN_HEADER:
        return _tcp_partial(data, off, seg_len)
    sport, dport, seq, ack, offset_byte, flag_byte, window = TCP_HEADER.unpack_from(data, off)
    flags = (offset_byte & 1) << 8 | flag_byte
    hlen = tcp_header_len(offset_byte)
    seg_end = off + seg_len
    if hlen < TCP_MIN_HEADER:
        # Not a TCP header from the data offset on (tcpdump and Wireshark stop there too):
        # ports and numbers, no flags, no payload.
        return sport, dport, seq, ack, 0, -1, (), seg_end, 0, "", (NOTE_TCP_HLEN,)
    if hlen > seg_len:
        # The header would end past the segment: show it, options as far as they go, and
        # no payload.
        options, bad = parse_tcp_options(data, off + TCP_MIN_HEADER, seg_end)
        notes: tuple[str, ...] = (NOTE_TCP_HLEN, NOTE_TCP_OPTLEN) if bad else (NOTE_TCP_HLEN,)
        cut = "tcp" if seg_end > len(data) else ""
        return sport, dport, seq, ack, flags, window, options, seg_end, 0, cut, notes
    payload_off = off + hlen
    options, bad = parse_tcp_options(data, off + TCP_MIN_HEADER, payload_off)
    cut = "tcp" if payload_off > len(data) else ""
    notes = (NOTE_TCP_OPTLEN,) if bad else ()
    return (
        sport, dport, seq, ack, flags, window, options, payload_off, seg_len - hlen, cut, notes
    )  # fmt: skip


def _tcp_partial(data: bytes, off: int, seg_len: int) -> TransportFields:
    """The fields of a TCP header that fit in fewer than 20 bytes (capture or IP length)."""
    usable = max(0, min(len(data) - off, seg_len, TCP_MIN_HEADER))
    head = data[off : off + usable] + bytes(TCP_MIN_HEADER - usable)
    sport, dport, seq, ack, offset_byte, flag_byte, window = TCP_HEADER.unpack_from(head)
    end = min(len(data), off + max(seg_len, 0))
    return (
        sport if usable >= 2 else -1,
        dport if usable >= 4 else -1,
        seq if usable >= 8 else -1,
        ack if usable >= 12 else -1,
        (offset_byte & 1) << 8 | flag_byte if usable >= 14 else 0,
        window if usable >= 16 else -1,
        (),
        end,
        0,
        "tcp" if seg_len > usable else "",
        () if seg_len > usable else (NOTE_TCP_SHORT,),
    )


def decode_udp(data: bytes, off: int, seg_len: int, first_fragment: bool) -> TransportFields:
    """A UDP header; the payload length is the smaller of UDP's and IP's (tshark agrees)."""
    if len(data) - off < UDP_HEADER_LEN or seg_len < UDP_HEADER_LEN:
        return _udp_partial(data, off, seg_len)
    sport, dport, length = UDP_HEADER.unpack_from(data, off)
    notes: tuple[str, ...] = ()
    if first_fragment:
        payload_len = max(0, length - UDP_HEADER_LEN)  # the rest is in later fragments
    elif length == 0 and seg_len > 0xFFFF:
        payload_len = seg_len - UDP_HEADER_LEN  # IPv6 jumbogram (RFC 2675 4)
    else:
        payload_len = max(0, min(length, seg_len) - UDP_HEADER_LEN)
        if length != seg_len:
            notes = (NOTE_UDP_LEN,)
    return sport, dport, -1, -1, 0, -1, (), off + UDP_HEADER_LEN, payload_len, "", notes


def _udp_partial(data: bytes, off: int, seg_len: int) -> TransportFields:
    """The ports of a UDP header cut short by the capture or by the IP length."""
    usable = max(0, min(len(data) - off, seg_len, UDP_HEADER_LEN))
    head = data[off : off + usable] + bytes(UDP_HEADER_LEN - usable)
    sport, dport, _ = UDP_HEADER.unpack_from(head)
    end = min(len(data), off + max(seg_len, 0))
    cut = "udp" if seg_len > usable else ""
    notes = () if cut else (NOTE_UDP_SHORT,)
    return (
        sport if usable >= 2 else -1, dport if usable >= 4 else -1,
        -1, -1, 0, -1, (), end, 0, cut, notes,
    )  # fmt: skip
