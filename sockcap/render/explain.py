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

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from sockcap.analysis.calls import Call, CallKind
from sockcap.analysis.conversation import Annotated, Conversation
from sockcap.analysis.zeek import ConnState, ZeekConn
from sockcap.codes import NOTE_EXPLANATIONS, Note, explanation, note_text
from sockcap.decode.records import IPPROTO_UDP
from sockcap.i18n import N_, _
from sockcap.render.confusions import SUMMARY as CONFUSION_SUMMARY
from sockcap.render.confusions import TUPLE_WINDOW, Confusion, ConfusionFinder
from sockcap.render.segment_cases import (
    ACK,
    FIN,
    PREVIEW,
    RESENT,
    SIDE_WORDS,
    Side,
    Why,
    capital,
    remember,
)
from sockcap.render.tcp_sentences import fin_call_sentence, tcp_sentence
from sockcap.render.timeline import endpoint, preview

__all__ = ["RESENT", "EngineExplanations", "PacketExplainer", "Why", "conn_state_text",
           "explain_lines"]

# The notes on what confuses learners whose meaning --explain already gives, in the
# sentence under the very packet that has the note (render.confusions): the list of notes
# after the packets names them without saying it all again. Not PART_OF_MESSAGE: its
# sentence ("No PSH") is on the segment before the one with the note.
SAID_UNDER_PACKETS = frozenset((Note.PORT_REUSE, Note.WINDOW_SCALE_UNKNOWN, Note.TIME_WAIT,
                                Note.PARTIAL_CHECKSUM, Note.LARGER_THAN_MTU, Note.NAGLE_STALL))


def explain_lines(note_counts: Mapping[Note, int],
                  sentences: bool = False) -> Iterator[tuple[str, str]]:
    """``(line, style)`` pairs: a heading, then ``  retransmission (2): The sender ...``.

    Kinds are listed in the order of :data:`~sockcap.codes.NOTE_EXPLANATIONS`; notes
    without an explanation (decoder damage) are left to the timeline. ``sentences``: each
    packet's sentence was shown, so a note of :data:`SAID_UNDER_PACKETS` points there.
    """
    kinds = [k for k in NOTE_EXPLANATIONS if note_counts.get(k)]
    if not kinds:
        yield _("notes: none (nothing unusual in this exchange)"), "dim"
        return
    yield _("notes:"), "bold"
    for kind in kinds:
        if sentences and kind in SAID_UNDER_PACKETS:
            yield _("  {note} ({count}): said in the sentence under each packet that has "
                    "it.").format(note=note_text(kind), count=note_counts[kind]), ""
            continue
        yield _("  {note} ({count}): {meaning}").format(
            note=note_text(kind), count=note_counts[kind], meaning=explanation(kind)), ""


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

CONNECTIONS = N_("connections (the state as Zeek's conn.log names it):")


def _readings(counts: Mapping[Why, int],
              confusions: Mapping[Confusion, int]) -> Iterator[tuple[str, str]]:
    for why, words in READINGS:
        count = counts.get(why, 0)
        if count:
            yield _(words).format(count=count), ""
    for kind, words in CONFUSION_SUMMARY.items():
        count = confusions.get(kind, 0)
        if count:
            yield _(words).format(count=count), ""


class _Conn:
    __slots__ = ("conv", "zeek", "sides")

    def __init__(self, conv: Conversation) -> None:
        self.conv = conv
        self.zeek = ZeekConn()  # Zeek's endpoint states (sockcap.analysis.zeek, as export)
        self.sides = (Side(), Side())

    @property
    def state(self) -> ConnState:
        d = self.conv.dirs
        return self.zeek.conn_state(True, d[0].payload_bytes, d[1].payload_bytes)


def conn_state_text(state: ConnState, conv: Conversation | None = None) -> str:
    """What a Zeek ``conn_state`` means, in a sentence in the reader's language (with the
    conversation: what its capture actually shows, where Zeek's name says more)."""
    if conv is None:
        return _(CONN_STATE_WORDS[state])
    return _seen_state_text(state, conv.synack_ts < 0, conv.syn_ts >= 0)


def _seen_state_text(state: ConnState, no_synack: bool, syn: bool) -> str:
    if state is ConnState.RSTRH and no_synack:
        return _(RSTRH_NO_SYNACK)
    if state is ConnState.OTH and syn and not no_synack:
        return _(OTH_HANDSHAKE)
    return _(CONN_STATE_WORDS[state])


STATE_LINE = N_("  stream {stream} {client} -> {server}: {state}: {meaning}")


def _state_line(stream: int, client: str, server: str, state: ConnState, meaning: str) -> str:
    return _(STATE_LINE).format(stream=stream, client=client, server=server, state=state.value,
                                meaning=meaning)


