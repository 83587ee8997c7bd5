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
from collections.abc import Mapping, Sequence
from typing import Any

from sockcap.analysis.conversation import Annotated, Conversation
from sockcap.analysis.follow import Follower
from sockcap.analysis.summary import fmt_rtt
from sockcap.codes import NOTE_EXPLANATIONS, explanation, note_kind, note_text, outcome_text
from sockcap.decode.records import IPPROTO_TCP
from sockcap.i18n import _, ngettext
from sockcap.render.fields import header_fields
from sockcap.render.follow import stream_name
from sockcap.render.ladder import ladder_layout
from sockcap.render.report_page import PAGE_CSS, PAGE_SCRIPT
from sockcap.render.seqgraph import sender_side, seqgraph_layout
from sockcap.render.svg import ladder_svg, seqgraph_svg
from sockcap.render.timeline import Clock, Timeline, endpoint, proto_name

PER_STREAM = 1000
TOTAL = 5000
FRAME_BYTES = 4096
DRAWN_STREAMS = 20
LADDER_ARROWS = 300  # arrows in one ladder (the table holds the rest)
FOLLOW_BYTES = 64 << 10


def report_html(annotated: Sequence[Annotated], convs: Sequence[Conversation], clock: Clock,
                title: str, findings: Sequence[Mapping[str, Any]] = ()) -> str:
    """The report page for ``annotated`` (every packet of a capture, in order) and the
    conversations they belong to (the pipeline tracker's).

    ``findings`` (a check's verdicts, as :func:`sockcap.render.check.verdict_record` makes
    them: ``check``, ``ok``, ``text``, ``packets``) go on top of the page; the page opens
    with the first failing one chosen, its packets marked in the ladders and the table,
    and a click on another finding marks its packets instead."""
    kept, left_out = _keep(annotated)
    timeline = Timeline(clock=clock)
    drawn = [c for c in convs if _key(c) in _drawn_keys(convs)]
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
    }
    by_conv = _by_conversation(kept, drawn)
    pictures = "\n".join(_pictures(c, by_conv[id(c)], clock.first_ts) for c in drawn)
    return _page(title, data, pictures, _summary_text(convs, len(annotated), left_out))


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
        "fields": [list(f) for f in header_fields(p) if f.start < FRAME_BYTES],
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


def _pictures(conv: Conversation, packets: list[Annotated], first_ts: int) -> str:
    if not packets:
        return ""
    key = html.escape(_key(conv))
    ladder = ladder_layout(packets, first_ts, LADDER_ARROWS)
    parts = [f'<section class="stream-pictures" data-stream="{key}">',
             f"<h3>{html.escape(stream_name(conv))}</h3>",
             f'<div class="ladder">{ladder_svg(ladder, document=False)}</div>']
    if conv.proto == IPPROTO_TCP:
        side = sender_side(packets)
        who = _("client to server") if side else _("server to client")
        graph = seqgraph_layout(packets, side, "tcptrace",
                                _("{stream}: time-sequence graph, {who}").format(
                                    stream=stream_name(conv), who=who))
        parts.append(f'<div class="graph">{seqgraph_svg(graph, document=False)}</div>')
    parts.append("</section>")
    return "\n".join(parts)


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


def _page(title: str, data: dict[str, Any], pictures: str, summary: str) -> str:
    blob = json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")
    t = html.escape(title)
    return f"""<!DOCTYPE html>
<html lang="en">
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
<label>{html.escape(_("stream"))} <select id="stream-filter"><option value="">{html.escape(_("all"))}</option></select></label>
<label>{html.escape(_("filter"))} <input id="text-filter" type="search" placeholder="{html.escape(_("text in a packet's line"))}"></label>
<span class="hint">{html.escape(_("click a packet; ↑ ↓ step through them"))}</span>
</header>
{_findings_section(data)}<main>
<div id="left">
<section id="conversations"><h2>{html.escape(_("Conversations"))}</h2><table id="stream-table"><thead><tr>
<th>{html.escape(_("stream"))}</th><th>{html.escape(_("client"))}</th><th>{html.escape(_("server"))}</th>
<th>{html.escape(_("packets c→s / s→c"))}</th><th>{html.escape(_("payload bytes"))}</th>
<th>{html.escape(_("handshake RTT"))}</th><th>{html.escape(_("ended"))}</th><th>{html.escape(_("notes"))}</th>
</tr></thead><tbody></tbody></table></section>
<section id="pictures"><h2>{html.escape(_("Ladder and time-sequence graph"))}</h2>
{pictures}
</section>
</div>
<div id="right">
<section id="timeline"><h2>{html.escape(_("Packets"))}</h2><div id="table-box"><table id="packet-table"><thead><tr>
<th>no</th><th>{html.escape(_("time"))}</th><th>{html.escape(_("stream"))}</th>
<th>{html.escape(_("direction"))}</th><th>{html.escape(_("info"))}</th></tr></thead><tbody></tbody></table></div>
<p id="left-out"></p></section>
<section id="detail"><h2 id="detail-title">{html.escape(_("Packet bytes"))}</h2>
<p id="detail-help">{html.escape(_("Click a packet to see its bytes; point at a field to see where it lies."))}</p>
<div id="detail-body"><pre id="hexdump"></pre><table id="fields"><tbody></tbody></table></div></section>
<section id="follow"><h2>{html.escape(_("Follow: what each side sent"))}</h2>
<p class="legend"><span class="client">{html.escape(_("client"))}</span> <span class="server">{html.escape(_("server"))}</span></p>
<div id="follow-box"></div></section>
<section id="notes"><h2>{html.escape(_("Expert notes"))}</h2><ul id="note-list"></ul></section>
</div>
</main>
<script type="application/json" id="sockcap-data">{blob}</script>
<script>{PAGE_SCRIPT}</script>
</body>
</html>
"""
