"""The ladder (sequence) diagram of one conversation: the layout, as plain records.

Pure: a conversation's annotated packets in, a :class:`Ladder` out. The writers
(:mod:`sockcap.render.ladder_text` for a terminal and Mermaid, :mod:`sockcap.render.svg`
for SVG, :mod:`sockcap.render.report` for HTML) only place what the layout says: one
:class:`Arrow` per packet (which side sent it, its row, its label as the timeline names
the fields), the phases as :class:`Band` records over rows, the handshake's round trip
as a :class:`Bracket`, and the expert notes as :class:`Mark` codes on the arrows.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from typing import NamedTuple

from sockcap.analysis.calls import Call
from sockcap.analysis.conversation import Annotated, Conversation
from sockcap.analysis.story import Moment, story
from sockcap.analysis.tcpstate import StateTracker, first_states
from sockcap.codes import CAPTURE_NOTES, Code, Note, Phase, note_kind, note_text, outcome_text
from sockcap.decode.ftrace import KernelEvent, KernelEventKind
from sockcap.decode.records import IPPROTO_UDP, TcpFlags
from sockcap.i18n import N_, _, ngettext
from sockcap.render.follow import stream_name
from sockcap.render.timeline import endpoint, preview, wireshark_flags

SYN, ACK, RST = int(TcpFlags.SYN), int(TcpFlags.ACK), int(TcpFlags.RST)
PREVIEW_CHARS = 16  # payload shown on an arrow (the timeline shows 24)


class Mark(Code):
    """What an arrow is marked with (its colour in a terminal and in SVG)."""

    RETRANSMISSION = "retransmission"
    DUPLICATE_ACK = "duplicate-ack"
    ZERO_WINDOW = "zero-window"
    RESET = "reset"
    OTHER = "note"  # any other expert note or decoder damage


class BandKind(Code):
    """A stretch of the conversation shown as a band behind its arrows."""

    HANDSHAKE = "handshake"
    DATA = "data"
    TEARDOWN = "teardown"
    RESET = "reset"


BAND_WORDS = {BandKind.HANDSHAKE: N_("handshake"), BandKind.DATA: N_("data"),
              BandKind.TEARDOWN: N_("teardown"), BandKind.RESET: N_("reset")}

_BAND_OF_PHASE = {
    Phase.HANDSHAKE_1: BandKind.HANDSHAKE, Phase.HANDSHAKE_2: BandKind.HANDSHAKE,
    Phase.HANDSHAKE_3: BandKind.HANDSHAKE, Phase.DATA: BandKind.DATA, Phase.ACK: BandKind.DATA,
    Phase.TEARDOWN: BandKind.TEARDOWN, Phase.RESET: BandKind.RESET,
}

_MARK_OF_NOTE = {
    Note.RETRANSMISSION: Mark.RETRANSMISSION, Note.FAST_RETRANSMISSION: Mark.RETRANSMISSION,
    Note.SPURIOUS_RETRANSMISSION: Mark.RETRANSMISSION,
    Note.SYN_RETRANSMITTED: Mark.RETRANSMISSION, Note.DUPLICATE_ACK: Mark.DUPLICATE_ACK,
    Note.ZERO_WINDOW: Mark.ZERO_WINDOW, Note.ZERO_WINDOW_PROBE: Mark.ZERO_WINDOW,
    Note.ZERO_WINDOW_PROBE_ACK: Mark.ZERO_WINDOW, Note.CONNECTION_REFUSED: Mark.RESET,
    Note.CONNECTION_RESET: Mark.RESET,
}


class Arrow(NamedTuple):
    """One packet: an arrow from its sender's line to the receiver's."""

    no: int  # the packet's number in the capture
    row: int  # its place in the ladder, 0 at the top
    time: float  # seconds since the capture's first packet
    from_client: bool
    label: str  # "[PSH, ACK] Seq=1 Ack=1 Len=5" (TCP) or "UDP Len=4": the timeline's fields
    payload: str  # '"hello"' (a preview), "" without payload
    notes: tuple[str, ...]  # the expert notes, in the reader's language
    marks: tuple[Mark, ...]  # one per note kind that has a colour, in note order


class Band(NamedTuple):
    """Rows ``first`` .. ``last`` (inclusive) belong to one phase of the conversation."""

    kind: BandKind
    first: int
    last: int

    @property
    def words(self) -> str:
        return _(BAND_WORDS[self.kind])


class Bracket(NamedTuple):
    """The handshake's round trip: from the SYN's row to the row that answered it."""

    first: int
    last: int
    ns: int
    refused: bool = False  # answered with RST: a round trip, but no handshake

    @property
    def words(self) -> str:
        return _("RTT {ms} ms").format(ms=f"{self.ns / 1e6:.3f}")


class SideNote(NamedTuple):
    """Something written beside one side's lifeline above arrow ``row`` (``row`` equal to
    the number of arrows: below the last): the TCP state the kernel put that side in, as
    the textbook diagrams write CLOSED → SYN_SENT → ESTABLISHED beside the lines, or a
    socket call it made."""

    row: int
    client: bool
    text: str  # "SYN_SENT", "connect(127.0.0.1:5001)"
    state: bool  # True: a TCP state; False: a call
    inferred: bool = False  # a state read from the packets, not recorded by --kernel


class Ladder(NamedTuple):
    """A conversation laid out as a ladder: two lifelines and the arrows between them."""

    title: str  # "tcp stream 0"
    udp: bool
    client: str  # "127.0.0.1:35558"
    server: str
    arrows: tuple[Arrow, ...]
    bands: tuple[Band, ...]
    rtt: Bracket | None
    ended: str  # how it ended, in words ("" for UDP)
    left_out: int  # packets of the conversation not drawn (past the limit)
    side_notes: tuple[SideNote, ...] = ()  # states and calls beside the lifelines


def with_side_notes(ladder: Ladder, packets: Sequence[Annotated], calls: Sequence[Call] = (),
                    events: Sequence[KernelEvent] = (), infer: bool = False) -> Ladder:
    """The ladder with each side's TCP states (``--kernel``'s state changes) and socket
    calls (tied by :func:`sockcap.analysis.story.tie_calls`) of its conversation written
    beside the lifelines, each above the first arrow drawn after it.

    ``infer``: where ``--kernel`` recorded no state of this conversation, the states
    :class:`~sockcap.analysis.tcpstate.StateTracker` reads from the packets instead,
    marked ``inferred`` (each in the RFC's name, as the report's step mode says them;
    the kernel's own are kept as the kernel names them: FIN_WAIT1, SYN_RECV, CLOSE)."""
    if not packets or packets[0].conv is None:
        return ladder
    stream = packets[0].conv.stream
    times = [a.packet.ts_ns for a in packets[:len(ladder.arrows)]]
    notes = [(e.ts_ns, SideNote(bisect_left(times, e.ts_ns), e.side == "client",
                                e.new_state, True))
             for e in events if e.kind is KernelEventKind.STATE and e.stream == stream
             and e.side in ("client", "server")]
    if infer and not notes and not ladder.udp:
        notes = _inferred_states(packets[:len(ladder.arrows)])
    mine = [c for c in calls if c.stream == stream and c.side in ("client", "server")]
    notes += [(e.ts_ns, SideNote(bisect_left(times, e.ts_ns), e.call.side == "client",
                                 call_words(e.call, e.moment), False))
              for e in story(packets[:len(ladder.arrows)], mine) if e.call is not None]
    notes.sort(key=lambda n: n[0])
    return ladder._replace(side_notes=tuple(note for _ts, note in notes))


def call_words(call: Call, moment: Moment = Moment.WHOLE) -> str:
    """A call as the ladder writes it beside its side's lifeline: ``send(b'hi') → 2
    bytes``, ``connect(127.0.0.1:5001) → ECONNREFUSED``; a call that waited across
    packets twice, ``connect(...) …`` where it began and ``… connect(...) → ok`` where it
    returned (:func:`sockcap.analysis.story.story` says which)."""
    name = _(call.call) if call.call else ""
    if moment is Moment.BEGUN:
        return _("{call} …").format(call=name)
    if call.error:
        result = call.error
    elif call.nbytes >= 0:
        result = ngettext("{count} byte", "{count} bytes", call.nbytes).format(count=call.nbytes)
    else:
        result = _("ok")
    if moment is Moment.RETURNED:
        return _("… {call} → {result}").format(call=name, result=result)
    return _("{call} → {result}").format(call=name, result=result)


def _inferred_states(packets: Sequence[Annotated]) -> list[tuple[int, SideNote]]:
    """Each end's state as the packets tell it: the first ones above the first arrow, then
    each change above the arrow after the packet that made it (on loopback a packet moves
    its sender and its receiver at the instant it is captured)."""
    tracker = StateTracker()
    notes: list[tuple[int, SideNote]] = []
    for row, a in enumerate(packets):
        if a.packet.seq < 0:
            continue
        if tracker.states is None:  # the states before the first packet
            first = first_states(a)
            notes += [(a.packet.ts_ns - 1, SideNote(row, i == 0, first[i].value, True, True))
                      for i in (0, 1)]
        step = tracker.see(a)
        notes += [(a.packet.ts_ns, SideNote(row + 1, t.client, t.after.value, True, True))
                  for t in step.transitions]
    return notes


def ladder_layout(packets: Sequence[Annotated], first_ts: int, limit: int = 0) -> Ladder:
    """The ladder of one conversation's packets (all of ``packets`` share ``.conv``).

    ``first_ts`` is what times count from (the pipeline's); ``limit`` draws only the
    first that many packets (0: all) and counts the rest in ``left_out``.
    """
    if not packets or packets[0].conv is None:
        raise ValueError(_("a ladder needs the packets of one conversation"))
    conv = packets[0].conv
    shown = packets[:limit] if limit else packets
    arrows = tuple(_arrow(a, row, first_ts) for row, a in enumerate(shown))
    return Ladder(
        title=stream_name(conv), udp=conv.proto == IPPROTO_UDP,
        client=endpoint(*conv.client), server=endpoint(*conv.server), arrows=arrows,
        bands=tuple(_bands(shown)), rtt=_rtt(shown, conv), ended=outcome_text(conv.end_state),
        left_out=len(packets) - len(shown))


def _arrow(a: Annotated, row: int, first_ts: int) -> Arrow:
    p = a.packet
    if a.seq >= 0 and a.win >= 0:
        ack = f" Ack={a.ack}" if p.flags & ACK else ""  # as the timeline: no Ack without ACK
        label = f"{wireshark_flags(p.flags)} Seq={a.seq}{ack} Len={p.payload_len}"
    else:
        label = f"{'UDP' if p.is_udp else 'TCP'} Len={p.payload_len}"
    payload = preview(p.payload, PREVIEW_CHARS) if p.payload_len > 0 else ""
    marks: list[Mark] = []
    notes = tuple(n for n in a.notes if _drawn(n))
    for note in notes:
        try:
            mark = _MARK_OF_NOTE.get(note_kind(note), Mark.OTHER)
        except ValueError:
            mark = Mark.OTHER
        if mark not in marks:
            marks.append(mark)
    if p.flags & RST and Mark.RESET not in marks:
        marks.append(Mark.RESET)
    return Arrow(no=a.no, row=row, time=(p.ts_ns - first_ts) / 1e9, from_client=a.from_client,
                 label=label, payload=payload, notes=tuple(_note_words(n) for n in notes),
                 marks=tuple(marks))


def _drawn(note: str) -> bool:
    """Whether an arrow shows the note: not one about how the capture was taken
    (:data:`sockcap.codes.CAPTURE_NOTES`)."""
    try:
        return note_kind(note) not in CAPTURE_NOTES
    except ValueError:
        return True


def _note_words(note: str) -> str:
    try:
        return note_text(note)
    except ValueError:
        return note  # decoder damage not in the catalogue: its own text


def _bands(packets: Sequence[Annotated]) -> list[Band]:
    bands: list[Band] = []
    for row, a in enumerate(packets):
        kind = _BAND_OF_PHASE.get(a.phase, BandKind.DATA)
        if bands and bands[-1].kind is kind:
            bands[-1] = bands[-1]._replace(last=row)
        else:
            bands.append(Band(kind, row, row))
    return bands


def _rtt(packets: Sequence[Annotated], conv: Conversation) -> Bracket | None:
    """The rows of the most recent SYN and of the segment that ended the round trip
    (Wireshark's ``tcp.analysis.initial_rtt``: SYN to the first ACK without SYN)."""
    ns = conv.irtt_ns
    if ns < 0:
        return None
    start = -1
    for row, a in enumerate(packets):
        flags = a.packet.flags
        if flags & (SYN | ACK) == SYN and a.packet.ts_ns == conv.mru_syn_ts:
            start = row
        elif start >= 0 and flags & (SYN | ACK) == ACK and a.packet.ts_ns - conv.mru_syn_ts == ns:
            return Bracket(start, row, ns, conv.refused)
    return None


def conversation_packets(annotated: Sequence[Annotated], conv: Conversation) -> list[Annotated]:
    """The packets of one conversation, in order."""
    return [a for a in annotated if a.conv is conv]
