"""TCP options tcpdump names beyond the common ones, printed as tcpdump 4.99 prints them
(print-tcp.c, print-mptcp.c): MPTCP (``mptcp 12 capable v1 {0x...}``, ``dss``, ``add-addr``,
``rem-addr``, ``prio``, ``fail``, ``fast-close``, each with its fields), TCP
Fast Open in its experimental form (``exp-tfo cookiereq``), SCPS and the AccECN
experiment. Pure: an option's kind and bytes in, text out; ``None`` when the option is
malformed, where tcpdump prints ``[bad opt]`` and stops printing the segment.
"""

from __future__ import annotations

import ipaddress

from sockcap.decode.records import TcpOption

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
