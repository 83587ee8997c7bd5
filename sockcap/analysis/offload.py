"""What offload does to a capture, checked cheaply (pure): TCP checksums left to the
network card, and segments larger than the MTU (TSO/GSO/GRO).

On loopback and veth Linux hands the capture a segment whose checksum field holds only
the pseudo-header's sum (``CHECKSUM_PARTIAL``: the card, which ``lo`` does not have, was
to add the bytes' sum). Wireshark 4.2 then says "[correct] (matches partial checksum,
not 0x..., likely caused by "TCP checksum offload")" where 4.0 said "Bad checksum".

The check costs O(1) first: the field against the pseudo-header's sum (the addresses'
part of it is a direction's constant, :func:`address_sum`). Only when they match is the
real checksum over the segment's bytes (RFC 9293 3.1) computed, to tell a partial sum
from a real checksum that happens to equal it.
"""

from __future__ import annotations

import functools
import sys

from sockcap.decode.records import IPPROTO_TCP, Packet
from sockcap.decode.transport import TCP_OFFSET_BYTE, tcp_header_len

NO_ADDRESS = -2  # an address that is not IPv4 or IPv6 text: no pseudo-header
ETHERNET_MTU = 1500
# a payload this small fits any MTU an MSS can come from (the IPv6 minimum MTU, 1280, less
# 60 + 60 bytes of IP and TCP headers at most): no need to look further
SMALLEST_MTU_PAYLOAD = 1160


def tcp_start(p: Packet) -> int:
    """Where the TCP header starts: the one place before the payload where the ports
    and the header's own length (data offset) agree (-1: none, as for a header cut
    before its ports)."""
    if p.sport < 0 or p.dport < 0:
        return -1
    data, end = p.data, p.payload_off
    ports = p.sport.to_bytes(2, "big") + p.dport.to_bytes(2, "big")
    for length in range(20, 64, 4):
        start = end - length
        if start < 0:
            break
        if start + 13 <= len(data) and data[start:start + 4] == ports \
                and tcp_header_len(data[start + TCP_OFFSET_BYTE]) == length:
            return start
    return -1


def ip_start(p: Packet, tcp: int) -> int:
    """Where the IP header before the TCP header at ``tcp`` starts (-1: not found): an
    IPv4 header whose own length (IHL) reaches ``tcp`` and names TCP, or an IPv6 header
    right before it naming TCP (one with extension headers is not looked for)."""
    data = p.data
    if ":" in p.src:
        start = tcp - 40
        ok = start >= 0 and data[start] >> 4 == 6 and data[start + 6] == IPPROTO_TCP
        return start if ok else -1
    for length in range(20, 64, 4):
        start = tcp - length
        if start < 0:
            break
        if data[start] == 0x40 | length >> 2 and data[start + 9] == IPPROTO_TCP:
            return start
    return -1


def mtu_cut(p: Packet, mss: int) -> tuple[int, int, int, int] | None:
    """``(size, mtu, count, segment)`` when the IP packet is larger than the MTU (the
    receiver's offered ``mss`` plus 40 bytes of IPv4 and TCP headers, 60 for IPv6; 1500
    when no MSS is known, -1): it leaves as ``count`` segments of ``segment`` payload
    bytes. None when it fits, or its headers are not found. The caller first checks
    that the payload is larger than :data:`SMALLEST_MTU_PAYLOAD` or ``mss - 40``."""
    tcp = tcp_start(p)
    ip = ip_start(p, tcp) if tcp >= 0 else -1
    if ip < 0:
        return None
    headers = p.payload_off - ip
    size = headers + p.payload_len
    if mss >= 0:
        segment = mss - (p.payload_off - tcp - 20)  # the options take room from the MSS
        mtu = mss + 60 if ":" in p.src else mss + 40
    else:
        mtu = ETHERNET_MTU
        segment = mtu - headers
    if size <= mtu or segment <= 0:
        return None
    return size, mtu, -(-p.payload_len // segment), segment


@functools.lru_cache(maxsize=256)
def _packed(address: str) -> bytes:
    import ipaddress  # here: the compiled engine's `show` never asks (start-up, ~1 ms)

    return ipaddress.ip_address(address).packed


def address_sum(p: Packet) -> int:
    """The one's-complement sum of the source and destination addresses (the part of the
    pseudo-header a direction keeps), or :data:`NO_ADDRESS`."""
    try:
        return _fold(_sum16(_packed(p.src) + _packed(p.dst)))
    except ValueError:
        return NO_ADDRESS


def partial_checksum(p: Packet, start: int, addresses: int) -> tuple[int, int] | None:
    """``(field, real)`` when the TCP checksum field holds the pseudo-header's sum (the
    real checksum left to the card), None when it is right or cannot be checked.
    ``start``: where the TCP header starts (:func:`tcp_start`); ``addresses``:
    :func:`address_sum` of the packet."""
    if p.proto != IPPROTO_TCP or p.fragment or p.truncated or addresses < 0 or start < 0:
        return None
    data = p.data
    end = p.payload_off + p.payload_len
    length = end - start
    if end > len(data) or length > 0xFFFF:  # BIG TCP: larger than the length field
        return None
    field = data[start + 16] << 8 | data[start + 17]
    partial = _fold(addresses + IPPROTO_TCP + length)
    if field != partial:  # the O(1) test: most packets stop here
        return None
    segment = bytearray(data[start:end])
    segment[16:18] = b"\0\0"
    real = ~_fold(partial + _sum16(bytes(segment))) & 0xFFFF
    return None if field == real else (field, real)


def _sum16(data: bytes) -> int:
    """The one's-complement sum of big-endian 16-bit words (RFC 1071), folded. Summed as
    native words in C (``memoryview.cast``): the sum is the same in either byte order
    but byte-swapped (RFC 1071 2(B)), so a little-endian machine swaps it back."""
    if len(data) % 2:
        data += b"\0"
    total = _fold(sum(memoryview(data).cast("H")))
    return ((total & 0xFF) << 8 | total >> 8) if sys.byteorder == "little" else total


def _fold(total: int) -> int:
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total
