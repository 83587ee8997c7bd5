"""The TCP state machine drawn (RFC 9293 figure 5), with the path one connection took.

Two pure steps, as for the ladder: :func:`state_diagram_layout` places the eleven states
and the textbook's arrows (plain records: a box per state, a polyline per arrow, each
arrow marked with the ends that took it), and :func:`state_diagram_svg` writes it.

The layout is the textbook's: CLOSED on top, the two ways of opening (LISTEN → SYN_RCVD
passive, SYN_SENT active) to ESTABLISHED in the middle, the active close down the left
(FIN_WAIT_1, FIN_WAIT_2, CLOSING, TIME_WAIT) and the passive close down the right
(CLOSE_WAIT, LAST_ACK), and the way back to CLOSED around the sides. An arrow the
connection took that the figure has not (an RST: any state to CLOSED) is drawn dashed,
straight, only when taken.

In the SVG each state is ``<g class="sc-state" data-state="ESTABLISHED">`` and each arrow
``<g class="sc-edge" data-edge="SYN_SENT ESTABLISHED">`` with the classes
``sc-client-path`` / ``sc-server-path`` where that end took it; the report's script marks
the states each end is in after the selected packet (``sc-client-at``, ``sc-server-at``)
and the arrows that packet took (``sc-now``) by those names.
"""

from __future__ import annotations

import itertools
import math
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from typing import NamedTuple

from sockcap.analysis.tcpstate import EDGES, StateStep, TcpState
from sockcap.i18n import N_, _
from sockcap.render.svg import SVG_NS, _n, svg_text

S = TcpState
WIDTH, HEIGHT = 920, 640
BOX_W, BOX_H = 136, 30
COLUMNS = (170, 460, 750)
ROWS = (40, 120, 200, 290, 390, 480, 580)
LEFT_X, RIGHT_X = 14, 906  # the ways back to CLOSED, around the sides

PLACES: dict[TcpState, tuple[int, int]] = {
    S.CLOSED: (COLUMNS[1], ROWS[0]),
    S.LISTEN: (COLUMNS[1], ROWS[1]),
    S.SYN_RCVD: (COLUMNS[0], ROWS[2]),
    S.SYN_SENT: (COLUMNS[2], ROWS[2]),
    S.ESTABLISHED: (COLUMNS[1], ROWS[3]),
    S.FIN_WAIT_1: (COLUMNS[0], ROWS[4]),
    S.CLOSE_WAIT: (COLUMNS[2], ROWS[4]),
    S.CLOSING: (COLUMNS[1], ROWS[5]),
    S.LAST_ACK: (COLUMNS[2], ROWS[5]),
    S.FIN_WAIT_2: (COLUMNS[0], ROWS[6]),
    S.TIME_WAIT: (COLUMNS[1], ROWS[6]),
}

# The figure's arrows beyond those a packet causes (tcpstate.EDGES): the passive open
# and the way back to CLOSED that a timer takes.
MORE_EDGES: dict[tuple[TcpState, TcpState], str] = {
    (S.CLOSED, S.LISTEN): N_("listen()"),
    (S.TIME_WAIT, S.CLOSED): N_("2 MSL timeout (60 s on Linux)"),
}

