"""A printable worksheet drawn from a real capture, and its answer key (pure).

Four parts, as a teacher sets them on paper: the exchange as a table with some Seq and
Ack cells left blank (fill them in), the handshake to mark, questions on the packets
(the terminal quiz's, :mod:`sockcap.render.quiz`, with their choices as boxes), and,
when the capture has one, a retransmission to explain. The key is the same page with
every blank filled, each with its arithmetic or the sentence ``--explain`` gives.

One self-contained HTML page (inline CSS, no script, no request): it prints as it shows.
"""

from __future__ import annotations

import html
import random
from collections.abc import Sequence

from sockcap.analysis.calls import Call
from sockcap.analysis.conversation import Annotated
from sockcap.decode.ftrace import KernelEvent
from sockcap.i18n import _, language
from sockcap.render.explain import RESENT, PacketExplainer
from sockcap.render.quiz import Question, choice_text, make_questions
from sockcap.render.timeline import flag_names

BLANKS = 6  # Seq/Ack cells left blank in the table
QUESTIONS = 6

CSS = """
body { font: 14px/1.45 'DejaVu Sans', system-ui, sans-serif; margin: 24px; color: #111; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 20px; }
table { border-collapse: collapse; } th, td { border: 1px solid #999; padding: 2px 8px; }
td.num { text-align: right; font-family: 'DejaVu Sans Mono', monospace; }
td.blank { min-width: 5em; background: #fff8dc; }
.key { color: #1d4ed8; font-weight: bold; }
.why { color: #1d4ed8; font-size: 12px; }
ol li { margin-bottom: 10px; } .box { font-family: monospace; margin-right: 12px; }
.line { border-bottom: 1px solid #999; height: 1.6em; }
@media print { body { margin: 10mm; } td.blank { background: none; } }
"""


def worksheet_html(packets: Sequence[Annotated], title: str, *, answers: bool,
                   seed: int = 0, calls: Sequence[Call] = (),
                   events: Sequence[KernelEvent] = ()) -> str:
    """The worksheet (``answers=False``) or its key, for one TCP connection's packets;
    ``calls`` and ``events``: the recorded ones, tied to the packets (the sentences of
    FINs and the states then come from them, as in the quiz)."""
    rng = random.Random(seed)
    explainer = PacketExplainer(calls)
    said = [explainer.explain(a) for a in packets]
    blanks = _blanks(packets, rng)
    questions = make_questions(packets, QUESTIONS, seed, calls, events)
    resent = next((a for a, s in zip(packets, said, strict=True) if s is not None and s[0] in RESENT), None)
    sentences = {a.no: s[1] for a, s in zip(packets, said, strict=True) if s is not None}
    heading = _("Answer key") if answers else _("Worksheet")
    name = _("Name:")
    parts = [f"<h1>{html.escape(heading)}: {html.escape(title)}</h1>",
             f"<p>{html.escape(name)} <span class='line' style='display:inline-block;width:20em'></span></p>",
             _table(packets, blanks, answers, sentences),
             _handshake(packets, answers),
             _questions(questions, answers)]
    if resent is not None:
        parts.append(_retransmission(resent, sentences[resent.no], answers))
    body = "\n".join(parts)
    return (f'<!DOCTYPE html>\n<html lang="{language()}">\n<head>\n<meta charset="utf-8">\n'
            f'<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
            f'style-src \'unsafe-inline\'">\n<title>{html.escape(heading)}: '
            f'{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n{body}\n'
            f'</body>\n</html>\n')


def _blanks(packets: Sequence[Annotated], rng: random.Random) -> set[tuple[int, str]]:
    """Which (packet, "seq"|"ack") cells are blank: after the first packet of each side."""
    cells = [(a.no, f) for i, a in enumerate(packets) if i > 1
             for f in ("seq", "ack") if f == "seq" or a.packet.flags & 0x10]
    return set(rng.sample(cells, min(BLANKS, len(cells))))


def _table(packets: Sequence[Annotated], blanks: set[tuple[int, str]], answers: bool,
           sentences: dict[int, str]) -> str:
    head = [_("No."), _("from"), _("flags"), "Seq", "Ack", "Len"]
    rows = ["<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"]
    for a in packets:
        side = _("client") if a.from_client else _("server")
        cells = [f"<td class='num'>{a.no}</td>", f"<td>{html.escape(side)}</td>",
                 f"<td>{html.escape(', '.join(flag_names(a.packet.flags)))}</td>"]
        for field, value in (("seq", a.seq), ("ack", a.ack)):
            if (a.no, field) in blanks:
                cells.append(f"<td class='num blank'>{_key(str(value)) if answers else ''}</td>")
            else:
                cells.append(f"<td class='num'>{value}</td>")
        cells.append(f"<td class='num'>{a.packet.payload_len}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    key = ""
    if answers:
        items = "".join("<li>" + html.escape(_("packet {no}").format(no=no)) + ": "
                        f"<span class='why'>{html.escape(sentences.get(no, ''))}</span></li>"
                        for no in sorted({no for no, _f in blanks}))
        key = f"<ul>{items}</ul>"
    title = _("1. Fill in the blank Seq and Ack numbers (relative, as Wireshark shows them).")
    return f"<h2>{html.escape(title)}</h2><table>{''.join(rows)}</table>{key}"


def _handshake(packets: Sequence[Annotated], answers: bool) -> str:
    hand = [a.no for a in packets if a.phase.is_handshake]
    text = _("2. Mark the handshake: write the numbers of its packets, in order.")
    answer = (f"<p class='key'>{', '.join(map(str, hand)) or html.escape(_('(none)'))}</p>"
              if answers else "<p class='line'></p>")
    return f"<h2>{html.escape(text)}</h2>{answer}"


def _questions(questions: Sequence[Question], answers: bool) -> str:
    items = []
    for q in questions:
        item = html.escape(q.question)
        if q.choices is not None:
            boxes = "".join(
                f"<span class='box'>{'☒' if answers and c == q.answer else '☐'} "
                f"{html.escape(choice_text(q.field, c))}</span>" for c in q.choices)
            item += f"<br>{boxes}"
        elif not answers:
            item += "<div class='line'></div>"
        if answers:
            item += (f"<br>{_key(choice_text(q.field, q.answer))} "
                     f"<span class='why'>{html.escape(q.explanation)}</span>")
        items.append(f"<li>{item}</li>")
    title = _("3. Predict the packet: answer each question from the packets before it.")
    return f"<h2>{html.escape(title)}</h2><ol>{''.join(items)}</ol>"


def _retransmission(a: Annotated, sentence: str, answers: bool) -> str:
    title = _("4. Packet {no} carries bytes sent before. Explain why it was sent again.").format(
        no=a.no)
    answer = (f"<p class='why'>{html.escape(sentence)}</p>" if answers
              else "<div class='line'></div><div class='line'></div>")
    return f"<h2>{html.escape(title)}</h2>{answer}"


def _key(text: str) -> str:
    return f"<span class='key'>{html.escape(text)}</span>"
