"""``--explain``: a plain sentence under every packet, with the arithmetic shown; each
connection's state as Zeek names it; and each expert note kind that appeared (pure).

Each sentence is chosen by a code (:class:`Why`) from the evidence that tells the cases
apart, not from the expert note alone: Wireshark's notes say *that* a segment repeats
bytes or an ACK, not *why*. A packet whose IPv4 ID and TCP fields equal the previous
one from the same side was captured twice, not sent twice; a re-sent segment right
after duplicate ACKs asking for its first byte is a fast retransmission (RFC 5681 3.2),
one the peer had already acknowledged is spurious; a repeated ACK whose first SACK block
lies below the ACK is a D-SACK (RFC 2883: bytes arrived twice, nothing is missing); a
"keep-alive" sent while the peer offers a zero window is Linux's zero window probe; a
FIN sent after the peer's FIN arrived leaves its sender in LAST_ACK. Sequence numbers
that a SYN or FIN takes are named as such: they carry no byte. Where the programs' socket
calls were recorded (``run --capture``, ``capture --calls``), a FIN is explained by the
close() or shutdown() that sent it; without them the sentence says what each would mean.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Mapping

from sockcap.analysis.calls import Call, CallKind
from sockcap.analysis.conversation import Annotated, Conversation
from sockcap.analysis.zeek import ConnState, ZeekConn
from sockcap.codes import NOTE_EXPLANATIONS, Note, Phase, explanation, note_kind, note_text
from sockcap.decode.records import IPPROTO_UDP, TcpFlags, TcpOptionKind
from sockcap.i18n import N_, _
from sockcap.render.confusions import SUMMARY as CONFUSION_SUMMARY
from sockcap.render.confusions import ConfusionFinder
from sockcap.render.timeline import endpoint, preview

FIN, SYN, RST, ACK, URG = (int(f) for f in (TcpFlags.FIN, TcpFlags.SYN, TcpFlags.RST,
                                            TcpFlags.ACK, TcpFlags.URG))
MOD32 = 1 << 32
MPTCP_FASTCLOSE = 7  # MPTCP option subtype MP_FASTCLOSE (RFC 8684 3.5)
COPY_WITHIN_NS = 200_000_000  # a copy follows its original sooner than any RTO (Linux: 200 ms)


def explain_lines(note_counts: Mapping[Note, int]) -> Iterator[tuple[str, str]]:
    """``(line, style)`` pairs: a heading, then ``  retransmission (2): The sender ...``.

    Kinds are listed in the order of :data:`~sockcap.codes.NOTE_EXPLANATIONS`; notes
    without an explanation (decoder damage) are left to the timeline.
    """
    kinds = [k for k in NOTE_EXPLANATIONS if note_counts.get(k)]
    if not kinds:
        yield _("notes: none (nothing unusual in this exchange)"), "dim"
        return
    yield _("notes:"), "bold"
    for kind in kinds:
        yield _("  {note} ({count}): {meaning}").format(
            note=note_text(kind), count=note_counts[kind], meaning=explanation(kind)), ""


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

CONN_STATE_WORDS = {
    ConnState.S0: N_("The client sent a SYN and no answer came back."),
    ConnState.S1: N_("The connection was opened and is still open at the end of the capture."),
    ConnState.SF: N_("A normal connection: opened with the handshake and closed with FIN both ways."),
    ConnState.REJ: N_("The connection was refused: the SYN was answered with RST."),
    ConnState.S2: N_("Opened; the client closed its side with FIN, the server did not."),
    ConnState.S3: N_("Opened; the server closed its side with FIN, the client did not."),
    ConnState.RSTO: N_("Opened, then the client aborted it with RST."),
    ConnState.RSTR: N_("Opened, then the server aborted it with RST."),
    ConnState.RSTOS0: N_("The client sent a SYN, then an RST; no SYN-ACK was seen."),
    ConnState.RSTRH: N_("The server sent a SYN-ACK, then an RST; the client's SYN was not seen."),
    ConnState.SH: N_("The client sent a SYN, then a FIN; no SYN-ACK was seen (half-open)."),
    ConnState.SHR: N_("The server sent a SYN-ACK, then a FIN; the client's SYN was not seen."),
    ConnState.OTH: N_("No SYN was seen: the capture began in the middle of the connection."),
}

# Zeek's names read the endpoint states, not what was seen: where the capture shows less
# than the name says, the sentence says what was seen.
RSTRH_NO_SYNACK = N_("The server sent an RST; neither the client's SYN nor a SYN-ACK was seen: "
                     "the capture began in the middle of the connection.")
OTH_HANDSHAKE = N_("A SYN and a SYN-ACK were seen, but not the handshake's last ACK: the capture "
                   "ends before the connection was open.")

# Packets whose note reads otherwise than what the evidence shows (after the notes list).
READINGS = (
    (Why.COPY, N_("  read closely: {count} of these packets were seen twice (same IP ID and "
                  "TCP fields): sent once and copied by the capture or the link, not "
                  "retransmitted or repeated.")),
    (Why.DSACK, N_("  read closely: {count} duplicate ACKs carry a D-SACK block: bytes arrived "
                   "twice, nothing is missing.")),
    (Why.FIN_ACK_AGAIN, N_("  read closely: {count} duplicate ACKs acknowledge a re-sent FIN "
                           "again (what TIME_WAIT is for).")),
    (Why.FASTCLOSE, N_("  read closely: {count} duplicate ACKs carry MPTCP's MP_FASTCLOSE: the "
                       "connection is being closed, nothing is missing.")),
)

PREVIEW = 20  # characters of a payload quoted in a sentence


class _Side:
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
        self.last: tuple[int, int, int, int, int, int, int] | None = None  # see _fingerprint


class _Conn:
    __slots__ = ("conv", "zeek", "sides")

    def __init__(self, conv: Conversation) -> None:
        self.conv = conv
        self.zeek = ZeekConn()  # Zeek's endpoint states (sockcap.analysis.zeek, as export)
        self.sides = (_Side(), _Side())

    @property
    def state(self) -> ConnState:
        d = self.conv.dirs
        return self.zeek.conn_state(True, d[0].payload_bytes, d[1].payload_bytes)


def conn_state_text(state: ConnState, conv: Conversation | None = None) -> str:
    """What a Zeek ``conn_state`` means, in a sentence in the reader's language (with the
    conversation: what its capture actually shows, where Zeek's name says more)."""
    if conv is not None:
        if state is ConnState.RSTRH and conv.synack_ts < 0:
            return _(RSTRH_NO_SYNACK)
        if state is ConnState.OTH and conv.syn_ts >= 0 and conv.synack_ts >= 0:
            return _(OTH_HANDSHAKE)
    return _(CONN_STATE_WORDS[state])


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


