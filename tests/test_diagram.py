"""``sockcap diagram``: golden ladders (text and Mermaid), the SVG read back with an XML
parser, the time-sequence graph, and ladders of exchanges captured here on loopback.

The golden captures are real loopback captures: ``echo-tcp`` and ``echo-udp`` (an echo
exchange), and ``diagram-refused``, ``diagram-reset`` and ``diagram-rto`` (made with
``tests/loopback_scenarios.py``: a refused SYN, an RST after data, a segment dropped by
nftables and retransmitted). ``python tests/golden/regen.py`` rewrites the expected files.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import NamedTuple

import pytest
from conftest import needs_capture, sockcap
from loopback_scenarios import can_run, scenario_capture

GOLDEN = Path(__file__).resolve().parent / "golden"
SVG = "{http://www.w3.org/2000/svg}"


class Case(NamedTuple):
    name: str
    capture: str
    options: tuple[str, ...]


CASES = [
    Case("diagram-echo-tcp.txt", "echo-tcp.pcap", ()),
    Case("diagram-echo-tcp-ascii.txt", "echo-tcp.pcap", ("--ascii",)),
    Case("diagram-echo-tcp-120.txt", "echo-tcp.pcap", ("--width", "120")),
    Case("diagram-echo-tcp.mmd", "echo-tcp.pcap", ("--format", "mermaid")),
    Case("diagram-echo-udp.txt", "echo-udp.pcap", ()),
    Case("diagram-echo-udp.mmd", "echo-udp.pcap", ("--format", "mermaid")),
    Case("diagram-refused.txt", "diagram-refused.pcap", ()),
    Case("diagram-refused.mmd", "diagram-refused.pcap", ("--format", "mermaid")),
    Case("diagram-reset.txt", "diagram-reset.pcap", ()),
    Case("diagram-reset.mmd", "diagram-reset.pcap", ("--format", "mermaid")),
    Case("diagram-rto.txt", "diagram-rto.pcap", ()),
    Case("diagram-rto.mmd", "diagram-rto.pcap", ("--format", "mermaid")),
]


def render(case: Case) -> str:
    res = sockcap("diagram", str(GOLDEN / case.capture), *case.options)
    assert res.returncode == 0, res.stderr
    return res.stdout


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_golden(case: Case) -> None:
    assert render(case) == (GOLDEN / case.name).read_text(encoding="utf-8")


def timeline(path: Path) -> list[str]:
    res = sockcap("show", str(path))
    assert res.returncode == 0, res.stderr
    return res.stdout.splitlines()


LINE = re.compile(r"^\s*(\d+)\s.*?  (TCP|UDP) (\[[^\]]*\])?\s*(?:Seq=(\d+)(?: Ack=(\d+))? Win=\d+ )?Len=(\d+)")


def timeline_labels(path: Path) -> dict[int, str]:
    """Each packet's label as the timeline gives its fields: ``[SYN] Seq=0 Len=0``."""
    out = {}
    for line in timeline(path):
        m = LINE.match(line)
        assert m, line
        no, proto, flags, seq, ack, length = m.groups()
        acked = f" Ack={ack}" if ack is not None else ""
        out[int(no)] = (f"{flags} Seq={seq}{acked} Len={length}" if proto == "TCP"
                        else f"UDP Len={length}")
    return out


@pytest.mark.parametrize("capture", ["echo-tcp.pcap", "echo-udp.pcap", "diagram-refused.pcap",
                                     "diagram-reset.pcap", "diagram-rto.pcap"])
