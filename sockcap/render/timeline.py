"""The timeline: one line per packet, as Wireshark names things or as tcpdump prints them.

Pure: annotated packets in, strings out. The CLI decides where the lines go and whether
they are coloured (:func:`style_of` names a style; the renderer never emits escape codes).

Two notations:

- ``wireshark`` (default): ``[PSH, ACK]``, relative ``Seq=1 Ack=1``, the scaled window
  ``Win=65536``, ``Len=5``, the phase, and a short preview of the payload.
- ``tcpdump``: what ``tcpdump -nn`` prints, ``Flags [P.], seq 1:6, ack 1, win 512,
  options [nop,nop,TS val 1 ecr 2], length 5``: the raw window, tcpdump's own relative
  numbers, and the time of day in local time. The one thing it reads besides its input is
  the time zone (``time.localtime``, once a second of capture), as tcpdump does; the
  tests fix ``TZ``.

tcpdump's own table of sequence bases (``tcp_seq_hash``) grows with every connection;
this one keeps the :data:`TCPDUMP_WINDOW` connections used last (a segment with ACK uses
its connection's). A connection idle while that many others began shows its next segment
as tcpdump shows a first one (absolute numbers, new bases); the C twin keeps the same
window; ``SOCKCAP_TCPDUMP_WINDOW`` sets it for ``show`` (tests reach its edge).
"""

from __future__ import annotations

import time
from collections import OrderedDict

from sockcap._typing import Protocol
from sockcap.analysis.conversation import ECN_BITS, Annotated, Conversation
from sockcap.codes import Phase, note_text, phase_text
from sockcap.decode.icmp import IcmpMessage, decode_icmp
from sockcap.decode.records import (
    IPPROTO_ICMP,
    IPPROTO_ICMPV6,
    IPPROTO_TCP,
    IPPROTO_UDP,
    Packet,
    TcpFlags,
)
from sockcap.i18n import N_, _
from sockcap.render.tcpdump_options import (
    tcpdump_icmp,
    tcpdump_option,
    tcpdump_option_name,
    urgent_pointer,
)

TYPE_CHECKING = False  # the type checker takes it as true
if TYPE_CHECKING:
    from typing import Any

# Wireshark prints flag names in bit order: FIN, SYN, RST, PSH, ACK, URG, ECE, CWR, AE.
FLAG_NAMES = tuple(str(flag.name) for flag in TcpFlags)
# tcpdump's letters, in the order print-tcp.c prints them ('.' is ACK).
TCPDUMP_FLAGS = tuple((int(flag), letter) for flag, letter in (
    (TcpFlags.FIN, "F"), (TcpFlags.SYN, "S"), (TcpFlags.RST, "R"), (TcpFlags.PSH, "P"),
    (TcpFlags.ACK, "."), (TcpFlags.URG, "U"), (TcpFlags.ECE, "E"), (TcpFlags.CWR, "W"),
    (TcpFlags.AE, "e")))
# plain ints from the one definition of the bits (an IntFlag operation costs a call)
FIN, SYN, RST, ACK = (int(f) for f in (TcpFlags.FIN, TcpFlags.SYN, TcpFlags.RST, TcpFlags.ACK))
URG = int(TcpFlags.URG)
IP_PROTO_NAMES = {IPPROTO_TCP: "TCP", IPPROTO_UDP: "UDP", IPPROTO_ICMP: "ICMP",
                  IPPROTO_ICMPV6: "ICMPv6", 2: "IGMP", 47: "GRE", 50: "ESP", 51: "AH",
                  89: "OSPF", 132: "SCTP"}
PREVIEW_CHARS = 24
_ESCAPES = {10: "\\n", 13: "\\r", 9: "\\t", 34: '\\"', 92: "\\\\"}
# str.translate table over latin-1 code points: printable ASCII stays, the rest is escaped.
_PREVIEW_TABLE = {i: _ESCAPES.get(i, f"\\x{i:02x}") for i in range(256) if not 32 <= i < 127 or i in _ESCAPES}
# bytes a preview shows as themselves (deleted by translate: what remains needs escaping)
_PLAIN = bytes(i for i in range(32, 127) if i not in _ESCAPES)
_HEXDUMP_ASCII = bytes(c if 32 <= c < 127 else 46 for c in range(256))


