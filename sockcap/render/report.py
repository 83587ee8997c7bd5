"""The HTML report: one self-contained file (inline CSS, JS and SVG; no request leaves it).

Pure: annotated packets and their conversations in, one HTML string out. What the page
shows is computed here; the page's script (:mod:`sockcap.render.report_page`, a constant)
only reads one JSON blob (``<script type="application/json">``) and builds the table, the
byte view and the follow view from it with DOM calls. The ladders and time-sequence
graphs are the SVG writers' output, inline.

Size limit (so that the page stays responsive on a big capture): at most
:data:`PER_STREAM` packets of each conversation and :data:`TOTAL` packets in all are put
in the page, the first ones in capture order; each packet's byte view holds its first
:data:`FRAME_BYTES` bytes; ladders and graphs are drawn for the first :data:`DRAWN_STREAMS`
conversations; each follow view holds the first :data:`FOLLOW_BYTES` bytes of each side.
The page says how many packets were left out.
"""

from __future__ import annotations

import html
import json
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from typing import Any

from sockcap.analysis.calls import Call
from sockcap.analysis.conversation import Annotated, Conversation
from sockcap.analysis.follow import Follower
from sockcap.analysis.story import CLOCK_SLACK_NS, Moment, story
from sockcap.analysis.summary import fmt_rtt
from sockcap.codes import NOTE_EXPLANATIONS, explanation, note_kind, note_text, outcome_text
from sockcap.decode.ftrace import KernelEvent
from sockcap.decode.records import IPPROTO_TCP
from sockcap.i18n import _, language, ngettext
from sockcap.render.calls import call_line, cause_line
from sockcap.render.fields import header_fields
from sockcap.render.follow import stream_name
from sockcap.render.kernel import ProbeFilter, kernel_explain, kernel_line
from sockcap.render.ladder import ladder_layout, with_side_notes
from sockcap.render.quiz import choice_text, make_questions
from sockcap.render.report_page import PAGE_CSS, PAGE_SCRIPT
from sockcap.render.seqgraph import (
    probe_cwnd,
    probe_source,
    probe_srtt,
    sender_mss,
    sender_side,
    seqgraph_layout,
)
from sockcap.render.statediagram import state_diagram_layout, state_diagram_svg
from sockcap.render.step import prepare_steps
from sockcap.render.svg import cwnd_graph_svg, ladder_svg, seqgraph_svg
from sockcap.render.timeline import Clock, Timeline, endpoint, proto_name

PER_STREAM = 1000
TOTAL = 5000
FRAME_BYTES = 4096
DRAWN_STREAMS = 20
LADDER_ARROWS = 300  # arrows in one ladder (the table holds the rest)
FOLLOW_BYTES = 64 << 10


def report_html(annotated: Sequence[Annotated], convs: Sequence[Conversation], clock: Clock,
                title: str, findings: Sequence[Mapping[str, Any]] = (), *,
                quiz_seed: int = 0, quiz_stream: int | None = None,
                calls: Sequence[Call] = (), events: Sequence[KernelEvent] = ()) -> str:
    """The report page for ``annotated`` (every packet of a capture, in order) and the
    conversations they belong to (the pipeline tracker's).

    ``findings`` (a check's verdicts, as :func:`sockcap.render.check.verdict_record` makes
    them: ``check``, ``ok``, ``text``, ``packets``) go on top of the page; the page opens
    with the first failing one chosen, its packets marked in the ladders and the table,
    and a click on another finding marks its packets instead.

    The predict and step modes are about TCP stream ``quiz_stream`` (the first TCP
    connection when None; a stream not in ``annotated`` raises :class:`ValueError`), the
    quiz drawn with ``quiz_seed`` as ``sockcap quiz --seed`` draws it.

    ``calls`` and ``events`` (the programs' socket calls and ``--kernel``'s events, tied
    to the packets by :mod:`sockcap.analysis.story`) go into the packet list as rows of
    their own (``▸`` a call, ``◆`` a kernel event, with the ``--explain`` sentence of a
    drop or reset and the packet that made a call fail), beside the lifelines of the
    ladders, and under the time-sequence graph as the sender's congestion window; they
    give the step mode the kernel's states and the FIN's call."""
    kept, left_out = _keep(annotated)
    timeline = Timeline(clock=clock)
    drawn = [c for c in convs if _key(c) in _drawn_keys(convs)]
    learn, states_svg = _learn(kept, clock, quiz_seed, quiz_stream, calls, events)
    data = {
        "title": title,
        "limits": {"per_stream": PER_STREAM, "total": TOTAL, "frame_bytes": FRAME_BYTES},
        "left_out": left_out,
        "streams": [_stream_record(c) for c in convs],
        "packets": [_packet_record(a, timeline, clock.first_ts) for a in kept],
        "follow": {_key(c): _follow(kept, c) for c in drawn},
        "notes": _notes(kept),
        "findings": [{"check": str(f["check"]), "ok": bool(f["ok"]), "text": str(f["text"]),
                      "packets": [int(n) for n in f["packets"]]} for f in findings],
        "learn": learn,
        "story": story_rows(kept, calls, events, clock.first_ts),
        "words": page_words(),
    }
    by_conv = _by_conversation(kept, drawn)
    pictures = "\n".join(_pictures(c, by_conv[id(c)], clock.first_ts, calls, events)
                         for c in drawn)
    return _page(title, data, pictures, _summary_text(convs, len(annotated), left_out),
                 states_svg)


