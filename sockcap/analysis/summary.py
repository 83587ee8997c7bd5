"""One-line summaries of a capture's conversations (pure)."""

from __future__ import annotations

from collections.abc import Sequence

from sockcap.analysis.conversation import Conversation
from sockcap.decode.records import CaptureStats


def fmt_rtt(ns: int) -> str:
    return f"{ns / 1e6:.3f} ms" if ns >= 0 else "n/a (no handshake)"


def summary_line(convs: Sequence[Conversation], stats: CaptureStats | None = None) -> str:
    """``16 packets: client→server 9 (612 bytes, 14 of payload), server→client 7 (...), handshake RTT
    0.060 ms, ended: FIN both ways``, then the expert notes if there were any: the one-line
    form of ``sockcap stats``."""
    up = sum(c.dirs[0].packets for c in convs)
    down = sum(c.dirs[1].packets for c in convs)
    up_b = sum(c.dirs[0].bytes for c in convs)
    down_b = sum(c.dirs[1].bytes for c in convs)
    up_p = sum(c.dirs[0].payload_bytes for c in convs)
    down_p = sum(c.dirs[1].payload_bytes for c in convs)
    text = (f"{up + down} packets: client→server {up} ({up_b} bytes, {up_p} of payload), "
            f"server→client {down} ({down_b} bytes, {down_p} of payload)")
    tcp = [c for c in convs if c.syn_ts >= 0]
    if tcp:
        text += f", handshake RTT {fmt_rtt(tcp[0].irtt_ns)}"
    ends = _ends(convs)
    if ends:
        text += f", {ends}"
    notes = _notes(convs)
    if notes:
        text += f", notes: {notes}"
    if stats is not None and stats.dropped >= 0:
        text += f", {stats.dropped} dropped by the kernel"
    return text


def _ends(convs: Sequence[Conversation]) -> str:
    """``ended: FIN both ways`` (one TCP conversation) or ``ended: 2 reset, 1 FIN both ways``."""
    counts: dict[str, int] = {}
    for c in convs:
        if c.end_state:
            counts[c.end_state] = counts.get(c.end_state, 0) + 1
    if not counts:
        return ""
    if len(counts) == 1 and sum(counts.values()) == 1:
        return f"ended: {next(iter(counts))}"
    return "ended: " + ", ".join(f"{n} {state}" for state, n in counts.items())


def _notes(convs: Sequence[Conversation]) -> str:
    """``2 retransmission, 1 duplicate ACK``: the expert notes of all conversations."""
    counts: dict[str, int] = {}
    for c in convs:
        for kind, n in (c.note_counts or {}).items():
            counts[kind] = counts.get(kind, 0) + n
    return ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items(), key=lambda kv: -kv[1]))