class PacketExplainer:
    """One plain sentence per packet, with the arithmetic shown (a pure consumer).

    Feed every packet in order to :meth:`sentence` (None for a packet it has nothing to
    say about: neither TCP nor UDP), or to :meth:`explain` for the sentence's code too;
    :meth:`summary` then names each TCP connection's state as Zeek does.
    """

    def __init__(self, calls: Iterable[Call] = ()) -> None:
        self._conns: dict[int, _Conn] = {}
        self.counts: dict[Why, int] = {}  # how many packets got each kind of sentence
        self.confusions = ConfusionFinder()  # what in the capture confuses learners
        self._closers: dict[int, tuple[CallKind, str]] = {}  # FIN packet -> the call's kind, how
        self.know_calls(calls)

    def know_calls(self, calls: Iterable[Call]) -> None:
        """The programs' socket calls, tied to the packets (``story.tie_calls``): a FIN a
        recorded ``close()`` or ``shutdown()`` sent is explained by that call (after
        close() nothing more is read; after shutdown(SHUT_WR) the socket still receives),
        where without them the sentence can only say what each would mean."""
        for call in calls:
            if call.kind in (CallKind.CLOSE, CallKind.SHUTDOWN) and not call.error:
                how = next((str(v) for k, v in call.args if k == "how"),
                           call.call.partition("(")[2].rstrip(")"))  # "shutdown(SHUT_WR)"
                for no in call.packets:
                    self._closers[no] = (call.kind, how)

    def sentence(self, a: Annotated) -> str | None:
        said = self.explain(a)
        return None if said is None else said[1]

    def explain(self, a: Annotated) -> tuple[Why, str] | None:
        """The sentence for ``a`` and the case that chose it."""
        conv = a.conv
        if conv is None:
            return None
        p = a.packet
        side = _(SIDE_WORDS[a.from_client])
        if p.proto == IPPROTO_UDP:
            return Why.UDP, _capital(_(
                "{side} sends a datagram of {length} bytes ({preview}); UDP has no "
                "connection, no sequence numbers and no acknowledgements.").format(
                side=side, length=p.payload_len, preview=preview(p.payload, PREVIEW)))
        c = self._conns.get(conv.stream)
        if c is None or c.conv is not conv:
            c = self._conns[conv.stream] = _Conn(conv)
        c.zeek.see(a)
        own, peer = c.sides if a.from_client else c.sides[::-1]
        why, text = _tcp_sentence(a, side, own, peer)
        closer = self._closers.get(a.no) if why in (Why.FIN, Why.FIN_DATA) else None
        if closer is not None:
            why, text = _fin_call_sentence(a, side, *closer)
        self.counts[why] = self.counts.get(why, 0) + 1
        acks_fin = (bool(p.flags & ACK) and not p.flags & FIN and peer.fin_seq >= 0
                    and a.ack == peer.fin_seq + 1 and own.acked != a.ack and why is not Why.COPY)
        extra = self.confusions.find(a, own.fin_seq >= 0, acks_fin) if why is not Why.COPY else []
        _remember(a, own, why)
        return why, " ".join([_capital(text), *extra])

    def summary(self) -> Iterator[tuple[str, str]]:
        """``(line, style)``: a heading, then each TCP connection's Zeek state and meaning."""
        if not self._conns:
            return
        yield _("connections (the state as Zeek's conn.log names it):"), "bold"
        for c in self._conns.values():
            state = c.state
            yield _("  stream {stream} {client} -> {server}: {state}: {meaning}").format(
                stream=c.conv.stream, client=endpoint(*c.conv.client),
                server=endpoint(*c.conv.server), state=state.value,
                meaning=conn_state_text(state, c.conv)), ""

    def readings(self) -> Iterator[tuple[str, str]]:
        """``(line, style)``: what some of the notes above turned out to be, where the
        packets' sentences read them otherwise than their note's name says."""
        for why, words in READINGS:
            count = self.counts.get(why, 0)
            if count:
                yield _(words).format(count=count), ""
        for kind, words in CONFUSION_SUMMARY.items():
            count = self.confusions.counts.get(kind, 0)
            if count:
                yield _(words).format(count=count), ""

    def states(self) -> dict[int, ConnState]:
        """Each TCP stream's Zeek state now (for tests and JSON)."""
        return {stream: c.state for stream, c in self._conns.items()}


