"""The timeline: one line per packet, as Wireshark names things or as tcpdump prints them.

Pure: annotated packets in, strings out. The CLI decides where the lines go and whether
they are coloured (:func:`style_of` names a style; the renderer never emits escape codes).

Two notations:

- ``wireshark`` (default): ``[PSH, ACK]``, relative ``Seq=1 Ack=1``, the scaled window
  ``Win=65536``, ``Len=5``, the phase, and a short preview of the payload.
- ``tcpdump``: ``Flags [P.], seq 1:6, ack 1, win 512, options [...], length 5``, with the
  raw window as tcpdump prints it, and the time of day in UTC (tcpdump prints local time;
  a pure renderer does not read the machine's time zone).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from sockcap.analysis.conversation import Annotated
from sockcap.decode.records import (
    IPPROTO_ICMP,
    IPPROTO_ICMPV6,
    IPPROTO_TCP,
    IPPROTO_UDP,
    Packet,
    TcpOption,
    TcpOptionKind,
)

# Wireshark prints flag names in bit order: FIN, SYN, RST, PSH, ACK, URG, ECE, CWR, AE.
FLAG_NAMES = ("FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR", "AE")
# tcpdump's letters, in the order print-tcp.c prints them ('.' is ACK).
TCPDUMP_FLAGS = ((0x01, "F"), (0x02, "S"), (0x04, "R"), (0x08, "P"), (0x10, "."),
                 (0x20, "U"), (0x40, "E"), (0x80, "W"), (0x100, "e"))
IP_PROTO_NAMES = {IPPROTO_TCP: "TCP", IPPROTO_UDP: "UDP", IPPROTO_ICMP: "ICMP",
                  IPPROTO_ICMPV6: "ICMPv6", 2: "IGMP", 47: "GRE", 50: "ESP", 51: "AH",
                  89: "OSPF", 132: "SCTP"}
PREVIEW_CHARS = 24
_ESCAPES = {10: "\\n", 13: "\\r", 9: "\\t", 34: '\\"', 92: "\\\\"}
# str.translate table over latin-1 code points: printable ASCII stays, the rest is escaped.
_PREVIEW_TABLE = {i: _ESCAPES.get(i, f"\\x{i:02x}") for i in range(256) if not 32 <= i < 127 or i in _ESCAPES}
_HEXDUMP_ASCII = bytes(c if 32 <= c < 127 else 46 for c in range(256))
_FLAG_CACHE: dict[int, tuple[str, ...]] = {}


def flag_names(flags: int) -> tuple[str, ...]:
    """TCP flag names set in ``flags``, in Wireshark's order: ``("PSH", "ACK")``."""
    names = _FLAG_CACHE.get(flags)
    if names is None:
        names = tuple(n for i, n in enumerate(FLAG_NAMES) if flags >> i & 1)
        _FLAG_CACHE[flags] = names
    return names


def wireshark_flags(flags: int) -> str:
    """``[SYN, ACK]`` as in Wireshark's Info column (``[<None>]`` when no flag is set)."""
    return "[" + (", ".join(flag_names(flags)) or "<None>") + "]"


def tcpdump_flags(flags: int) -> str:
    """``[S.]`` as tcpdump prints it (``[none]`` when no flag is set)."""
    return "[" + ("".join(c for bit, c in TCPDUMP_FLAGS if flags & bit) or "none") + "]"


def preview(payload: bytes, limit: int = PREVIEW_CHARS) -> str:
    """A short quoted text view of a payload: printable ASCII as is, the rest escaped."""
    text = payload[:limit].decode("latin-1").translate(_PREVIEW_TABLE)
    return '"' + text + ('"…' if len(payload) > limit else '"')


def hexdump(data: bytes, indent: str = "") -> Iterator[str]:
    """Wireshark's "Show Packet Bytes" hex view: offset, 16 bytes in hex, ASCII."""
    for off in range(0, len(data), 16):
        chunk = data[off : off + 16]
        left = " ".join(f"{b:02x}" for b in chunk[:8])
        right = " ".join(f"{b:02x}" for b in chunk[8:])
        hexes = f"{left:<23}  {right:<23}"
        yield f"{indent}{off:04x}  {hexes}  {chunk.translate(_HEXDUMP_ASCII).decode('ascii')}"