def flag_names(flags: int) -> tuple[str, ...]:
    """TCP flag names set in ``flags``, in Wireshark's order: ``("PSH", "ACK")``."""
    return _FLAG_NAME_TABLE[flags & 0x1FF]


def _flag_name_table() -> tuple[tuple[str, ...], ...]:
    """Every combination of the nine flags, built once: a table rather than a cache that
    fills. Built by doubling (the sets without flag i, then each of them with it), one
    tuple a combination: a loop over the nine bits of each was a ms of every start."""
    table: list[tuple[str, ...]] = [()]
    for name in FLAG_NAMES:
        table += [(*names, name) for names in table]
    return tuple(table)


_FLAG_NAME_TABLE = _flag_name_table()


def wireshark_flags(flags: int) -> str:
    """``[SYN, ACK]`` as in Wireshark's Info column (``[<None>]`` when no flag is set)."""
    return "[" + (", ".join(flag_names(flags)) or "<None>") + "]"


def tcpdump_flags(flags: int) -> str:
    """``[S.]`` as tcpdump prints it (``[none]`` when no flag is set)."""
    return "[" + ("".join(c for bit, c in TCPDUMP_FLAGS if flags & bit) or "none") + "]"


def preview(payload: bytes, limit: int = PREVIEW_CHARS) -> str:
    """A short quoted text view of a payload: printable ASCII as is, the rest escaped."""
    head = payload[:limit]
    if head.translate(None, _PLAIN):  # something to escape (the common text needs none)
        text = head.decode("latin-1").translate(_PREVIEW_TABLE)
    else:
        text = head.decode("ascii")
    return '"' + text + ('"…' if len(payload) > limit else '"')


def hexdump(data: bytes, indent: str = "") -> list[str]:
    """Wireshark's "Show Packet Bytes" hex view: offset, 16 bytes in hex, ASCII.

    Built from one ``bytes.hex(" ")`` and one ``translate`` of the whole buffer, sliced
    per row: the ``--hex`` view dumps every payload, and per-byte formatting cost about
    seven microseconds a row, most of ``sockcap show --hex``.
    """
    hexes = data.hex(" ")  # three characters a byte: row r's bytes at 48*r .. 48*r+46
    text = data.translate(_HEXDUMP_ASCII).decode("ascii")
    full = len(data) & ~15
    rows = [f"{indent}{off:04x}  {hexes[3 * off : 3 * off + 23]}  "
            f"{hexes[3 * off + 24 : 3 * off + 47]}  {text[off : off + 16]}"
            for off in range(0, full, 16)]
    if full < len(data):  # a last, short row: both halves padded to their width
        end = 3 * len(data) - 1
        left = hexes[3 * full : min(3 * full + 23, end)]
        right = hexes[3 * full + 24 : end]
        rows.append(f"{indent}{full:04x}  {left:<23}  {right:<23}  {text[full:]}")
    return rows


def endpoint(addr: str, port: int) -> str:
    """``127.0.0.1:5001`` or ``[::1]:5001``."""
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"


def packet_where(p: Packet) -> str:
    """Where a packet outside any conversation goes: ``src → dst``, or its network."""
    return f"{p.src} → {p.dst}" if p.src else (p.net or "?")


def proto_name(p: Packet) -> str:
    if p.proto >= 0:
        return IP_PROTO_NAMES.get(p.proto, f"IP proto {p.proto}")
    return p.net or "unknown"


CLIENT_STYLE = "green"  # the client's data, here and in follow
SERVER_STYLE = "magenta"
NOTES_STYLE = "bold red"  # a line with notes and no phase style of its own
DIM_STYLE = "dim"  # the lines under and before a packet's (guessed roles, --hex rows)
EXPLAIN_STYLE = "italic"  # --explain's sentence under a packet
_PHASE_STYLES = {Phase.HANDSHAKE_1: "cyan", Phase.HANDSHAKE_2: "cyan",
                 Phase.HANDSHAKE_3: "cyan", Phase.TEARDOWN: "yellow", Phase.RESET: "bold red"}