def _fingerprint(a: Annotated) -> tuple[int, int, int, int, int, int, int]:
    """What makes two captured packets the same packet: IPv4 ID and the TCP fields."""
    p = a.packet
    return (p.ip_id, p.seq, p.ack, p.flags, p.payload_len, a.no, p.ts_ns)


def _remember(a: Annotated, own: _Side, why: Why) -> None:
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
        own.dupacks = own.dupacks + 1 if Note.DUPLICATE_ACK in _kinds(a) else 0
        own.repeats = own.repeats + 1 if a.ack == own.acked and not p.payload_len else 0
        own.sacked = bool(_sack_blocks(a))
        own.acked = a.ack
    own.win = a.win
    own.last = _fingerprint(a)


RESENT = frozenset({Why.SPURIOUS, Why.FAST, Why.SACK_RECOVERY, Why.TIMEOUT, Why.FIN_AGAIN,
                    Why.SYN_AGAIN, Why.SYN_ACK_AGAIN})


def _kinds(a: Annotated) -> set[Note]:
    return {note_kind(n) for n in a.notes}


def _is_copy(a: Annotated, own: _Side) -> bool:
    """The same packet as the previous one from this side, seen a second time: same
    IPv4 ID (a sender gives each packet its own; 0 is too common to count) and TCP
    fields, sooner than any retransmission timeout. The copy may be the capture's (two
    interfaces, a mirrored port) or the link's (``lab --duplicate``: the receiver got it
    twice); nothing in the packet tells which, so the sentence names both."""
    last, p = own.last, a.packet
    return (last is not None and p.ip_id > 0 and last[:5] == _fingerprint(a)[:5]
            and 0 <= p.ts_ns - last[6] < COPY_WITHIN_NS)