# Arrows drawn around a side rather than straight: their corners.
ROUTES: dict[tuple[TcpState, TcpState], tuple[tuple[int, int], ...]] = {
    (S.LAST_ACK, S.CLOSED): ((COLUMNS[2] + BOX_W // 2, ROWS[5]), (RIGHT_X, ROWS[5]),
                             (RIGHT_X, ROWS[0]), (COLUMNS[1] + BOX_W // 2, ROWS[0])),
    (S.TIME_WAIT, S.CLOSED): ((COLUMNS[1], ROWS[6] + BOX_H // 2), (COLUMNS[1], HEIGHT - 28),
                              (LEFT_X, HEIGHT - 28), (LEFT_X, ROWS[0]),
                              (COLUMNS[1] - BOX_W // 2, ROWS[0])),
}

# Where the words of the arrows that are not slanted go (x, y, text-anchor): beside a
# vertical arrow, above a level one, along a side. A slanted arrow's words lie along it.
LABELS: dict[tuple[TcpState, TcpState], tuple[int, int, str]] = {
    (S.CLOSED, S.LISTEN): (468, 84, "start"),
    (S.CLOSE_WAIT, S.LAST_ACK): (758, 440, "start"),
    (S.FIN_WAIT_1, S.FIN_WAIT_2): (162, 490, "end"),
    (S.FIN_WAIT_2, S.TIME_WAIT): (315, 572, "middle"),
    (S.CLOSING, S.TIME_WAIT): (468, 535, "start"),
    (S.LAST_ACK, S.CLOSED): (898, 150, "end"),
    (S.TIME_WAIT, S.CLOSED): (24, 330, "start"),
}


class StateBox(NamedTuple):
    state: TcpState
    x: int  # centre
    y: int


class Edge(NamedTuple):
    before: TcpState
    after: TcpState
    points: tuple[tuple[float, float], ...]  # the polyline, head at the last point
    words: str  # what moves an end along it, translated
    client: bool  # the client took it in this connection
    server: bool
    textbook: bool  # in the figure (False: an RST's, drawn only because it was taken)


class StateDiagram(NamedTuple):
    boxes: tuple[StateBox, ...]
    edges: tuple[Edge, ...]
    title: str


def state_diagram_layout(steps: Iterable[StateStep], title: str = "") -> StateDiagram:
    """The figure, with the arrows each end of the connection took (``steps``: its
    :class:`StateStep` per packet) marked."""
    taken: dict[tuple[TcpState, TcpState], set[bool]] = {}
    for step in steps:
        for t in step.transitions:
            taken.setdefault((t.before, t.after), set()).add(t.client)
    boxes = tuple(StateBox(state, *PLACES[state]) for state in S)
    edges = []
    for (before, after), words in {**EDGES, **MORE_EDGES}.items():
        ends = taken.get((before, after), set())
        points = ROUTES.get((before, after)) or _between(before, after)
        edges.append(Edge(before, after, tuple(points), _(words), True in ends,
                          False in ends, True))
    for (before, after), ends in taken.items():
        if (before, after) not in EDGES and (before, after) not in MORE_EDGES:
            edges.append(Edge(before, after, _between(before, after, offset=8),
                              _("not in the figure: an RST or a timeout ends it"),
                              True in ends, False in ends, False))
    return StateDiagram(boxes, tuple(edges), title or _("the TCP state diagram (RFC 9293)"))


def _between(before: TcpState, after: TcpState,
             offset: float = 0) -> tuple[tuple[float, float], ...]:
    """A straight arrow from box to box, cut at the boxes' borders (moved sideways by
    ``offset`` so that it does not lie on the arrow the other way)."""
    (x1, y1), (x2, y2) = PLACES[before], PLACES[after]
    dx, dy = x2 - x1, y2 - y1
    length = math.hypot(dx, dy) or 1.0
    ox, oy = -dy / length * offset, dx / length * offset
    start = _border(x1, y1, dx, dy)
    end = _border(x2, y2, -dx, -dy)
    return ((start[0] + ox, start[1] + oy), (end[0] + ox, end[1] + oy))


def _border(x: float, y: float, dx: float, dy: float) -> tuple[float, float]:
    """Where a line from the centre (x, y) of a box toward (dx, dy) leaves it."""
    if dx == 0 and dy == 0:
        return x, y
    tx = (BOX_W / 2 + 2) / abs(dx) if dx else math.inf
    ty = (BOX_H / 2 + 2) / abs(dy) if dy else math.inf
    t = min(tx, ty)
    return x + dx * t, y + dy * t


STYLE = """
.sc-states text { font-family: ui-monospace, 'DejaVu Sans Mono', monospace; font-size: 12px; fill: #1f2937; }
.sc-states .sc-state rect { fill: #f9fafb; stroke: #6b7280; stroke-width: 1.2; }
.sc-states .sc-state text { font-weight: bold; }
.sc-states .sc-edge polyline { fill: none; stroke: #d1d5db; stroke-width: 1.4; }
.sc-states .sc-edge polygon { fill: #9ca3af; }
.sc-states .sc-client-path polygon { fill: #b91c1c; } .sc-states .sc-server-path polygon { fill: #1d4ed8; }
.sc-states .sc-client-path.sc-server-path polygon { fill: #7c3aed; } .sc-states .sc-now polygon { fill: #f59e0b; }
.sc-states .sc-edge text { font-size: 10px; fill: #9ca3af; }
.sc-states .sc-extra polyline { stroke-dasharray: 5 3; }
.sc-states .sc-client-path polyline { stroke: #b91c1c; stroke-width: 2.4; }
.sc-states .sc-server-path polyline { stroke: #1d4ed8; stroke-width: 2.4; }
.sc-states .sc-client-path.sc-server-path polyline { stroke: #7c3aed; }
.sc-states .sc-client-path text, .sc-states .sc-server-path text { fill: #374151; }
.sc-states .sc-now polyline { stroke: #f59e0b; stroke-width: 5; }
.sc-states .sc-now text { fill: #111827; font-weight: bold; }
.sc-states .sc-client-at rect { fill: #fee2e2; stroke: #b91c1c; stroke-width: 3; }
.sc-states .sc-server-at rect { fill: #dbeafe; stroke: #1d4ed8; stroke-width: 3; }
.sc-states .sc-client-at.sc-server-at rect { fill: #ede9fe; stroke: #7c3aed; }
.sc-states .sc-key { font-size: 11px; }
"""


def state_diagram_svg(diagram: StateDiagram, document: bool = True) -> str:
    """The diagram as SVG; ``document`` adds the XML declaration (a file of its own)."""
    root = ET.Element("svg", {"xmlns": SVG_NS, "width": str(WIDTH), "height": str(HEIGHT),
                              "viewBox": f"0 0 {WIDTH} {HEIGHT}", "class": "sc-states"})
    ET.SubElement(root, "title").text = diagram.title
    ET.SubElement(root, "style").text = STYLE
    ET.SubElement(root, "rect", {"x": "0", "y": "0", "width": str(WIDTH),
                                 "height": str(HEIGHT), "fill": "#ffffff"})
    for edge in diagram.edges:
        _edge(root, edge)
    for box in diagram.boxes:
        g = ET.SubElement(root, "g", {"class": "sc-state", "data-state": box.state.value})
        ET.SubElement(g, "rect", {"x": _n(box.x - BOX_W / 2), "y": _n(box.y - BOX_H / 2),
                                  "width": str(BOX_W), "height": str(BOX_H), "rx": "6"})
        text = ET.SubElement(g, "text", {"x": str(box.x), "y": _n(box.y + 4),
                                         "text-anchor": "middle"})
        text.text = box.state.value
    key = ET.SubElement(root, "text", {"x": str(WIDTH - 12), "y": str(HEIGHT - 8),
                                       "class": "sc-key", "text-anchor": "end"})
    key.text = _("red: the client's path; blue: the server's; orange: this packet's")
    out = svg_text(root)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + out + "\n") if document else out


def _edge(root: ET.Element, edge: Edge) -> None:
    classes = ["sc-edge"]
    if edge.client:
        classes.append("sc-client-path")
    if edge.server:
        classes.append("sc-server-path")
    if not edge.textbook:
        classes.append("sc-extra")
    g = ET.SubElement(root, "g", {"class": " ".join(classes),
                                  "data-edge": f"{edge.before.value} {edge.after.value}"})
    ET.SubElement(g, "title").text = f"{edge.before.value} → {edge.after.value}: {edge.words}"
    ET.SubElement(g, "polyline", {
        "points": " ".join(f"{_n(x)},{_n(y)}" for x, y in edge.points)})
    ET.SubElement(g, "polygon", {"points": _head(edge.points[-2], edge.points[-1])})
    place = LABELS.get((edge.before, edge.after))
    if place is not None:
        x, y, anchor = place
        label = ET.SubElement(g, "text", {"x": str(x), "y": str(y), "text-anchor": anchor})
    else:  # along the arrow, upright, just above it
        (x1, y1), (x2, y2) = _longest(edge.points)
        angle = math.degrees(math.atan2(y2 - y1, x2 - x1))
        if angle > 90 or angle < -90:
            angle -= 180 if angle > 0 else -180
        mx, my = (x1 + x2) / 2, (y1 + y2) / 2 - 5
        label = ET.SubElement(g, "text", {
            "x": _n(mx), "y": _n(my), "text-anchor": "middle",
            "transform": f"rotate({_n(angle)} {_n(mx)} {_n(my)})"})
    label.text = edge.words


def _head(start: tuple[float, float], end: tuple[float, float], size: float = 8) -> str:
    """The arrowhead at ``end`` of the segment from ``start`` (a polygon: the page
    references nothing, not even a marker by ``url(#...)``)."""
    angle = math.atan2(end[1] - start[1], end[0] - start[0])
    left = (end[0] - size * math.cos(angle - 0.4), end[1] - size * math.sin(angle - 0.4))
    right = (end[0] - size * math.cos(angle + 0.4), end[1] - size * math.sin(angle + 0.4))
    return " ".join(f"{_n(x)},{_n(y)}" for x, y in (end, left, right))


def _longest(points: tuple[tuple[float, float], ...]
             ) -> tuple[tuple[float, float], tuple[float, float]]:
    pairs = list(itertools.pairwise(points))
    return max(pairs, key=lambda ab: math.hypot(ab[1][0] - ab[0][0], ab[1][1] - ab[0][1]))
