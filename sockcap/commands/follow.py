"""``sockcap follow FILE``: each conversation's bytes, reassembled, both sides interleaved.

With ``--stream N`` only that conversation is reassembled (the others cost a dict entry
each, not their bytes). Without it every TCP and UDP conversation is shown, each in its
own section, printed when the conversation ends (FIN both ways or RST) and, for the rest,
at the end of the file in stream order: sections never hold more than the conversations
still open.

``--raw --out DIR`` writes each side's bytes to ``DIR/stream-N-client.bin`` and
``DIR/stream-N-server.bin`` (``udp-stream-N-...`` for UDP) as they are reassembled; the
bytes of a gap are not in the files (they are not in the capture), and each gap is said
on stderr. The same rules as the pcap writers: ``DIR`` goes in a folder that exists
(:func:`sockcap.owner.check_output_path`), files are mode 0600, and a stream file that is
already there is overwritten only with ``--force`` (checked before anything is read). Then
stdout lists the files written, not the bytes. Under sudo the files this creates, and
``DIR`` if it creates it, belong to the user who ran sudo (:mod:`sockcap.owner`); a file
that was there before is overwritten and keeps its owner.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, BinaryIO

import click

from sockcap.commands.options import STREAM, color_options, refuse_together
from sockcap.i18n import _

if TYPE_CHECKING:  # pathlib too: sockcap --help imports this module for its listing
    from pathlib import Path

    from sockcap.analysis.conversation import Conversation
    from sockcap.analysis.follow import Chunk
    from sockcap.errors import CaptureFileError
    from sockcap.output import Output
    from sockcap.pipeline import Pipeline
    from sockcap.pipeline.select import EngineSelect


@click.command("follow", help=_('Show the bytes each side of a conversation sent, in order (Follow TCP Stream).'))
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--stream", type=STREAM, default=None, metavar="N",
              help=_("Only this conversation (Wireshark's tcp.stream; udp.stream with --udp)."))
@click.option("--udp", is_flag=True, help=_("--stream counts UDP conversations."))
@click.option("--ascii", "ascii_", is_flag=True, help=_("Text, non-printable bytes as '.' (default)."))
@click.option("--hex", "hex_", is_flag=True, help=_("Hex dump of each side's bytes."))
@click.option("--raw", "raw", is_flag=True, help=_("One line of hex per chunk; with --out, binary files."))
@click.option("--out", type=click.Path(file_okay=False), default=None, metavar="DIR",
              help=_("With --raw: write each side's bytes to DIR/stream-N-client.bin and -server.bin."))
@click.option("--force", is_flag=True, help=_("With --out: overwrite stream files already in DIR."))
@color_options
def follow(file: str, stream: int | None, udp: bool, ascii_: bool, hex_: bool, raw: bool,
           out: str | None, force: bool, no_color: bool, color: str = "auto") -> None:
    ctx = click.get_current_context()
    refuse_together(ctx, "ascii_", "hex_", "raw")
    refuse_together(ctx, "hex_", "raw")
    mode = "raw" if raw else "hex" if hex_ else "ascii"
    if out is not None and mode != "raw":
        raise click.UsageError(_("--out writes binary files: use it with --raw"))
    if out is not None:
        from sockcap.owner import check_output_path

        check_output_path(out)
        if not force:
            from pathlib import Path

            no_stream_files(Path(out))
    follow_command(file, stream=stream, udp=udp, mode=mode, out=out, no_color=no_color, color=color,
                   force=force)


STREAM_FILES = ("stream-*-client.bin", "stream-*-server.bin")  # udp-stream-* match too


def no_stream_files(folder: Path) -> None:
    """OutputExistsError when ``folder`` already holds stream files (before any is written)."""
    from sockcap.errors import OutputExistsError

    if not folder.is_dir():
        return
    found = sorted(p for pattern in STREAM_FILES for p in folder.glob("*" + pattern))
    if found:
        raise OutputExistsError(_("{folder} already holds {count} stream files ({first}, ...); "
                                  "add --force to overwrite them").format(
            folder=folder, count=len(found), first=found[0].name))


def follow_command(path: str, *, stream: int | None, udp: bool, mode: str, out: str | None,
                   no_color: bool, force: bool = False, color: str = "auto") -> None:
    import gc
    from collections import deque
    from contextlib import ExitStack
    from pathlib import Path

    from sockcap.decode.records import IPPROTO_TCP, IPPROTO_UDP
    from sockcap.errors import CaptureFileError
    from sockcap.output import Output, color_choice
    from sockcap.pcapfile.reader import open_capture
    from sockcap.pcapfile.source import open_input
    from sockcap.pipeline import Pipeline
    from sockcap.pipeline.engine import EngineRun
    from sockcap.pipeline.select import EngineSelect
    from sockcap.render.follow import FollowView
    from sockcap.speedups import engine_class

    output = Output(color=color_choice(color, no_color))
    select = None if stream is None else (IPPROTO_UDP if udp else IPPROTO_TCP, stream)
    # no expert notes. Every stream: forgotten as show's are, each shown then (FollowView);
    # one stream: its table kept (stream_found reads it), from the stream's first packet on
    pipeline = Pipeline(analyze=False, keep=select is not None)
    forgotten: deque[Conversation] = deque()  # the engine's on_forget puts them here
    gc.disable()  # one pass creates no reference cycles: the collector would only cost
    sink = RawFiles(Path(out), output.note, force=force) if out is not None else None
    failure: list[CaptureFileError] = []
    chosen = EngineSelect(engine_class(), pipeline, *select) if select is not None else None
    with ExitStack() as stack:
        reader = open_capture(open_input(path, stack))
        view = FollowView(select, mode, sink, forgotten)
        put = _Put(output, sink)
        try:
            try:
                if chosen is not None:  # the engine numbers the packets before it
                    for a in chosen.select(reader):
                        put(view.feed(a))
                else:
                    # every stream: the engine hands each packet to the view
                    EngineRun(engine_class(), pipeline, hex_=False,
                              view=lambda a: put(view.feed(a)), clock=pipeline,
                              on_forget=forgotten.append,
                              ).run(reader, output.data, reader=reader)
            except CaptureFileError as e:
                failure.append(e)  # the sections held so far are still shown and closed
            put(view.finish())
        finally:
            if sink is not None:
                sink.close()
    if sink is not None:
        output.lines((line, "") for line in sink.listing())
    if failure:
        output.flush()
        raise failure[0]
    if chosen is not None:
        stream_found(pipeline, chosen, path)
    if select is not None and not put.shown:
        kind = "udp" if udp else "tcp"
        output.line(_("no payload in {kind} stream {stream}").format(kind=kind, stream=stream))
    output.flush()


class _Put:
    """Writes the view's lines (or, with ``--out``, only counts them: the bytes go to the
    files), counting them: a stream that showed nothing is said so."""

    def __init__(self, output: Output, sink: RawFiles | None) -> None:
        self.output, self.sink, self.shown = output, sink, 0

    def __call__(self, pairs: Iterator[tuple[str, str]]) -> None:
        if self.sink is None:
            self.output.lines(self._counted(pairs))
        else:
            for _pair in self._counted(pairs):
                pass

    def _counted(self, pairs: Iterator[tuple[str, str]]) -> Iterator[tuple[str, str]]:
        for pair in pairs:
            self.shown += 1
            yield pair


def stream_found(pipeline: Pipeline, chosen: EngineSelect, path: str) -> None:
    """InputError when the followed stream is not in the file, saying how many there are
    (the engine numbered those before the hand-over; the tracker kept the rest)."""
    from sockcap.decode.records import IPPROTO_TCP
    from sockcap.errors import InputError

    select = (chosen.proto, chosen.stream)
    convs = pipeline.tracker.conversations
    if any((c.proto, c.stream) == select for c in convs):
        return
    kind = "tcp" if chosen.proto == IPPROTO_TCP else "udp"
    count = sum(1 for c in convs if c.proto == chosen.proto)
    if chosen.streams != (0, 0):  # numbered by the engine: the tracker kept none
        count = chosen.streams[0 if chosen.proto == IPPROTO_TCP else 1]
    raise InputError(
        _("no {kind} stream {stream} in {path} (it has {count}: 0..{last})").format(
            kind=kind, stream=chosen.stream, path=path, count=count, last=count - 1)
        if count else _("no {kind} conversation in {path}").format(kind=kind, path=path))


FILE_MODE = 0o600  # as the pcap files: a capture's bytes are for their owner only


class RawFiles:
    """Writes each side's reassembled bytes to its own file, as chunks come."""

    def __init__(self, folder: Path, note: Callable[[str], None], *, force: bool = False) -> None:
        from sockcap.errors import SockcapError
        from sockcap.owner import Owner

        self.owner = Owner(lambda text: note(_("sockcap: {text}").format(text=text)))
        try:
            self.owner.make_folder(folder)
        except OSError as e:
            raise SockcapError(_("cannot create {folder}: {strerror}").format(folder=folder, strerror=e.strerror)) from e
        self.folder = folder
        self.note = note
        self.force = force
        self.files: dict[tuple[int, bool], BinaryIO] = {}
        self.written: dict[Path, int] = {}  # every file written, and its bytes, in order

    def _file(self, conv: Conversation, client: bool) -> BinaryIO:
        from sockcap.render.follow import stream_name

        key = (id(conv), client)
        f = self.files.get(key)
        if f is None:
            name = stream_name(conv).replace(" ", "-").replace("tcp-", "")
            path = self.folder / f"{name}-{'client' if client else 'server'}.bin"
            f = self.files[key] = self._create(path)  # closed in end() or close()
            self.written[path] = 0
        return f

    def _create(self, path: Path) -> BinaryIO:
        """``open(path, "wb")``, mode 0600 as a pcap file; a file this creates is given to
        the user who ran sudo; one that exists is overwritten only with ``force``."""
        import os

        from sockcap.errors import OutputExistsError, SockcapError
        from sockcap.owner import create_file

        created = False

        def opener(name: str, flags: int) -> int:
            nonlocal created
            fd, created = create_file(name, FILE_MODE, replace=self.force)
            os.fchmod(fd, FILE_MODE)  # an overwritten file keeps its old mode otherwise
            return fd

        try:
            f = open(path, "wb", opener=opener)
        except FileExistsError:
            raise OutputExistsError(_("{path} exists (add --force to overwrite it)").format(
                path=path)) from None
        except OSError as e:
            raise SockcapError(_("cannot write {path}: {strerror}").format(path=path, strerror=e.strerror)) from e
        if created:
            self.owner.give(f.fileno(), path)
        return f

    def write(self, chunk: Chunk) -> None:
        import os

        from sockcap.render.follow import stream_name

        for client in (True, False):  # both files exist, even if empty
            self._file(chunk.conv, client)
        f = self._file(chunk.conv, chunk.from_client)
        if chunk.gap:
            side = "client" if chunk.from_client else "server"
            self.note(_("sockcap: {conv}: {gap} bytes from the {side} missing at offset {offset}, not in {f}").format(conv=stream_name(chunk.conv), gap=chunk.gap, side=side, offset=chunk.offset, f=f.name))
            return
        f.write(chunk.data)
        self.written[self.folder / os.path.basename(f.name)] += len(chunk.data)

    def listing(self) -> list[str]:
        """One line per file written, with its size."""
        return [_("wrote {path} ({size} bytes)").format(path=path, size=size)
                for path, size in self.written.items()]

    def end(self, conv: Conversation) -> None:
        for client in (True, False):
            f = self.files.pop((id(conv), client), None)
            if f is not None:
                f.close()

    def close(self) -> None:
        for f in self.files.values():
            f.close()
        self.files.clear()
