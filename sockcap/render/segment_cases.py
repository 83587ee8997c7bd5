"""What ``--explain`` knows of a TCP segment before it words it (pure): the case a
sentence is chosen by (:class:`Why`), what each direction said last (:class:`Side`, kept by
:func:`remember`), and the evidence read off one segment (its notes, a copy, SACK blocks,
D-SACK, MPTCP's fast close). The words are :mod:`sockcap.render.tcp_sentences`'; the
connections are :mod:`sockcap.render.explain`'s.
"""

from __future__ import annotations

import enum

from sockcap.analysis.conversation import Annotated
from sockcap.codes import Note, note_kind
from sockcap.decode.records import TcpFlags, TcpOptionKind
from sockcap.i18n import N_
from sockcap.render.timeline import preview

FIN, SYN, RST, ACK, URG = (int(f) for f in (TcpFlags.FIN, TcpFlags.SYN, TcpFlags.RST,
                                            TcpFlags.ACK, TcpFlags.URG))
MOD32 = 1 << 32
MPTCP_FASTCLOSE = 7  # MPTCP option subtype MP_FASTCLOSE (RFC 8684 3.5)
COPY_WITHIN_NS = 200_000_000  # a copy follows its original sooner than any RTO (Linux: 200 ms)


class Why(enum.Enum):
    """Which sentence a packet got: the case the evidence decided (stable, for tests and
    the quiz; the words are in the catalogue)."""

    UDP = "udp"
    INVALID_FLAGS = "invalid flags"
    COPY = "copy"
    REFUSED = "refused"
    RESET = "reset"
    SYN = "syn"
    SYN_DATA = "syn with data"
    SYN_AGAIN = "syn again"
    SYN_ACK = "syn-ack"
    SYN_ACK_AGAIN = "syn-ack again"
    SPURIOUS = "spurious retransmission"
    FAST = "fast retransmission"
    SACK_RECOVERY = "sack retransmission"
    TIMEOUT = "timeout retransmission"
    FIN_AGAIN = "fin again"
    OUT_OF_ORDER = "out of order"
    FIN_ACKS_FIN = "fin acks fin"
    FIN_LAST_ACK = "fin last ack"
    FIN_DATA = "fin with data"
    FIN = "fin"
    FIN_SHUTDOWN = "fin after shutdown"  # the program's recorded shutdown() sent it
    FIN_CLOSE = "fin after close"  # ... its recorded close()
    HANDSHAKE_ACK = "handshake ack"
    ZERO_WINDOW = "zero window"
    ZERO_WINDOW_PROBE = "zero window probe"
    KEEP_ALIVE = "keep-alive"
    DSACK = "d-sack"
    FASTCLOSE = "mptcp fast close"
    FIN_ACK_AGAIN = "fin acked again"
    DUPLICATE_ACK = "duplicate ack"
    DUPLICATE_ACK_SACK = "duplicate ack with sack"
    DATA = "data"
    WINDOW_UPDATE = "window update"
    WINDOW_SACK = "window while sacking"
    ACK = "ack"


# --- every packet in a sentence -------------------------------------------------------

SIDE_WORDS = {True: N_("the client"), False: N_("the server")}
PREVIEW = 20  # characters of a payload quoted in a sentence


class Side:
    """What one direction said last, as the explanation needs it (relative numbers)."""

    __slots__ = ("data_seq", "data_len", "data_preview", "fin_seq", "fin_again", "acked",
                 "win", "dupacks", "repeats", "sacked", "syn_len", "last")

    def __init__(self) -> None:
        self.data_seq = -1  # the last data segment: its Seq, length and preview
        self.data_len = 0
        self.data_preview = ""
        self.fin_seq = -1  # the Seq of this side's FIN (-1: none yet)
        self.fin_again = False  # the last packet from this side re-sent its FIN
        self.acked = -1  # the last Ack this side sent (-1: none yet)
        self.win = -1  # the window this side offered last (-1: none yet)
        self.dupacks = 0  # duplicate ACKs in a row from this side (Wireshark's count)
        self.repeats = 0  # ACKs in a row repeating the same Ack (window changes included)
        self.sacked = False  # the last ACK carried SACK blocks: later bytes arrived
        self.syn_len = 0  # data bytes its SYN carried (TCP Fast Open)
        self.last: tuple[int, int, int, int, int, int, int] | None = None  # see fingerprint


def capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def fingerprint(a: Annotated) -> tuple[int, int, int, int, int, int, int]:
    """What makes two captured packets the same packet: IPv4 ID and the TCP fields."""
    p = a.packet
    return (p.ip_id, p.seq, p.ack, p.flags, p.payload_len, a.no, p.ts_ns)


def remember(a: Annotated, own: Side, why: Why) -> None:
    p = a.packet
    if why is Why.COPY:
        return  # a second capture of the same packet says nothing new
    if p.payload_len > 0 and why not in RESENT:
        own.data_seq, own.data_len = a.seq, p.payload_len
        own.data_preview = preview(p.payload, PREVIEW)
    if p.flags & SYN and not p.flags & ACK:
        own.syn_len = p.payload_len
    if p.flags & FIN:
        own.fin_seq = a.seq + p.payload_len
    own.fin_again = bool(p.flags & FIN) and why in RESENT
    if p.flags & ACK:
        own.dupacks = own.dupacks + 1 if Note.DUPLICATE_ACK in note_kinds(a) else 0
        own.repeats = own.repeats + 1 if a.ack == own.acked and not p.payload_len else 0
        own.sacked = bool(sack_blocks(a))
        own.acked = a.ack
    own.win = a.win
    own.last = fingerprint(a)


RESENT = frozenset({Why.SPURIOUS, Why.FAST, Why.SACK_RECOVERY, Why.TIMEOUT, Why.FIN_AGAIN,
                    Why.SYN_AGAIN, Why.SYN_ACK_AGAIN})


def note_kinds(a: Annotated) -> frozenset[Note]:
    """The kinds of the packet's notes (most packets have none: one shared empty set)."""
    notes = a.notes
    return frozenset(note_kind(n) for n in notes) if notes else NO_KINDS


NO_KINDS: frozenset[Note] = frozenset()


def is_copy(a: Annotated, own: Side) -> bool:
    """The same packet as the previous one from this side, seen a second time: same
    IPv4 ID (a sender gives each packet its own; 0 is too common to count) and TCP
    fields, sooner than any retransmission timeout. The copy may be the capture's (two
    interfaces, a mirrored port) or the link's (``lab --duplicate``: the receiver got it
    twice); nothing in the packet tells which, so the sentence names both."""
    last, p = own.last, a.packet
    return (last is not None and p.ip_id > 0 and last[:5] == fingerprint(a)[:5]
            and 0 <= p.ts_ns - last[6] < COPY_WITHIN_NS)


def sack_blocks(a: Annotated) -> list[tuple[int, int]]:
    """The SACK blocks of a segment, in relative numbers of the bytes they acknowledge."""
    p = a.packet
    base = (p.ack - a.ack) % MOD32
    blocks = []
    for o in p.options:
        if o.kind == TcpOptionKind.SACK:
            v = o.value
            for i in range(0, len(v) - 7, 8):
                left = int.from_bytes(v[i:i + 4], "big")
                right = int.from_bytes(v[i + 4:i + 8], "big")
                blocks.append(((left - base) % MOD32, (right - base) % MOD32))
    return blocks


def is_dsack(a: Annotated, blocks: list[tuple[int, int]]) -> bool:
    """RFC 2883 4: the first block reports bytes received twice: it lies below the ACK,
    or inside the second block."""
    if not blocks:
        return False
    left, right = blocks[0]
    if (a.ack - right) % MOD32 < MOD32 // 2 and right != left:
        return True
    return len(blocks) > 1 and blocks[1][0] <= left and right <= blocks[1][1]


def fastclose(a: Annotated) -> bool:
    return any(o.kind == TcpOptionKind.MPTCP and o.value[:1]
               and o.value[0] >> 4 == MPTCP_FASTCLOSE for o in a.packet.options)


def sack_text(blocks: list[tuple[int, int]]) -> str:
    return ", ".join(f"{left}-{right}" for left, right in blocks)


def ms_text(ns: int) -> str:
    return f"{ns / 1e6:.3f}"


