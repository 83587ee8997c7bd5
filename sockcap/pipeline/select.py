"""``follow --stream N``'s numbering pass on the engine (pure: no I/O), apart from
:mod:`sockcap.pipeline.engine`, whose loop it drives."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import chain
from typing import Any

from sockcap.analysis.conversation import Annotated
from sockcap.decode import decode_frame
from sockcap.pipeline import Pipeline
from sockcap.pipeline.engine import EngineRun, SinkReader, _sink


class EngineSelect:
    """:meth:`Pipeline.select` with the numbering before the stream done by the engine.

    ``follow --stream N`` needs every packet before the stream's first located, only to
    know the stream numbers; the engine does that (``analyze=False``, no text) and stops
    right before the packet that starts stream N (the pure twin at once: the pipeline
    numbers them itself). The tracker then takes over the numbering
    (:meth:`ConversationTracker.resume`) and :meth:`Pipeline.select` goes on from that
    packet, with the reader's prefilter.
    """

    def __init__(self, engine_class: Any, pipeline: Pipeline, proto: int, stream: int) -> None:
        self.pipeline = pipeline
        self.proto = proto
        self.stream = stream
        # keep=False: the engine numbers and forgets as for show and stats (the same stream
        # numbers everywhere) and makes no stats rows
        self.run = EngineRun(engine_class, pipeline, hex_=False, render=False,
                             target=(proto, stream), keep=False)
        self.streams = (0, 0)  # TCP and UDP stream numbers used, once read

    def select(self, reader: SinkReader) -> Iterator[Annotated]:
        engine = self.run.engine
        reader.sink = _sink(engine, _nothing)
        frames = iter(reader)
        handed = False
        try:
            for frame in frames:
                if engine.frame(frame):
                    continue
                if not engine.handover:
                    p = decode_frame(frame)
                    engine.packet(p, p.notes, "", "")
                    if not engine.handover:
                        continue
                handed = True
                break
        finally:
            reader.sink = None
            self._sync()
        if handed:
            yield from self.pipeline.select(chain((frame,), frames), self.proto, self.stream,
                                            skipper=reader)  # type: ignore[arg-type]

    def _sync(self) -> None:
        state = self.run.engine.state()
        self.streams = state["streams"]
        self.pipeline.first_ts = state["input_first_ts"]
        self.pipeline.last_ts = state["last_ts"]
        self.pipeline.tracker.resume(state["count"], state["streams"])


def _nothing() -> None:
    """No text to hand out (the numbering pass of ``follow``)."""
