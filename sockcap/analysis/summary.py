"""One-line summaries of a capture's conversations (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sockcap.analysis.conversation import Conversation
from sockcap.codes import Note, note_text, outcome_text
from sockcap.decode.records import CaptureStats
from sockcap.i18n import _


def fmt_rtt(ns: int) -> str:
    if ns < 0:
        return _("n/a (no handshake)")
    return _("{ms:.3f} ms").format(ms=ns / 1e6)


def summary_line(convs: Sequence[Conversation], stats: CaptureStats | None = None) -> str:
    """``16 packets: client→server 9 (612 bytes, 14 of payload), server→client 7 (...), handshake RTT
    0.060 ms, ended: FIN both ways``, then the expert notes if there were any: the one-line
    form of ``sockcap stats``. Each clause is one message; the clauses are a list."""
    up = sum(c.dirs[0].packets for c in convs)
    down = sum(c.dirs[1].packets for c in convs)
    clauses = [_("{total} packets: client→server {up} ({up_bytes} bytes, {up_payload} of "
                 "payload), server→client {down} ({down_bytes} bytes, {down_payload} of "
                 "payload)").format(
        total=up + down, up=up, down=down,
        up_bytes=sum(c.dirs[0].bytes for c in convs),
        down_bytes=sum(c.dirs[1].bytes for c in convs),
        up_payload=sum(c.dirs[0].payload_bytes for c in convs),
        down_payload=sum(c.dirs[1].payload_bytes for c in convs))]
    tcp = [c for c in convs if c.syn_ts >= 0]
    if tcp and tcp[0].refused and tcp[0].irtt_ns >= 0:
        # a refused SYN has a round trip (SYN to RST) but no handshake
        clauses.append(_("no handshake (refused after {rtt})").format(rtt=fmt_rtt(tcp[0].irtt_ns)))
    elif tcp:
        clauses.append(_("handshake RTT {rtt}").format(rtt=fmt_rtt(tcp[0].irtt_ns)))
    ends = _ends(convs)
    if ends:
        clauses.append(ends)
    notes = _notes(convs)
    if notes:
        clauses.append(_("notes: {notes}").format(notes=notes))
    if stats is not None and stats.dropped >= 0:
        clauses.append(_("{count} dropped by the kernel").format(count=stats.dropped))
        unread = stats.received - stats.dropped - stats.captured
        if stats.received >= 0 and unread > 0:
            clauses.append(_("{count} received but not read before the stop").format(
                count=unread))
    return ", ".join(clauses)


def _ends(convs: Sequence[Conversation]) -> str:
    """``ended: FIN both ways`` (one TCP conversation) or ``ended: 2 reset, 1 FIN both ways``."""
    counts: dict[str, int] = {}
    for c in convs:
        if c.end_state:
            how = _ended_words(c)
            counts[how] = counts.get(how, 0) + 1
    if not counts:
        return ""
    if len(counts) == 1 and sum(counts.values()) == 1:
        return _("ended: {how}").format(how=next(iter(counts)))
    return _("ended: {how}").format(how=", ".join(f"{n} {how}" for how, n in counts.items()))


def _ended_words(c: Conversation) -> str:
    """How a conversation ended, in words (a SYN that nobody answered has its own
    outcome, :attr:`~sockcap.codes.Outcome.UNANSWERED`: nothing was ever opened)."""
    return outcome_text(c.end_state)


def _notes(convs: Sequence[Conversation]) -> str:
    """``2 retransmission; 1 duplicate ACK``: the expert notes of all conversations."""
    counts: dict[Note, int] = {}
    for c in convs:
        for kind, n in (c.note_counts or {}).items():
            counts[kind] = counts.get(kind, 0) + n
    return notes_list(counts)


def notes_list(counts: Mapping[Note, int]) -> str:
    """``2 retransmission; 1 duplicate ACK``: note counts, most frequent first, "; " between
    them as in the timeline's ``(note; note)``: a note's own words may hold a comma
    (``partial checksum: offload, once per connection``), and the line they stand in is
    a list of clauses joined by commas."""
    return "; ".join(f"{n} {note_text(kind)}"
                     for kind, n in sorted(counts.items(), key=lambda kv: -kv[1]))
