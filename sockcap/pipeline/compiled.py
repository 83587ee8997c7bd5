"""The compiled twin of :meth:`Pipeline.map` with the Wireshark-style timeline text.

The pure loop (``pipeline.map(reader, view.text)``) is the reference; this is the same
loop with the decoder's fast paths, the conversation tracker, the expert analysis and the
line (and ``--hex`` rows) in C (``sockcap._speedups.Engine``, see the top of
``sockcap/_speedups.c``). The seam:

- the capture reader hands its buffer to the engine (:attr:`FrameSink`), which consumes
  every plain record whose frame it decodes, and renders it;
- the first record it does not take is read by the reader's own Python code and comes
  out as a :class:`~sockcap.decode.records.RawFrame`: the engine decodes it if it can
  (:meth:`Engine.frame`), else :func:`sockcap.decode.decode_frame` does and the Packet is
  filed in the engine's conversation table (:meth:`Engine.packet`), with the words the
  timeline would use for it; so one tracker sees every packet, and the text never
  depends on which decoder ran.

Pure: it takes an engine class (chosen by the edge, :func:`sockcap.speedups.engine_class`)
and returns bytes of UTF-8 text through a callback; it does no I/O itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import chain
from typing import Any, Protocol, overload

from sockcap.analysis.conversation import ICMP_PROTOS, Annotated, icmp_error_note
from sockcap.analysis.stats import ConversationStats
from sockcap.decode import decode_frame
from sockcap.decode.icmp import decode_icmp
from sockcap.decode.records import IPPROTO_TCP, IPPROTO_UDP, Packet, RawFrame
from sockcap.i18n import _
from sockcap.pipeline import Pipeline
from sockcap.pipeline.contract import COUNTED_KINDS, engine_words
from sockcap.render.timeline import icmp_info, packet_where, proto_name

CHUNK = 1 << 20  # bytes of text handed out at a time


class FrameSink(Protocol):
    """What a capture reader hands its buffer to (``CaptureReader.sink``)."""

    @property
    def done(self) -> bool:
        """Stop reading (the ``-c`` limit)."""

    @property
    def handover(self) -> bool:
        """Read on without me: the frames from here go to the Python pipeline."""

    def pcap(self, buf: bytes, pos: int, linktype: int, frac_ns: int, limit: int,
             big_endian: bool) -> tuple[int, int]: ...

    def pcapng(self, buf: bytes, pos: int, interfaces: list[Any],
               big_endian: bool) -> tuple[int, int]: ...

    def flush(self) -> None:
        """The reader is about to read (and may wait, on a pipe): hand out the text."""


class _Sink:
    """The engine as a :class:`FrameSink`, with the writing of its text on ``flush``."""

    __slots__ = ("engine", "pcap", "pcapng", "flush")

    def __init__(self, engine: Any, flush: Callable[[], None]) -> None:
        self.engine = engine
        self.pcap = engine.pcap
        self.pcapng = engine.pcapng
        self.flush = flush

    @property
    def done(self) -> bool:
        return bool(self.engine.done)

    @property
    def handover(self) -> bool:
        return bool(self.engine.handover)


class SinkReader(Protocol):
    """A frame source that can take a sink (:class:`~sockcap.pcapfile.reader.CaptureReader`)."""

    sink: FrameSink | None

    def __iter__(self) -> Any: ...


class CompiledTimeline:
    """``sockcap show``'s plain Wireshark-style text (with or without ``--hex``), compiled.

    ``engine_class`` is ``sockcap._speedups.Engine``; the pipeline gives the options
    (``keep``, ``port``, ``limit``) and receives the counters afterwards (``first_ts``,
    ``last_ts``, ``shown``, the tracker's ``note_counts``), as the pure loop leaves them.
    The engine's conversations never become Python objects, so a tracker with an
    ``on_forget`` callback (a view that writes a row per conversation as it is
    forgotten) cannot be stood in for: that is a ValueError.
    """

    def __init__(self, engine_class: Any, pipeline: Pipeline, *, hex_: bool,
                 render: bool = True, target: tuple[int, int] = (-1, -1)) -> None:
        self.pipeline = pipeline
        tracker = pipeline.tracker
        if tracker.on_forget is not None:
            raise ValueError(_("the compiled loop hands no conversation to on_forget"))
        self.engine = engine_class(
            analyze=tracker.analyze, keep=tracker.keep, port=pipeline.port,
            limit=pipeline.limit, hex=hex_, render=render, target_proto=target[0],
            target_stream=target[1], **engine_words())

    def run(self, reader: SinkReader, write: Callable[[bytes], None],
            others: Callable[[Packet], None] | None = None) -> None:
        """Read every frame, writing the text as it is made; whatever stops the reading
        (damage in the file, the ``-c`` limit), the text of every packet before it is
        written first. ``others`` gets the packets outside any TCP/UDP conversation
        (as :meth:`Pipeline.run` gives them)."""
        engine = self.engine
        frame_fn, packet_fn, take = engine.frame, engine.packet, engine.take
        analyze = self.pipeline.tracker.analyze

        def flush() -> None:
            if engine.pending:
                write(take())

        reader.sink = _Sink(engine, flush)
        try:
            frames: Iterable[RawFrame] = reader
            for frame in frames:
                if not frame_fn(frame):
                    p = decode_frame(frame)
                    if p.sport >= 0 and p.proto in (IPPROTO_TCP, IPPROTO_UDP):
                        packet_fn(p, p.notes, None, None)
                    else:
                        if p.proto in ICMP_PROTOS:
                            packet_fn(p, *icmp_words(p, analyze))
                        else:
                            packet_fn(p, p.notes, packet_where(p), proto_name(p))
                        if others is not None:
                            others(p)
                if engine.done:
                    break
                if engine.pending >= CHUNK:
                    write(take())
        finally:
            reader.sink = None
            self._sync()
            rest = take()
            if rest:
                write(rest)

    def _sync(self) -> None:
        """Leave the pipeline's counters as the pure loop would."""
        state = self.engine.state()
        pipeline = self.pipeline
        pipeline.first_ts = state["first_ts"]
        pipeline.last_ts = state["last_ts"]
        pipeline.shown = state["shown"]
        tracker = pipeline.tracker
        tracker.skip(state["count"] - tracker.count)
        tracker.note_counts = {COUNTED_KINDS[kind]: n for kind, n in state["note_counts"]}

    def conversation_rows(self) -> Rows:
        """``stats``' rows of every conversation (a pipeline with ``keep=True``), TCP then
        UDP, each by stream: what :func:`sockcap.analysis.stats.conversation_stats` gives
        for the pure tracker's conversations, made one at a time when read."""
        return Rows(self.engine)


class Rows(Sequence[ConversationStats]):
    """The engine's conversations as stats rows, made when read (none is kept)."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def __len__(self) -> int:
        return int(self.engine.conversation_count())

    def __iter__(self) -> Iterator[ConversationStats]:
        conversation = self.engine.conversation
        for i in range(len(self)):
            yield conversation(i)

    @overload
    def __getitem__(self, i: int) -> ConversationStats: ...

    @overload
    def __getitem__(self, i: slice) -> Sequence[ConversationStats]: ...

    def __getitem__(self, i: int | slice) -> ConversationStats | Sequence[ConversationStats]:
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        row: ConversationStats = self.engine.conversation(i)
        return row


def icmp_words(p: Packet, analyze: bool) -> tuple[Any, ...]:
    """The engine's arguments for an ICMP/ICMPv6 packet (decoded by Python): its notes
    (with an unreachable's, when analysing, as the tracker adds it), where, the protocol,
    the Info text the timeline prints, and the quoted datagram's conversation key with
    the note's kind (the engine counts it there, or in the totals only)."""
    msg = decode_icmp(p)
    info = None if msg is None else icmp_info(msg)
    notes, quoted = p.notes, None
    found = icmp_error_note(p) if analyze and p.sport < 0 else None
    if found is not None:
        note, key = found
        notes = (*notes, note)
        quoted = (COUNTED_KINDS.index(note.kind), *key)
    return notes, packet_where(p), proto_name(p), info, quoted


def compiled_stats(engine_class: Any, pipeline: Pipeline) -> CompiledTimeline:
    """The compiled loop for ``sockcap stats``: every packet filed, no text."""
    return CompiledTimeline(engine_class, pipeline, hex_=False, render=False)


class CompiledSelect:
    """:meth:`Pipeline.select` with the numbering before the stream done in C.

    ``follow --stream N`` needs every packet before the stream's first located, only to
    know the stream numbers; the engine does that (``analyze=False``, no text) and stops
    right before the packet that starts stream N. The tracker then takes over the
    numbering (:meth:`ConversationTracker.resume`) and :meth:`Pipeline.select` goes on
    from that packet, with the reader's prefilter, exactly as on the pure path.
    """

    def __init__(self, engine_class: Any, pipeline: Pipeline, proto: int, stream: int) -> None:
        self.pipeline = pipeline
        self.proto = proto
        self.stream = stream
        self.timeline = CompiledTimeline(engine_class, pipeline, hex_=False, render=False,
                                         target=(proto, stream))
        self.streams = (0, 0)  # TCP and UDP stream numbers used, once read

    def select(self, reader: SinkReader) -> Iterator[Annotated]:
        engine = self.timeline.engine
        reader.sink = _Sink(engine, _nothing)
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
        state = self.timeline.engine.state()
        self.streams = state["streams"]
        self.pipeline.first_ts = state["input_first_ts"]
        self.pipeline.last_ts = state["last_ts"]
        self.pipeline.tracker.resume(state["count"], state["streams"])


def _nothing() -> None:
    """No text to hand out (the numbering pass of ``follow``)."""