QUIZ_QUESTIONS = 10


def _learn(kept: Sequence[Annotated], clock: Clock, seed: int, stream: int | None,
           calls: Sequence[Call] = (), events: Sequence[KernelEvent] = ()
           ) -> tuple[dict[str, Any], str]:
    """The predict and step modes' data: TCP stream ``stream``'s quiz (the first TCP
    connection's when None; the terminal quiz's questions for ``seed``) and each of its
    packets' states (and whether the kernel recorded them) and sentence; and the state
    diagram (SVG) with the path the connection took."""
    tcp = next((a.conv for a in kept if a.conv is not None and a.conv.proto == IPPROTO_TCP
                and a.packet.seq >= 0 and stream in (None, a.conv.stream)), None)
    if tcp is None:
        if stream is not None:
            streams = sorted({a.conv.stream for a in kept if a.conv is not None
                              and a.conv.proto == IPPROTO_TCP})
            raise ValueError(_("no tcp stream {stream} for the quiz and the steps (the "
                               "capture's TCP streams: {streams})").format(
                stream=stream, streams=", ".join(map(str, streams)) or _("none")))
        return {"quiz": [], "steps": {}, "stream": None}, ""
    packets = [a for a in kept if a.conv is tcp]
    quiz = []
    for q in make_questions(packets, QUIZ_QUESTIONS, seed, calls, events):
        record = q.as_json()
        record["answer_words"] = choice_text(q.field, q.answer)
        if q.choices is not None:
            record["choice_words"] = [choice_text(q.field, c) for c in q.choices]
        quiz.append(record)
    steps = prepare_steps(packets, clock, calls, events)
    diagram = state_diagram_layout(steps.states, _("{stream}: the TCP state diagram (RFC "
                                                   "9293), the path each end took").format(
        stream=stream_name(tcp)))
    return {
        "quiz": quiz,
        "stream": tcp.stream,
        "steps": {str(a.no): {
            "client": st.client.value, "server": st.server.value, "sentence": sentence,
            "recorded": list(st.recorded),
            "moved": [[t.client, t.before.value, t.after.value] for t in st.transitions]}
            for a, st, sentence in zip(steps.packets, steps.states, steps.sentences, strict=True)},
    }, state_diagram_svg(diagram, document=False)


def page_words() -> dict[str, str]:
    """Every word the page's script writes, from the catalogue (the script has none)."""
    return {
        "client_server": _("client → server"),
        "server_client": _("server → client"),
        "packet_title": _("Packet {no}: {wirelen} bytes on the wire, {caplen} captured"),
        "first_shown": _(" (the first {shown} shown)"),
        "notes": _("notes: {notes}"),
        "point": _("Point at a field to see its bytes."),
        "left_out": _("{count} packets are not in this page (at most {per} of each "
                      "conversation and {total} in all)."),
        "no_notes": _("none: nothing unusual in this capture"),
        "packets": _(" Packets: "),
        "question": _("question {n} of {total}: {question}"),
        "right": _("right!"),
        "wrong": _("not quite: the answer is {answer}."),
        "score": _("score: {right} of {asked}"),
        "quiz_end": _("The end of the quiz: every packet is shown again."),
        "next_help": _("n: next question; Esc: leave the quiz"),
        "state_now": _("{end}: {states} ({source})"),
        "recorded": _("recorded by the kernel"),
        "inferred": _("inferred from the packets"),
        "client": _("client"),
        "server": _("server"),
        "the_client": _("the client"),
        "the_server": _("the server"),
        "none": _("(none)"),
    }