def test_svg_one_arrow_per_packet_labels_as_the_timeline(capture: str, tmp_path: Path) -> None:
    out = tmp_path / "ladder.svg"
    res = sockcap("diagram", str(GOLDEN / capture), "--format", "svg", "-o", str(out))
    assert res.returncode == 0, res.stderr
    root = ET.parse(out).getroot()  # well-formed XML, or this raises
    assert root.tag == f"{SVG}svg"
    arrows = [g for g in root.iter(f"{SVG}g") if "sc-arrow" in g.get("class", "").split()]
    expected = timeline_labels(GOLDEN / capture)
    assert [int(g.get("data-no", "")) for g in arrows] == list(expected)
    for g in arrows:
        label = g.find(f"{SVG}text[@class='sc-label']")
        assert label is not None and label.text == expected[int(g.get("data-no", ""))]
        assert g.find(f"{SVG}line") is not None and g.find(f"{SVG}polygon") is not None


def test_svg_marks_retransmissions_and_resets(tmp_path: Path) -> None:
    marked = {}
    for capture in ("diagram-rto.pcap", "diagram-refused.pcap"):
        res = sockcap("diagram", str(GOLDEN / capture), "--format", "svg")
        root = ET.fromstring(res.stdout.split("\n", 1)[1])
        marked[capture] = {int(g.get("data-no", "")): g.get("class", "")
                           for g in root.iter(f"{SVG}g") if "sc-marked" in g.get("class", "")}
    assert marked["diagram-rto.pcap"] == {  # the SYN's partial checksum is not drawn
        **{n: "sc-arrow sc-c2s sc-marked sc-mark-retransmission" for n in (5, 6, 7)},
        13: "sc-arrow sc-s2c sc-marked sc-mark-note"}  # the server closed first: TIME_WAIT
    assert marked["diagram-refused.pcap"] == {2: "sc-arrow sc-s2c sc-marked sc-mark-reset"}


def test_text_fits_80_columns_and_ascii_is_ascii() -> None:
    for capture in ("echo-tcp.pcap", "diagram-rto.pcap", "diagram-reset.pcap"):
        text = render(Case("", capture, ()))
        assert max(len(line) for line in text.splitlines()) <= 80
        ascii_text = render(Case("", capture, ("--ascii",)))
        assert ascii_text.isascii()
        assert len(ascii_text.splitlines()) == len(text.splitlines())


def test_mermaid_one_message_per_packet() -> None:
    text = render(Case("", "diagram-rto.pcap", ("--format", "mermaid")))
    messages = [line for line in text.splitlines() if re.match(r"\s+[CS](->>|-x|-\))[CS]: ", line)]
    assert len(messages) == 13
    assert text.startswith("sequenceDiagram\n")


def test_graph_tcptrace_and_stevens(tmp_path: Path) -> None:
    for style in ("tcptrace", "stevens"):
        res = sockcap("diagram", str(GOLDEN / "diagram-rto.pcap"), "--graph", style)
        assert res.returncode == 0, res.stderr
        root = ET.fromstring(res.stdout.split("\n", 1)[1])
        segments = {int(g.get("data-no", "")): g.get("class", "")
                    for g in root.iter(f"{SVG}g") if "sc-segment" in g.get("class", "")}
        # client to server: SYN, the data and its three copies, FIN (the ACKs carry no bytes)
        assert sorted(segments) == [1, 4, 5, 6, 7, 12]
        assert [n for n, cls in segments.items() if "sc-retrans" in cls] == [5, 6, 7]
        paths = [p.get("class") for p in root.iter(f"{SVG}path")]
        assert ("sc-ackline" in paths) == (style == "tcptrace")


def test_bad_input_is_one_line() -> None:
    cases = [
        (("--stream", "3"), "no tcp stream 3 in"),
        (("--udp", "--stream", "0"), "no udp conversation in"),
        (("--graph", "tcptrace", "--udp", "--stream", "0"), "no udp conversation"),
        (("--port", "9"), "no TCP or UDP conversation to or from port 9 in"),
    ]
    for options, words in cases:
        res = sockcap("diagram", str(GOLDEN / "echo-tcp.pcap"), *options)
        assert res.returncode == 2 and words in res.stderr and len(res.stderr.splitlines()) == 1
    res = sockcap("diagram", str(GOLDEN / "echo-udp.pcap"), "--graph", "stevens")
    assert res.returncode == 2 and res.stderr.startswith("sockcap: a time-sequence graph needs a TCP")


