"""One capture file to its table partitions, in one pass of the pipeline.

The rows come from :class:`~sockcap.export.rows.TableRows` (the Spark data source makes
them with the same code); each goes to its table's sink as it is made, so memory is
bounded by the row group being filled and the conversations still live, not by the
file's size.

Parquet comes from the engine (:func:`_run_columns`; the compiled one reads the records
from the reader's buffer and fills the packets table's columns itself, its pure twin
makes the same buffers from the reference rows): the packets go to the sink a batch of
columns at a time (at least :data:`~sockcap.export.sinks.GROUP_ROWS` rows or
:data:`~sockcap.export.sinks.GROUP_BYTES` of payload, taken each time the reader is about
to read more), and the conversations likewise: the engine makes a conversation's row
(its ``stats --json`` entry, Zeek's letters and state, the uid and Community ID) into
its own columns when it forgets the conversation (``sockcap/_speedups_convcols.h``), and
they go to the sink a batch of GROUP_ROWS["conversations"] rows or more at a time.
NDJSON keeps the rows of :class:`~sockcap.export.rows.TableRows`, a dict each.

A file damaged part way keeps the rows read before the damage (as ``sockcap stats``
reports what it read) and its error is returned with the result; a file that cannot be
read at all writes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sockcap.errors import CaptureFileError, SockcapError
from sockcap.export.rows import TableRows
from sockcap.export.sinks import Sink, open_sink
from sockcap.pcapfile.reader import CaptureReader, open_capture
from sockcap.pcapfile.source import open_input


@dataclass(frozen=True)
class ExportJob:
    path: str  # the capture file ("-": standard input)
    capture: str  # its partition name (capture=NAME)
    out: str  # the export folder
    tables: tuple[str, ...]
    fmt: str  # parquet or ndjson


@dataclass(frozen=True)
class JobResult:
    capture: str
    path: str
    packets: int = 0  # packets read
    rows: dict[str, int] = field(default_factory=dict)  # table -> rows written
    sizes: dict[str, int] = field(default_factory=dict)  # table -> bytes written
    seconds: float = 0.0
    error: str = ""  # the one-line message of a failure, "" when none
    exit_code: int = 0


def partition(out: str, table: str, capture: str) -> Path:
    return Path(out) / table / f"capture={capture}"


def export_file(job: ExportJob, progress: Callable[[int], None] | None = None) -> JobResult:
    """Export one capture; ``progress(n)`` is told of every
    :data:`~sockcap.export.rows.PROGRESS_EVERY` packets read (and of the rest at the end)."""
    start = time.monotonic()
    with ExitStack() as stack:
        try:
            reader = open_capture(open_input(job.path, stack))
        except SockcapError as e:
            return JobResult(job.capture, job.path, error=str(e), exit_code=int(e.exit_code))
        sinks = {t: open_sink(partition(job.out, t, job.capture), t, job.fmt) for t in job.tables}
        try:
            run = _run_columns if job.fmt == "parquet" else _run
            failure = run(job, reader, sinks, progress)
        except BaseException:
            for sink in sinks.values():
                sink.discard()
            raise
    sizes = {t: sink.close() for t, sink in sinks.items()}
    return JobResult(job.capture, job.path, reader.packets, {t: s.rows for t, s in sinks.items()},
                     sizes, time.monotonic() - start,
                     str(failure) if failure else "", int(failure.exit_code) if failure else 0)


def _run(job: ExportJob, reader: CaptureReader, sinks: dict[str, Sink],
         progress: Callable[[int], None] | None) -> CaptureFileError | None:
    rows = TableRows(job.capture, job.tables, progress=progress)
    failure = None
    try:
        for table, row, size in rows.run(reader):
            sinks[table].add(row, size)
    except CaptureFileError as e:
        failure = e
        for table, row, size in rows.live():
            sinks[table].add(row, size)
    return failure


def _run_columns(job: ExportJob, reader: CaptureReader, sinks: dict[str, Sink],
                 progress: Callable[[int], None] | None,
                 engine_class: Any = None) -> CaptureFileError | None:
    """The export on the engine (see the module's doc): its columns a batch at a time
    (``engine_class``: :func:`sockcap.speedups.engine_class`'s unless given)."""
    from sockcap.analysis.zeek import ConnState
    from sockcap.export.rows import PROGRESS_EVERY
    from sockcap.export.sinks import GROUP_BYTES, GROUP_ROWS
    from sockcap.pipeline.columns import column_words
    from sockcap.pipeline.contract import engine_words
    from sockcap.pipeline.engine import _sink, feed_decoded
    from sockcap.speedups import engine_class as default_engine_class

    packets, conversations = sinks.get("packets"), sinks.get("conversations")
    engine = (engine_class or default_engine_class())(analyze=True, keep=False, port=0, limit=0, hex=False,
                            **engine_words())
    group_rows, conv_rows = GROUP_ROWS["packets"], GROUP_ROWS["conversations"]
    # no on_forget: the conversations, when asked for, become the engine's own rows
    engine.columns(*column_words(), None, group_rows, GROUP_BYTES)
    if conversations is not None:
        engine.conversation_columns(job.capture, tuple(s.value for s in ConnState), conv_rows)
    told = 0  # packets told to progress

    def flush(last: bool = False) -> None:
        """Take a batch when full (the reader is about to read more, or to hand a frame
        the engine stopped before), and tell the progress."""
        nonlocal told
        rows, payload, read = engine.held()
        if rows and (last or rows >= group_rows or payload >= GROUP_BYTES):
            n, columns = engine.batch()
            if packets is not None:
                packets.add_batch(n, columns)  # type: ignore[attr-defined]
        if conversations is not None:
            held = engine.conversations_held()
            if held and (last or held >= conv_rows):
                conversations.add_batch(*engine.conversation_batch())  # type: ignore[attr-defined]
        if progress is not None:
            while read - told >= PROGRESS_EVERY:
                progress(PROGRESS_EVERY)
                told += PROGRESS_EVERY
            if last and read > told:
                progress(read - told)
                told = read

    failure = None
    reader.sink = _sink(engine, flush)
    frame_fn = engine.frame
    try:
        for frame in reader:
            flush()
            if not frame_fn(frame):
                feed_decoded(engine, frame, True)
    except CaptureFileError as e:
        failure = e
    finally:
        reader.sink = None
    engine.finish()
    flush(last=True)
    return failure
