"""``sockcap stats FILE``: conversations, protocol totals and the file's own facts.

One pass over the file; memory grows with the number of conversations, not packets.
Damage that stops the reader (a record cut short) is reported after the statistics of
everything read before it, with the reader's exit code.
"""

from __future__ import annotations

import click

from sockcap.commands.options import color_options
from sockcap.i18n import _

READING_STOPPED = "damage that stopped reading"  # a kind in the report's damaged records


@click.command("stats", help=_('Conversations (packets, bytes, iRTT, notes, how each ended) and protocol totals.'))
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--json", "json_", is_flag=True, help=_("One JSON object instead of tables."))
@color_options
def stats(file: str, json_: bool, no_color: bool, color: str) -> None:
    stats_command(file, json_=json_, no_color=no_color, color=color)


def stats_command(path: str, *, json_: bool, no_color: bool, color: str = "auto") -> None:
    import gc
    import json
    from contextlib import ExitStack

    from sockcap.analysis.stats import CaptureFacts, StatsCollector, linktype_names
    from sockcap.commands.progress import Progress, wants_progress
    from sockcap.errors import CaptureFileError
    from sockcap.output import Output, color_choice
    from sockcap.pcapfile.reader import open_capture
    from sockcap.pcapfile.source import open_input
    from sockcap.pipeline import Pipeline
    from sockcap.pipeline.engine import stats_run
    from sockcap.render.stats import stats_json, stats_lines
    from sockcap.speedups import engine_class, rows_in_memory

    output = Output(color=color_choice(color, no_color))
    pipeline = Pipeline()
    collector = StatsCollector()
    failure: CaptureFileError | None = None
    gc.disable()  # one pass creates no reference cycles: the collector would only cost
    run = stats_run(engine_class(), pipeline, rows_in_memory())
    with ExitStack() as stack:
        stream = open_input(path, stack)
        reader = open_capture(stream)
        progress = Progress(stream, output.err, wants_progress(output.err, json_),
                            lambda: reader.packets)
        stack.callback(progress.stop)
        try:
            # the conversations count their own packets, the collector only the others
            run.run(progress.frames(reader), _no_text, collector.count, reader=reader,
                    on_read=progress.tick)
        except CaptureFileError as e:
            failure = e
        collector.see(reader.packets, pipeline.first_ts, pipeline.last_ts)
    skipped = dict(reader.skipped)
    if failure is not None:
        skipped[READING_STOPPED] = 1
    facts = CaptureFacts(reader.format, linktype_names(reader.linktypes),
                         tuple(reader.warnings) + ((str(failure),) if failure else ()),
                         skipped)
    report = collector.report_rows(run.conversation_rows(), facts, pipeline.tracker.note_counts)
    name = "stdin" if path == "-" else path
    if json_:
        output.line(json.dumps(stats_json(report, name), ensure_ascii=False))
    else:
        output.lines(stats_lines(report, name))
    output.flush()
    if failure is not None:
        raise failure


def _no_text(chunk: bytes) -> None:
    """The stats loop renders no text; nothing to write."""
