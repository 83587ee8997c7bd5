"""One capture's table rows from one pass of the pipeline: what ``sockcap export`` writes
and what the Spark data source (:mod:`sockcap.spark`) returns, made by the same code.

The pipeline runs with ``keep=False`` (as ``sockcap show``): the packets table gets a
row a packet, as the packet comes; a conversation's row is made when the tracker forgets
it (``on_forget``: no packet can reach it any more) or at the end of the input. So
memory is bounded by the conversations still live, not by the file's size, and rows of
the conversations table come in the order the conversations ended, not by stream number.

A :class:`Window` keeps only the rows of some packets: those numbered ``first`` to
``stop - 1``, and the conversations forgotten while one of them was read. The packets
before ``first`` still go through the pipeline (numbers, streams, relative sequence
numbers, expert notes and Zeek's history depend on every packet before), but no row is
made for them. A byte range of a pcap file read by one Spark task is such a window; the
windows of a file's ranges cut it into disjoint row sets whose union is the whole
file's rows. ``last`` says whether the window holds the end of the input, where the
conversations still live are written.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sockcap.analysis.conversation import Annotated, Conversation
from sockcap.analysis.zeek import ZeekConn
from sockcap.decode.records import RawFrame
from sockcap.pipeline import Pipeline
from sockcap.render.tables import conversation_row, packet_row

PROGRESS_EVERY = 16384  # packets between progress reports

Row = tuple[str, dict[str, Any], int]  # table, row, payload bytes it holds


@dataclass(frozen=True)
class Window:
    """Rows of packets ``first`` .. ``stop - 1`` (1-based; ``stop`` 0: to the end)."""

    first: int = 1
    stop: int = 0
    last: bool = True  # the end of the input is in the window (never with ``stop``)


WHOLE = Window()


class TableRows:
    """The rows of ``tables`` (packets, conversations) of one input, within ``window``.

    :meth:`run` yields them as the frames are read; ``progress(n)`` hears of every
    :data:`PROGRESS_EVERY` packets read and of the rest at the end. An error raised by
    the frames (a damaged file) comes out of :meth:`run` after every row before it; the
    caller may then take :meth:`live` (the conversations still live), as the export does.
    """

    def __init__(self, capture: str, tables: tuple[str, ...], window: Window = WHOLE,
                 progress: Callable[[int], None] | None = None) -> None:
        self.capture = capture
        self.window = window
        self.progress = progress
        self.packets = "packets" in tables
        self.conversations = "conversations" in tables
        self.pipeline = Pipeline(keep=False)
        self.zeek: dict[Conversation, ZeekConn] = {}
        self.pending: list[Row] = []  # conversation rows made while a packet was read
        if self.conversations:
            self.pipeline.tracker.on_forget = self._forget

    def _forget(self, c: Conversation, ended: bool = False) -> None:
        """A conversation's row, kept when it was forgotten in the window (``ended``: at
        the end of the input, which the caller's window holds)."""
        z = self.zeek.pop(c, None)
        if z is not None and (ended or self.pipeline.tracker.count >= self.window.first):
            self.pending.append(("conversations", conversation_row(c, z, self.capture), 0))

    def run(self, frames: Iterable[RawFrame]) -> Iterator[Row]:
        """The rows, as the frames are read (and at the end, the conversations still live
        when the window holds the end)."""
        window, pipeline, pending, zeek = self.window, self.pipeline, self.pending, self.zeek
        track, packets, first = self.conversations, self.packets, window.first
        if window.stop:
            frames = itertools.islice(frames, window.stop - 1)

        def see(a: Annotated) -> Row | None:
            conv = a.conv
            if track and conv is not None:
                z = zeek.get(conv)
                if z is None:
                    z = zeek[conv] = ZeekConn()
                z.see(a)
            if packets and a.no >= first:
                row = packet_row(a, pipeline.first_ts)
                return ("packets", row, len(row["payload"]))
            return None

        n = 0
        progress = self.progress
        try:
            for row in pipeline.map(frames, see):
                if pending:
                    yield from pending
                    pending.clear()
                if row is not None:
                    yield row
                n += 1
                if progress is not None and n % PROGRESS_EVERY == 0:
                    progress(PROGRESS_EVERY)
        finally:
            if progress is not None:
                progress(n % PROGRESS_EVERY)
        yield from pending
        pending.clear()
        if window.last:
            yield from self.live()

    def live(self) -> Iterator[Row]:
        """The rows of the conversations still live, by protocol and stream."""
        for c in sorted(self.zeek, key=lambda c: (c.proto, c.stream)):
            self._forget(c, ended=True)
        yield from self.pending
        self.pending.clear()