def _sack_blocks(a: Annotated) -> list[tuple[int, int]]:
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


def _is_dsack(a: Annotated, blocks: list[tuple[int, int]]) -> bool:
    """RFC 2883 4: the first block reports bytes received twice: it lies below the ACK,
    or inside the second block."""
    if not blocks:
        return False
    left, right = blocks[0]
    if (a.ack - right) % MOD32 < MOD32 // 2 and right != left:
        return True
    return len(blocks) > 1 and blocks[1][0] <= left and right <= blocks[1][1]


def _fastclose(a: Annotated) -> bool:
    return any(o.kind == TcpOptionKind.MPTCP and o.value[:1]
               and o.value[0] >> 4 == MPTCP_FASTCLOSE for o in a.packet.options)


def _sack_text(blocks: list[tuple[int, int]]) -> str:
    return ", ".join(f"{left}-{right}" for left, right in blocks)


def _ms(ns: int) -> str:
    return f"{ns / 1e6:.3f}"


def _tcp_sentence(a: Annotated, side: str, own: _Side, peer: _Side) -> tuple[Why, str]:
    p = a.packet
    flags, seq, ack = p.flags, a.seq, a.ack
    kinds = _kinds(a)
    other = _(SIDE_WORDS[not a.from_client])
    if (flags & SYN and flags & (FIN | RST)) or (flags & FIN and flags & RST):
        return Why.INVALID_FLAGS, _(
            "{side} sends a segment with the flags {flags} at once: SYN with FIN or RST, or "
            "FIN with RST, is a combination no TCP stack sends (RFC 9293); it is crafted, a "
            "scan or damage, and a receiver drops it.").format(
            side=side, flags=TcpFlags(flags & 0x1FF).name or str(flags))
    if _is_copy(a, own):
        assert own.last is not None
        return Why.COPY, _(
            "The same packet as no. {no}, seen a second time {ms} ms later (same IP ID "
            "{id}, same Seq, Ack and flags): {side} sent it once; the copy was made after "
            "it left, by the capture (two interfaces, a mirrored port) or by the link (a "
            "network that duplicates packets delivers both). It is neither a retransmission "
            "nor a duplicate ACK.").format(no=own.last[5], ms=_ms(p.ts_ns - own.last[6]),
                                     id=p.ip_id, side=side)
    if flags & RST:
        return _rst_sentence(a, side, other, kinds)
    if flags & SYN:
        return _syn_sentence(a, side, own, peer, kinds)
    resent = _resent_sentence(a, side, other, own, peer, kinds)
    if resent is not None:
        return resent
    if flags & FIN:
        return _fin_sentence(a, side, other, own, peer)
    if a.phase is Phase.HANDSHAKE_3:
        return Why.HANDSHAKE_ACK, _(
            "{side} acknowledges the SYN-ACK: Ack {ack} = Seq 0 + 1 (the SYN took one "
            "sequence number). The connection is open.").format(side=side, ack=ack)
    if Note.ZERO_WINDOW in kinds:
        return Why.ZERO_WINDOW, _(
            "{side} announces a window of 0: its receive buffer is full, and {other} must "
            "wait until it reads.").format(side=side, other=other)
    if Note.ZERO_WINDOW_PROBE in kinds:
        return Why.ZERO_WINDOW_PROBE, _(
            "{side} sends one byte into the zero window to ask whether there is room "
            "again.").format(side=side)
    if Note.KEEP_ALIVE in kinds:
        if peer.win == 0:
            return Why.ZERO_WINDOW_PROBE, _(
                "{side} probes {other}'s zero window: it sends Seq {seq}, one below the next "
                "byte, so that {other} must answer with its current window (Linux's zero "
                "window probe; Wireshark calls its shape a keep-alive).").format(
                side=side, other=other, seq=seq)
        return Why.KEEP_ALIVE, _(
            "{side} checks whether {other} is still there (a keep-alive): Seq {seq} is one "
            "below the next byte, so {other} must answer with an ACK.").format(
            side=side, other=other, seq=seq)
    if Note.DUPLICATE_ACK in kinds:
        return _dupack_sentence(a, side, other, own, peer)
    return _data_or_ack_sentence(a, side, other, own, peer, kinds)