def style_of(a: Annotated) -> str:
    """A rich style name for the line (the CLI applies it on a terminal only)."""
    if a.phase is Phase.DATA:
        return CLIENT_STYLE if a.from_client else SERVER_STYLE
    return _PHASE_STYLES.get(a.phase, NOTES_STYLE if a.notes else "")


# "[PSH, ACK]       " padded to the column width, for every flag combination: one list
# index per packet instead of joining names. The width holds the widest common set,
# "[FIN, PSH, ACK]" (and "[SYN, ECE, CWR]").
FLAG_COLUMN = 15
WIRESHARK_FLAG_COLUMN = [f"[{', '.join(names) or '<None>'}]".ljust(FLAG_COLUMN)
                         for names in _FLAG_NAME_TABLE]
# Under Accurate ECN (RFC 9768) AE, CWR and ECE of a segment after the handshake are one
# 3-bit counter, ACE, which Wireshark shows as a number: "[ACK, ACE=5]".
ACE_FLAG_COLUMN = [f"[{', '.join((*_FLAG_NAME_TABLE[f & ~ECN_BITS], f'ACE={f >> 6 & 7}'))}]"
                   .ljust(FLAG_COLUMN) for f in range(512)]
MOD32 = 1 << 32
TCPDUMP_WINDOW = 262_144  # connections whose tcpdump bases are kept (the module says why)
_WHERE_CACHE_MAX = 4096  # conversations whose "where" text is kept (cleared when full)
# The common lines as %-templates: printf-style formatting of a line that holds a
# non-ASCII character ("→") measured about a third faster than the same f-string.
# "%4d" and "%10.6f" print exactly what f"{:>4}" and f"{:>10.6f}" print.
_TCP_LINE = "%4d %10.6f  %s  TCP %s Seq=%d Ack=%d Win=%d Len=%d  %s"
_TCP_DATA_LINE = _TCP_LINE + "  %s"
# Without the ACK flag (a SYN, a bare RST) Wireshark's Info column shows no Ack field.
_TCP_NOACK_LINE = "%4d %10.6f  %s  TCP %s Seq=%d Win=%d Len=%d  %s"
_TCP_NOACK_DATA_LINE = _TCP_NOACK_LINE + "  %s"
# The time column of a frame without a time (NO_TIMESTAMP), in each notation's width.
NO_TIME = f"{'-':>10}"
# where a packet of a conversation goes, by direction
FROM_CLIENT = N_("client {client} → server {server}")
FROM_SERVER = N_("server {server} → client {client}")
NO_CLOCK = f"{'-':<15}"


class Clock(Protocol):
    """What relative times count from: ``first_ts`` (-1 until the first packet)."""

    first_ts: int


