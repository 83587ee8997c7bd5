"""One capture file to its table partitions, in one pass of the pipeline.

The pipeline runs with ``keep=False`` (as ``sockcap show``): the packets table gets a
row a packet, as the packet comes; a conversation's row is written when the tracker
forgets it (``on_forget``: no packet can reach it any more) or at the end of the file.
So memory is bounded by the row group being filled and the conversations still live,
not by the file's size. Rows of the conversations table are therefore in the order the
conversations ended, not by stream number.

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

from sockcap.analysis.conversation import Annotated, Conversation
from sockcap.analysis.zeek import ZeekConn
from sockcap.errors import CaptureFileError, SockcapError
from sockcap.export.sinks import Sink, open_sink
from sockcap.pcapfile.reader import CaptureReader, open_capture
from sockcap.pcapfile.source import open_input
from sockcap.pipeline import Pipeline
from sockcap.render.tables import conversation_row, packet_row

PROGRESS_EVERY = 16384  # packets between progress reports


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
    """Export one capture; ``progress(n)`` is told of every :data:`PROGRESS_EVERY`
    packets read (and of the rest at the end)."""
    start = time.monotonic()
    with ExitStack() as stack:
        try:
            reader = open_capture(open_input(job.path, stack))
        except SockcapError as e:
            return JobResult(job.capture, job.path, error=str(e), exit_code=int(e.exit_code))
        sinks = {t: open_sink(partition(job.out, t, job.capture), t, job.fmt) for t in job.tables}
        try:
            failure = _run(job, reader, sinks, progress)
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
    pipeline = Pipeline(keep=False)
    packets, convs = sinks.get("packets"), sinks.get("conversations")
    zeek: dict[Conversation, ZeekConn] = {}

    def forget(c: Conversation) -> None:
        z = zeek.pop(c, None)
        if z is not None and convs is not None:
            convs.add(conversation_row(c, z, job.capture))

    def see(a: Annotated) -> None:
        conv = a.conv
        if convs is not None and conv is not None:
            z = zeek.get(conv)
            if z is None:
                z = zeek[conv] = ZeekConn()
            z.see(a)
        if packets is not None:
            row = packet_row(a, pipeline.first_ts)
            packets.add(row, len(row["payload"]))

    pipeline.tracker.on_forget = forget
    failure = None
    n = 0
    try:
        for _ in pipeline.map(reader, see):
            n += 1
            if progress is not None and n % PROGRESS_EVERY == 0:
                progress(PROGRESS_EVERY)
    except CaptureFileError as e:
        failure = e
    if progress is not None:
        progress(n % PROGRESS_EVERY)
    for c in sorted(zeek, key=lambda c: (c.proto, c.stream)):
        forget(c)
    return failure
