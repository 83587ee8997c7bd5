"""The engine: frames in, conversations and the view's text out, with two twins.

``sockcap._speedups.Engine`` (C, see the top of ``sockcap/_speedups.c``) and
:class:`PureEngine` (Python, the reference) have the same constructor, methods and
behaviour, as multidict's ``_multidict`` and ``_multidict_py``:

- ``Engine(analyze=, keep=, port=, limit=, hex=, render=, target_proto=, target_stream=,
  **contract.engine_words())``;
- ``pcap(buf, pos, ...)`` / ``pcapng(...)``: take plain records straight from a capture
  reader's buffer, ``(new pos, records taken)``; ``reads_records`` says whether it does
  (the pure twin takes none: the reader's own loop yields them);
- ``frame(raw) -> bool``: one frame, if the engine decodes it itself; else the caller
  decodes it (:func:`sockcap.decode.decode_frame`) and hands the Packet to
  ``packet(p, notes, where, proto_name[, info, quoted])`` — both twins file it in the
  same conversation table, so the text never depends on which decoder ran;
- ``made(raw)``: the ``Packet`` the engine hands a view for a frame it decodes itself
  (equal to :func:`~sockcap.decode.decode_frame`'s, tests/test_packet_made.py), else
  None (the pure twin decodes none);
- ``take() -> bytes`` (the text made since the last call, UTF-8), ``write_to(write)``
  (the same text handed to ``write``, the C twin's as a memoryview of its own buffer,
  released when ``write`` returns: no copy of every byte shown), ``pending``, ``done``
  (the ``-c`` limit), ``handover`` (``follow --stream N``: the stream starts here),
  ``state()`` (counters), ``conversation(i)`` / ``conversation_count()`` (stats rows, a
  :class:`~sockcap.analysis.stats.ConversationStats` each, with ``keep=True``).

Both twins forget conversations by the tracker's two queues whatever ``keep`` says
(:class:`~sockcap.analysis.conversation.ConversationTracker`, ``keep=False``), so
``show``, ``stats`` and ``follow`` number streams alike; ``keep=True`` (``stats``) only
adds a packed stats row of each conversation, made when it is forgotten or when the rows
are first read (:class:`~sockcap.analysis.stats.RowStore`, the C ``Row``): <= 200 bytes a
finished conversation, where keeping each conversation cost ~1.1 kB compiled, ~2.5 kB pure.
The C twin holds at most ``rows_in_memory`` rows a table in memory (65,536 unless given)
and writes older ones to an unlinked temporary file (``sockcap/_speedups_spill.h``), so
its memory does not grow with the number of conversations; the pure twin's rows stay in
memory.

:func:`sockcap.speedups.engine_class` chooses the class once; :class:`EngineRun` is the one
loop that drives it (``show``, ``stats``) and :class:`EngineSelect` the one that hands a
followed stream to :meth:`Pipeline.select` (``follow --stream N``). Neither looks at which
twin it got.

The hand-over (the seam a view moves into C through, issue 23): a view the engine does not
write itself — JSON, tcpdump's notation, ``--filters``, ``--explain``'s sentences, colour —
is given as ``view=`` (a function of an :class:`~sockcap.analysis.conversation.Annotated`
packet returning its text, or None when it wrote the packet itself) with the ``clock``
whose ``first_ts`` it counts relative times from (set before the first packet is handed).
Both twins then hand it every packet shown, filed and annotated by themselves, as the
same records: the ``Packet`` the reference decoder makes — on the C twin, for a frame it
decodes itself, made in C from its own decode (``sockcap/_speedups_packet.h``: with a
view it still reads records from the reader's buffer, ``reads_records`` stays True, and
the record equals :func:`~sockcap.decode.decode_frame`'s field for field); every other
frame is the Python decoder's, reaching ``packet()`` from :func:`feed_decoded` — its notes (the decoder's, then the analysis' from
:func:`sockcap.analysis.expert.notes_of`), numbers, phase code, and its conversation —
on the pure twin the tracker's :class:`~sockcap.analysis.conversation.Conversation`, on
the C twin a live read-only view of the C conversation with every attribute of one
(``sockcap._speedups.Conversation``, its ``dirs`` Direction views; one object per
conversation while anything holds it, as views compare conversations by identity).
tests/test_engine.py hands both twins' records to one recording view and requires them
equal. The command's loop is the same whichever view runs; what a view costs per packet
on each twin is in bench/RESULTS.md. A view that moves into C stops being handed over,
and nothing else changes: each twin lists the notations it writes itself in its class
attribute ``styles`` (:class:`~sockcap.pipeline.contract.Style`) and ``colors``, and a
command asks for one with ``style=``/``color=`` only when the class lists it (otherwise it
gives the Python view; the pure twin's JSON and tcpdump notation are those views, the
reference). ``color=`` is the colour table (:func:`~sockcap.pipeline.contract.color_table`:
rich's SGR codes for the view's styles) for the C twin, for a notation its ``colors``
lists; the pure twin's colour is the Python view written through rich, the reference.
The C twin writes tcpdump's notation itself (``Style.TCPDUMP``): a frame
Python decodes for it comes with its ICMP text in tcpdump's words
(:func:`feed_decoded`'s ``icmp_text``, :func:`sockcap.render.timeline.tcpdump_icmp_info`),
as the Wireshark-style line's comes with Wireshark's.

Pure: no I/O; text leaves through the ``write`` callback a command gives.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import chain

from sockcap._typing import Protocol, overload
from sockcap.analysis.conversation import (
    ICMP_PROTOS,
    Annotated,
    ConversationTracker,
    icmp_error_note,
)
from sockcap.analysis.stats import ConversationStats, RowStore
from sockcap.decode import decode_frame
from sockcap.decode.icmp import decode_icmp
from sockcap.decode.records import IPPROTO_TCP, IPPROTO_UDP, Packet, RawFrame
from sockcap.i18n import _
from sockcap.pipeline import Pipeline
from sockcap.pipeline.contract import COUNTED_KINDS, Style, engine_words
from sockcap.pipeline.pure_columns import PureColumns
from sockcap.render.timeline import icmp_info, packet_where, proto_name, tcpdump_icmp_info

TYPE_CHECKING = False  # the type checker takes it as true
if TYPE_CHECKING:
    from typing import Any

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


class SinkReader(Protocol):
    """A frame source that can take a sink (:class:`~sockcap.pcapfile.reader.CaptureReader`)."""

    sink: FrameSink | None

    def __iter__(self) -> Any: ...


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


def _sink(engine: Any, flush: Callable[[], None]) -> _Sink | None:
    """The reader's sink: the engine, when it reads records from the buffer itself."""
    return _Sink(engine, flush) if engine.reads_records else None


