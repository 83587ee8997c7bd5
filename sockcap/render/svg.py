"""SVG writers: the ladder and the time-sequence graph as standalone SVG documents.

Pure: a layout in (:class:`~sockcap.render.ladder.Ladder`,
:class:`~sockcap.render.seqgraph.SeqGraph`), an SVG document out, built with
:mod:`xml.etree.ElementTree` so that it is well-formed whatever the labels hold. The
documents carry their own ``<style>`` (class names prefixed ``sc-`` so that several can
sit in one HTML page), open in a browser and in Inkscape, and are what the HTML report
embeds inline.

In the ladder every packet is one ``<g class="sc-arrow" data-no="N">`` holding its
slanted line, its head, its label (``class="sc-label"``: the timeline's fields), its
payload preview and its notes.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from typing import NamedTuple

from sockcap.i18n import _
from sockcap.render.ladder import Ladder, Mark, SideNote
from sockcap.render.seqgraph import SeqGraph

SVG_NS = "http://www.w3.org/2000/svg"

# ladder geometry, in pixels
ROW = 40  # from one arrow to the next
SLANT = 14  # how far an arrow drops from sender to receiver
TOP = 70  # first arrow
TIME_X, NO_X, BRACKET_X = 62, 100, 196
CLIENT_X, SERVER_X = 232, 652
BAND_X = 672
WIDTH = 800
STATE_W = 96  # the column for the TCP states beside each lifeline (when there are any)
NOTE_H = 16  # a line of states and calls above an arrow

LADDER_STYLE = """
.sc-ladder text { font-family: ui-monospace, 'DejaVu Sans Mono', monospace; font-size: 12px; fill: #1f2937; }
.sc-ladder .sc-head { font-weight: bold; font-size: 13px; }
.sc-ladder .sc-life { stroke: #6b7280; stroke-width: 2; }
.sc-ladder .sc-time, .sc-ladder .sc-no { fill: #6b7280; font-size: 11px; }
.sc-ladder .sc-arrow line { stroke-width: 1.6; }
.sc-ladder .sc-c2s line { stroke: #15803d; } .sc-ladder .sc-c2s polygon { fill: #15803d; }
.sc-ladder .sc-s2c line { stroke: #a21caf; } .sc-ladder .sc-s2c polygon { fill: #a21caf; }
.sc-ladder .sc-marked line { stroke: #dc2626; stroke-width: 2.4; }
.sc-ladder .sc-marked polygon { fill: #dc2626; }
.sc-ladder .sc-dupack line { stroke: #d97706; stroke-dasharray: 6 3; }
.sc-ladder .sc-dupack polygon { fill: #d97706; }
.sc-ladder .sc-payload { fill: #1d4ed8; }
.sc-ladder .sc-notes { fill: #dc2626; font-weight: bold; font-size: 11px; }
.sc-ladder .sc-band-handshake { fill: #e0f2fe; } .sc-ladder .sc-band-data { fill: #f0fdf4; }
.sc-ladder .sc-band-teardown { fill: #fef9c3; } .sc-ladder .sc-band-reset { fill: #fee2e2; }
.sc-ladder .sc-bandname { fill: #374151; font-style: italic; }
.sc-ladder .sc-rtt { stroke: #0369a1; fill: none; stroke-width: 1.4; }
.sc-ladder .sc-rtt-text { fill: #0369a1; font-size: 11px; }
.sc-ladder .sc-selected line { stroke-width: 4; }
.sc-ladder .sc-selected .sc-label { font-weight: bold; }
.sc-ladder .sc-state-text { fill: #7c2d12; font-weight: bold; font-size: 11px; }
.sc-ladder .sc-inferred .sc-state-text { font-style: italic; font-weight: normal; fill: #9a3412; }
.sc-ladder .sc-tick { stroke: #7c2d12; stroke-width: 2; }
.sc-ladder .sc-call-text { fill: #0e7490; font-size: 11px; }
.sc-ladder .sc-legend { fill: #6b7280; font-size: 11px; }
"""


def _svg(width: int, height: int, cls: str, title: str, style: str) -> ET.Element:
    root = ET.Element("svg", {
        "xmlns": SVG_NS, "width": str(width), "height": str(height),
        "viewBox": f"0 0 {width} {height}", "class": cls})
    ET.SubElement(root, "title").text = title
    ET.SubElement(root, "style").text = style
    return root


def _text(parent: ET.Element, x: float, y: float, text: str, cls: str,
          anchor: str = "start") -> ET.Element:
    el = ET.SubElement(parent, "text", {"x": _n(x), "y": _n(y), "class": cls})
    if anchor != "start":
        el.set("text-anchor", anchor)
    el.text = text
    return el


def _n(value: float) -> str:
    """A coordinate: no trailing zeros (``12``, ``12.5``)."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def svg_text(root: ET.Element) -> str:
    return ET.tostring(root, encoding="unicode")


class _Geometry(NamedTuple):
    """Where a ladder's columns stand, and each arrow row's height."""

    bracket_x: int
    client_x: int
    server_x: int
    band_x: int
    width: int
    rows: tuple[int, ...]  # the y of each arrow row, and one more for below the last

    def row_y(self, row: int) -> int:
        return self.rows[row]


def _geometry(ladder: Ladder) -> _Geometry:
    """The default columns; with states written beside the lifelines, a column for them
    left of the client's and right of the server's (the RTT bracket and the band names
    move out of their way). Each side note takes a line of :data:`NOTE_H` above the
    arrow it stands before."""
    dx = STATE_W if any(n.state for n in ladder.side_notes) else 0
    lines = _note_lines(ladder)
    per_row = [len(lines.get(row, ())) for row in range(len(ladder.arrows) + 1)]
    rows, before = [], 0
    for row, count in enumerate(per_row):
        before += count
        rows.append(TOP + row * ROW + before * NOTE_H)
    return _Geometry(BRACKET_X, CLIENT_X + dx, SERVER_X + dx, BAND_X + 2 * dx,
                     WIDTH + 2 * dx, tuple(rows))


def ladder_svg(ladder: Ladder, document: bool = True) -> str:
    """The ladder as SVG; ``document`` adds the XML declaration (a file of its own)."""
    geo = _geometry(ladder)
    legend = _side_legend(ladder)
    height = geo.row_y(len(ladder.arrows)) + 40 + (NOTE_H if legend else 0)
    width = geo.width
    root = _svg(width, height, "sc-ladder",
                _("{title}: client {client} → server {server}").format(
                    title=ladder.title, client=ladder.client, server=ladder.server), LADDER_STYLE)
    ET.SubElement(root, "rect", {"x": "0", "y": "0", "width": str(width), "height": str(height),
                                 "fill": "#ffffff"})
    _bands(root, ladder, geo)
    _text(root, geo.client_x, 22, _("client {address}").format(address=ladder.client), "sc-head",
          "middle")
    _text(root, geo.server_x, 22, _("server {address}").format(address=ladder.server), "sc-head",
          "middle")
    _text(root, TIME_X, 22, _("time (s)"), "sc-time", "end")
    _text(root, NO_X, 22, _("no"), "sc-no", "end")
    bottom = height - 20 - (NOTE_H if legend else 0)
    for x in (geo.client_x, geo.server_x):
        ET.SubElement(root, "line", {"x1": str(x), "y1": "34", "x2": str(x),
                                     "y2": str(bottom), "class": "sc-life"})
    _rtt(root, ladder, geo)
    _side_notes(root, ladder, geo)
    for arrow in ladder.arrows:
        _arrow(root, ladder, arrow.row, geo)
    if ladder.left_out:
        _text(root, (geo.client_x + geo.server_x) / 2, bottom + 14,
              _("{left_out} more packets not drawn").format(left_out=ladder.left_out), "sc-notes",
              "middle")
    if legend:
        _text(root, TIME_X - 50, height - 6, legend, "sc-legend")
    text = svg_text(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + text + "\n" if document else text


def _bands(root: ET.Element, ladder: Ladder, geo: _Geometry) -> None:
    for band in ladder.bands:
        y0 = geo.row_y(band.first) - 24
        y1 = geo.row_y(band.last) + SLANT + 14
        ET.SubElement(root, "rect", {
            "x": str(geo.client_x - 8), "y": str(y0),
            "width": str(geo.server_x - geo.client_x + 16),
            "height": str(y1 - y0), "class": f"sc-band sc-band-{band.kind.value}", "rx": "4"})
        _text(root, geo.band_x, y0 + 16, band.words, "sc-bandname")


def _rtt(root: ET.Element, ladder: Ladder, geo: _Geometry) -> None:
    rtt = ladder.rtt
    if rtt is None:
        return
    y0, y1 = geo.row_y(rtt.first), geo.row_y(rtt.last)
    x = geo.bracket_x
    ET.SubElement(root, "path", {
        "d": f"M {x + 8} {y0} H {x} V {y1} H {x + 8}", "class": "sc-rtt"})
    _text(root, x - 4, (y0 + y1) / 2 + 4, rtt.words, "sc-rtt-text", "end")


def _note_lines(ladder: Ladder) -> dict[int, list[list[SideNote]]]:
    """The side notes above each arrow row in lines, in time order: a client's state, a
    server's state and a call share a line when each has its own place in it."""
    lines: dict[int, list[list[SideNote]]] = {}
    for note in ladder.side_notes:
        rows = lines.setdefault(note.row, [])
        if rows and _slot(note) not in {_slot(n) for n in rows[-1]}:
            rows[-1].append(note)
        else:
            rows.append([note])
    return lines


def _slot(note: SideNote) -> str:
    return ("client" if note.client else "server") if note.state else "call"


def _side_notes(root: ET.Element, ladder: Ladder, geo: _Geometry) -> None:
    """Each state beside its side's lifeline (the client's left of it, the server's right
    of it, a tick on the line where the state begins), each call inside the lanes at the
    side that made it, a line each above the arrow they stand before."""
    for row, lines in _note_lines(ladder).items():
        first = geo.row_y(row) - ROW - len(lines) * NOTE_H + SLANT + 18
        for k, line in enumerate(lines):
            for note in line:
                _side_note(root, note, first + k * NOTE_H, geo)


def _side_note(root: ET.Element, note: SideNote, y: float, geo: _Geometry) -> None:
    side = "sc-client" if note.client else "sc-server"
    life = geo.client_x if note.client else geo.server_x
    if note.state:
        classes = ["sc-side", "sc-state", side] + (["sc-inferred"] if note.inferred else [])
        g = ET.SubElement(root, "g", {"class": " ".join(classes), "data-row": str(note.row)})
        ET.SubElement(g, "title").text = (
            _("{state}: inferred from the packets") if note.inferred
            else _("{state}: as the kernel recorded it")).format(state=note.text)
        ET.SubElement(g, "line", {"x1": str(life - 5), "y1": _n(y - 4), "x2": str(life + 5),
                                  "y2": _n(y - 4), "class": "sc-tick"})
        x, anchor = (life - 10, "end") if note.client else (life + 10, "start")
        _text(g, x, y, note.text, "sc-state-text", anchor)
        return
    g = ET.SubElement(root, "g", {"class": f"sc-side sc-call {side}", "data-row": str(note.row)})
    ET.SubElement(g, "title").text = note.text
    text = "▸ " + note.text
    room = (geo.server_x - geo.client_x - 16) // 7  # 12px monospace: about 7px a character
    if len(text) > room:
        text = text[: room - 1] + "…"
    x, anchor = (life + 8, "start") if note.client else (life - 8, "end")
    _text(g, x, y, text, "sc-call-text", anchor)


def _side_legend(ladder: Ladder) -> str:
    """Where the states came from, said once under the ladder ("" without states)."""
    states = [n for n in ladder.side_notes if n.state]
    if not states:
        return ""
    if all(n.inferred for n in states):
        return _("TCP states in italics: inferred from the packets (record them with --kernel)")
    return _("TCP states as the kernel recorded them (--kernel)")


def _arrow(root: ET.Element, ladder: Ladder, row: int, geo: _Geometry) -> None:
    arrow = ladder.arrows[row]
    client_x, server_x = geo.client_x, geo.server_x
    y0 = geo.row_y(row)
    y1 = y0 + SLANT
    x0, x1 = (client_x, server_x) if arrow.from_client else (server_x, client_x)
    classes = ["sc-arrow", "sc-c2s" if arrow.from_client else "sc-s2c"]
    if arrow.marks:
        classes.append("sc-dupack" if arrow.marks[0] is Mark.DUPLICATE_ACK else "sc-marked")
        classes += [f"sc-mark-{m.value}" for m in arrow.marks]
    g = ET.SubElement(root, "g", {"class": " ".join(classes), "data-no": str(arrow.no)})
    ET.SubElement(g, "title").text = " ".join(
        x for x in (f"{arrow.no}", arrow.label, arrow.payload, ", ".join(arrow.notes)) if x)
    ET.SubElement(g, "rect", {  # where a click or a pointer finds the arrow
        "x": str(client_x), "y": str(y0 - 18), "width": str(server_x - client_x),
        "height": str(ROW - 4), "fill": "transparent", "class": "sc-hit"})
    direction = 1 if arrow.from_client else -1
    tip = x1 - direction * 2
    end = tip - direction * 8  # the line stops inside the head
    ET.SubElement(g, "line", {"x1": str(x0), "y1": str(y0), "x2": _n(end),
                              "y2": _n(y0 + SLANT * (end - x0) / (x1 - x0))})
    ET.SubElement(g, "polygon", {"points": _head(tip, y1, direction)})
    mid = (client_x + server_x) / 2
    label = _text(g, mid, y0 - 4, arrow.label, "sc-label", "middle")
    if arrow.payload:
        ET.SubElement(label, "tspan", {"class": "sc-payload"}).text = f" {arrow.payload}"
    if arrow.notes:
        _text(g, x1 + direction * 8, y1 + 4, ", ".join(arrow.notes), "sc-notes",
              "start" if arrow.from_client else "end")
    _text(g, TIME_X, y0 + 4, f"{arrow.time:.6f}", "sc-time", "end")
    _text(g, NO_X, y0 + 4, str(arrow.no), "sc-no", "end")


def _head(x: float, y: float, direction: int) -> str:
    """An arrowhead whose tip is at (x, y), pointing right (1) or left (-1)."""
    back = x - direction * 10
    return f"{_n(x)},{_n(y)} {_n(back)},{_n(y - 5)} {_n(back)},{_n(y + 5)}"


# -- the time-sequence graph -----------------------------------------------------------

GRAPH_W, GRAPH_H = 760, 420
PLOT_L, PLOT_R, PLOT_T, PLOT_B = 80, 740, 40, 370

GRAPH_STYLE = """
.sc-graph text { font-family: ui-monospace, 'DejaVu Sans Mono', monospace; font-size: 11px; fill: #1f2937; }
.sc-graph .sc-title { font-size: 13px; font-weight: bold; }
.sc-graph .sc-axis { stroke: #374151; stroke-width: 1; }
.sc-graph .sc-grid { stroke: #e5e7eb; stroke-width: 1; }
.sc-graph .sc-seg { stroke: #111827; stroke-width: 1.5; }
.sc-graph .sc-dot { fill: #111827; }
.sc-graph .sc-retrans { stroke: #dc2626; fill: #dc2626; stroke-width: 2; }
.sc-graph .sc-ackline { stroke: #15803d; fill: none; stroke-width: 1.2; }
.sc-graph .sc-winline { stroke: #ca8a04; fill: none; stroke-width: 1.2; }
.sc-graph .sc-sack { stroke: #7c3aed; stroke-width: 3; }
.sc-graph .sc-zero { fill: #fecaca; opacity: 0.6; }
"""


def seqgraph_svg(graph: SeqGraph, document: bool = True) -> str:
    """The time-sequence graph as SVG: tcptrace's picture (segments as I-beams, the ACK
    and window lines, SACK blocks, zero-window periods shaded) or Stevens' (a dot per
    segment)."""
    root = _svg(GRAPH_W, GRAPH_H, "sc-graph", graph.title, GRAPH_STYLE)
    ET.SubElement(root, "rect", {"x": "0", "y": "0", "width": str(GRAPH_W),
                                 "height": str(GRAPH_H), "fill": "#ffffff"})
    _text(root, PLOT_L, 22, graph.title, "sc-title")
    t_max = graph.t_max * 1.02 if graph.t_max > 0 else 1e-6
    s_max = max(1, math.ceil(graph.seq_max * 1.05))

    def x(t: float) -> float:
        return PLOT_L + (PLOT_R - PLOT_L) * t / t_max

    def y(s: int) -> float:
        return PLOT_B - (PLOT_B - PLOT_T) * s / s_max

    _axes(root, t_max, s_max, x, y)
    plot = ET.SubElement(root, "svg", {  # a viewport: what lies outside the plot is clipped
        "x": str(PLOT_L), "y": str(PLOT_T), "width": str(PLOT_R - PLOT_L),
        "height": str(PLOT_B - PLOT_T),
        "viewBox": f"{PLOT_L} {PLOT_T} {PLOT_R - PLOT_L} {PLOT_B - PLOT_T}"})
    for span in graph.zero_windows:
        ET.SubElement(plot, "rect", {"x": _n(x(span[0])), "y": str(PLOT_T),
                                     "width": _n(max(1.0, x(span[1]) - x(span[0]))),
                                     "height": str(PLOT_B - PLOT_T), "class": "sc-zero"})
    if graph.style == "tcptrace":
        _step(plot, [(x(t), y(v)) for t, v in graph.acks], "sc-ackline")
        _step(plot, [(x(t), y(v)) for t, v in graph.windows], "sc-winline")
        for t, start, end in graph.sacks:
            ET.SubElement(plot, "line", {"x1": _n(x(t)), "y1": _n(y(start)), "x2": _n(x(t)),
                                         "y2": _n(y(end)), "class": "sc-sack"})
    for seg in graph.segments:
        cls = "sc-retrans" if seg.retransmission else ""
        g = ET.SubElement(plot, "g", {"class": f"sc-segment {cls}".strip(), "data-no": str(seg.no)})
        ET.SubElement(g, "title").text = f"{seg.no}: {seg.start}..{seg.end}"
        if graph.style == "stevens":
            ET.SubElement(g, "circle", {"cx": _n(x(seg.time)), "cy": _n(y(seg.start)), "r": "2.5",
                                        "class": cls or "sc-dot"})
            continue
        xs, y0, y1 = x(seg.time), y(seg.start), y(seg.end)
        for x1, ya, x2, yb in ((xs, y0, xs, y1), (xs - 3, y0, xs + 3, y0), (xs - 3, y1, xs + 3, y1)):
            ET.SubElement(g, "line", {"x1": _n(x1), "y1": _n(ya), "x2": _n(x2), "y2": _n(yb),
                                      "class": cls or "sc-seg"})
    _legend(root, graph.style)
    text = svg_text(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + text + "\n" if document else text


def _axes(root: ET.Element, t_max: float, s_max: int, x: Callable[[float], float],
          y: Callable[[int], float]) -> None:
    t_step, s_step = nice_step(t_max), nice_step(s_max)
    for i in range(int(t_max / t_step) + 1):
        t = i * t_step
        ET.SubElement(root, "line", {"x1": _n(x(t)), "y1": str(PLOT_T), "x2": _n(x(t)),
                                     "y2": str(PLOT_B), "class": "sc-grid"})
        _text(root, x(t), PLOT_B + 16, f"{t:.6g}", "sc-tick", "middle")
    for i in range(int(s_max / s_step) + 1):
        s = round(i * s_step)
        ET.SubElement(root, "line", {"x1": str(PLOT_L), "y1": _n(y(s)), "x2": str(PLOT_R),
                                     "y2": _n(y(s)), "class": "sc-grid"})
        _text(root, PLOT_L - 6, y(s) + 4, str(s), "sc-tick", "end")
    ET.SubElement(root, "line", {"x1": str(PLOT_L), "y1": str(PLOT_B), "x2": str(PLOT_R),
                                 "y2": str(PLOT_B), "class": "sc-axis"})
    ET.SubElement(root, "line", {"x1": str(PLOT_L), "y1": str(PLOT_T), "x2": str(PLOT_L),
                                 "y2": str(PLOT_B), "class": "sc-axis"})
    _text(root, PLOT_R, PLOT_B + 32, _("time (s)"), "sc-tick", "end")
    label = _text(root, 16, (PLOT_T + PLOT_B) / 2, _("relative sequence number"), "sc-tick",
                  "middle")
    label.set("transform", f"rotate(-90 16 {_n((PLOT_T + PLOT_B) / 2)})")


def nice_step(top: float) -> float:
    """A round step (1, 2 or 5 times a power of ten) giving four to ten ticks up to ``top``."""
    if top <= 0:
        return 1.0
    step = 10.0 ** math.floor(math.log10(top / 5))
    for factor in (1, 2, 5, 10):
        if top / (step * factor) <= 8:
            return step * factor
    return step * 10


def _step(root: ET.Element, points: list[tuple[float, float]], cls: str) -> None:
    """A line that holds its value until the next point (an ACK stays until the next)."""
    if not points:
        return
    d = [f"M {_n(points[0][0])} {_n(points[0][1])}"]
    for px, py in points[1:]:
        d.append(f"H {_n(px)} V {_n(py)}")
    d.append(f"H {PLOT_R}")
    ET.SubElement(root, "path", {"d": " ".join(d), "class": cls})


def _legend(root: ET.Element, style: str) -> None:
    items = [("sc-seg", _("segment")), ("sc-retrans", _("retransmission"))]
    if style == "tcptrace":
        items += [("sc-ackline", _("ACK")), ("sc-winline", _("window")), ("sc-sack", _("SACK")),
                  ("sc-zero", _("zero window"))]
    x = PLOT_L
    for cls, words in items:
        ET.SubElement(root, "rect", {"x": str(x), "y": str(GRAPH_H - 16), "width": "12",
                                     "height": "4", "class": cls,
                                     "style": "stroke-width: 4"})
        _text(root, x + 16, GRAPH_H - 11, words, "sc-tick")
        x += 24 + 8 * len(words)



# -- the congestion window under the time-sequence graph (sockcap lab --graph) ----------

PANEL_H = 220
SRTT_AXIS_W = 40
PANEL_T, PANEL_B = GRAPH_H + 20, GRAPH_H + PANEL_H - 40
CWND_STYLE = """
.sc-graph .sc-cwnd { stroke: #2563eb; fill: none; stroke-width: 1.6; }
.sc-graph .sc-ssthresh { stroke: #ea580c; fill: none; stroke-width: 1.4; stroke-dasharray: 6 3; }
.sc-graph .sc-srtt { stroke: #7c3aed; fill: none; stroke-width: 1.2; stroke-dasharray: 2 3; }
"""


def cwnd_graph_svg(graph: SeqGraph, cwnd: Sequence[tuple[float, int, int]], mss: int,
                   document: bool = True, source: str = "",
                   srtt: Sequence[tuple[float, int]] = ()) -> str:
    """The time-sequence graph with, under it on the same time axis, the sender's
    congestion window and slow-start threshold in bytes (``cwnd``: (seconds since the
    graph's first packet, cwnd, ssthresh); ssthresh 0 while it is not set): the kernel
    counts both in segments, the caller multiplied them by ``mss``
    (:func:`sockcap.render.seqgraph.sender_mss`, the segment size the handshake
    negotiated), and the axis says so. ``source``: where the numbers came from, said over
    the panel. ``srtt``: (seconds, smoothed RTT in µs), drawn dotted against its own axis
    on the right, in ms."""
    top = GRAPH_H + PANEL_H
    width = GRAPH_W + (SRTT_AXIS_W if srtt else 0)  # room for the srtt axis' numbers
    root = _svg(width, top, "sc-graph", graph.title, GRAPH_STYLE + CWND_STYLE)
    ET.SubElement(root, "rect", {"x": "0", "y": "0", "width": str(width),
                                 "height": str(top), "fill": "#ffffff"})
    inner = ET.fromstring(seqgraph_svg(graph, document=False))
    for el in inner.iter():  # the namespace is the document's: plain names, as above
        el.tag = el.tag.split("}")[-1]
    root.append(inner)
    t_max = graph.t_max * 1.02 if graph.t_max > 0 else 1e-6
    c_max = max([c for _t, c, _s in cwnd] + [s for _t, _c, s in cwnd if s], default=1) * 1.1

    def x(t: float) -> float:
        return PLOT_L + (PLOT_R - PLOT_L) * min(t, t_max) / t_max

    def y(c: float) -> float:
        return PANEL_B - (PANEL_B - PANEL_T) * c / c_max

    step = nice_step(c_max)
    for i in range(int(c_max / step) + 1):
        ET.SubElement(root, "line", {"x1": str(PLOT_L), "y1": _n(y(i * step)), "x2": str(PLOT_R),
                                     "y2": _n(y(i * step)), "class": "sc-grid"})
        _text(root, PLOT_L - 6, y(i * step) + 4, f"{i * step:,.0f}", "sc-tick", "end")
    ET.SubElement(root, "line", {"x1": str(PLOT_L), "y1": str(PANEL_B), "x2": str(PLOT_R),
                                 "y2": str(PANEL_B), "class": "sc-axis"})
    _step(root, [(x(t), y(c)) for t, c, _s in cwnd], "sc-cwnd")
    _step(root, [(x(t), y(s)) for t, _c, s in cwnd if s], "sc-ssthresh")
    label = _text(root, 16, (PANEL_T + PANEL_B) / 2,
                  _("bytes (segments × MSS {mss})").format(mss=mss), "sc-tick", "middle")
    label.set("transform", f"rotate(-90 16 {_n((PANEL_T + PANEL_B) / 2)})")
    xl = PLOT_L
    for cls, words in (("sc-cwnd", _("congestion window")),
                       ("sc-ssthresh", _("slow-start threshold"))):
        ET.SubElement(root, "rect", {"x": str(xl), "y": str(top - 16), "width": "12",
                                     "height": "4", "class": cls, "style": "stroke-width: 4"})
        _text(root, xl + 16, top - 11, words, "sc-tick")
        xl += 24 + 8 * len(words)
    if srtt:
        _srtt(root, srtt, x)
        ET.SubElement(root, "rect", {"x": str(xl), "y": str(top - 16), "width": "12",
                                     "height": "4", "class": "sc-srtt",
                                     "style": "stroke-width: 4"})
        _text(root, xl + 16, top - 11, _("smoothed RTT (ms, right)"), "sc-tick")
    if source:
        _text(root, PLOT_R, PANEL_T - 6, source, "sc-tick", "end")
    text = svg_text(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + text + "\n" if document else text


def _srtt(root: ET.Element, srtt: Sequence[tuple[float, int]],
          x: Callable[[float], float]) -> None:
    """The smoothed RTT in the cwnd panel, on its own scale: ticks on the right, in ms."""
    top_ms = max(us for _t, us in srtt) / 1000 * 1.1 or 1.0

    def y(ms: float) -> float:
        return PANEL_B - (PANEL_B - PANEL_T) * ms / top_ms

    step = nice_step(top_ms)
    for i in range(int(top_ms / step) + 1):
        _text(root, PLOT_R + 4, y(i * step) + 4, f"{i * step:g}", "sc-tick")
    _step(root, [(x(t), y(us / 1000)) for t, us in srtt], "sc-srtt")
