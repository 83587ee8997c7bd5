"""``sockcap diagram FILE``: the ladder of one conversation, or its time-sequence graph.

The conversation: ``--stream N`` (Wireshark's ``tcp.stream``; ``udp.stream`` with
``--udp``), else the first TCP conversation (with ``--port P``: the first one to or from
that port), else the first UDP one. Formats: ``text`` (box-drawing, or ASCII with
``--ascii`` or when the output's encoding cannot show box-drawing characters; as wide as
the terminal, or ``--width``), ``svg`` and ``mermaid``. ``--graph tcptrace|stevens``
draws the time-sequence graph (SVG) of the direction that sent more payload.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import click

from sockcap.commands.options import STREAM, color_options, refuse_together
from sockcap.i18n import _

if TYPE_CHECKING:
    from sockcap.analysis.conversation import Annotated
    from sockcap.output import Output
    from sockcap.pipeline import Pipeline

FORMATS = ("text", "svg", "mermaid")
GRAPHS = ("tcptrace", "stevens")
BOX_SAMPLE = "│─▶◀┌└…→"


@click.command("diagram", help=_('Draw one conversation as a ladder (sequence) diagram, or its time-sequence graph.'))
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--stream", type=STREAM, default=None, metavar="N",
              help=_("This conversation (Wireshark's tcp.stream; udp.stream with --udp)."))
@click.option("--udp", is_flag=True, help=_("--stream counts UDP conversations."))
@click.option("--port", type=click.IntRange(1, 65535), default=None,
              help=_("The first conversation to or from this port."))
@click.option("--format", "format_", type=click.Choice(FORMATS), default="text",
              show_default=True, help=_("A ladder for the terminal, SVG, or Mermaid sequenceDiagram."))
@click.option("--graph", type=click.Choice(GRAPHS), default=None,
              help=_("The time-sequence graph (SVG) instead of the ladder."))
@click.option("-o", "--out", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help=_("Write to FILE instead of stdout."))
@click.option("--force", is_flag=True, help=_("Overwrite the -o file if it exists."))
@click.option("--ascii", "ascii_", is_flag=True, help=_("ASCII lines instead of box-drawing characters."))
@click.option("--width", type=click.IntRange(40, 400), default=None,
              help=_("Columns of the text ladder (default: the terminal's, 80 in a pipe)."))
@color_options
def diagram(file: str, stream: int | None, udp: bool, port: int | None, format_: str,
            graph: str | None, out: str | None, force: bool, ascii_: bool, width: int | None,
            no_color: bool, color: str = "auto") -> None:
    from sockcap.output import Output, color_choice
    from sockcap.owner import check_output_path

    if graph is not None:  # the graph is SVG, drawn to its own size
        ctx = click.get_current_context()
        refuse_together(ctx, "graph", *(("format_",) if format_ != "svg" else ()), "ascii_",
                        "width")
    if out is not None:
        check_output_path(out, force=force)
    output = Output(color=False if out else color_choice(color, no_color))
    pipeline, packets = read_conversation(file, stream=stream, udp=udp, port=port or 0)
    from sockcap.commands.report import saved_story

    calls, events = saved_story(file, packets, output)  # kept in a .pcapng run saved
    text: str | None
    if graph is not None:
        text = graph_svg(packets, graph, events)
    else:
        text = ladder_text(packets, pipeline.first_ts, format_, output, width=width,
                           ascii_=ascii_, to_file=out is not None, calls=calls, events=events)
    if text is None:
        output.flush()
        return
    if out is not None:
        from sockcap.commands.outfile import write_text_file

        write_text_file(out, text, force=force, note=output.note)
    else:
        output.stream.write(text)
        output.flush()


def read_conversation(path: str, *, stream: int | None, udp: bool, port: int
                      ) -> tuple[Pipeline, list[Annotated]]:
    """The chosen conversation's packets, read from ``path`` through the pipeline."""
    from contextlib import ExitStack

    from sockcap.decode.records import IPPROTO_TCP, IPPROTO_UDP
    from sockcap.pcapfile.reader import open_capture
    from sockcap.pcapfile.source import open_input
    from sockcap.pipeline import Pipeline

    pipeline = Pipeline(port=port)
    with ExitStack() as stack:
        reader = open_capture(open_input(path, stack))
        if stream is not None:
            proto = IPPROTO_UDP if udp else IPPROTO_TCP
            packets = list(pipeline.select(reader, proto, stream, skipper=reader))
        else:
            packets = _first_conversation(pipeline.packets(reader))
    if not packets:
        raise _no_conversation(path, stream, udp, pipeline)
    return pipeline, packets


def _first_conversation(annotated: Iterable[Annotated]) -> list[Annotated]:
    """The first TCP conversation's packets, else the first UDP one's."""
    from sockcap.decode.records import IPPROTO_TCP

    tcp: list[Annotated] = []
    udp: list[Annotated] = []
    for a in annotated:
        conv = a.conv
        if conv is None:
            continue
        if conv.proto == IPPROTO_TCP:
            if not tcp or tcp[0].conv is conv:
                tcp.append(a)
        elif not udp or udp[0].conv is conv:
            udp.append(a)
    return tcp or udp


