"""Ladder writers for text: a terminal (box-drawing or ASCII) and Mermaid.

Pure: a :class:`~sockcap.render.ladder.Ladder` in, lines out. The terminal writer yields
``(line, style)`` pairs whose style is a rich style name (the CLI applies it on a
terminal only); Mermaid's ``sequenceDiagram`` is plain lines to paste into Markdown.

The terminal ladder, two lines a packet (its label, then its arrow)::

          time    no   client                                  server
                       │                                            │
      0.000000     1 ┌ │ [SYN] Seq=0 Len=0                          │ ┌ handshake
                     │ │───────────────────────────────────────────▶│ │ RTT 0.026 ms

Times on the left, the handshake's round trip bracketed beside them, the phases as
brackets on the right, expert notes written into the arrow's shaft.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from sockcap.i18n import _
from sockcap.render.ladder import Arrow, Band, BandKind, Ladder, Mark

MIN_GAP, MAX_GAP = 28, 72  # room between the two lifelines
BAND_WIDTH = 16  # "│ RTT 0.026 ms" fits
LEFT = 19  # "  0.000000     1 ┌ ": time, number, bracket


class Glyphs(NamedTuple):
    lane: str
    shaft: str
    right: str
    left: str
    top: str  # a bracket's first row
    bottom: str  # ... and its last
    more: str  # a text cut short
    to: str  # client -> server in the title
    call: str  # before a socket call


BOX = Glyphs("│", "─", "▶", "◀", "┌", "└", "…", "→", "▸")
ASCII = Glyphs("|", "-", ">", "<", "+", "+", "~", "->", "*")

_MARK_STYLES = {Mark.RETRANSMISSION: "bold red", Mark.RESET: "bold red",
                Mark.DUPLICATE_ACK: "bold yellow", Mark.ZERO_WINDOW: "bold yellow",
                Mark.OTHER: "red"}
_BAND_STYLES = {BandKind.HANDSHAKE: "cyan", BandKind.TEARDOWN: "yellow",
                BandKind.RESET: "bold red"}
CLIENT_STYLE, SERVER_STYLE = "green", "magenta"  # as the timeline's data lines


def ladder_lines(ladder: Ladder, width: int = 80, ascii: bool = False) -> Iterator[tuple[str, str]]:
    """The ladder as ``(line, style)`` pairs, at most ``width`` columns when it can be
    (a label longer than the room between the lifelines is cut, marked ``…``)."""
    g = ASCII if ascii else BOX
    gap = max(MIN_GAP, min(MAX_GAP, width - LEFT - 2 - BAND_WIDTH))
    yield _("{title}: client {client} {to} server {server}").format(
        title=ladder.title, client=ladder.client, to=g.to, server=ladder.server), "bold"
    yield _heading(gap), "bold"
    empty = " " * LEFT + g.lane + " " * gap + g.lane
    yield empty, ""
    bands = {b.first: b for b in ladder.bands}
    ends = {b.last for b in ladder.bands}
    band: Band | None = None
    for arrow in ladder.arrows:
        yield from _side_lines(ladder, arrow.row, gap, g)
        band = bands.get(arrow.row, band)
        style = _style(arrow, band)
        left1, left2 = _bracket(ladder, arrow.row, g)
        right1, right2 = _band_cells(ladder, band, arrow.row, arrow.row in ends, g)
        head = f"{arrow.time:10.6f} {arrow.no:5d} {left1} "
        yield (head + g.lane + _label(arrow, gap, g) + g.lane + right1).rstrip(), style
        yield (" " * 17 + left2 + " " + _shaft(arrow, gap, g) + right2).rstrip(), style
    yield from _side_lines(ladder, len(ladder.arrows), gap, g)
    yield empty, ""
    yield _footer(ladder), "dim"


STATE_STYLE, CALL_STYLE = "magenta", "cyan"  # as the timeline's ◆ and ▸ lines


def _side_lines(ladder: Ladder, row: int, gap: int, g: Glyphs) -> Iterator[tuple[str, str]]:
    """The states and calls above arrow ``row``: a client's state left of its lifeline, a
    server's right of its own; a call inside the lanes, at the side that made it."""
    for note in (n for n in ladder.side_notes if n.row == row):
        if note.state and note.client:
            line = f"{_cut(note.text, LEFT - 2, g):>{LEFT - 1}} " + g.lane + " " * gap + g.lane
        elif note.state:
            line = " " * LEFT + g.lane + " " * gap + g.lane + " " + note.text
        else:
            text = _cut(g.call + " " + note.text, gap - 2, g)
            inner = f" {text:<{gap - 2}} " if note.client else f" {text:>{gap - 2}} "
            line = " " * LEFT + g.lane + inner + g.lane
        yield line.rstrip(), STATE_STYLE if note.state else CALL_STYLE


def _heading(gap: int) -> str:
    client, server = _("client"), _("server")
    time, number = _("time"), _("No.")  # Wireshark's column titles
    return (f"{time:>10} {number:>5}   " + client
            + " " * max(1, gap + 2 - len(client) - len(server)) + server)


def _label(arrow: Arrow, gap: int, g: Glyphs) -> str:
    """The label line between the lifelines, next to the sender."""
    room = gap - 2
    text = arrow.label
    if arrow.payload:
        rest = room - len(text) - 1  # the payload preview is cut to what is left
        if rest >= 8:
            text += " " + _cut(arrow.payload, rest, g)
    text = _cut(text, room, g)
    return f" {text:<{room}} " if arrow.from_client else f" {text:>{room}} "


