"""``--explain``: a plain sentence under every packet, with the arithmetic shown; each
connection's state as Zeek names it; and each expert note kind that appeared (pure)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from sockcap.analysis.conversation import Annotated, Conversation
from sockcap.analysis.zeek import ConnState, ZeekConn
from sockcap.codes import NOTE_EXPLANATIONS, Note, Phase, explanation, note_kind, note_text
from sockcap.decode.records import IPPROTO_UDP, TcpFlags
from sockcap.i18n import N_, _
from sockcap.render.timeline import endpoint, preview

FIN, SYN, RST, ACK = (int(f) for f in (TcpFlags.FIN, TcpFlags.SYN, TcpFlags.RST, TcpFlags.ACK))


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

PREVIEW = 20  # characters of a payload quoted in a sentence


class _Side:
    """What one direction said last, as the explanation needs it (relative numbers)."""

    __slots__ = ("data_seq", "data_len", "data_preview", "fin_seq", "acked")

    def __init__(self) -> None:
        self.data_seq = -1  # the last data segment: its Seq, length and preview
        self.data_len = 0
        self.data_preview = ""
        self.fin_seq = -1  # the Seq of this side's FIN (-1: none yet)
        self.acked = -1  # the last Ack this side sent (-1: none yet)


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


def conn_state_text(state: ConnState) -> str:
    """What a Zeek ``conn_state`` means, in a sentence in the reader's language."""
    return _(CONN_STATE_WORDS[state])


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


class PacketExplainer:
    """One plain sentence per packet, with the arithmetic shown (a pure consumer).

    Feed every packet in order to :meth:`sentence` (None for a packet it has nothing to
    say about: neither TCP nor UDP); :meth:`summary` then names each TCP connection's
    state as Zeek does.
    """

    def __init__(self) -> None:
        self._conns: dict[int, _Conn] = {}

    def sentence(self, a: Annotated) -> str | None:
        conv = a.conv
        if conv is None:
            return None
        p = a.packet
        side = _(SIDE_WORDS[a.from_client])
        if p.proto == IPPROTO_UDP:
            return _capital(_("{side} sends a datagram of {length} bytes ({preview}); UDP has no "
                              "connection, no sequence numbers and no acknowledgements.").format(
                side=side, length=p.payload_len, preview=preview(p.payload, PREVIEW)))
        c = self._conns.get(conv.stream)
        if c is None or c.conv is not conv:
            c = self._conns[conv.stream] = _Conn(conv)
        c.zeek.see(a)
        own, peer = c.sides if a.from_client else c.sides[::-1]
        text = _capital(_tcp_sentence(a, side, own, peer))
        _remember(a, own)
        return text

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
                meaning=conn_state_text(state)), ""

    def states(self) -> dict[int, ConnState]:
        """Each TCP stream's Zeek state now (for tests and JSON)."""
        return {stream: c.state for stream, c in self._conns.items()}


def _remember(a: Annotated, own: _Side) -> None:
    p = a.packet
    if p.payload_len > 0 and Note.RETRANSMISSION not in _kinds(a):
        own.data_seq, own.data_len = a.seq, p.payload_len
        own.data_preview = preview(p.payload, PREVIEW)
    if p.flags & FIN:
        own.fin_seq = a.seq + p.payload_len
    if p.flags & ACK:
        own.acked = a.ack


def _kinds(a: Annotated) -> set[Note]:
    return {note_kind(n) for n in a.notes}


