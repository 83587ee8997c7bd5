"""The one path every view takes after the I/O edge: frames -> packets -> annotated -> lines.

``sockcap show FILE`` and ``sockcap run --capture`` both go through :class:`View`, so every
view works offline and the golden tests exercise exactly what a live capture prints.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import NamedTuple

from sockcap.analysis.conversation import ROLES_GUESSED, Annotated, ConversationTracker
from sockcap.decode import decode_frame
from sockcap.decode.records import RawFrame
from sockcap.render.explain import explain_lines
from sockcap.render.timeline import Timeline, endpoint, json_line, style_of


class ViewOptions(NamedTuple):
    json: bool = False
    style: str = "wireshark"  # or "tcpdump"
    hex: bool = False
    limit: int = 0  # stop after this many packets shown (0: all)
    port: int = 0  # show only TCP/UDP packets to or from this port (0: all)
    explain: bool = False  # after the timeline, a sentence per kind of expert note seen
    keep: bool = True  # keep every conversation (for a summary); False: bounded memory


class View:
    """Decodes, annotates and renders frames; keeps the conversations for summaries."""

    def __init__(self, options: ViewOptions | None = None) -> None:
        self.options = options = options or ViewOptions()
        self.tracker = ConversationTracker(keep=options.keep)
        self.timeline = Timeline(style=options.style, hex_payload=options.hex)
        self.shown = 0

    def annotate(self, frames: Iterable[RawFrame]) -> Iterator[Annotated]:
        """Every frame decoded and annotated; with ``port``, only its packets yielded.

        ``--port`` works as a Wireshark display filter: every packet is still numbered,
        put in its stream and counted in the relative time (which starts at the first
        packet of the file), so the packets shown keep the numbers, times and stream
        numbers Wireshark and tshark give them.
        """
        feed = self.tracker.feed
        port = self.options.port
        timeline = self.timeline
        for frame in frames:
            p = decode_frame(frame)
            a = feed(p)
            if port and p.sport != port and p.dport != port:
                if timeline.first_ts < 0:
                    timeline.first_ts = p.ts_ns
                continue
            yield a

    def lines(self, frames: Iterable[RawFrame]) -> Iterator[tuple[str, str]]:
        """``(line, style)`` pairs; the style is a rich style name, "" for none."""
        limit = self.options.limit
        for a in self.annotate(frames):
            if limit and self.shown >= limit:
                return
            self.shown += 1
            yield from self.render(a)

    def text(self, frames: Iterable[RawFrame]) -> Iterator[str]:
        """Plain lines without styles: the fast path for a pipe or a file.

        The common cases (a Wireshark-style timeline, with or without hex) run one fused
        loop, frame -> packet -> conversation -> line, with no generator between the
        stages and every callable in a local: this loop runs a million times for a big
        file, and each layer cost about a tenth of a microsecond a packet. It does what
        :meth:`annotate` and :meth:`render` do, in the same order.
        """
        opts = self.options
        if opts.json or opts.style != "wireshark" or opts.limit:
            for text, _ in self.lines(frames):
                yield text
            return
        locate, annotate = self.tracker.locate, self.tracker.annotate
        line, hex_lines = self.timeline.line, self.timeline.hex_lines
        port, hex_ = opts.port, opts.hex
        decode = decode_frame
        timeline = self.timeline
        for frame in frames:
            p = decode(frame)
            entry = locate(p)
            a = annotate(p, entry)
            if port and p.sport != port and p.dport != port:  # as in annotate()
                if timeline.first_ts < 0:
                    timeline.first_ts = p.ts_ns
                continue
            self.shown += 1
            if entry is not None and entry[0].roles == ROLES_GUESSED and _first_of(a):
                yield _guessed_roles(a)
            yield line(a)
            if hex_:
                yield from hex_lines(p)

    def explanation(self) -> Iterator[tuple[str, str]]:
        """With ``explain``: each kind of expert note seen so far, explained (else nothing)."""
        if self.options.explain:
            yield from explain_lines(self.tracker.note_counts)

    def render(self, a: Annotated) -> Iterator[tuple[str, str]]:
        if self.options.json:
            if self.timeline.first_ts < 0:
                self.timeline.first_ts = a.packet.ts_ns
            yield json_line(a, self.timeline.first_ts), ""
            return
        conv = a.conv
        if conv is not None and conv.roles == ROLES_GUESSED and _first_of(a):
            yield _guessed_roles(a), "dim"
        style = style_of(a)
        lines = self.timeline.lines(a)
        yield lines[0], style
        for extra in lines[1:]:
            yield extra, "dim"


def _first_of(a: Annotated) -> bool:
    conv = a.conv
    return conv is not None and conv.dirs[0].packets + conv.dirs[1].packets == 1


def _guessed_roles(a: Annotated) -> str:
    conv = a.conv
    assert conv is not None
    return (f"      (tcp stream {conv.stream}: no handshake seen; roles guessed from the "
            f"ports, server {endpoint(*conv.server)})")