def _key(conv: Conversation) -> str:
    return stream_name(conv).replace(" stream ", " ")  # "tcp 0"


def _drawn_keys(convs: Sequence[Conversation]) -> set[str]:
    return {_key(c) for c in convs[:DRAWN_STREAMS]}


def _keep(annotated: Sequence[Annotated]) -> tuple[list[Annotated], int]:
    """The packets the page holds (the size limit) and how many were left out."""
    counts: dict[int, int] = {}
    kept: list[Annotated] = []
    for a in annotated:
        if len(kept) >= TOTAL:
            break
        key = id(a.conv)
        n = counts.get(key, 0)
        if a.conv is not None and n >= PER_STREAM:
            continue
        counts[key] = n + 1
        kept.append(a)
    return kept, len(annotated) - len(kept)


def _by_conversation(kept: Sequence[Annotated], convs: Sequence[Conversation]
                     ) -> dict[int, list[Annotated]]:
    out: dict[int, list[Annotated]] = {id(c): [] for c in convs}
    for a in kept:
        bucket = out.get(id(a.conv))
        if bucket is not None:
            bucket.append(a)
    return out


def _stream_record(c: Conversation) -> dict[str, Any]:
    return {
        "key": _key(c), "proto": "tcp" if c.proto == IPPROTO_TCP else "udp",
        "client": endpoint(*c.client), "server": endpoint(*c.server),
        "packets": [c.dirs[0].packets, c.dirs[1].packets],
        "bytes": [c.dirs[0].payload_bytes, c.dirs[1].payload_bytes],
        "rtt": fmt_rtt(c.irtt_ns) if c.proto == IPPROTO_TCP else "",
        "ended": outcome_text(c.end_state),
        "notes": ", ".join(f"{n} {note_text(k)}" for k, n in (c.note_counts or {}).items()),
    }


def _packet_record(a: Annotated, timeline: Timeline, first_ts: int) -> dict[str, Any]:
    p = a.packet
    line = timeline.line(a)
    info = line.split(" → ", 1)[1].split("  ", 1)[-1] if " → " in line else line
    return {
        "no": a.no,
        "time": f"{(p.ts_ns - first_ts) / 1e9:.6f}",
        "stream": _key(a.conv) if a.conv is not None else "",
        "from": ("client" if a.from_client else "server") if a.conv is not None else "",
        "src": endpoint(p.src, p.sport) if p.sport >= 0 else p.src,
        "dst": endpoint(p.dst, p.dport) if p.dport >= 0 else p.dst,
        "proto": proto_name(p),
        "info": info.strip(),
        "notes": [note_text(n) if _known(n) else n for n in a.notes],
        "wirelen": p.wirelen,
        "hex": p.data[:FRAME_BYTES].hex(),
        "caplen": len(p.data),
        # the layer stays a code (the script finds the payload by it; "payload" is kept
        # as written in Indonesian too); the field's name is in the reader's language
        "fields": [[f.layer, _(f.name), f.start, f.end, f.value]
                   for f in header_fields(p) if f.start < FRAME_BYTES],
    }


def _known(note: str) -> bool:
    try:
        note_kind(note)
    except ValueError:
        return False
    return True


def _follow(kept: Sequence[Annotated], conv: Conversation) -> list[list[Any]]:
    """``[from_client, text]`` pieces of one conversation, each side cut at FOLLOW_BYTES."""
    follower = Follower((conv.proto, conv.stream))
    sent = [0, 0]
    out: list[list[Any]] = []
    chunks = [c for a in kept if a.conv is conv for c in follower.feed(a)]
    for chunk in chunks + follower.finish():
        side = 0 if chunk.from_client else 1
        if chunk.gap:
            out.append([chunk.from_client, _("[{gap} bytes missing from the capture]").format(gap=chunk.gap)])
            continue
        room = FOLLOW_BYTES - sent[side]
        if room <= 0:
            continue
        data = chunk.data[:room]
        sent[side] += len(data)
        text = data.decode("latin-1")
        out.append([chunk.from_client, "".join(c if c.isprintable() or c in "\n\t" else "." for c in text)])
    return out


def _notes(kept: Sequence[Annotated]) -> list[dict[str, Any]]:
    packets: dict[Any, list[int]] = {}
    for a in kept:
        for n in a.notes:
            if _known(n):
                packets.setdefault(note_kind(n), []).append(a.no)
    return [{"note": note_text(k), "explanation": explanation(k) or "", "packets": packets[k]}
            for k in NOTE_EXPLANATIONS if k in packets]