def _tcp_sentence(a: Annotated, side: str, own: _Side, peer: _Side) -> str:
    p = a.packet
    flags, length, seq, ack = p.flags, p.payload_len, a.seq, a.ack
    kinds = _kinds(a)
    other = _(SIDE_WORDS[not a.from_client])
    if flags & RST:
        if a.phase is Phase.RESET and Note.CONNECTION_REFUSED in kinds:
            return _("RST: nothing listens on port {port}, so {side} refuses the connection; "
                     "the client's connect() fails with ECONNREFUSED.").format(
                port=p.sport, side=side)
        return _("RST: {side} aborts the connection; data not yet read is thrown away and "
                 "{other}'s next call fails with ECONNRESET.").format(side=side, other=other)
    if flags & SYN:
        if not flags & ACK:
            if Note.SYN_RETRANSMITTED in kinds:
                return _("{side} sends its SYN again: no SYN-ACK came back in time.").format(
                    side=side)
            return _("{side} asks to open a connection; its first sequence number (shown as 0) "
                     "is {isn}.").format(side=side, isn=p.seq)
        return _("{side} agrees and opens its own direction; its first sequence number "
                 "(shown as 0) is {isn}. Ack {ack} = Seq 0 + 1: the SYN counts as one "
                 "byte.").format(side=side, isn=p.seq, ack=ack)
    if Note.RETRANSMISSION in kinds or Note.SPURIOUS_RETRANSMISSION in kinds \
            or Note.FAST_RETRANSMISSION in kinds:
        return _("{side} sends {length} bytes again from Seq {seq}: no ACK came for them in "
                 "time.").format(side=side, length=length, seq=seq)
    if flags & FIN:
        if flags & ACK and peer.fin_seq >= 0 and ack == peer.fin_seq + 1 and own.acked != ack:
            return _("FIN: {side} has nothing more to send either (Seq {seq}); Ack {ack} = "
                     "Seq {fin} + 1 acknowledges {other}'s FIN.").format(
                side=side, seq=seq, ack=ack, fin=peer.fin_seq, other=other)
        if length > 0:
            return _("{side} sends its last {length} bytes ({preview}) at Seq {seq} with FIN: it "
                     "has nothing more to send; the FIN takes Seq {fin} = {seq} + {length}.").format(
                side=side, length=length, preview=preview(p.payload, PREVIEW), seq=seq,
                fin=seq + length)
        return _("FIN: {side} has nothing more to send; it can still receive. The FIN takes "
                 "Seq {seq}.").format(side=side, seq=seq)
    if a.phase is Phase.HANDSHAKE_3:
        return _("{side} acknowledges the SYN-ACK: Ack {ack} = Seq 0 + 1. The connection is "
                 "open.").format(side=side, ack=ack)
    if Note.ZERO_WINDOW in kinds:
        return _("{side} announces a window of 0: its receive buffer is full, and {other} "
                 "must wait until it reads.").format(side=side, other=other)
    if Note.ZERO_WINDOW_PROBE in kinds:
        return _("{side} sends one byte into the zero window to ask whether there is room "
                 "again.").format(side=side)
    if Note.KEEP_ALIVE in kinds:
        return _("{side} checks whether {other} is still there (a keep-alive).").format(
            side=side, other=other)
    if Note.DUPLICATE_ACK in kinds:
        return _("{side} repeats Ack {ack}: a segment arrived, but not byte {ack}, the one it "
                 "waits for.").format(side=side, ack=ack)
    what, start, count = _acked(a, own, peer)
    data = preview(p.payload, PREVIEW)
    if length > 0:
        if what == ACKED_DATA:
            return _("{side} sends {length} bytes ({preview}) at Seq {seq} and acknowledges "
                     "the {count} bytes of {acked}: Ack {ack} = Seq {start} + {count}.").format(
                side=side, length=length, preview=data, seq=seq, count=count,
                acked=peer.data_preview, ack=ack, start=start)
        if what:
            return _("{side} sends {length} bytes ({preview}) at Seq {seq} and acknowledges "
                     "{count} bytes: Ack {ack} = Seq {start} + {count}.").format(
                side=side, length=length, preview=data, seq=seq, count=count, ack=ack,
                start=start)
        return _("{side} sends {length} bytes ({preview}) at Seq {seq}; its next byte will be "
                 "Seq {next} = {seq} + {length}.").format(
            side=side, length=length, preview=data, seq=seq, next=seq + length)
    if what == ACKED_DATA:
        return _("{side} acknowledges the {count} bytes of {acked}: Ack {ack} = Seq {start} + "
                 "{count}.").format(side=side, count=count, acked=peer.data_preview, ack=ack,
                                    start=start)
    if what == ACKED_FIN:
        return _("{side} acknowledges {other}'s FIN: Ack {ack} = Seq {start} + 1 (the FIN "
                 "counts as one byte).").format(side=side, other=other, ack=ack, start=start)
    if what:
        return _("{side} acknowledges {count} bytes: Ack {ack} = Seq {start} + {count}.").format(
            side=side, count=count, ack=ack, start=start)
    if Note.WINDOW_UPDATE in kinds:
        return _("{side} has read data and announces a window of {window} bytes.").format(
            side=side, window=a.win)
    return _("{side} acknowledges every byte before Seq {ack}: Ack {ack} is the next byte it "
             "expects.").format(side=side, ack=ack)


ACKED_DATA, ACKED_FIN, ACKED_BYTES = 1, 2, 3


def _acked(a: Annotated, own: _Side, peer: _Side) -> tuple[int, int, int]:
    """What this segment's Ack newly covers: ``(kind, start, count)``, kind 0 for nothing
    new; ``start`` is the Ack this side sent before, ``count`` the bytes since."""
    if not a.packet.flags & ACK or own.acked < 0 or a.ack <= own.acked:
        return 0, 0, 0
    start, count = own.acked, a.ack - own.acked
    if peer.fin_seq == start and count == 1:
        return ACKED_FIN, start, count
    if peer.data_seq == start and peer.data_len == count:
        return ACKED_DATA, start, count
    return ACKED_BYTES, start, count