class _Clock:
    first_ts = -1


class PureEngine(PureColumns):
    """The pure-Python twin of ``sockcap._speedups.Engine`` (see the module's doc).

    Built on the reference modules (:class:`ConversationTracker`,
    :class:`~sockcap.render.packets.PacketView`); the words it is given (the contract's
    tables, for the C twin's benefit) are the ones those modules look up themselves, so
    it ignores them (the view's records it makes itself, as the reference).
    """

    reads_records = False
    styles = frozenset({Style.WIRESHARK})  # the rest are the Python views, the reference
    colors: frozenset[Style] = frozenset()  # its colour is the rich view, the reference
    explains = False  # --explain's sentences are the Python view's (PacketExplainer), the reference

    def __init__(self, *, analyze: bool, keep: bool, port: int, limit: int, hex: bool,
                 render: bool = True, target_proto: int = -1, target_stream: int = -1,
                 view: Callable[[Annotated], str | None] | None = None,
                 clock: Any = None, on_forget: Callable[[Any], None] | None = None,
                 style: int = Style.WIRESHARK, color: bool | Sequence[str] = False,
                 explain: Any = None, rows_in_memory: int = 0, tcpdump_window: int = 0,
                 **words: Any) -> None:
        from sockcap.render.packets import PacketView

        if explain is not None:
            raise ValueError(_("explain: not written by this engine (see explains)"))
        # rows_in_memory: the C twin's budget of rows in memory (_speedups_spill.h); this
        # twin's rows are RowStore's bytes, the reference, kept in memory. tcpdump_window:
        # the C twin's tcpdump bases; this twin's tcpdump text is the view's (Timeline's
        # tcpdump_window, the same rule)

        if style not in self.styles or (color and style not in self.colors):
            raise ValueError(_("style {style}{colour}: not written by this engine (see "
                               "styles)").format(style=style,
                                                 colour=_(" with colour") if color else ""))
        # keep=True (stats): the conversations are forgotten as show's are, each leaving
        # its packed stats row (RowStore); a table of them all cost ~2.5 kB each
        self.tracker = ConversationTracker(analyze=analyze, keep=False)
        self.rows: RowStore | None = None
        self.tracker.on_forget = on_forget
        if keep:
            rows = self.rows = RowStore()
            if on_forget is None:
                self.tracker.on_forget = rows.add
            else:
                def forget(conv: Any) -> None:
                    rows.add(conv)
                    on_forget(conv)

                self.tracker.on_forget = forget
        self._rows_done = False
        self.port, self.limit, self.render = port, limit, render
        self.clock = clock if clock is not None else _Clock()
        self.view = view if view is not None else PacketView(self.clock, hex_=hex).text
        self.shown = 0
        self.first_ts = self.last_ts = -1
        self.done = False
        self.handover = target_stream >= 0  # Pipeline.select numbers the packets itself
        self.pending = 0
        self._parts: list[bytes] = []
        self._held: list[tuple[Any, ...]] | None = None  # the export's rows (columns())

    def pcap(self, buf: bytes, pos: int, *_args: Any) -> tuple[int, int]:
        return pos, 0

    def pcapng(self, buf: bytes, pos: int, *_args: Any) -> tuple[int, int]:
        return pos, 0

    def frame(self, raw: RawFrame) -> bool:
        """Decoded by the caller (``packet``): the reference decoder is the caller's."""
        return False

    def made(self, raw: RawFrame) -> Packet | None:
        """The Packet this twin makes of a frame it decodes itself: None, it decodes none
        (the C twin's, for a frame it decodes, equals :func:`decode_frame`'s)."""
        return None

    def packet(self, p: Packet, notes: Any = (), where: Any = None, proto: Any = None,
               info: Any = None, quoted: Any = None) -> None:
        """File ``p`` (and render it): :meth:`Pipeline.map`'s body, or :meth:`Pipeline.run`'s
        without a view. The words beside it are the C twin's; this one finds its own."""
        if self.handover:
            return
        tracker = self.tracker
        ts = p.ts_ns
        if ts > self.last_ts:
            self.last_ts = ts
            if self.first_ts < 0:
                self.first_ts = self.clock.first_ts = ts
        entry = tracker.locate(p)
        if not self.render:
            if entry is not None or p.proto in ICMP_PROTOS:
                tracker.annotate(p, entry)  # an ICMP error is noted in the conversation
            return
        a = tracker.annotate(p, entry)
        if self._held is not None:
            self._column_row(a)
            return
        if self.port and p.sport != self.port and p.dport != self.port:
            return
        if self.limit and self.shown >= self.limit:
            self.done = True
            return
        self.shown += 1
        text = self.view(a)
        if text is not None:
            chunk = (text + "\n").encode("utf-8")
            self._parts.append(chunk)
            self.pending += len(chunk)

    def take(self) -> bytes:
        chunk = b"".join(self._parts)
        self._parts.clear()
        self.pending = 0
        return chunk

    def write_to(self, write: Callable[[bytes], object]) -> int:
        chunk = self.take()
        if chunk:
            write(chunk)
        return len(chunk)

    def state(self) -> dict[str, Any]:
        streams = self.tracker._streams
        return {"count": self.tracker.count, "shown": self.shown,
                "first_ts": self.clock.first_ts, "last_ts": self.last_ts, "done": self.done,
                "note_counts": list(self.tracker.note_counts.items()),
                "streams": (streams[IPPROTO_TCP], streams[IPPROTO_UDP]),
                "input_first_ts": self.first_ts}

    def _finished_rows(self) -> RowStore | None:
        """The rows, with those of the conversations still held added once (the capture
        is done when the first row is read)."""
        rows = self.rows
        if rows is not None and not self._rows_done:
            rows.finish(chain(self.tracker._retiring, self.tracker._open))
            self._rows_done = True
        return rows

    def conversation_count(self) -> int:
        rows = self._finished_rows()
        return 0 if rows is None else len(rows)

    def conversation(self, i: int) -> ConversationStats:
        rows = self._finished_rows()
        if rows is None or not 0 <= i < len(rows):
            raise IndexError(i)  # a programming error, not a user's: no words to translate
        return rows.row(i)