def endpoint(addr: str, port: int) -> str:
    """``127.0.0.1:5001`` or ``[::1]:5001``."""
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"


def proto_name(p: Packet) -> str:
    if p.proto >= 0:
        return IP_PROTO_NAMES.get(p.proto, f"IP proto {p.proto}")
    return p.net or "unknown"


def style_of(a: Annotated) -> str:
    """A rich style name for the line (the CLI applies it on a terminal only)."""
    if a.phase.startswith("handshake"):
        return "cyan"
    return {"data": "green" if a.from_client else "magenta", "teardown": "yellow",
            "reset": "bold red"}.get(a.phase, "bold red" if a.notes else "")


# "[PSH, ACK]   " padded to the column width, for every flag combination: one list index
# per packet instead of joining names.
_WIRESHARK_FLAGS = [f"{wireshark_flags(f):<11}" for f in range(512)]
_WHERE_CACHE_MAX = 65536


class Timeline:
    """Renders annotated packets as lines; remembers the first timestamp for relative time.

    The text of a line is built with one f-string; what is the same for every packet of a
    conversation direction (the "client 127.0.0.1:41234 → server 127.0.0.1:5001" part)
    is built once and cached, since formatting is most of the cost of a timeline.
    """

    def __init__(self, *, style: str = "wireshark", hex_payload: bool = False) -> None:
        self.style = style
        self.hex_payload = hex_payload
        self.first_ts = -1
        self._where: dict[tuple[object, bool], str] = {}

    def lines(self, a: Annotated) -> list[str]:
        p = a.packet
        line = self._tcpdump(a) if self.style == "tcpdump" else self.line(a)
        if not self.hex_payload:
            return [line]
        body = p.payload if p.sport >= 0 else p.data
        return [line, *hexdump(body, "      ")] if body else [line]

    def _where_of(self, a: Annotated) -> str:
        p = a.packet
        if a.conv is None:
            return f"{p.src} → {p.dst}" if p.src else (p.net or "?")
        key = (a.conv, a.from_client)
        where = self._where.get(key)
        if where is None:
            if len(self._where) >= _WHERE_CACHE_MAX:
                self._where.clear()
            me, peer = ("client", "server") if a.from_client else ("server", "client")
            where = f"{me} {endpoint(p.src, p.sport)} → {peer} {endpoint(p.dst, p.dport)}"
            self._where[key] = where
        return where

    def line(self, a: Annotated) -> str:
        """One timeline line in Wireshark's words."""
        p = a.packet
        if self.first_ts < 0:
            self.first_ts = p.ts_ns
        t = (p.ts_ns - self.first_ts) / 1e9
        if a.win >= 0:
            line = (f"{a.no:>4} {t:>10.6f}  {self._where_of(a)}  TCP {_WIRESHARK_FLAGS[p.flags]} "
                    f"Seq={a.seq} Ack={a.ack} Win={a.win} Len={p.payload_len}  {a.phase}")
        elif a.seq >= 0:  # a header too short to hold flags and window (data offset < 5)
            line = (f"{a.no:>4} {t:>10.6f}  {self._where_of(a)}  TCP [bad header] "
                    f"Seq={a.seq} Ack={a.ack}")
        else:
            length = p.payload_len if p.sport >= 0 else p.wirelen
            line = f"{a.no:>4} {t:>10.6f}  {self._where_of(a)}  {proto_name(p)} Len={length}"
            if a.phase:
                line += "  " + a.phase
        if p.payload_len > 0 and p.sport >= 0:
            line += "  " + preview(p.payload)
        if p.truncated or a.notes:
            line += _marks(a)
        return line

    def _tcpdump(self, a: Annotated) -> str:
        p = a.packet
        if self.first_ts < 0:
            self.first_ts = p.ts_ns
        day = p.ts_ns % 86_400_000_000_000
        clock = (f"{day // 3_600_000_000_000:02d}:{day // 60_000_000_000 % 60:02d}:"
                 f"{day // 1_000_000_000 % 60:02d}.{day // 1000 % 1_000_000:06d}")
        fam = "IP6" if p.net == "IPv6" else "IP"
        if p.sport < 0:
            return f"{clock} {fam} {p.src} > {p.dst}: {proto_name(p)}, length {p.wirelen}"
        where = f"{clock} {fam} {p.src}.{p.sport} > {p.dst}.{p.dport}:"
        if a.seq < 0:
            return f"{where} UDP, length {p.payload_len}" + _marks(a)
        return f"{where} Flags {tcpdump_flags(p.flags)}{_tcpdump_tcp(a)}" + _marks(a)


