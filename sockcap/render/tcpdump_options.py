"""tcpdump's words for TCP options and ICMP, as ``--style tcpdump`` prints them: the common
options (:func:`tcpdump_option`), the urgent pointer, ICMP and ICMPv6 messages, and the
TCP options tcpdump names beyond the common ones, printed as tcpdump 4.99 prints them
(print-tcp.c, print-mptcp.c): MPTCP (``mptcp 12 capable v1 {0x...}``, ``dss``, ``add-addr``,
``rem-addr``, ``prio``, ``fail``, ``fast-close``, each with its fields), TCP
Fast Open in its experimental form (``exp-tfo cookiereq``), SCPS and the AccECN
experiment. Pure: an option's kind and bytes in, text out; ``None`` when the option is
malformed, where tcpdump prints ``[bad opt]`` and stops printing the segment.
"""

from __future__ import annotations

from sockcap.decode.icmp import IcmpMessage
from sockcap.decode.records import IPPROTO_TCP, IPPROTO_UDP, Packet, TcpOption, TcpOptionKind
from sockcap.decode.transport import TCP_OFFSET_BYTE, tcp_header_len

MOD32 = 1 << 32
MPTCP = 30
SCPS = 20
EXPERIMENT = (253, 254)  # RFC 6994 shared experimental options (magic in the first 2 bytes)
TFO_MAGIC = 0xF989
ACCECN_MAGIC = {0xACC0: "exp-acc0", 0xACC1: "exp-acc1"}
MPTCP_SUBTYPES = ("capable", "join", "dss", "add-addr", "rem-addr", "prio", "fail",
                  "fast-close", "tcprst")
# ADD_ADDR's low nibble: RFC 6824's IP version, RFC 8684's echo bit (print-mptcp.c's names)
ADD_ADDR_KINDS = {0x6: "v0-ip6", 0x4: "v0-ip4", 0x1: "v1-echo", 0x0: "v1"}
ADD_ADDR_V4 = (8, 10, 16, 18)  # address; + port; + HMAC; + port and HMAC
ADD_ADDR_V6 = (20, 22, 28, 30)


def tcpdump_extra_option(o: TcpOption) -> str | None:
    """The option's text, ``None`` for a malformed one, ``""`` when it is none of these."""
    if o.kind == MPTCP:
        return _mptcp(o.value)
    if o.kind == SCPS:
        if len(o.value) != 2:
            return None
        return f"scps cap {o.value[0]:02x} id {o.value[1]}"
    if o.kind in EXPERIMENT and len(o.value) >= 2:
        magic = int.from_bytes(o.value[:2], "big")
        if magic == TFO_MAGIC:
            cookie = o.value[2:]
            return "exp-tfo " + ("cookiereq" if not cookie else "cookie " + cookie.hex())
        if magic in ACCECN_MAGIC:
            return ACCECN_MAGIC[magic]
    return ""


def _n(b: bytes) -> int:
    return int.from_bytes(b, "big")


def _mptcp(v: bytes) -> str | None:
    length = len(v) + 2
    if not v:
        return None
    sub = v[0] >> 4
    name = MPTCP_SUBTYPES[sub] if sub < len(MPTCP_SUBTYPES) else f"unknown-subtype-{sub}"
    head = f"mptcp {length} {name}"
    body = {0: _capable, 1: _join, 2: _dss, 3: _add_addr, 4: _remove_addr, 5: _prio,
            6: _fail, 7: _fast_close}.get(sub)
    if body is None:
        return head
    text = body(v, length)
    return None if text is None else head + text


def _capable(v: bytes, length: int) -> str | None:
    if length not in (4, 8, 12, 20, 22, 24):
        return None
    version, flags = v[0] & 0x0F, v[1]
    out = f" v{version}" if version in (0, 1) else f" Unknown Version ({version})"
    if flags & 0x80:
        out += " csum"
    if length >= 12:
        out += " {0x" + f"{_n(v[2:10]):x}"
        if length >= 20:
            out += ",0x" + f"{_n(v[10:18]):x}"
        out += "}"
    return out


def _join(v: bytes, length: int) -> str | None:
    out = " backup" if v[0] & 0x01 else ""
    if length == 12:
        return out + f" id {v[1]} token 0x{_n(v[2:6]):x} nonce 0x{_n(v[6:10]):x}"
    if length == 16:
        return out + f" id {v[1]} hmac 0x{_n(v[2:10]):x} nonce 0x{_n(v[10:14]):x}"
    if length == 24:
        return out + " hmac 0x" + v[4:24].hex()
    return None


def _dss(v: bytes, length: int) -> str | None:
    if length < 4:
        return None
    flags, pos, out = v[1], 2, ""
    if flags & 0x10:
        out += " fin"
    if flags & 0x01:  # data ACK present, 8 bytes with 'a'
        size = 8 if flags & 0x02 else 4
        if pos + size > len(v):
            return None
        out += f" ack {_n(v[pos : pos + size])}"
        pos += size
    if flags & 0x04:  # mapping present, 8-byte data sequence with 'm'
        size = 8 if flags & 0x08 else 4
        if pos + size + 6 > len(v):
            return None
        out += f" seq {_n(v[pos : pos + size])}"
        pos += size
        out += f" subseq {_n(v[pos : pos + 4])} len {_n(v[pos + 4 : pos + 6])}"
        pos += 6
        if len(v) - pos == 2:
            out += f" csum 0x{_n(v[pos : pos + 2]):x}"
    return out