class EngineRun:
    """One loop over a capture reader for ``show`` and ``stats``, whichever twin runs.

    ``engine_class`` comes from :func:`sockcap.speedups.engine_class`; the pipeline gives
    the options (``keep``, ``port``, ``limit``) and receives the counters afterwards
    (``first_ts``, ``last_ts``, ``shown``, the tracker's ``note_counts``), as
    :meth:`Pipeline.map` leaves them. ``view`` and ``clock`` go to the engine when given
    (a view the engine hands each packet to: see the module's doc). The engine keeps its own conversations (the C twin's
    never become Python objects), so a pipeline whose tracker has an ``on_forget``
    callback cannot be stood in for: that is a ValueError, on both twins alike; give the
    callback as ``on_forget`` here instead, and each twin calls it with the conversation
    (the C twin: its view, for a conversation it handed a view) when its tracker forgets it.
    ``rows_in_memory`` (:func:`sockcap.speedups.rows_in_memory`) is the C twin's budget of
    rows kept to the end (stats', --explain's) held in memory, the rest on disk.
    ``tcpdump_window`` (:func:`sockcap.speedups.tcpdump_window`): the connections whose
    tcpdump bases the C twin keeps (0: :data:`sockcap.render.timeline.TCPDUMP_WINDOW`).
    """

    def __init__(self, engine_class: Any, pipeline: Pipeline, *, hex_: bool,
                 render: bool = True, target: tuple[int, int] = (-1, -1),
                 view: Callable[[Annotated], str | None] | None = None,
                 clock: Any = None, on_forget: Callable[[Any], None] | None = None,
                 keep: bool | None = None, style: int = Style.WIRESHARK,
                 color: bool | Sequence[str] = False,
                 explain: dict[str, Any] | None = None, rows_in_memory: int = 0,
                 tcpdump_window: int = 0) -> None:
        self.pipeline = pipeline
        tracker = pipeline.tracker
        keep = tracker.keep if keep is None else keep  # the engine's: stats rows or none
        if tracker.on_forget is not None:
            raise ValueError(_("the compiled loop hands no conversation to on_forget"))
        extra: dict[str, Any] = {} if view is None else {"view": view, "clock": clock}
        if style != Style.WIRESHARK or color:  # an engine's own notation (engine.styles)
            extra.update(style=int(style), color=color)
        if style == Style.TCPDUMP and tcpdump_window:  # its bases' window (0: the default)
            extra["tcpdump_window"] = tcpdump_window
        # the ICMP text handed with a packet decoded by Python, in the notation written
        self.icmp_text = tcpdump_icmp_info if style == Style.TCPDUMP and view is None else None
        if on_forget is not None:
            extra["on_forget"] = on_forget
        if explain is not None:  # --explain's sentences, by an engine that ``explains``
            extra["explain"] = explain
        if keep or explain is not None:  # rows kept to the end: the C twin's budget
            extra["rows_in_memory"] = rows_in_memory
        self.engine = engine_class(
            analyze=tracker.analyze, keep=keep, port=pipeline.port,
            limit=pipeline.limit, hex=hex_, render=render, target_proto=target[0],
            target_stream=target[1], **extra, **engine_words())

    def run(self, frames: Iterable[RawFrame], write: Callable[[bytes], None],
            others: Callable[[Packet], None] | None = None, *,
            reader: SinkReader | None = None,
            on_read: Callable[[], None] | None = None, lent: bool = False) -> None:
        """Read every frame, writing the text as it is made; whatever stops the reading
        (damage in the file, the ``-c`` limit), the text of every packet before it is
        written first. ``others`` gets the packets outside any TCP/UDP conversation
        (as :meth:`Pipeline.run` gives them). ``frames`` is the reader itself, or an
        iterator over it (the progress line's) with the ``reader`` beside it; ``on_read``
        is called each time the reader is about to read more of its input (when the
        engine reads records from the reader's buffer: the progress line's tick).

        ``lent=True``: ``write`` only reads what it is handed while it runs (a file's
        ``write``), so it may be handed a memoryview of the engine's own buffer, released
        when ``write`` returns (``write_to``): the text is not copied into a bytes object
        first. On `show` of the 1M file that copy and its fresh megabytes cost ~15 % of
        the CPU time (bench/RESULTS.md, issue 23). Without it ``write`` gets bytes it may
        keep."""
        engine = self.engine
        frame_fn, take, write_to = engine.frame, engine.take, engine.write_to
        if not lent:
            def write_to(write: Callable[[bytes], None]) -> int:
                chunk = take()
                if chunk:
                    write(chunk)
                return len(chunk)
        analyze = self.pipeline.tracker.analyze
        source: Any = reader if reader is not None else frames

        def flush() -> None:
            if engine.pending:
                write_to(write)
            if on_read is not None:
                on_read()

        source.sink = _sink(engine, flush)
        try:
            for frame in frames:
                if not frame_fn(frame):
                    feed_decoded(engine, frame, analyze, others, self.icmp_text)
                if engine.done:
                    break
                if engine.pending >= CHUNK:
                    write_to(write)
        finally:
            source.sink = None
            self._sync()
            write_to(write)

    def _sync(self) -> None:
        """Leave the pipeline's counters as :meth:`Pipeline.map` would."""
        state = self.engine.state()
        pipeline = self.pipeline
        pipeline.first_ts = state["first_ts"]
        pipeline.last_ts = state["last_ts"]
        pipeline.shown = state["shown"]
        tracker = pipeline.tracker
        tracker.skip(state["count"] - tracker.count)
        tracker.note_counts = dict(state["note_counts"])

    def conversation_rows(self) -> Rows:
        """``stats``' rows of every conversation (a pipeline with ``keep=True``), TCP then
        UDP, each by stream, made one at a time when read."""
        return Rows(self.engine)