class Timeline:
    """Renders annotated packets as lines, times relative to ``clock.first_ts``.

    The clock is the pipeline's (:class:`sockcap.pipeline.Pipeline`), which knows the first
    packet of the input even when a display filter hides it; a timeline made without one
    is its own clock, starting at the first packet it renders. Phases and notes are shown
    in the reader's language (:mod:`sockcap.codes`); the words are looked up once here,
    not per packet.

    The text of a line is built with one f-string; what is the same for every packet of a
    conversation direction (the "client 127.0.0.1:41234 → server 127.0.0.1:5001" part)
    is built once and cached, since formatting is most of the cost of a timeline.
    """

    def __init__(self, *, style: str = "wireshark", hex_payload: bool = False,
                 clock: Clock | None = None, tcpdump_window: int = TCPDUMP_WINDOW) -> None:
        """``tcpdump_window``: connections whose tcpdump bases are kept (module doc)."""
        self.style = style
        self.hex_payload = hex_payload
        self.first_ts = -1
        self.clock: Clock = clock if clock is not None else self
        self.phases = {phase: phase_text(phase) for phase in Phase}
        self._where: dict[Conversation, tuple[str, str]] = {}
        # tcpdump's relative numbers (_tcpdump_numbers): connection -> bases, by last use
        self._tcpdump_seq: OrderedDict[tuple[str, int, str, int], tuple[int, int]] = OrderedDict()
        self.tcpdump_window = tcpdump_window
        self._clock_sec, self._clock_text = -1, ""  # local time of the last second shown

    def lines(self, a: Annotated) -> list[str]:
        line = self._tcpdump(a) if self.style == "tcpdump" else self.line(a)
        if not self.hex_payload:
            return [line]
        return [line, *self.hex_lines(a.packet)]

    def hex_lines(self, p: Packet) -> list[str]:
        """The ``--hex`` rows under a packet's line: its payload, or the whole frame when
        it has no ports (nothing when that is empty)."""
        if p.sport < 0:
            return hexdump(p.data, "      ") if p.data else []
        body = p.data[p.payload_off : p.payload_off + p.payload_len]
        return hexdump(body, "      ") if body else []

    def _where_of(self, a: Annotated) -> str:
        p = a.packet
        conv = a.conv
        if conv is None:
            return packet_where(p)
        pair = self._where.get(conv) or self._where_pair(conv)
        return pair[a.from_client]

    def _where_pair(self, conv: Conversation) -> tuple[str, str]:
        """Both directions' "where" text (server's first: indexed by ``from_client``).

        Built from the conversation's endpoints, which are the packets' own: the tracker
        files each packet under its own addresses and ports."""
        if len(self._where) >= _WHERE_CACHE_MAX:
            self._where.clear()
        client, server = endpoint(*conv.client), endpoint(*conv.server)
        pair = self._where[conv] = (
            _(FROM_SERVER).format(server=server, client=client),
            _(FROM_CLIENT).format(client=client, server=server))
        return pair

    def line(self, a: Annotated) -> str:
        """One timeline line in Wireshark's words.

        The common line (a TCP segment of a known conversation) is one %-template over
        fields read by tuple unpacking; the cached "where" text and a preview of at most
        25 payload bytes are all it adds per packet.
        """
        no, p, conv, from_client, seq, ack, win, code, notes = a
        phase = self.phases[code]
        (ts, _, wirelen, data, _, _, _, _, sport, _, _, _, flags, _, _, off, plen, cut, _,
         _, _, _, _) = p  # fmt: skip
        clock = self.clock
        first = clock.first_ts
        if first < 0:
            clock.first_ts = first = ts
        t = (ts - first) / 1e9
        if conv is not None:
            where = (self._where.get(conv) or self._where_pair(conv))[from_client]
        else:
            where = self._where_of(a)
        if win >= 0:
            names = (ACE_FLAG_COLUMN if conv is not None and conv.accecn and not flags & SYN
                     else WIRESHARK_FLAG_COLUMN)[flags]
            if not flags & ACK:
                line = _TCP_NOACK_LINE % (no, t, where, names, seq, win, plen, phase)
                if plen > 0:
                    line = _TCP_NOACK_DATA_LINE % (
                        no, t, where, names, seq, win, plen, phase,
                        preview(data[off : off + min(plen, PREVIEW_CHARS + 1)]))
            elif plen > 0:
                # the preview needs at most PREVIEW_CHARS + 1 bytes (one more says "cut")
                line = _TCP_DATA_LINE % (no, t, where, names, seq, ack, win, plen, phase,
                                         preview(data[off : off + min(plen, PREVIEW_CHARS + 1)]))
            else:
                line = _TCP_LINE % (no, t, where, names, seq, ack, win, plen, phase)
        elif seq >= 0:  # a header too short to hold flags and window (data offset < 5)
            line = f"{no:>4} {t:>10.6f}  {where}  TCP [bad header] Seq={seq} Ack={ack}"
            if plen > 0:
                line += "  " + preview(data[off : off + min(plen, PREVIEW_CHARS + 1)])
        elif sport < 0 and (icmp := decode_icmp(p)) is not None:
            line = f"{no:>4} {t:>10.6f}  {where}  {proto_name(p)} {icmp_info(icmp)}"
        else:
            length = plen if sport >= 0 else wirelen
            line = f"{no:>4} {t:>10.6f}  {where}  {proto_name(p)} Len={length}"
            if phase:
                line += "  " + phase
            if plen > 0 and sport >= 0:
                line += "  " + preview(data[off : off + min(plen, PREVIEW_CHARS + 1)])
        if ts < 0:  # NO_TIMESTAMP
            line = _without_time(line, no, t)
        if cut or notes:
            line += _marks(a)
        return line

    def _tcpdump(self, a: Annotated) -> str:
        p = a.packet
        clock = self._clock(p.ts_ns) if p.ts_ns >= 0 else NO_CLOCK
        fam = "IP6" if p.net == "IPv6" else "IP"
        if p.sport < 0:
            text = tcpdump_icmp_info(p)
            if text is not None:
                return f"{clock} {fam} {p.src} > {p.dst}: {text}" + _marks(a)
            return f"{clock} {fam} {p.src} > {p.dst}: {proto_name(p)}, length {p.wirelen}"
        where = f"{clock} {fam} {p.src}.{p.sport} > {p.dst}.{p.dport}:"
        if a.seq < 0:
            return f"{where} UDP, length {p.payload_len}" + _marks(a)
        return f"{where} Flags {tcpdump_flags(p.flags)}{self._tcpdump_tcp(p)}" + _marks(a)

    def _clock(self, ts_ns: int) -> str:
        """``HH:MM:SS.uuuuuu`` in local time, as tcpdump prints it (TZ decides, as for
        tcpdump); the text of the current second is kept, so one ``localtime`` call a
        second of capture, not a packet. A time the C library cannot convert (a 64-bit
        pcapng timestamp far out of range) is shown in UTC rather than failing."""
        sec = ts_ns // 1_000_000_000
        if sec != self._clock_sec:
            try:
                t = time.localtime(sec)
                text = f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
            except (OverflowError, OSError, ValueError):
                day = sec % 86_400
                text = f"{day // 3600:02d}:{day // 60 % 60:02d}:{day % 60:02d}"
            self._clock_sec, self._clock_text = sec, text
        return f"{self._clock_text}.{ts_ns // 1000 % 1_000_000:06d}"

    def _tcpdump_tcp(self, p: Packet) -> str:
        n = p.payload_len
        seq, ack, sack_base = self._tcpdump_numbers(p)
        out = ""
        if n > 0:
            out += f", seq {seq}:{(seq + n) % MOD32}"
        elif p.flags & (FIN | SYN | RST):
            out += f", seq {seq}"
        if p.flags & ACK:
            out += f", ack {ack}"
        out += f", win {p.window}"
        if p.flags & URG:
            out += f", urg {urgent_pointer(p)}"
        if p.options:
            texts: list[str] = []
            for o in p.options:
                text = tcpdump_option(o, sack_base)
                if text is None:  # tcpdump: "[bad opt]", and the segment ends there;
                    name = tcpdump_option_name(o)  # its "]" only after an earlier option
                    close = "]" if texts else ""
                    return out + ", options [" + ",".join((*texts, name)) + "[bad opt]" + close
                texts.append(text)
            out += ", options [" + ",".join(texts) + "]"
        return out + f", length {n}"

    def _tcpdump_numbers(self, p: Packet) -> tuple[int, int, int]:
        """seq, ack and the SACK edges' base as tcpdump prints them (print-tcp.c).

        tcpdump has its own rule, not Wireshark's: it keeps, per connection, the bases set
        by the first segment with ACK (or any SYN-ACK) — that segment's sequence number
        for its direction, its ack - 1 for the other — and prints that segment with
        absolute numbers, every later one relative to the bases; SYNs without ACK are
        absolute. So ``--style tcpdump`` prints what ``tcpdump -nn`` prints, also for a
        refused connection or a capture that starts mid-stream.
        """
        if not p.flags & ACK:
            return p.seq, 0, 0
        forward = (p.src, p.sport) <= (p.dst, p.dport)  # tcpdump's one entry for both ways
        key = ((p.src, p.sport, p.dst, p.dport) if forward else
               (p.dst, p.dport, p.src, p.sport))
        table = self._tcpdump_seq  # the least recently used first, forgotten when full
        bases = table.get(key)
        if bases is not None:
            table.move_to_end(key)
        elif len(table) >= self.tcpdump_window:
            table.popitem(last=False)
        if bases is None or p.flags & SYN:
            mine, other = p.seq, (p.ack - 1) % MOD32
            table[key] = (mine, other) if forward else (other, mine)
            return p.seq, p.ack, other
        mine, other = bases if forward else (bases[1], bases[0])
        return (p.seq - mine) % MOD32, (p.ack - other) % MOD32, other


