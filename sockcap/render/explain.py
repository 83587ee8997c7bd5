"""``--explain``: each expert note kind that appeared, with one plain sentence (pure)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from sockcap.codes import NOTE_EXPLANATIONS, Note, explanation, note_text
from sockcap.i18n import _


def explain_lines(note_counts: Mapping[Note, int]) -> Iterator[tuple[str, str]]:
    """``(line, style)`` pairs: a heading, then ``  retransmission (2): The sender ...``.

    Kinds are listed in the order of :data:`~sockcap.codes.NOTE_EXPLANATIONS`; notes
    without an explanation (decoder damage) are left to the timeline.
    """
    kinds = [k for k in NOTE_EXPLANATIONS if note_counts.get(k)]
    if not kinds:
        yield _("notes: none (nothing unusual in this exchange)"), "dim"
        return
    yield _("notes:"), "bold"
    for kind in kinds:
        yield _("  {note} ({count}): {meaning}").format(
            note=note_text(kind), count=note_counts[kind], meaning=explanation(kind)), ""
