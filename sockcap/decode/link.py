"""Link-layer headers: where the network layer starts and which protocol it is.

Each decoder takes the frame's bytes and returns :data:`LinkFields`: the ethertype of
what follows (the address families of the loopback link types are mapped to ethertypes),
the offset where it starts, the layer name if the bytes end inside the link header, and
notes. Link types: https://www.tcpdump.org/linktypes.html.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from sockcap.codes import CountedNote, Note
from sockcap.decode.records import (
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_LOOP,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
    LINKTYPE_RAW_BSD,
)

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_ARP = 0x0806
ETHERTYPE_IPV6 = 0x86DD
# 802.1Q customer tag, 802.1ad service tag, and the pre-standard QinQ tag
VLAN_TPIDS = frozenset({0x8100, 0x88A8, 0x9100})
ETHER_MAX_LENGTH = 1500  # a type field up to this value is an 802.3 length: LLC follows
NO_NETWORK = -1  # "ethertype" of a frame whose network layer is unknown

ETHER_HEADER_LEN = 14
SLL_HEADER_LEN = 16  # https://www.tcpdump.org/linktypes/LINKTYPE_LINUX_SLL.html
SLL2_HEADER_LEN = 20  # https://www.tcpdump.org/linktypes/LINKTYPE_LINUX_SLL2.html
LOOPBACK_HEADER_LEN = 4  # NULL and LOOP: the 4-byte address family
# The link header's length for each link type whose header has a fixed length (the one
# table: the field view, the compiled engine through the generated header, and the
# inlined fast paths of sockcap/decode/frame.py read these numbers); Ethernet's may grow
# by VLAN tags.
LINK_HEADER_LEN = {
    LINKTYPE_ETHERNET: ETHER_HEADER_LEN, LINKTYPE_LINUX_SLL: SLL_HEADER_LEN,
    LINKTYPE_LINUX_SLL2: SLL2_HEADER_LEN, LINKTYPE_NULL: LOOPBACK_HEADER_LEN,
    LINKTYPE_LOOP: LOOPBACK_HEADER_LEN, LINKTYPE_RAW: 0, LINKTYPE_RAW_BSD[0]: 0,
    LINKTYPE_RAW_BSD[1]: 0, LINKTYPE_IPV4: 0, LINKTYPE_IPV6: 0,
}

# Address families in NULL/LOOP headers: AF_INET is 2 everywhere, AF_INET6 differs by OS
# (24 NetBSD/OpenBSD, 28 FreeBSD/DragonFly, 30 macOS).
FAMILY_ETHERTYPES = {2: ETHERTYPE_IPV4, 24: ETHERTYPE_IPV6, 28: ETHERTYPE_IPV6, 30: ETHERTYPE_IPV6}
VERSION_ETHERTYPES = {4: ETHERTYPE_IPV4, 6: ETHERTYPE_IPV6}

# ethertype (or NO_NETWORK), offset of the network header, truncated layer, notes
LinkFields = tuple[int, int, str, tuple[str, ...]]

_U16 = struct.Struct("!H").unpack_from
_U32_BE = struct.Struct(">I").unpack_from
_U32_LE = struct.Struct("<I").unpack_from


def link_ethernet(data: bytes) -> LinkFields:
    """Ethernet II; VLAN tags are skipped later, with the ethertype they wrap."""
    if len(data) < ETHER_HEADER_LEN:
        return NO_NETWORK, len(data), "eth", ()
    return _U16(data, 12)[0], ETHER_HEADER_LEN, "", ()


def link_null(data: bytes) -> LinkFields:
    """BSD loopback: the address family in the byte order of the host that wrote it."""
    if len(data) < LOOPBACK_HEADER_LEN:
        return NO_NETWORK, len(data), "null", ()
    family = _U32_LE(data, 0)[0]
    if family > 0xFFFF:  # written on a big-endian host (families are small numbers)
        family = _U32_BE(data, 0)[0]
    return _family(family)


def link_loop(data: bytes) -> LinkFields:
    """OpenBSD loopback: the address family in network byte order."""
    if len(data) < LOOPBACK_HEADER_LEN:
        return NO_NETWORK, len(data), "loop", ()
    return _family(_U32_BE(data, 0)[0])


def _family(family: int) -> LinkFields:
    ethertype = FAMILY_ETHERTYPES.get(family)
    if ethertype is None:
        return NO_NETWORK, LOOPBACK_HEADER_LEN, "", (CountedNote(Note.UNKNOWN_FAMILY, family),)
    return ethertype, LOOPBACK_HEADER_LEN, "", ()


def link_raw(data: bytes) -> LinkFields:
    """Raw IP: the version nibble says IPv4 or IPv6."""
    if not data:
        return NO_NETWORK, 0, "ip", ()
    version = data[0] >> 4
    ethertype = VERSION_ETHERTYPES.get(version)
    if ethertype is None:
        return NO_NETWORK, 0, "", (CountedNote(Note.UNKNOWN_IP_VERSION, version),)
    return ethertype, 0, "", ()


def link_ipv4(data: bytes) -> LinkFields:
    return ETHERTYPE_IPV4, 0, "", ()


def link_ipv6(data: bytes) -> LinkFields:
    return ETHERTYPE_IPV6, 0, "", ()


def link_sll(data: bytes) -> LinkFields:
    """Linux cooked capture v1 (``-i any`` before libpcap 1.10): protocol at offset 14."""
    if len(data) < SLL_HEADER_LEN:
        return NO_NETWORK, len(data), "sll", ()
    return _U16(data, 14)[0], SLL_HEADER_LEN, "", ()


def link_sll2(data: bytes) -> LinkFields:
    """Linux cooked capture v2: protocol at offset 0, 20-byte header."""
    if len(data) < SLL2_HEADER_LEN:
        return NO_NETWORK, len(data), "sll2", ()
    return _U16(data, 0)[0], SLL2_HEADER_LEN, "", ()


LINK_DECODERS: dict[int, Callable[[bytes], LinkFields]] = {
    LINKTYPE_NULL: link_null,
    LINKTYPE_ETHERNET: link_ethernet,
    LINKTYPE_RAW: link_raw,
    LINKTYPE_RAW_BSD[0]: link_raw,
    LINKTYPE_RAW_BSD[1]: link_raw,
    LINKTYPE_LOOP: link_loop,
    LINKTYPE_LINUX_SLL: link_sll,
    LINKTYPE_IPV4: link_ipv4,
    LINKTYPE_IPV6: link_ipv6,
    LINKTYPE_LINUX_SLL2: link_sll2,
}