def _rst_sentence(a: Annotated, side: str, other: str, kinds: set[Note]) -> tuple[Why, str]:
    p = a.packet
    if a.phase is Phase.RESET and Note.CONNECTION_REFUSED in kinds:
        return Why.REFUSED, _(
            "RST: nothing listens on port {port}, so {side} refuses the connection; the "
            "client's connect() fails with ECONNREFUSED.").format(port=p.sport, side=side)
    if p.payload_len > 0:
        return Why.RESET, _(
            "RST: {side} aborts the connection; data not yet read is thrown away and "
            "{other}'s next call fails with ECONNRESET. The RST carries {length} bytes "
            "({preview}): a text some stacks and middleboxes add to say why (RFC 9293 "
            "3.5.3).").format(side=side, other=other, length=p.payload_len,
                              preview=preview(p.payload, PREVIEW))
    return Why.RESET, _(
        "RST: {side} aborts the connection; data not yet read is thrown away and {other}'s "
        "next call fails with ECONNRESET.").format(side=side, other=other)


def _syn_sentence(a: Annotated, side: str, own: _Side, peer: _Side,
                  kinds: set[Note]) -> tuple[Why, str]:
    p = a.packet
    again = Note.SYN_RETRANSMITTED in kinds or Note.RETRANSMISSION in kinds
    if not p.flags & ACK:
        if again:
            return Why.SYN_AGAIN, _("{side} sends its SYN again: no SYN-ACK came back in "
                                    "time.").format(side=side)
        if p.payload_len > 0:
            return Why.SYN_DATA, _(
                "{side} asks to open a connection and already sends {length} bytes of data "
                "with the SYN ({preview}: TCP Fast Open, RFC 7413); its first sequence "
                "number (shown as 0) is {isn}, the SYN takes Seq 0 and the data Seq 1 to "
                "{length}.").format(side=side, length=p.payload_len,
                                    preview=preview(p.payload, PREVIEW), isn=p.seq)
        return Why.SYN, _("{side} asks to open a connection; its first sequence number "
                          "(shown as 0) is {isn}.").format(side=side, isn=p.seq)
    if again:
        return Why.SYN_ACK_AGAIN, _(
            "{side} sends its SYN-ACK again: no ACK for it came back in time.").format(side=side)
    if peer.syn_len and a.ack == peer.syn_len + 1:
        return Why.SYN_ACK, _(
            "{side} agrees and opens its own direction; its first sequence number (shown as "
            "0) is {isn}. Ack {ack} = Seq 0 + 1 + {length}: the SYN took one sequence number "
            "and its {length} data bytes the next ones.").format(
            side=side, isn=p.seq, ack=a.ack, length=peer.syn_len)
    return Why.SYN_ACK, _(
        "{side} agrees and opens its own direction; its first sequence number (shown as 0) "
        "is {isn}. Ack {ack} = Seq 0 + 1: the SYN takes one sequence number and carries no "
        "byte.").format(side=side, isn=p.seq, ack=a.ack)


