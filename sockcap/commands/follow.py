"""``sockcap follow FILE``: each conversation's bytes, reassembled, both sides interleaved.

With ``--stream N`` only that conversation is reassembled (the others cost a dict entry
each, not their bytes). Without it every TCP and UDP conversation is shown, each in its
own section, printed when the conversation ends (FIN both ways or RST) and, for the rest,
at the end of the file in stream order: sections never hold more than the conversations
still open.

``--raw --out DIR`` writes each side's bytes to ``DIR/stream-N-client.bin`` and
``DIR/stream-N-server.bin`` (``udp-stream-N-...`` for UDP) as they are reassembled; the
bytes of a gap are not in the files (they are not in the capture), and each gap is said
on stderr. Under sudo the files this creates, and ``DIR`` if it creates it, belong to the
user who ran sudo (:mod:`sockcap.owner`); a file that was there before is overwritten and
keeps its owner.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import click

if TYPE_CHECKING:
    from sockcap.analysis.conversation import Annotated, Conversation, ConversationTracker
    from sockcap.analysis.follow import Chunk
    from sockcap.decode.records import RawFrame


@click.command("follow")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--stream", type=click.IntRange(0), default=None, metavar="N",
              help="Only this conversation (Wireshark's tcp.stream; udp.stream with --udp).")
@click.option("--udp", is_flag=True, help="--stream counts UDP conversations.")
@click.option("--ascii", "mode", flag_value="ascii", default=True, help="Text, non-printable bytes as '.' (default).")
@click.option("--hex", "mode", flag_value="hex", help="Hex dump of each side's bytes.")
@click.option("--raw", "mode", flag_value="raw", help="One line of hex per chunk; with --out, binary files.")
@click.option("--out", type=click.Path(file_okay=False), default=None, metavar="DIR",
              help="With --raw: write each side's bytes to DIR/stream-N-client.bin and -server.bin.")
@click.option("--no-color", is_flag=True, help="No colour (also: NO_COLOR=1).")
def follow(file: str, stream: int | None, udp: bool, mode: str, out: str | None,
           no_color: bool) -> None:
    """Show the bytes each side of a conversation sent, in order (Follow TCP Stream)."""
    if out is not None and mode != "raw":
        raise click.UsageError("--out writes binary files: use it with --raw")
    follow_command(file, stream=stream, udp=udp, mode=mode, out=out, no_color=no_color)


def follow_command(path: str, *, stream: int | None, udp: bool, mode: str, out: str | None,
                   no_color: bool) -> None:
    import gc
    from contextlib import ExitStack

    from sockcap.analysis.conversation import ConversationTracker
    from sockcap.commands.show import open_input
    from sockcap.decode.records import IPPROTO_TCP, IPPROTO_UDP
    from sockcap.errors import CaptureFileError, InputError
    from sockcap.output import Output
    from sockcap.pcapfile.reader import open_capture

    output = Output(color=False if no_color else None)
    select = None if stream is None else (IPPROTO_UDP if udp else IPPROTO_TCP, stream)
    tracker = ConversationTracker(analyze=False)  # follow needs no expert notes
    gc.disable()  # one pass creates no reference cycles: the collector would only cost
    sink = RawFiles(Path(out), output.note) if out is not None else None
    failure: list[CaptureFileError] = []

    def until_damage(packets: Iterator[Annotated]) -> Iterator[Annotated]:
        """The packets up to any damage that stops the reader: the sections held so far
        are still shown and closed, then the damage is reported."""
        try:
            yield from packets
        except CaptureFileError as e:
            failure.append(e)

    with ExitStack() as stack:
        reader = open_capture(open_input(path, stack))
        pairs = follow_pairs(until_damage(annotated(reader, tracker, select)), select, mode,
                             sink)
        try:
            output.lines(pairs)
        finally:
            if sink is not None:
                sink.close()
    if failure:
        output.flush()
        raise failure[0]
    if select is not None and not any(
            (c.proto, c.stream) == select for c in tracker.conversations):
        kind = "udp" if udp else "tcp"
        count = sum(1 for c in tracker.conversations if c.proto == select[0])
        raise InputError(f"no {kind} stream {stream} in {path} (it has {count}: 0..{count - 1})"
                         if count else f"no {kind} conversation in {path}")
    output.flush()


def annotated(frames: Iterable[RawFrame], tracker: ConversationTracker,
              select: tuple[int, int] | None) -> Iterator[Annotated]:
    """The packets the follow view needs, annotated: all, or with ``select`` only that
    conversation's.

    Every packet up to the selected conversation's first is decoded and numbered by the
    tracker (:meth:`~ConversationTracker.locate`: the stream numbers are the tracker's).
    From there on only packets of the same 5-tuple can belong to it (a later SYN on it
    that reuses the ports included), so when ``frames`` is a
    :class:`~sockcap.pcapfile.reader.CaptureReader` it is told to skip frames that do not
    hold the conversation's port pair (:meth:`~CaptureReader.prefilter`): what passes is
    still decoded and located, so the numbers and the port-reuse rule stay the
    tracker's. The frames skipped only cost the reader a comparison each.
    """
    from sockcap.decode import decode_frame
    from sockcap.pcapfile.reader import CaptureReader

    locate, annotate = tracker.locate, tracker.annotate
    if select is None:
        for frame in frames:
            p = decode_frame(frame)
            yield annotate(p, locate(p))
        return
    proto, stream = select
    reader = frames if isinstance(frames, CaptureReader) else None
    found = False
    for frame in frames:
        if found and reader is not None and reader.packets > tracker.count + 1:
            tracker.skip(reader.packets - tracker.count - 1)
        p = decode_frame(frame)
        entry = locate(p)
        if entry is not None and entry[0].stream == stream and entry[0].proto == proto:
            if not found and reader is not None:
                reader.prefilter(port_pairs(p.sport, p.dport))
            found = True
            yield annotate(p, entry)


def port_pairs(sport: int, dport: int) -> tuple[bytes, bytes]:
    """The four bytes a TCP or UDP header of this conversation starts with, each way."""
    return (sport.to_bytes(2, "big") + dport.to_bytes(2, "big"),
            dport.to_bytes(2, "big") + sport.to_bytes(2, "big"))


def follow_pairs(annotated: Iterable[Annotated], select: tuple[int, int] | None,
                 mode: str = "ascii", sink: RawFiles | None = None) -> Iterator[tuple[str, str]]:
    """``(line, style)`` pairs of the follow view; ``sink`` also gets every chunk."""
    from sockcap.analysis.follow import Follower

    follower = Follower(select)
    sections = _Sections(mode, streaming=select is not None, sink=sink)
    fins: dict[int, int] = {}  # id(conv) -> FIN seen: 1 client, 2 server (3: both)
    for a in annotated:
        chunks = follower.feed(a)
        conv = a.conv
        if conv is not None and select is None and _ends(a, fins) and sections.open(conv):
            chunks += follower.finish(conv)
            yield from sections.add(chunks)
            yield from sections.close(conv)
        elif chunks:
            yield from sections.add(chunks)
    yield from sections.add(follower.finish())
    yield from sections.close_all()


def _ends(a: Annotated, fins: dict[int, int]) -> bool:
    """Does this packet end its TCP conversation (RST, or the second side's FIN)?

    Read from the packet rather than from the conversation's state, so that replaying
    packets annotated earlier (``sockcap run``) gives the same sections."""
    flags = a.packet.flags
    if not flags & 0x05 or a.conv is None:
        return False
    if flags & 0x04:
        return True
    key = id(a.conv)
    fins[key] = fins.get(key, 0) | (1 if a.from_client else 2)
    return fins[key] == 3


class _Sections:
    """Groups chunks per conversation; prints a section as it ends (or at once, streaming)."""

    def __init__(self, mode: str, streaming: bool, sink: RawFiles | None) -> None:
        self.mode = mode
        self.streaming = streaming
        self.sink = sink
        self.held: dict[int, list[Chunk]] = {}
        self.convs: dict[int, Conversation] = {}
        self.closed: set[int] = set()
        self.totals: dict[int, list[int]] = {}  # sent client, sent server, gap c, gap s

    def open(self, conv: Conversation) -> bool:
        return id(conv) in self.convs and id(conv) not in self.closed

    def add(self, chunks: list[Chunk]) -> Iterator[tuple[str, str]]:
        from sockcap.render.follow import chunk_lines, stream_header

        for chunk in chunks:
            key = id(chunk.conv)
            if key not in self.convs:
                self.convs[key] = chunk.conv
                self.totals[key] = [0, 0, 0, 0]
                if self.streaming:
                    yield stream_header(chunk.conv), "bold"
            side = 0 if chunk.from_client else 1
            self.totals[key][side + (2 if chunk.gap else 0)] += chunk.gap or len(chunk.data)
            if self.sink is not None:
                self.sink.write(chunk)
            if self.streaming:
                yield from chunk_lines(chunk, self.mode)
            else:
                self.held.setdefault(key, []).append(chunk)

    def close(self, conv: Conversation) -> Iterator[tuple[str, str]]:
        from sockcap.render.follow import chunk_lines, stream_footer, stream_header

        key = id(conv)
        self.closed.add(key)
        if not self.streaming:
            yield stream_header(conv), "bold"
            for chunk in self.held.pop(key, []):
                yield from chunk_lines(chunk, self.mode)
        t = self.totals[key]
        yield stream_footer(conv, (t[0], t[1]), (t[2], t[3])), "dim"
        if self.sink is not None:
            self.sink.end(conv)

    def close_all(self) -> Iterator[tuple[str, str]]:
        rest = [c for k, c in self.convs.items() if k not in self.closed]
        for conv in sorted(rest, key=lambda c: (c.proto, c.stream)):
            yield from self.close(conv)


class RawFiles:
    """Writes each side's reassembled bytes to its own file, as chunks come."""

    def __init__(self, folder: Path, note: Callable[[str], None]) -> None:
        from sockcap.errors import SockcapError
        from sockcap.owner import Owner

        self.owner = Owner(lambda text: note(f"sockcap: {text}"))
        try:
            self.owner.make_folder(folder)
        except OSError as e:
            raise SockcapError(f"cannot create {folder}: {e.strerror}") from e
        self.folder = folder
        self.note = note
        self.files: dict[tuple[int, bool], BinaryIO] = {}

    def _file(self, conv: Conversation, client: bool) -> BinaryIO:
        from sockcap.render.follow import stream_name

        key = (id(conv), client)
        f = self.files.get(key)
        if f is None:
            name = stream_name(conv).replace(" ", "-").replace("tcp-", "")
            path = self.folder / f"{name}-{'client' if client else 'server'}.bin"
            f = self.files[key] = self._create(path)  # closed in end() or close()
        return f

    def _create(self, path: Path) -> BinaryIO:
        """``open(path, "wb")``; a file this creates is given to the user who ran sudo."""
        from sockcap.errors import SockcapError
        from sockcap.owner import create_file

        created = False

        def opener(name: str, flags: int) -> int:
            nonlocal created
            fd, created = create_file(name, 0o666, replace=True)
            return fd

        try:
            f = open(path, "wb", opener=opener)
        except OSError as e:
            raise SockcapError(f"cannot write {path}: {e.strerror}") from e
        if created:
            self.owner.give(f.fileno(), path)
        return f

    def write(self, chunk: Chunk) -> None:
        from sockcap.render.follow import stream_name

        self._file(chunk.conv, not chunk.from_client)  # both files exist, even if empty
        f = self._file(chunk.conv, chunk.from_client)
        if chunk.gap:
            side = "client" if chunk.from_client else "server"
            self.note(f"sockcap: {stream_name(chunk.conv)}: {chunk.gap} bytes from the "
                      f"{side} missing at offset {chunk.offset}, not in {f.name}")
            return
        f.write(chunk.data)

    def end(self, conv: Conversation) -> None:
        for client in (True, False):
            f = self.files.pop((id(conv), client), None)
            if f is not None:
                f.close()

    def close(self) -> None:
        for f in self.files.values():
            f.close()
        self.files.clear()