def _shaft(arrow: Arrow, gap: int, g: Glyphs) -> str:
    """``│────── retransmission ──────▶│``: the arrow, its notes in the middle."""
    shaft = gap - 1
    note = ", ".join(arrow.notes)
    if note:
        note = f" {_cut(note, shaft - 6, g)} "
        before = (shaft - len(note)) // 2
        body = g.shaft * before + note + g.shaft * (shaft - before - len(note))
    else:
        body = g.shaft * shaft
    inner = body + g.right if arrow.from_client else g.left + body
    return g.lane + inner + g.lane


def _cut(text: str, room: int, g: Glyphs) -> str:
    return text if len(text) <= room else text[: max(0, room - 1)] + g.more


def _bracket(ladder: Ladder, row: int, g: Glyphs) -> tuple[str, str]:
    """The RTT bracket's cells on a packet's two lines (it spans arrow line to arrow line)."""
    rtt = ladder.rtt
    if rtt is None or not rtt.first <= row <= rtt.last:
        return " ", " "
    first = " " if row == rtt.first else g.lane
    second = g.top if row == rtt.first else g.bottom if row == rtt.last else g.lane
    return first, second


def _band_cells(ladder: Ladder, band: Band | None, row: int, last: bool,
                g: Glyphs) -> tuple[str, str]:
    if band is None:
        return "", ""
    first = f" {g.top} {band.words}" if row == band.first else f" {g.lane}"
    second = f" {g.bottom}" if last else f" {g.lane}"
    rtt = ladder.rtt
    if rtt is not None and row == rtt.first and not last:
        second += f" {rtt.words}"
    return first, second


def _style(arrow: Arrow, band: Band | None) -> str:
    if arrow.marks:
        return _MARK_STYLES[arrow.marks[0]]
    if band is not None and band.kind in _BAND_STYLES:
        return _BAND_STYLES[band.kind]
    return CLIENT_STYLE if arrow.from_client else SERVER_STYLE


def _footer(ladder: Ladder) -> str:
    text = _("{count} packets").format(count=len(ladder.arrows) + ladder.left_out)
    if ladder.ended:
        text = _("{count} packets, ended: {ended}").format(
            count=len(ladder.arrows) + ladder.left_out, ended=ladder.ended)
    if ladder.rtt is not None and ladder.rtt.refused:
        text = _("{text}, SYN to RST {ms} ms (no handshake)").format(
            text=text, ms=f"{ladder.rtt.ns / 1e6:.3f}")
    elif ladder.rtt is not None:
        text = _("{text}, handshake RTT {ms} ms").format(text=text, ms=f"{ladder.rtt.ns / 1e6:.3f}")
    if ladder.left_out:
        text = _("{text} ({left_out} not drawn: the first {drawn} are)").format(
            text=text, left_out=ladder.left_out, drawn=len(ladder.arrows))
    return text


# -- Mermaid ---------------------------------------------------------------------------

_MERMAID_ESCAPES = {"#": "#35;", ";": "#59;", "<": "#lt;", ">": "#gt;", "\n": " "}
_BAND_COLOURS = {BandKind.HANDSHAKE: "rgb(224, 242, 254)", BandKind.DATA: "rgb(240, 253, 244)",
                 BandKind.TEARDOWN: "rgb(254, 249, 195)", BandKind.RESET: "rgb(254, 226, 226)"}


def mermaid_escape(text: str) -> str:
    """Text safe in a Mermaid message: ``#``, ``;`` and angle brackets as entity codes."""
    return "".join(_MERMAID_ESCAPES.get(c, c) for c in text)


def ladder_mermaid(ladder: Ladder) -> Iterator[str]:
    """A Mermaid ``sequenceDiagram``: one message per packet, phases as coloured
    ``rect`` blocks, notes beside their arrows, the RTT as a note over the client."""
    yield "sequenceDiagram"
    client, server = mermaid_escape(_("client")), mermaid_escape(_("server"))
    yield f"    participant C as {client} {mermaid_escape(ladder.client)}"
    yield f"    participant S as {server} {mermaid_escape(ladder.server)}"
    bands = {b.first: b for b in ladder.bands}
    ends = {b.last for b in ladder.bands}
    for arrow in ladder.arrows:
        yield from _mermaid_side_notes(ladder, arrow.row)
        band = bands.get(arrow.row)
        if band is not None:
            yield f"    rect {_BAND_COLOURS[band.kind]}"
            yield f"    Note over C,S: {mermaid_escape(band.words)}"
        src, dst = ("C", "S") if arrow.from_client else ("S", "C")
        line = "-)" if ladder.udp else "-x" if Mark.RESET in arrow.marks else "->>"
        text = f"{arrow.no} {arrow.label}" + (f" {arrow.payload}" if arrow.payload else "")
        yield f"    {src}{line}{dst}: {mermaid_escape(text)}"
        if arrow.notes:
            yield f"    Note right of {dst}: {mermaid_escape(', '.join(arrow.notes))}"
        if ladder.rtt is not None and arrow.row == ladder.rtt.last:
            words = (_("SYN to RST {rtt}") if ladder.rtt.refused else _("handshake {rtt}")).format(
                rtt=ladder.rtt.words)
            yield f"    Note left of C: {mermaid_escape(words)}"
        if arrow.row in ends:
            yield "    end"
    yield from _mermaid_side_notes(ladder, len(ladder.arrows))
    if ladder.left_out:
        yield "    Note over C,S: " + mermaid_escape(
            _("{left_out} more packets not drawn").format(left_out=ladder.left_out))


def _mermaid_side_notes(ladder: Ladder, row: int) -> Iterator[str]:
    for note in (n for n in ladder.side_notes if n.row == row):
        where = "left of C" if note.client else "right of S"
        text = note.text if note.state else "▸ " + note.text
        yield f"    Note {where}: {mermaid_escape(text)}"
