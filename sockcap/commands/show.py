"""``sockcap show FILE``: the timeline of any capture file, streamed.

Good packets are printed as they are read; file-level damage found later stops the
listing with one line saying where, and the error's exit code, after everything good was
shown. Non-fatal damage (a clamped record, skipped blocks) is summed up on stderr.

The command only wires: the file edge (:func:`~sockcap.pcapfile.source.open_input`), the
pipeline (:class:`~sockcap.pipeline.Pipeline`), the per-packet view
(:class:`~sockcap.render.packets.PacketView`) and the output.
"""

from __future__ import annotations

import gc
from contextlib import ExitStack
from itertools import chain

from sockcap.commands.progress import track, wants_progress
from sockcap.errors import CaptureFileError
from sockcap.i18n import _
from sockcap.output import Output
from sockcap.pcapfile.reader import CaptureReader, open_capture
from sockcap.pcapfile.source import open_input
from sockcap.pipeline import Pipeline
from sockcap.pipeline.compiled import CompiledTimeline
from sockcap.render.explain import PacketExplainer, explain_lines
from sockcap.render.packets import PacketView
from sockcap.render.wireshark import wireshark_menus
from sockcap.speedups import engine_class


def show_command(path: str, *, count: int, port: int, dissect: int | None, hex_: bool,
                 json_: bool, style: str, no_color: bool, explain: bool = False,
                 filters: bool = False) -> None:
    if dissect is not None:
        from sockcap.commands.dissect import dissect_command

        dissect_command(path, dissect)
        return
    output = Output(color=False if no_color else None)
    pipeline = Pipeline(keep=False, port=port, limit=count)
    explainer = PacketExplainer() if explain else None
    view = PacketView(pipeline, json=json_, style=style, hex_=hex_, filters=filters,
                      explainer=explainer)
    with ExitStack() as stack:
        stream = open_input(path, stack)
        reader = open_capture(stream)
        progress = wants_progress(output.err, json_, output.stream)
        frames = track(reader, stream, output.err, progress)
        try:
            if output.color:
                for a in pipeline.packets(frames):
                    output.lines(view.styled(a))
            else:
                # The plain path makes no reference cycles (records, conversations,
                # strings): the cyclic collector would only walk the conversations kept,
                # again and again. rich, on a terminal, may make some: it keeps it on.
                gc.disable()
                compiled = None if progress or filters or explain else compiled_timeline(
                    pipeline, json_=json_, style=style, hex_=hex_)
                if compiled is not None:
                    compiled.run(reader, output.data)
                else:
                    output.text(pipeline.map(frames, view.text))
        except CaptureFileError:
            output.flush()
            raise
        finally:
            warn(output, reader)
    if reader.packets == 0 and not json_:
        output.line(_("0 packets"))
    if filters:
        menus = wireshark_menus(list(view.streams))
        if json_:  # stdout stays JSON; the sentences go to stderr
            for text in menus:
                output.note(text)
        else:
            output.lines((text, "dim") for text in menus)
    if explain:
        lines = explain_lines(pipeline.tracker.note_counts)
        if explainer is not None and not json_:
            lines = chain(explainer.summary(), lines, explainer.readings())
        if json_:  # stdout stays JSON; the sentences go to stderr
            for text, _style in lines:
                output.note(text)
        else:
            output.lines(lines)
    output.flush()


def compiled_timeline(pipeline: Pipeline, *, json_: bool, style: str,
                      hex_: bool) -> CompiledTimeline | None:
    """The compiled loop for the views it renders (plain Wireshark-style text, with or
    without ``--hex``), when the extension is there and not turned off; else None.
    ``--filters``, ``--explain`` (a sentence under every packet) and the progress line (a
    terminal's) stay on the pure loop."""
    if json_ or style != "wireshark":
        return None
    engine = engine_class()
    return None if engine is None else CompiledTimeline(engine, pipeline, hex_=hex_)


def warn(output: Output, reader: CaptureReader) -> None:
    """The reader's warnings on stderr, at most 20 of them."""
    for warning in reader.warnings[:20]:
        output.note(_("sockcap: warning: {warning}").format(warning=warning))
    if len(reader.warnings) > 20:
        output.note(_("sockcap: warning: ... and {count} more").format(
            count=len(reader.warnings) - 20))