def _resent_sentence(a: Annotated, side: str, other: str, own: _Side, peer: _Side,
                     kinds: set[Note]) -> tuple[Why, str] | None:
    """Bytes (or a FIN) sent again: why, from the peer's ACKs before it."""
    p = a.packet
    length, seq = p.payload_len, a.seq
    # the peer asks for exactly these bytes, with duplicate ACKs or SACK blocks saying
    # later ones arrived: they are sent again, whatever the timing made Wireshark call it
    asked = length > 0 and peer.acked == seq and (peer.dupacks >= 1 or
                                                  (peer.sacked and peer.repeats >= 1))
    if Note.OUT_OF_ORDER in kinds and not asked:
        return Why.OUT_OF_ORDER, _(
            "{side} sends {length} bytes at Seq {seq}, below bytes it sent before: they "
            "arrive out of order (or the capture saw them late).").format(
            side=side, length=length, seq=seq)
    if not kinds & {Note.RETRANSMISSION, Note.SPURIOUS_RETRANSMISSION,
                    Note.FAST_RETRANSMISSION, Note.OUT_OF_ORDER}:
        return None
    if Note.SPURIOUS_RETRANSMISSION in kinds:
        return Why.SPURIOUS, _(
            "{side} sends {length} bytes again from Seq {seq}, although {other} had already "
            "acknowledged them (Ack {acked}): the first copy arrived, but {side} did not get "
            "that ACK in time (it was lost or late), so this copy was not needed — a "
            "spurious retransmission.").format(side=side, other=other, length=length,
                                               seq=seq, acked=peer.acked)
    fin = p.flags & FIN and not length
    if fin:
        return Why.FIN_AGAIN, _(
            "{side} sends its FIN again (Seq {seq}): no ACK for the FIN came in time. The "
            "FIN takes one sequence number and carries no byte.").format(side=side, seq=seq)
    if asked:
        if Note.FAST_RETRANSMISSION in kinds or peer.dupacks >= 3:
            return Why.FAST, _(
                "{side} sends {length} bytes again from Seq {seq} right after {count} "
                "duplicate ACKs asked for byte {seq}: a fast retransmission (RFC 5681 3.2), "
                "without waiting for a timeout.").format(
                side=side, length=length, seq=seq, count=peer.dupacks)
        return Why.SACK_RECOVERY, _(
            "{side} sends {length} bytes again from Seq {seq} right after a duplicate ACK "
            "for byte {seq} whose SACK blocks showed later bytes had arrived: loss recovery "
            "with SACK (RFC 6675), not a timeout.").format(side=side, length=length, seq=seq)
    if Note.OUT_OF_ORDER in kinds:
        return None
    return Why.TIMEOUT, _(
        "{side} sends {length} bytes again from Seq {seq}: no ACK came for them within the "
        "retransmission timeout.").format(side=side, length=length, seq=seq)


def _fin_sentence(a: Annotated, side: str, other: str, own: _Side,
                  peer: _Side) -> tuple[Why, str]:
    p = a.packet
    length, seq, ack = p.payload_len, a.seq, a.ack
    fin = seq + length
    peer_fin = peer.fin_seq >= 0 and p.flags & ACK and ack == peer.fin_seq + 1
    if peer_fin and own.acked != ack:
        return Why.FIN_ACKS_FIN, _(
            "FIN: {side} has nothing more to send either (the FIN takes Seq {fin}); Ack {ack} "
            "= Seq {pfin} + 1 acknowledges {other}'s FIN; from now on {side} waits for the "
            "ACK of its own FIN (LAST_ACK).").format(side=side, fin=fin, ack=ack, pfin=peer.fin_seq,
                                               other=other)
    if peer_fin:
        return Why.FIN_LAST_ACK, _(
            "FIN: {side} has nothing more to send either (the FIN takes Seq {fin}); {other} "
            "closed its side earlier, so nothing more can arrive, and {side} now waits for "
            "the ACK of its FIN (LAST_ACK).").format(side=side, fin=fin, other=other)
    if length > 0:
        return Why.FIN_DATA, _(
            "{side} sends its last {length} bytes ({preview}) at Seq {seq} with FIN: it has "
            "nothing more to send; the FIN takes Seq {fin} = {seq} + {length}.").format(
            side=side, length=length, preview=preview(p.payload, PREVIEW), seq=seq, fin=fin)
    return Why.FIN, _(
        "FIN: {side} has nothing more to send; the FIN takes Seq {seq} and carries no byte. "
        "After shutdown() {side} can still receive; after close(), data that still arrives "
        "is answered with RST.").format(side=side, seq=seq)


