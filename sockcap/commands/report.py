"""``sockcap report FILE -o report.html``: one self-contained HTML page about a capture.

See :mod:`sockcap.render.report` for what the page holds and its size limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

from sockcap.commands.options import SEED, STREAM
from sockcap.i18n import _

if TYPE_CHECKING:
    from sockcap.analysis.calls import Call
    from sockcap.analysis.conversation import Annotated, Conversation
    from sockcap.decode.ftrace import KernelEvent
    from sockcap.output import Output
    from sockcap.render.timeline import Clock


@click.command("report", help=_('Write an HTML report of a capture: ladder, timeline, packet bytes, follow, graphs, notes.'))
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("-o", "--out", type=click.Path(dir_okay=False), required=True, metavar="FILE",
              help=_("The HTML file to write (e.g. report.html)."))
@click.option("--force", is_flag=True, help=_("Overwrite FILE if it exists."))
@click.option("--quiz-stream", type=STREAM, default=None, metavar="N",
              help=_("The predict and step modes' connection (Wireshark's tcp.stream; the "
                     "first TCP connection when not given)."))
@click.option("--quiz-seed", type=SEED, default=0, show_default=True, metavar="S",
              help=_("Which questions the predict mode draws (as sockcap quiz --seed)."))
def report(file: str, out: str, force: bool, quiz_stream: int | None, quiz_seed: int) -> None:
    from contextlib import ExitStack

    from sockcap.output import Output
    from sockcap.owner import check_output_path
    from sockcap.pcapfile.reader import open_capture
    from sockcap.pcapfile.source import open_input
    from sockcap.pipeline import Pipeline

    check_output_path(out, force=force)
    output = Output()
    pipeline = Pipeline()
    with ExitStack() as stack:
        reader = open_capture(open_input(file, stack))
        annotated = list(pipeline.packets(reader))
    calls, events = saved_story(file, annotated, output)
    write_report(annotated, pipeline.tracker.conversations, pipeline, file, out, force, output,
                 quiz_seed=quiz_seed, quiz_stream=quiz_stream, calls=calls, events=events)


def saved_story(path: str, annotated: Sequence[Annotated], output: Output
                ) -> tuple[list[Call], list[KernelEvent]]:
    """The calls and kernel events a capture file keeps (a ``.pcapng`` that ``run``,
    ``capture`` or ``lab`` saved them in, :mod:`sockcap.pcapfile.storyfile`), tied to
    ``annotated`` as the live run tied them; none for any other file."""
    from sockcap.analysis.story import tie_calls, tie_kernel
    from sockcap.analysis.storyrecords import story_from_records
    from sockcap.pcapfile.storyfile import read_story

    saved = story_from_records(read_story(path))
    if saved.unreadable:
        output.note(_("sockcap: {count} of the calls and kernel events kept in {path} could "
                      "not be read (skipped)").format(count=saved.unreadable, path=path))
    return (tie_calls(saved.calls, annotated),
            tie_kernel(saved.events, annotated, saved.listen_overflows))


def write_report(annotated: Sequence[Annotated], convs: Sequence[Conversation], clock: Clock,
                 title: str, out: str, force: bool, output: Output, *, quiz_seed: int = 0,
                 quiz_stream: int | None = None, calls: Sequence[Call] = (),
                 events: Sequence[KernelEvent] = ()) -> None:
    """Render the page and write it to ``out``; says where on stderr. ``calls`` and
    ``events``: the programs' calls and the kernel's events, tied to the packets
    (:mod:`sockcap.analysis.story`) where they were recorded (the step mode's states and
    FIN sentences use them)."""
    import os

    from sockcap.commands.outfile import write_text_file
    from sockcap.errors import InputError
    from sockcap.render.report import report_html

    try:
        page = report_html(annotated, convs, clock, os.path.basename(title),
                           quiz_seed=quiz_seed, quiz_stream=quiz_stream, calls=calls,
                           events=events)
    except ValueError as e:
        raise InputError(str(e)) from None
    write_text_file(out, page, force=force, note=output.note)
    output.note(_("sockcap: wrote {path} ({size} KiB)").format(path=out, size=len(page.encode()) >> 10))