def _pictures(conv: Conversation, packets: list[Annotated], first_ts: int,
              calls: Sequence[Call] = (), events: Sequence[KernelEvent] = ()) -> str:
    if not packets:
        return ""
    key = html.escape(_key(conv))
    ladder = with_side_notes(ladder_layout(packets, first_ts, LADDER_ARROWS), packets, calls,
                             events, infer=True)
    parts = [f'<section class="stream-pictures" data-stream="{key}">',
             f"<h3>{html.escape(stream_name(conv))}</h3>",
             f'<div class="ladder">{ladder_svg(ladder, document=False)}</div>']
    if conv.proto == IPPROTO_TCP:
        side = sender_side(packets)
        who = _("client to server") if side else _("server to client")
        graph = seqgraph_layout(packets, side, "tcptrace",
                                _("{stream}: time-sequence graph, {who}").format(
                                    stream=stream_name(conv), who=who))
        cwnd = probe_cwnd(events, packets, side)  # --kernel's tcp_probe, when recorded
        svg = (cwnd_graph_svg(graph, cwnd, sender_mss(packets, side), document=False,
                              source=probe_source(),
                              srtt=probe_srtt(events, packets, side)) if cwnd
               else seqgraph_svg(graph, document=False))
        parts.append(f'<div class="graph">{svg}</div>')
    parts.append("</section>")
    return "\n".join(parts)


def story_rows(kept: Sequence[Annotated], calls: Sequence[Call], events: Sequence[KernelEvent],
               first_ts: int) -> list[dict[str, Any]]:
    """The calls and kernel events as rows of the packet list, each with ``after`` (the
    number of the packet it follows; 0: before the first), the timeline's words (the
    ``▸``/``◆`` lines without their time, which has its own column), ``why`` (what
    ``--explain`` says of it) and the packets it is tied to. A ``tcp_probe`` is a row only
    where the congestion window changed, as in the timeline."""
    if not calls and not events:
        return []
    keys = {a.no: _key(a.conv) for a in kept if a.conv is not None}
    times = [a.packet.ts_ns for a in kept]
    probes = ProbeFilter()
    rows: list[dict[str, Any]] = []
    after = 0
    for entry in story(kept, calls, events):
        if entry.packet is not None:
            after = entry.packet.no
            continue
        if entry.call is not None:
            call = entry.call
            line, why = call_line(call, first_ts, entry.moment), None
            if entry.moment is not Moment.BEGUN:
                end = bisect_right(times, call.returned_ns + CLOCK_SLACK_NS)
                why = cause_line(call, kept[:end])
            kind, side, tied = "call", call.side, call.packets
        elif entry.event is not None and probes.shown(entry.event):
            event = entry.event
            line, why = kernel_line(event, first_ts), kernel_explain(event)
            kind, side, tied = "kernel", event.side, event.packets
        else:
            continue
        time, _sep, text = line.strip()[2:].partition("  ")  # "▸ 0.000120  client: ..."
        rows.append({"kind": kind, "after": after, "time": time, "side": side,
                     "stream": next((keys[n] for n in tied if n in keys), ""),
                     "text": text, "why": why.strip() if why else "",
                     "packets": [n for n in tied if n in keys]})
        if len(rows) >= TOTAL:
            break
    return rows


def _summary_text(convs: Sequence[Conversation], total: int, left_out: int) -> str:
    text = ngettext("{packets} packets, {convs} conversation", "{packets} packets, {convs} conversations",
                    len(convs)).format(packets=total, convs=len(convs))
    if left_out:
        text = _("{text}; {left_out} packets left out of this page (it holds at most {per} "
                 "of each conversation and {total} in all)").format(
            text=text, left_out=left_out, per=PER_STREAM, total=TOTAL)
    return text


def _findings_section(data: dict[str, Any]) -> str:
    """The findings' frame (filled by the page's script), or nothing."""
    if not data["findings"]:
        return ""
    failed = sum(1 for f in data["findings"] if not f["ok"])
    head = ngettext("{count} finding failed", "{count} findings failed", failed).format(count=failed)
    return (f'<section id="findings"><h2>{html.escape(_("Findings"))}: {html.escape(head)}</h2>'
            f'<p class="hint">{html.escape(_("click a finding to mark its packets in the ladder and the table"))}</p>'
            '<ol id="finding-list"></ol></section>\n')


def _page(title: str, data: dict[str, Any], pictures: str, summary: str,
          states_svg: str = "") -> str:
    """The whole page: its head and header, the findings, the sections; the data as JSON
    for the page's script."""
    blob = json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")
    t = html.escape(title)
    w = {k: html.escape(v) for k, v in _page_words(data).items()}
    return (_page_top(t, summary, w) + _findings_section(data)
            + _page_main(w, pictures, states_svg, blob))