class Rows(Sequence[ConversationStats]):
    """The engine's conversations as stats rows, made when read (the C twin keeps none)."""

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


def feed_decoded(engine: Any, frame: RawFrame, analyze: bool,
                 others: Callable[[Packet], None] | None = None,
                 icmp_text: Callable[[Packet], str | None] | None = None) -> None:
    """A frame the engine did not decode itself (``frame()`` said False): decoded by
    :func:`sockcap.decode.decode_frame` and handed to ``packet()`` with the words the
    timeline would use for it; a packet outside any TCP/UDP conversation also goes to
    ``others``."""
    p = decode_frame(frame)
    if p.sport >= 0 and (p.proto == IPPROTO_TCP or p.proto == IPPROTO_UDP):
        engine.packet(p, p.notes, None, None)
        return
    if p.proto in ICMP_PROTOS:
        engine.packet(p, *icmp_words(p, analyze, icmp_text))
    else:
        engine.packet(p, p.notes, packet_where(p), proto_name(p))
    if others is not None:
        others(p)


def icmp_words(p: Packet, analyze: bool,
               icmp_text: Callable[[Packet], str | None] | None = None) -> tuple[Any, ...]:
    """The engine's arguments for an ICMP/ICMPv6 packet (decoded by Python): its notes
    (with an unreachable's, when analysing, as the tracker adds it), where, the protocol,
    the Info text the timeline prints, and the quoted datagram's conversation key with
    the note's kind (the engine counts it there, or in the totals only)."""
    if icmp_text is not None:  # another notation's text (tcpdump's: tcpdump_icmp_info)
        info = icmp_text(p)
    else:
        msg = decode_icmp(p)
        info = None if msg is None else icmp_info(msg)
    notes, quoted = p.notes, None
    found = icmp_error_note(p) if analyze and p.sport < 0 else None
    if found is not None:
        note, key = found
        notes = (*notes, note)
        quoted = (COUNTED_KINDS.index(note.kind), *key)
    return notes, packet_where(p), proto_name(p), info, quoted


def stats_run(engine_class: Any, pipeline: Pipeline, rows_in_memory: int = 0) -> EngineRun:
    """The loop for ``sockcap stats``: every packet filed, no text."""
    return EngineRun(engine_class, pipeline, hex_=False, render=False,
                     rows_in_memory=rows_in_memory)