def _tcpdump_tcp(a: Annotated) -> str:
    p = a.packet
    n = p.payload_len
    seq = p.seq if p.flags & 0x02 else a.seq
    out = ""
    if n > 0:
        out += f", seq {seq}:{(seq + n) % (1 << 32)}"
    elif p.flags & 0x07:
        out += f", seq {seq}"
    if p.flags & 0x10:
        out += f", ack {p.ack if p.flags & 0x02 else a.ack}"  # tcpdump: absolute on SYNs
    out += f", win {p.window}"
    if p.options:
        out += ", options [" + ",".join(tcpdump_option(o) for o in p.options) + "]"
    return out + f", length {n}"


def tcpdump_option(o: TcpOption) -> str:
    """One TCP option in tcpdump's words: ``mss 65495``, ``sackOK``, ``TS val 1 ecr 0``."""
    v = o.value
    if o.kind == TcpOptionKind.MSS and len(v) == 2:
        return f"mss {int.from_bytes(v, 'big')}"
    if o.kind == TcpOptionKind.WSCALE and len(v) == 1:
        return f"wscale {v[0]}"
    if o.kind == TcpOptionKind.SACK_PERMITTED:
        return "sackOK"
    if o.kind == TcpOptionKind.TIMESTAMPS and len(v) == 8:
        return f"TS val {int.from_bytes(v[:4], 'big')} ecr {int.from_bytes(v[4:], 'big')}"
    if o.kind == TcpOptionKind.SACK:
        blocks = [f"{int.from_bytes(v[i:i+4], 'big')}:{int.from_bytes(v[i+4:i+8], 'big')}"
                  for i in range(0, len(v) - 7, 8)]
        return f"sack {len(blocks)} " + " ".join("{" + b + "}" for b in blocks)
    if o.kind == TcpOptionKind.FAST_OPEN:
        return "tfo " + ("cookiereq" if not v else "cookie " + v.hex())
    return f"unknown-{o.kind} 0x{v.hex()}" if v else f"opt-{o.kind}"


def _marks(a: Annotated) -> str:
    p = a.packet
    out = f" [|{p.truncated}]" if p.truncated else ""
    return out + ("  (" + "; ".join(a.notes) + ")" if a.notes else "")


def json_record(a: Annotated, first_ts: int) -> dict[str, Any]:
    """One packet as a JSON-ready dict; the key names are stable (scripts depend on them)."""
    p = a.packet
    tcp = a.seq >= 0
    rec: dict[str, Any] = {
        "no": a.no,
        "time": round((p.ts_ns - first_ts) / 1e9, 9),
        "ts": p.ts_ns / 1e9,
        "src": p.src or None,
        "sport": p.sport if p.sport >= 0 else None,
        "dst": p.dst or None,
        "dport": p.dport if p.dport >= 0 else None,
        "proto": proto_name(p),
        "flags": list(flag_names(p.flags)) if tcp else [],
        "seq": a.seq if tcp else None,
        "ack": a.ack if tcp else None,
        "win": a.win if tcp else None,
        "len": p.payload_len if p.sport >= 0 else p.wirelen,
        "phase": a.phase or None,
        "payload_hex": p.payload.hex() if p.sport >= 0 else "",
        "stream": a.conv.stream if a.conv else None,
        "from": ("client" if a.from_client else "server") if a.conv else None,
        "frame_len": p.wirelen,
        "captured_len": len(p.data),
        "truncated": p.truncated or None,
        "notes": list(a.notes),
    }
    return rec


def json_line(a: Annotated, first_ts: int) -> str:
    return json.dumps(json_record(a, first_ts), separators=(",", ":"), ensure_ascii=False)