def tcpdump_icmp_info(p: Packet) -> str | None:
    """What tcpdump prints after the addresses for an ICMP or ICMPv6 packet (``ICMP echo
    request, id 1, seq 1, length 64``); None when ``p`` holds no ICMP message. The compiled
    engine is handed this text with the packet (the ICMP decoder is Python's alone)."""
    icmp = decode_icmp(p)
    if icmp is None:
        return None
    text = tcpdump_icmp(icmp, p.payload_len)
    return text if icmp.v6 else "ICMP " + text


def icmp_info(m: IcmpMessage) -> str:
    """Wireshark's Info for ICMP: ``Destination unreachable (Port unreachable)``,
    ``Echo (ping) request  id=0x0001, seq=1/256``."""
    if m.ident >= 0:
        swapped = (m.seq >> 8) | (m.seq & 0xFF) << 8  # Wireshark shows both byte orders
        return f"{m.name}  id=0x{m.ident:04x}, seq={m.seq}/{swapped}"
    return m.name


def _without_time(line: str, no: int, t: float) -> str:
    """``line`` with ``-`` in its time column, which holds ``t`` (a frame without a time:
    a pcapng Simple Packet Block); the column keeps its width."""
    start = len(f"{no:>4} ")
    return line[:start] + NO_TIME + line[start + len(f"{t:>10.6f}") :]