class PacketExplainer:
    """One plain sentence per packet, with the arithmetic shown (a pure consumer).

    Feed every packet in order to :meth:`sentence` (None for a packet it has nothing to
    say about: neither TCP nor UDP), or to :meth:`explain` for the sentence's code too;
    :meth:`summary` then names each TCP connection's state as Zeek does.
    """

    def __init__(self, calls: Iterable[Call] = (), tuple_window: int = TUPLE_WINDOW) -> None:
        """``tuple_window``: SYNs a 4-tuple is remembered for, for the port-reuse
        sentence (:data:`sockcap.render.confusions.TUPLE_WINDOW`)."""
        self._conns: dict[int, _Conn] = {}
        self.counts: dict[Why, int] = {}  # how many packets got each kind of sentence
        self.confusions = ConfusionFinder(tuple_window)  # what in the capture confuses learners
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
            return Why.UDP, capital(_(
                "{side} sends a datagram of {length} bytes ({preview}); UDP has no "
                "connection, no sequence numbers and no acknowledgements.").format(
                side=side, length=p.payload_len, preview=preview(p.payload, PREVIEW)))
        c = self._conns.get(conv.stream)
        if c is None or c.conv is not conv:
            c = self._conns[conv.stream] = _Conn(conv)
        c.zeek.see(a)
        own, peer = c.sides if a.from_client else c.sides[::-1]
        why, text = tcp_sentence(a, side, own, peer)
        closer = self._closers.get(a.no) if why in (Why.FIN, Why.FIN_DATA) else None
        if closer is not None:
            why, text = fin_call_sentence(a, side, *closer)
        self.counts[why] = self.counts.get(why, 0) + 1
        acks_fin = (bool(p.flags & ACK) and not p.flags & FIN and peer.fin_seq >= 0
                    and a.ack == peer.fin_seq + 1 and own.acked != a.ack and why is not Why.COPY)
        extra = self.confusions.find(a, own.fin_seq >= 0, acks_fin) if why is not Why.COPY else []
        remember(a, own, why)
        return why, " ".join([capital(text), *extra])

    def summary(self) -> Iterator[tuple[str, str]]:
        """``(line, style)``: a heading, then each TCP connection's Zeek state and meaning."""
        if not self._conns:
            return
        yield _(CONNECTIONS), "bold"
        for c in self._conns.values():
            state = c.state
            yield _state_line(c.conv.stream, endpoint(*c.conv.client), endpoint(*c.conv.server),
                              state, conn_state_text(state, c.conv)), ""

    def readings(self) -> Iterator[tuple[str, str]]:
        """``(line, style)``: what some of the notes above turned out to be, where the
        packets' sentences read them otherwise than their note's name says."""
        return _readings(self.counts, self.confusions.counts)

    def states(self) -> dict[int, ConnState]:
        """Each TCP stream's Zeek state now (for tests and JSON)."""
        return {stream: c.state for stream, c in self._conns.items()}


class EngineExplanations:
    """The end of ``--explain`` when the engine wrote each packet's sentence itself (its
    class's ``explains``: the compiled twin, ``sockcap/_speedups_explain.h``): the same
    lines as :class:`PacketExplainer`'s :meth:`~PacketExplainer.summary` and
    :meth:`~PacketExplainer.readings`, worded here from what the engine gathered (each
    TCP connection's Zeek state and what its capture showed, the count of each case and
    confusion). The engine keeps a connection's row, not the connection: memory stays
    bounded as plain ``show``'s does."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def summary(self) -> Iterator[tuple[str, str]]:
        states = tuple(ConnState)
        # the words looked up once, not for each of the (many) connections
        line = _(STATE_LINE).format
        meanings: dict[tuple[int, bool, bool], str] = {}
        start, first = 0, True
        while start >= 0:
            start, rows = self.engine.explain_rows(start)
            for stream, client, server, code, no_synack, syn in rows:
                if first:
                    yield _(CONNECTIONS), "bold"
                    first = False
                state = states[code]
                meaning = meanings.get((code, no_synack, syn))
                if meaning is None:
                    meaning = meanings[code, no_synack, syn] = _seen_state_text(
                        state, no_synack, syn)
                yield line(stream=stream, client=client, server=server, state=state.value,
                           meaning=meaning), ""

    def readings(self) -> Iterator[tuple[str, str]]:
        told = self.engine.explained()
        counts = dict(zip(Why, told["counts"], strict=True))  # the engine's W_*: Why's order
        confusions = {Confusion.PARTIAL_CHECKSUM: told["partial"],
                      Confusion.LARGER_THAN_MTU: told["larger"],
                      Confusion.NAGLE_STALL: told["nagle"]}
        return _readings(counts, confusions)