def test_out_file_needs_force(tmp_path: Path) -> None:
    out = tmp_path / "ladder.mmd"
    out.write_text("mine")
    res = sockcap("diagram", str(GOLDEN / "echo-tcp.pcap"), "--format", "mermaid", "-o", str(out))
    assert res.returncode == 2 and "exists" in res.stderr and out.read_text() == "mine"
    res = sockcap("diagram", str(GOLDEN / "echo-tcp.pcap"), "--format", "mermaid", "-o", str(out),
                  "--force")
    assert res.returncode == 0 and out.read_text().startswith("sequenceDiagram")


@pytest.mark.skipif(bool(can_run()), reason=can_run() or "runs")
@pytest.mark.parametrize(("scenario", "mark", "rows"), [
    ("refused", "connection refused", 1), ("reset", "connection reset", 1)])
def test_ladder_of_an_exchange_captured_now(scenario: str, mark: str, rows: int) -> None:
    """A fresh loopback capture: one arrow (two lines) per packet and the note on its arrow."""
    path = scenario_capture(scenario)
    packets = len(timeline(path))
    text = sockcap("diagram", str(path)).stdout.splitlines()
    shafts = [line for line in text if "▶│" in line or "│◀" in line]
    assert len(shafts) == packets
    assert sum(mark in line for line in shafts) == rows


@needs_capture
def test_run_capture_diagram_prints_the_ladder(tmp_path: Path) -> None:
    """``run --capture --diagram``: the README's exchange, then its ladder."""
    res = sockcap("run", "--capture", "--diagram", "--out", str(tmp_path / "x.pcap"), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("tcp stream 0: client"))
    ladder = lines[start:]
    assert len([line for line in ladder if "▶│" in line or "│◀" in line]) == 14
    assert any('[PSH, ACK] Seq=1 Ack=1 Len=5 "hello"' in line for line in ladder)
    calls = [line for line in ladder if "▸" in line]  # the calls, inside the lanes
    assert any("▸ connect(" in line for line in calls) and any("▸ accept()" in line for line in calls)
    assert ladder[-1].startswith("14 packets, ended: FIN both ways, handshake RTT ")
    assert max(len(line) for line in ladder) <= 80


def test_run_diagram_needs_capture() -> None:
    res = sockcap("run", "--diagram")
    assert res.returncode == 2 and "--diagram needs --capture" in res.stderr


@pytest.mark.skipif(bool(can_run()), reason=can_run() or "runs")
def test_zero_window_marks_and_shaded_periods() -> None:
    """A receiver that stops reading (captured now): the ladder marks the zero-window
    arrows, and the graph of the sender shades the periods the window stayed shut."""
    from sockcap.pcapfile.reader import open_capture
    from sockcap.pipeline import Pipeline
    from sockcap.render.ladder import Mark, ladder_layout
    from sockcap.render.seqgraph import sender_side, seqgraph_layout

    with scenario_capture("zero_window").open("rb") as f:
        pipeline = Pipeline()
        packets = list(pipeline.packets(open_capture(f)))
    conv = packets[0].conv
    assert conv is not None
    packets = [a for a in packets if a.conv is conv]
    ladder = ladder_layout(packets, pipeline.first_ts)
    zero = [a.no for a in packets if any(str(n).startswith("zero window") for n in a.notes)]
    assert zero and [x.no for x in ladder.arrows if Mark.ZERO_WINDOW in x.marks] == zero
    assert sender_side(packets) is True
    graph = seqgraph_layout(packets, True)
    shut = [a for a in packets if not a.from_client and a.win == 0]
    assert shut and graph.zero_windows
    for a in shut:  # every zero-window advertisement lies inside a shaded period
        t = (a.packet.ts_ns - packets[0].packet.ts_ns) / 1e9
        assert any(start <= t <= end for start, end in graph.zero_windows)