def _marks(a: Annotated) -> str:
    p = a.packet
    out = f" [|{p.truncated}]" if p.truncated else ""
    return out + ("  (" + "; ".join(note_text(n) for n in a.notes) + ")" if a.notes else "")


def json_record(a: Annotated, first_ts: int) -> dict[str, Any]:
    """One packet as a JSON-ready dict; the key names are stable (scripts depend on them)."""
    p = a.packet
    tcp = a.seq >= 0
    timed = p.ts_ns >= 0  # else NO_TIMESTAMP: "time" and "ts" are null
    rec: dict[str, Any] = {
        "no": a.no,
        "time": round((p.ts_ns - first_ts) / 1e9, 9) if timed else None,
        "ts": p.ts_ns / 1e9 if timed else None,
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
        "tunnel": p.tunnel or None,  # "pppoe" or "l2tp": the fields are the inner packet's
    }
    if p.sport < 0 and (icmp := decode_icmp(p)) is not None:
        rec["icmp"] = icmp_record(icmp)
    return rec


def icmp_record(icmp: IcmpMessage) -> dict[str, Any]:
    """The ``icmp`` object of an ICMP/ICMPv6 packet's JSON record."""
    q = icmp.quoted
    return {
        "type": icmp.type, "code": icmp.code, "name": icmp.name,
        "id": icmp.ident if icmp.ident >= 0 else None,
        "seq": icmp.seq if icmp.seq >= 0 else None,
        "quoted": None if q is None else {
            "src": q.src, "dst": q.dst, "proto": IP_PROTO_NAMES.get(q.proto, q.proto),
            "sport": q.sport if q.sport >= 0 else None,
            "dport": q.dport if q.dport >= 0 else None},
    }


def json_icmp(p: Packet) -> str | None:
    """The JSON text of ``p``'s ``icmp`` object, as :func:`json_line` writes it (None: the
    packet has none). The compiled engine writes the rest of the line itself and asks for
    this part only: the ICMP decoder and its names are Python's."""
    icmp = decode_icmp(p) if p.sport < 0 else None
    if icmp is None:
        return None
    import json  # here, as in json_line

    return json.dumps(icmp_record(icmp), separators=(",", ":"), ensure_ascii=False)


def json_line(a: Annotated, first_ts: int) -> str:
    """A packet as a line of ``--json``: its record with ``"type": "packet"`` first, as
    every line of a stream that also holds calls and kernel events says what it is."""
    import json  # here: plain `show` writes no JSON, and json is ~3 % of its start-up

    return json.dumps({"type": "packet", **json_record(a, first_ts)}, separators=(",", ":"),
                      ensure_ascii=False)