def _fin_call_sentence(a: Annotated, side: str, kind: CallKind, how: str) -> tuple[Why, str]:
    """A FIN (with or without its last bytes) that a recorded close() or shutdown() sent."""
    p = a.packet
    length, seq = p.payload_len, a.seq
    call = f"shutdown({how})" if kind is CallKind.SHUTDOWN else "close()"
    still_reads = kind is CallKind.SHUTDOWN and how == "SHUT_WR"
    why = Why.FIN_SHUTDOWN if kind is CallKind.SHUTDOWN else Why.FIN_CLOSE
    if length > 0 and still_reads:
        return why, _(
            "{side} sends its last {length} bytes ({preview}) at Seq {seq} with FIN: its "
            "program called {call} (recorded), so it sends nothing more and can still "
            "receive; the FIN takes Seq {fin} = {seq} + {length}.").format(
            side=side, length=length, preview=preview(p.payload, PREVIEW), seq=seq,
            fin=seq + length, call=call)
    if length > 0:
        return why, _(
            "{side} sends its last {length} bytes ({preview}) at Seq {seq} with FIN: its "
            "program called {call} (recorded), so it sends and reads nothing more, and data "
            "that still arrives is answered with RST; the FIN takes Seq {fin} = {seq} + "
            "{length}.").format(side=side, length=length, preview=preview(p.payload, PREVIEW),
                                seq=seq, fin=seq + length, call=call)
    if still_reads:
        return why, _(
            "FIN: {side}'s program called {call} (recorded): it has nothing more to send and "
            "can still receive. The FIN takes Seq {seq} and carries no byte.").format(
            side=side, call=call, seq=seq)
    return why, _(
        "FIN: {side}'s program called {call} (recorded): it sends and reads nothing more, "
        "and data that still arrives is answered with RST. The FIN takes Seq {seq} and "
        "carries no byte.").format(side=side, call=call, seq=seq)


def _dupack_sentence(a: Annotated, side: str, other: str, own: _Side,
                     peer: _Side) -> tuple[Why, str]:
    ack = a.ack
    blocks = _sack_blocks(a)
    if _is_dsack(a, blocks):
        left, right = blocks[0]
        return Why.DSACK, _(
            "{side} repeats Ack {ack} with a D-SACK block {left}-{right}: those bytes arrived "
            "twice (RFC 2883). Nothing is missing; the ACK tells {other} that its "
            "retransmission was not needed.").format(side=side, ack=ack, left=left,
                                                     right=right, other=other)
    if _fastclose(a):
        return Why.FASTCLOSE, _(
            "{side} repeats Ack {ack} with MPTCP's MP_FASTCLOSE option: it closes the whole "
            "MPTCP connection at once (RFC 8684 3.5); nothing is missing.").format(
            side=side, ack=ack)
    if peer.fin_seq >= 0 and ack == peer.fin_seq + 1 and peer.fin_again:
        if own.fin_seq >= 0:
            return Why.FIN_ACK_AGAIN, _(
                "{side} acknowledges {other}'s re-sent FIN again: Ack {ack} = Seq {fin} + 1. "
                "Its first ACK was lost or late; {side} is in TIME_WAIT, which exists to "
                "answer exactly this.").format(side=side, other=other, ack=ack,
                                               fin=peer.fin_seq)
        return Why.FIN_ACK_AGAIN, _(
            "{side} acknowledges {other}'s re-sent FIN again: Ack {ack} = Seq {fin} + 1; its "
            "first ACK was lost or late.").format(side=side, other=other, ack=ack,
                                                  fin=peer.fin_seq)
    if blocks:
        return Why.DUPLICATE_ACK_SACK, _(
            "{side} repeats Ack {ack}: later bytes arrived (SACK {blocks}), but not byte "
            "{ack}, the one it waits for.").format(side=side, ack=ack, blocks=_sack_text(blocks))
    return Why.DUPLICATE_ACK, _(
        "{side} repeats Ack {ack}: a segment arrived, but not byte {ack}, the one it waits "
        "for.").format(side=side, ack=ack)