def _add_addr(v: bytes, length: int) -> str | None:
    """``add-addr v1 id 5 10.0.0.2:8080 hmac 0x...``: the address family from the length."""
    import ipaddress  # a rare option: not on every start-up's path

    if length not in ADD_ADDR_V4 + ADD_ADDR_V6:
        return None
    kind = ADD_ADDR_KINDS.get(v[0] & 0x0F, "[bad version/echo]")
    size = 4 if length in ADD_ADDR_V4 else 16
    out = f" {kind} id {v[1]} {ipaddress.ip_address(v[2 : 2 + size])}"
    pos = 2 + size
    if length in (10, 18, 22, 30):
        out += f":{_n(v[pos : pos + 2])}"
        pos += 2
    if length in (16, 18, 28, 30):
        out += f" hmac 0x{_n(v[pos : pos + 8]):x}"
    return out


def _remove_addr(v: bytes, length: int) -> str | None:
    if length < 4:
        return None
    return " id " + " ".join(str(b) for b in v[1:])


def _prio(v: bytes, length: int) -> str | None:
    if length not in (3, 4):
        return None
    out = " backup" if v[0] & 0x01 else " non-backup"
    return out + (f" id {v[1]}" if length == 4 else "")


def _fail(v: bytes, length: int) -> str | None:
    if length != 12:
        return None
    return f" seq {_n(v[2:10])}"


def _fast_close(v: bytes, length: int) -> str | None:
    if length != 12:
        return None
    return f" key 0x{_n(v[2:10]):x}"


def urgent_pointer(p: Packet) -> int:
    """The TCP header's urgent pointer (the header ends where the payload starts)."""
    sport, data = p.sport.to_bytes(2, "big"), p.data
    for words in range(5, 16):
        start = p.payload_off - 4 * words
        if (0 <= start and start + 20 <= len(data) and data[start : start + 2] == sport
                and tcp_header_len(data[start + TCP_OFFSET_BYTE]) == 4 * words):
            return int.from_bytes(data[start + 18 : start + 20], "big")
    return 0


def tcpdump_option_name(o: TcpOption) -> str:
    """The name tcpdump prints before ``[bad opt]``: ``mptcp 3 dss``, ``scps``."""
    if o.kind == 30 and o.value:
        sub = o.value[0] >> 4
        name = MPTCP_SUBTYPES[sub] if sub < len(MPTCP_SUBTYPES) else f"unknown-subtype-{sub}"
        return f"mptcp {len(o.value) + 2} {name}"
    return {20: "scps"}.get(o.kind, f"unknown-{o.kind}")


def tcpdump_option(o: TcpOption, sack_base: int = 0) -> str | None:
    """One TCP option in tcpdump's words: ``mss 65495``, ``sackOK``, ``TS val 1 ecr 0``;
    SACK edges relative to ``sack_base`` (the base tcpdump subtracts from the ack);
    None for an option tcpdump calls ``[bad opt]``."""
    extra = tcpdump_extra_option(o)
    if extra != "":
        return extra
    v = o.value
    if o.kind == TcpOptionKind.NOP:
        return "nop"
    if o.kind == TcpOptionKind.EOL:
        return "eol"
    if o.kind == TcpOptionKind.MSS and len(v) == 2:
        return f"mss {int.from_bytes(v, 'big')}"
    if o.kind == TcpOptionKind.WSCALE and len(v) == 1:
        return f"wscale {v[0]}"
    if o.kind == TcpOptionKind.SACK_PERMITTED:
        return "sackOK"
    if o.kind == TcpOptionKind.TIMESTAMPS and len(v) == 8:
        return f"TS val {int.from_bytes(v[:4], 'big')} ecr {int.from_bytes(v[4:], 'big')}"
    if o.kind == TcpOptionKind.SACK:
        edges = [(int.from_bytes(v[i : i + 4], "big") - sack_base) % MOD32
                 for i in range(0, len(v) - 3, 4)]
        blocks = [f"{edges[i]}:{edges[i + 1]}" for i in range(0, len(edges) - 1, 2)]
        return f"sack {len(blocks)} " + "".join("{" + b + "}" for b in blocks)  # as tcpdump
    if o.kind == TcpOptionKind.FAST_OPEN:
        return "tfo " + ("cookiereq" if not v else "cookie " + v.hex())
    return f"unknown-{o.kind} 0x{v.hex()}" if v else f"opt-{o.kind}"


def tcpdump_icmp(m: IcmpMessage, length: int) -> str:
    """What tcpdump prints for ICMP: ``ICMP 127.0.0.1 udp port 5999 unreachable, length
    41``, ``ICMP echo request, id 1, seq 1, length 64`` (print-icmp.c, print-icmp6.c)."""
    q = m.quoted
    if m.v6:
        return "ICMP6, " + _tcpdump_icmp6(m, length)
    if m.port_unreachable and q is not None and q.dport >= 0:
        proto = {IPPROTO_UDP: "udp", IPPROTO_TCP: "tcp"}.get(q.proto, str(q.proto))
        return f"{q.dst} {proto} port {q.dport} unreachable, length {length}"
    if m.echo:
        return f"echo {m.echo}, id {m.ident}, seq {m.seq}, length {length}"
    return f"{m.name}, length {length}"


def _tcpdump_icmp6(m: IcmpMessage, length: int) -> str:
    q = m.quoted
    if m.port_unreachable and q is not None and q.dport >= 0:
        proto = {IPPROTO_UDP: "udp", IPPROTO_TCP: "tcp"}.get(q.proto, str(q.proto))
        return (f"destination unreachable, unreachable port, {q.dst} {proto} port {q.dport}, "
                f"length {length}")
    if m.echo:
        return f"echo {m.echo}, id {m.ident}, seq {m.seq}, length {length}"
    return f"{m.name.lower()}, length {length}"
