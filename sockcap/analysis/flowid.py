"""The Community ID flow hash, version 1: one string that names a flow the same way in
Zeek, Suricata, Arkime, Wireshark and here, so tables from different tools join on it.

Pure. The algorithm (the spec: github.com/corelight/community-id-spec): order the two
endpoints so that the smaller (address bytes, port) comes first, then hash with SHA-1

    seed (2 bytes, big-endian) | src address | dst address | protocol (1 byte) | 0 (1 byte)
    | src port (2 bytes) | dst port (2 bytes)          (the ports only for port protocols)

and write ``1:`` followed by the digest in base64. ICMP and ICMPv6 have no ports: the
message type stands for the source port and its counterpart (echo request <-> reply,
...) for the destination port; a type without a counterpart is one-way (the code is the
"destination port" and the endpoints are not reordered).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import ipaddress
from _socket import AF_INET, AF_INET6, inet_pton

IPPROTO_ICMP = 1
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_ICMPV6 = 58
IPPROTO_SCTP = 132
PORT_PROTOCOLS = frozenset({IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMPV6,
                            IPPROTO_SCTP})

# ICMP types and the type that answers them (RFC 792, 950; the spec's table)
ICMP_COUNTERPART = {8: 0, 0: 8, 13: 14, 14: 13, 15: 16, 16: 15, 10: 9, 17: 18, 18: 17}
# ICMPv6 (RFC 4443, 4861, 2710, 6275; node information 139/140)
ICMP6_COUNTERPART = {128: 129, 129: 128, 133: 134, 134: 133, 135: 136, 136: 135,
                     130: 131, 131: 130, 139: 140, 140: 139, 144: 145, 145: 144}


def community_id(proto: int, src: str, dst: str, sport: int | None, dport: int | None,
                 seed: int = 0, *, base64_: bool = True) -> str:
    """The Community ID v1 of a flow; for ICMP(v6) ``sport`` is the type, ``dport`` the
    code. ``sport``/``dport`` None: a protocol without ports (hashed without them)."""
    a, b = _packed(src), _packed(dst)
    one_way = False
    if proto in (IPPROTO_ICMP, IPPROTO_ICMPV6) and sport is not None:
        table = ICMP_COUNTERPART if proto == IPPROTO_ICMP else ICMP6_COUNTERPART
        if sport in table:
            dport = table[sport]
        else:
            one_way = True
    ports = proto in PORT_PROTOCOLS and sport is not None and dport is not None
    p, q = (sport or 0, dport or 0) if ports else (0, 0)
    if not one_way and (b, q) < (a, p):
        a, b, p, q = b, a, q, p
    data = seed.to_bytes(2, "big") + a + b + bytes((proto, 0))
    if ports:
        data += p.to_bytes(2, "big") + q.to_bytes(2, "big")
    digest = hashlib.sha1(data)
    text = base64.b64encode(digest.digest()).decode("ascii") if base64_ else digest.hexdigest()
    return "1:" + text


@functools.lru_cache(maxsize=4096)
def _packed(address: str) -> bytes:
    """An address' bytes: ``inet_pton`` (~20x quicker than :mod:`ipaddress`, which the
    export called twice a conversation), cached (a capture's addresses repeat); what it
    does not read (an IPv6 scope, ``fe80::1%eth0``) goes to :mod:`ipaddress` as before."""
    try:
        return inet_pton(AF_INET6 if ":" in address else AF_INET, address)
    except OSError:
        return ipaddress.ip_address(address).packed
