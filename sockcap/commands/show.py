"""``sockcap show FILE``: the timeline of any capture file, streamed.

Good packets are printed as they are read; file-level damage found later stops the
listing with one line saying where, and the error's exit code, after everything good was
shown. Non-fatal damage (a clamped record, skipped blocks) is summed up on stderr.

The command only wires: the file edge (:func:`~sockcap.pcapfile.source.open_input`), the
engine chosen once (:func:`sockcap.speedups.engine_class`) driven by its one loop
(:class:`~sockcap.pipeline.engine.EngineRun`), the per-packet view
(:class:`~sockcap.render.packets.PacketView`) handed to the engine when it is one the
engine does not write itself, and the output.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from contextlib import ExitStack
from itertools import chain

from sockcap.analysis.conversation import Annotated
from sockcap.commands.progress import Progress, wants_progress
from sockcap.errors import CaptureFileError
from sockcap.i18n import _
from sockcap.output import Output, color_choice
from sockcap.pcapfile.reader import CaptureReader, open_capture
from sockcap.pcapfile.source import open_input
from sockcap.pipeline import Pipeline
from sockcap.pipeline.contract import Style
from sockcap.pipeline.engine import EngineRun
from sockcap.render.packets import PacketView
from sockcap.render.timeline import TCPDUMP_WINDOW
from sockcap.speedups import engine_class, rows_in_memory, tcpdump_window, tuple_window

TYPE_CHECKING = False  # the type checker takes it as true
if TYPE_CHECKING:
    from typing import Any


def show_command(path: str, *, count: int, port: int, dissect: int | None, hex_: bool,
                 json_: bool, style: str, no_color: bool, explain: bool = False,
                 filters: bool = False, color: str = "auto") -> None:
    """``color``: ``--color`` (auto, always, never; ``no_color``, ``--no-color``, is
    never): see :func:`sockcap.output.wants_color` for ``NO_COLOR``/``FORCE_COLOR``."""
    if dissect is not None:
        from sockcap.commands.dissect import dissect_command

        dissect_command(path, dissect)
        return
    output = Output(color=color_choice(color, no_color))
    from sockcap.pcapfile.storyfile import read_story

    records = read_story(path)
    pipeline = Pipeline(keep=bool(records), port=port, limit=count)
    explainer = None
    if explain:  # its sentences' modules only when asked for (start-up: tests/test_startup.py)
        from sockcap.render.explain import PacketExplainer

        explainer = PacketExplainer(tuple_window=tuple_window())
    # tcpdump's bases' window, both twins' (timeline says why); read only when it is used
    window = tcpdump_window() if style == "tcpdump" else TCPDUMP_WINDOW
    view = PacketView(pipeline, json=json_, style=style, hex_=hex_, filters=filters,
                      explainer=explainer, tcpdump_window=window)
    explained: Any = explainer  # what heard the sentences: the view's explainer, or the engine
    if records:  # a .pcapng that keeps its run's calls and kernel events
        _show_story(path, records, pipeline, view, output, json_=json_, explain=explain)
    else:
        explained = _show_stream(path, pipeline, view, output, json_=json_, explain=explain,
                                 filters=filters, hex_=hex_, style=style) or explainer
    _tail(pipeline, view, output, json_=json_, explain=explain, filters=filters,
          explainer=explained)


def _show_story(path: str, records: list[dict[str, object]], pipeline: Pipeline,
                view: PacketView, output: Output, *, json_: bool, explain: bool) -> None:
    """The timeline of a capture that keeps its calls and kernel events
    (:mod:`sockcap.pcapfile.storyfile`): the packets with the calls and events among
    them, tied as the run tied them, printed as the run printed them. Such a file is one
    run's (small): it is read whole first, as the run held it."""
    from sockcap.analysis.storyrecords import story_from_records
    from sockcap.commands.exchange import print_story

    with ExitStack() as stack:
        reader = open_capture(open_input(path, stack))
        try:
            annotated = list(pipeline.packets(reader))
        finally:
            warn(output, reader)
    saved = story_from_records(records)
    if saved.unreadable:
        output.note(_("sockcap: {count} of the calls and kernel events kept in {path} could "
                      "not be read (skipped)").format(count=saved.unreadable, path=path))
    print_story(annotated, saved.calls, saved.events, pipeline.first_ts, view, output,
                json_=json_, explain=explain, overflows=saved.listen_overflows)
    if not annotated and not json_:
        output.line(_("0 packets"))