def _no_conversation(path: str, stream: int | None, udp: bool, pipeline: Pipeline) -> Exception:
    from sockcap.decode.records import IPPROTO_TCP, IPPROTO_UDP
    from sockcap.errors import InputError

    if stream is None and pipeline.port:
        return InputError(_("no TCP or UDP conversation to or from port {port} in {path}").format(
            port=pipeline.port, path=path))
    if stream is None:
        return InputError(_("no TCP or UDP conversation in {path}").format(path=path))
    kind = "udp" if udp else "tcp"
    proto = IPPROTO_UDP if udp else IPPROTO_TCP
    count = sum(1 for c in pipeline.tracker.conversations if c.proto == proto)
    if count:
        return InputError(_("no {kind} stream {stream} in {path} (it has {count}: 0..{last})").format(
            kind=kind, stream=stream, path=path, count=count, last=count - 1))
    return InputError(_("no {kind} conversation in {path}").format(kind=kind, path=path))


def graph_svg(packets: Sequence[Annotated], style: str, events: Sequence[Any] = ()) -> str:
    """The time-sequence graph; with ``--kernel``'s ``tcp_probe`` events kept in the
    file, the sender's congestion window and ssthresh under it."""
    from sockcap.decode.records import IPPROTO_TCP
    from sockcap.errors import InputError
    from sockcap.render.follow import stream_name
    from sockcap.render.seqgraph import (
        probe_cwnd,
        probe_source,
        probe_srtt,
        sender_mss,
        sender_side,
        seqgraph_layout,
    )
    from sockcap.render.svg import cwnd_graph_svg, seqgraph_svg

    conv = packets[0].conv
    assert conv is not None
    if conv.proto != IPPROTO_TCP:
        raise InputError(_("a time-sequence graph needs a TCP stream ({stream} is UDP)").format(
            stream=stream_name(conv)))
    side = sender_side(packets)
    who = _("client to server") if side else _("server to client")
    title = _("{stream}: time-sequence graph, {who}").format(stream=stream_name(conv), who=who)
    graph = seqgraph_layout(packets, side, style, title)
    cwnd = probe_cwnd(events, packets, side)
    if cwnd:
        return cwnd_graph_svg(graph, cwnd, sender_mss(packets, side), source=probe_source(),
                              srtt=probe_srtt(events, packets, side))
    return seqgraph_svg(graph)


def ladder_text(packets: Sequence[Annotated], first_ts: int, format_: str, output: Output, *,
                width: int | None, ascii_: bool, to_file: bool, calls: Sequence[Any] = (),
                events: Sequence[Any] = ()) -> str | None:
    """SVG or Mermaid text to write; for ``text`` on stdout, the lines are printed here
    (styled on a terminal) and None is returned. ``calls`` and ``events`` (tied to the
    packets): the socket calls and TCP states written beside the lifelines."""
    from sockcap.render.ladder import ladder_layout, with_side_notes
    from sockcap.render.ladder_text import ladder_lines, ladder_mermaid
    from sockcap.render.svg import ladder_svg

    ladder = with_side_notes(ladder_layout(packets, first_ts), packets, calls, events,
                             infer=format_ == "svg")
    if format_ == "svg":
        return ladder_svg(ladder)
    if format_ == "mermaid":
        return "\n".join(ladder_mermaid(ladder)) + "\n"
    ascii_ = ascii_ or not can_draw_boxes(output)
    lines = ladder_lines(ladder, width or terminal_width(output), ascii_)
    if to_file:
        return "".join(text + "\n" for text, _style in lines)
    output.lines(lines)
    return None


def print_ladder(packets: Sequence[Annotated], first_ts: int, output: Output,
                 calls: Sequence[Any] = (), events: Sequence[Any] = ()) -> None:
    """The text ladder on ``output`` (``sockcap run --capture --diagram``), with the
    calls and, with ``--kernel``, each side's TCP states beside the lifelines."""
    ladder_text(packets, first_ts, "text", output, width=None, ascii_=False, to_file=False,
                calls=calls, events=events)


def terminal_width(output: Output) -> int:
    """The terminal's columns (80 when the output is not a terminal)."""
    import os

    isatty: Callable[[], bool] | None = getattr(output.stream, "isatty", None)
    if isatty is None or not isatty():
        return 80
    try:
        return os.get_terminal_size(output.stream.fileno()).columns
    except (OSError, ValueError):
        return 80


def can_draw_boxes(output: Output) -> bool:
    """Can the output's encoding show the box-drawing characters?"""
    encoding = getattr(output.stream, "encoding", None) or "ascii"
    try:
        BOX_SAMPLE.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return False
    return True