def _page_words(data: dict[str, Any]) -> dict[int, str]:
    """The page's words, as plain calls (the catalogue's extractor does not look inside
    f-strings)."""
    return {
        0: _("stream"),
        1: _("all"),
        2: _("filter"),
        3: _("text in a packet's line"),
        4: _("click a packet; ↑ ↓ step through them"),
        5: _("Conversations"),
        6: _("client"),
        7: _("server"),
        8: _("packets c→s / s→c"),
        9: _("payload bytes"),
        10: _("handshake RTT"),
        11: _("ended"),
        12: _("notes"),
        13: _("Predict the next packet"),
        14: _("Press p: the packets from the one asked about on are hidden; type the answer (or a choice's number) and press Enter."),
        15: _("your answer"),
        16: _("Step through: each end's TCP state"),
        17: _("Select a packet of tcp stream {stream} (↑ ↓ step): both ends' state after it, its explanation, and the arrows of the state diagram (RFC 9293) it took.").format(
            stream=data["learn"]["stream"] if data["learn"]["stream"] is not None else "-"),
        18: _("Ladder and time-sequence graph"),
        19: _("Packets"),
        20: _("time"),
        21: _("direction"),
        22: _("info"),
        23: _("Packet bytes"),
        24: _("Click a packet to see its bytes; point at a field to see where it lies."),
        25: _("Follow: what each side sent"),
        26: _("Expert notes"),
        27: _("No."),
    }


def _page_top(t: str, summary: str, w: dict[int, str]) -> str:
    return f"""<!DOCTYPE html>
<html lang="{language()}">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>sockcap report: {t}</title>
<style>{PAGE_CSS}</style>
</head>
<body>
<header>
<h1>sockcap report <span class="file">{t}</span></h1>
<p id="summary-line">{html.escape(summary)}</p>
<label>{w[0]} <select id="stream-filter"><option value="">{w[1]}</option></select></label>
<label>{w[2]} <input id="text-filter" type="search" placeholder="{w[3]}"></label>
<span class="hint">{w[4]}</span>
</header>
"""


def _page_main(w: dict[int, str], pictures: str, states_svg: str, blob: str) -> str:
    return f"""<main>
<div id="left">
<section id="conversations"><h2>{w[5]}</h2><table id="stream-table"><thead><tr>
<th>{w[0]}</th><th>{w[6]}</th><th>{w[7]}</th>
<th>{w[8]}</th><th>{w[9]}</th>
<th>{w[10]}</th><th>{w[11]}</th><th>{w[12]}</th>
</tr></thead><tbody></tbody></table></section>
<section id="predict"><h2>{w[13]}</h2>
<p id="predict-help">{w[14]}</p>
<div id="predict-box" hidden><p id="predict-question"></p><ol id="predict-choices"></ol>
<input id="predict-answer" type="text" autocomplete="off" aria-label="{w[15]}">
<p id="predict-verdict"></p><p id="predict-explanation"></p><p id="predict-score"></p></div></section>
<section id="states"><h2>{w[16]}</h2>
<p id="state-help">{w[17]}</p>
<p id="state-strip"></p><p id="state-sentence"></p><div id="state-diagram">{states_svg}</div></section>
<section id="pictures"><h2>{w[18]}</h2>
{pictures}
</section>
</div>
<div id="right">
<section id="timeline"><h2>{w[19]}</h2><div id="table-box"><table id="packet-table"><thead><tr>
<th>{w[27]}</th><th>{w[20]}</th><th>{w[0]}</th>
<th>{w[21]}</th><th>{w[22]}</th></tr></thead><tbody></tbody></table></div>
<p id="left-out"></p></section>
<section id="detail"><h2 id="detail-title">{w[23]}</h2>
<p id="detail-help">{w[24]}</p>
<div id="detail-body"><pre id="hexdump"></pre><table id="fields"><tbody></tbody></table></div></section>
<section id="follow"><h2>{w[25]}</h2>
<p class="legend"><span class="client">{w[6]}</span> <span class="server">{w[7]}</span></p>
<div id="follow-box"></div></section>
<section id="notes"><h2>{w[26]}</h2><ul id="note-list"></ul></section>
</div>
</main>
<script type="application/json" id="sockcap-data">{blob}</script>
<script>{PAGE_SCRIPT}</script>
</body>
</html>
"""