def _show_stream(path: str, pipeline: Pipeline, view: PacketView, output: Output, *,
                 json_: bool, explain: bool, filters: bool, hex_: bool, style: str) -> Any:
    """Any other capture, streamed through the engine. Returns what the end of
    ``--explain`` reads (:class:`~sockcap.render.explain.EngineExplanations`) when the
    engine wrote the sentences itself, else None (the view's explainer heard them)."""
    with ExitStack() as stack:
        stream = open_input(path, stack)
        reader = open_capture(stream)
        progress = Progress(stream, output.err, wants_progress(output.err, json_, output.stream),
                            lambda: reader.packets)
        stack.callback(progress.stop)
        # the plain Wireshark-style text (and --hex) is every engine's own; any other view
        # is handed each packet the engine filed and annotated (the same loop)
        cls = engine_class()
        notation = Style.JSON if json_ else Style.TCPDUMP if style == "tcpdump" else Style.WIRESHARK
        # JSON has no colour: its lines go out plain on a terminal too
        # --explain's sentences: the engine's own when its class says it writes them
        # (explains), under its text lines of either notation, in colour too
        explains = (explain and not filters and notation is not Style.JSON
                    and getattr(cls, "explains", False))
        own = (not filters and (not explain or explains) and notation in cls.styles
               and (notation in cls.colors or not output.color or notation is Style.JSON))
        packet_view = None if own else _view_of(view, output)
        run = EngineRun(cls, pipeline, hex_=hex_, view=packet_view, clock=pipeline,
                        style=notation if own else Style.WIRESHARK,
                        color=(own and output.color and notation is not Style.JSON
                               and _color_table()),
                        explain=_explain_words() if explains else None,
                        rows_in_memory=rows_in_memory(),
                        tcpdump_window=view.timeline.tcpdump_window)
        if own or not output.color:
            # The engine's own text makes no reference cycles (records, conversations,
            # strings): the cyclic collector would only walk the conversations kept,
            # again and again. rich, writing the Python view's colour, may make some: it
            # keeps it on then.
            gc.disable()
        try:
            run.run(progress.frames(reader), output.data, reader=reader, on_read=progress.tick,
                    lent=True)
        except CaptureFileError:
            output.flush()
            raise
        finally:
            warn(output, reader)
    if reader.packets == 0 and not json_:
        output.line(_("0 packets"))
    if not explains:
        return None
    from sockcap.render.explain import EngineExplanations

    return EngineExplanations(run.engine)


def _explain_words() -> dict[str, Any]:
    from sockcap.render.explain_words import explain_words

    # the port-reuse sentence's window of SYNs, the same as the pure twin's explainer's
    return {**explain_words(), "tuple_window": tuple_window()}


def _tail(pipeline: Pipeline, view: PacketView, output: Output, *, json_: bool, explain: bool,
          filters: bool, explainer: Any = None) -> None:
    """Wireshark's menus (``--filters``) and the explanations' summary, after the packets
    (``explainer``: what heard the sentences, the view's or the engine's)."""
    if filters:
        from sockcap.render.wireshark import wireshark_menus

        menus = wireshark_menus(list(view.streams))
        if json_:  # stdout stays JSON; the sentences go to stderr
            for text in menus:
                output.note(text)
        else:
            output.lines((text, "dim") for text in menus)
    if explain:
        from sockcap.render.explain import explain_lines

        lines = explain_lines(pipeline.tracker.note_counts,
                              sentences=explainer is not None and not json_)
        if explainer is not None and not json_:
            lines = chain(explainer.summary(), lines, explainer.readings())
        if json_:  # stdout stays JSON; the sentences go to stderr
            for text, _style in lines:
                output.note(text)
        else:
            output.lines(lines)
    output.flush()


def _view_of(view: PacketView, output: Output) -> Callable[[Annotated], str | None]:
    """The per-packet view the engine hands each packet to: a packet's text, or on a
    terminal its styled lines written at once (None: nothing left for the engine to write)."""
    if not output.color:
        return view.text
    styled, lines = view.styled, output.lines

    def write_styled(a: Annotated) -> None:
        lines(styled(a))

    return write_styled


def _color_table() -> tuple[str, ...]:
    """The engine's colour table: rich's own codes for the view's styles, rendered once
    (rich is imported only when there is colour to write)."""
    from sockcap.output import ansi_codes
    from sockcap.pipeline.contract import COLOR_STYLES, color_table

    return color_table(ansi_codes(COLOR_STYLES))


def warn(output: Output, reader: CaptureReader) -> None:
    """The reader's warnings on stderr, at most 20 of them."""
    for warning in reader.warnings[:20]:
        output.note(_("sockcap: warning: {warning}").format(warning=warning))
    if len(reader.warnings) > 20:
        output.note(_("sockcap: warning: ... and {count} more").format(
            count=len(reader.warnings) - 20))