def _data_or_ack_sentence(a: Annotated, side: str, other: str, own: _Side, peer: _Side,
                          kinds: set[Note]) -> tuple[Why, str]:
    p = a.packet
    length, seq, ack = p.payload_len, a.seq, a.ack
    what, start, count = _acked(a, own, peer)
    data = preview(p.payload, PREVIEW)
    if length > 0:
        if what == ACKED_DATA:
            return Why.DATA, _(
                "{side} sends {length} bytes ({preview}) at Seq {seq} and acknowledges the "
                "{count} bytes of {acked}: Ack {ack} = Seq {start} + {count}.").format(
                side=side, length=length, preview=data, seq=seq, count=count,
                acked=peer.data_preview, ack=ack, start=start)
        if what == ACKED_BYTES_FIN:
            return Why.DATA, _(
                "{side} sends {length} bytes ({preview}) at Seq {seq} and acknowledges "
                "{count} bytes and {other}'s FIN: Ack {ack} = Seq {start} + {count} + 1 (the "
                "FIN takes one sequence number).").format(
                side=side, length=length, preview=data, seq=seq, count=count - 1,
                other=other, ack=ack, start=start)
        if what == ACKED_FIN:
            return Why.DATA, _(
                "{side} sends {length} bytes ({preview}) at Seq {seq} and acknowledges "
                "{other}'s FIN: Ack {ack} = Seq {start} + 1 (the FIN takes one sequence "
                "number and carries no byte).").format(
                side=side, length=length, preview=data, seq=seq, other=other, ack=ack,
                start=start)
        if what:
            return Why.DATA, _(
                "{side} sends {length} bytes ({preview}) at Seq {seq} and acknowledges "
                "{count} bytes: Ack {ack} = Seq {start} + {count}.").format(
                side=side, length=length, preview=data, seq=seq, count=count, ack=ack,
                start=start)
        return Why.DATA, _(
            "{side} sends {length} bytes ({preview}) at Seq {seq}; its next byte will be Seq "
            "{next} = {seq} + {length}.").format(
            side=side, length=length, preview=data, seq=seq, next=seq + length)
    if what == ACKED_DATA:
        return Why.ACK, _(
            "{side} acknowledges the {count} bytes of {acked}: Ack {ack} = Seq {start} + "
            "{count}.").format(side=side, count=count, acked=peer.data_preview, ack=ack,
                               start=start)
    if what == ACKED_FIN:
        return Why.ACK, _(
            "{side} acknowledges {other}'s FIN: Ack {ack} = Seq {start} + 1 (the FIN takes "
            "one sequence number and carries no byte).").format(
            side=side, other=other, ack=ack, start=start)
    if what == ACKED_BYTES_FIN:
        return Why.ACK, _(
            "{side} acknowledges {count} bytes and {other}'s FIN: Ack {ack} = Seq {start} + "
            "{count} + 1 (the FIN takes one sequence number).").format(
            side=side, count=count - 1, other=other, ack=ack, start=start)
    if what:
        return Why.ACK, _("{side} acknowledges {count} bytes: Ack {ack} = Seq {start} + "
                          "{count}.").format(side=side, count=count, ack=ack, start=start)
    if Note.WINDOW_UPDATE in kinds:
        blocks = _sack_blocks(a)
        if blocks:
            return Why.WINDOW_SACK, _(
                "{side} announces a window of {window} bytes while Ack {ack} still waits for "
                "byte {ack} and later bytes wait in its buffer (SACK {blocks}): no new byte "
                "arrived in order, so this is no ACK of new data; the kernel resized the "
                "window it offers.").format(
                side=side, window=a.win, ack=ack, blocks=_sack_text(blocks))
        if own.win >= 0 and a.win < own.win:
            return Why.WINDOW_UPDATE, _(
                "{side} announces a smaller window: {window} bytes (was {before}), with "
                "nothing else in the segment.").format(side=side, window=a.win,
                                                       before=own.win)
        return Why.WINDOW_UPDATE, _(
            "{side} has read data and announces a larger window: {window} bytes (was "
            "{before}).").format(side=side, window=a.win, before=own.win)
    return Why.ACK, _("{side} acknowledges every byte before Seq {ack}: Ack {ack} is the next "
                      "byte it expects.").format(side=side, ack=ack)


ACKED_DATA, ACKED_FIN, ACKED_BYTES, ACKED_BYTES_FIN = 1, 2, 3, 4


def _acked(a: Annotated, own: _Side, peer: _Side) -> tuple[int, int, int]:
    """What this segment's Ack newly covers: ``(kind, start, count)``, kind 0 for nothing
    new; ``start`` is the Ack this side sent before, ``count`` the sequence numbers since
    (bytes, plus one when the peer's FIN is among them: a FIN carries no byte)."""
    if not a.packet.flags & ACK or own.acked < 0 or (a.ack - own.acked) % MOD32 >= MOD32 // 2 \
            or a.ack == own.acked:
        return 0, 0, 0
    start, count = own.acked, a.ack - own.acked
    if peer.fin_seq >= 0 and start <= peer.fin_seq < a.ack:
        return (ACKED_FIN if count == 1 else ACKED_BYTES_FIN), start, count
    if peer.data_seq == start and peer.data_len == count:
        return ACKED_DATA, start, count
    return ACKED_BYTES, start, count
