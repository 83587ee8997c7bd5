"""``--explain``: each expert note kind that appeared, with one plain sentence (pure)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from sockcap.analysis.expert import EXPLANATIONS


def explain_lines(note_counts: Mapping[str, int]) -> Iterator[tuple[str, str]]:
    """``(line, style)`` pairs: a heading, then ``  retransmission (2): The sender ...``.

    Kinds are listed in the order of :data:`~sockcap.analysis.expert.EXPLANATIONS`;
    notes without an explanation (decoder damage) are left to the timeline.
    """
    kinds = [k for k in EXPLANATIONS if note_counts.get(k)]
    if not kinds:
        yield "notes: none (nothing unusual in this exchange)", "dim"
        return
    yield "notes:", "bold"
    for kind in kinds:
        yield f"  {kind} ({note_counts[kind]}): {EXPLANATIONS[kind]}", ""
