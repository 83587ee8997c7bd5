"""``sockcap quiz`` and ``sockcap step``: learn by predicting and by stepping (the edges).

Both read one TCP connection — the first of FILE, or of a scenario captured now with
``--scenario NAME`` (as ``sockcap run --capture --scenario NAME``; needs root or
CAP_NET_RAW) — and hand it to the pure views :mod:`sockcap.render.quiz` and
:mod:`sockcap.render.step`. Only this module reads the keyboard and writes the screen.

With ``--scenario``, sockcap's own socket calls are recorded as it runs the scenario, so
``step`` and ``quiz`` explain each FIN by the close() or shutdown() that sent it; ``step
--scenario NAME --kernel`` also traces the kernel (as ``run --capture --kernel``; needs
root) and shows its recorded TCP states instead of the ones inferred from the packets. A
``.pcapng`` FILE that ``run --capture --out``, ``capture --calls/--kernel -w`` or ``lab``
saved keeps the calls and kernel events (:mod:`sockcap.pcapfile.storyfile`): ``step``,
``quiz`` and ``exercise`` of it use them as the live run did, with no flag (``--kernel``
is accepted and then only asks that the file keeps the kernel's events). Any other FILE
holds neither: its states are inferred, and ``step`` says so.

``quiz`` reads one answer per line (a choice's number or the value), so it works on a
terminal and from a pipe; at the end of input it stops and gives the score so far.
``step`` reads single keys on a terminal (→/← or n/p, q); from a pipe it reads the same
keys as lines.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

import click

from sockcap.commands.options import SEED, STREAM
from sockcap.i18n import _

if TYPE_CHECKING:
    from sockcap.analysis.calls import Call
    from sockcap.analysis.conversation import Annotated
    from sockcap.decode.ftrace import KernelEvent
    from sockcap.endpoints.loopback import RunResult
    from sockcap.pipeline import Pipeline


def _source_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option("--scenario", metavar="NAME", default=None,
                     help=_("Capture this scenario now and use it instead of FILE (needs root or CAP_NET_RAW; 'sockcap run --scenario list' lists them)."))(f)
    f = click.option("--stream", type=STREAM, default=None, metavar="N",
                     help=_("This TCP connection (Wireshark's tcp.stream; the first one when not given)."))(f)
    f = click.argument("file", required=False, type=click.Path(dir_okay=False, allow_dash=True))(f)
    return f


def read_recorded(file: str | None, scenario: str | None, stream: int | None = None,
                  kernel: bool = False
                  ) -> tuple[Pipeline, list[Annotated], list[Call], list[KernelEvent]]:
    """TCP stream ``stream`` (the first TCP connection when None) of FILE, or of
    SCENARIO captured now, with the calls and kernel events recorded while the scenario
    was captured or kept in FILE, tied to the connection's packets (none for a file that
    keeps none). ``kernel``: the states must be the kernel's (a scenario traces it; a file
    without kernel events is refused in one line)."""
    from sockcap.analysis.story import tie_calls, tie_kernel
    from sockcap.commands.diagram import read_conversation

    if (file is None) == (scenario is None):
        raise click.UsageError(_("give a capture FILE or --scenario NAME (one of them)"))
    result = None
    if scenario is not None:
        file, result = _capture_scenario(scenario, kernel)
    assert file is not None
    from sockcap.decode.records import IPPROTO_TCP
    from sockcap.errors import InputError

    pipeline, packets = read_conversation(file, stream=stream, udp=False, port=0)
    conv = packets[0].conv
    if conv is None or conv.proto != IPPROTO_TCP:
        raise InputError(_("no TCP connection in {path}: the quiz, the steps and the "
                           "worksheet are about TCP").format(path=file))
    if result is None:  # a file: the calls and kernel events it keeps, if any
        from sockcap.commands.report import saved_story
        from sockcap.output import Output

        calls, events = saved_story(file, packets, Output())
        if kernel and not events:
            raise InputError(_("{path} keeps no kernel events: record them with 'sockcap "
                               "run --capture --kernel --out X.pcapng' or use --scenario NAME "
                               "--kernel").format(path=file))
        return pipeline, packets, calls, events
    return (pipeline, packets, tie_calls(result.calls, packets),
            tie_kernel(result.events, packets, result.listen_overflows))


def _capture_scenario(name: str, kernel: bool = False) -> tuple[str, RunResult]:
    import asyncio

    from sockcap.commands.exchange import capture_in_private_namespace
    from sockcap.endpoints.loopback import RunOptions, run_scenario
    from sockcap.endpoints.scenarios import SCENARIOS
    from sockcap.output import Output

    if name not in SCENARIOS:
        raise click.BadParameter(_("no scenario {name}: one of {names}").format(
            name=name, names=", ".join(SCENARIOS)), param_hint="'--scenario'")
    capture_in_private_namespace()
    output = Output()

    def note(text: str) -> None:
        output.note(_("sockcap: {text}").format(text=text))

    result = asyncio.run(run_scenario(name, RunOptions(capture=True, kernel=kernel), note=note))
    assert result.path is not None
    output.note(_("sockcap: captured scenario {name} in {path}").format(
        name=name, path=result.path))
    return result.path, result


@click.command("quiz", help=_("Predict the next packet: questions on a real capture (flags, Seq, Ack, Len, who sends it, the state of each end), checked and explained, with a score."))
@_source_options
@click.option("--questions", "count", type=click.IntRange(1, 100), default=10, show_default=True,
              help=_("How many questions."))
@click.option("--seed", type=SEED, default=0, show_default=True,
              help=_("Which questions are drawn (the same seed gives the same quiz)."))
@click.option("--json", "json_", is_flag=True,
              help=_("Write the questions with their answers as JSON (for teachers and scripts) instead of asking."))
def quiz(file: str | None, scenario: str | None, stream: int | None, count: int, seed: int,
         json_: bool) -> None:
    from sockcap.render.quiz import make_questions

    _pipeline, packets, calls, events = read_recorded(file, scenario, stream)
    questions = make_questions(packets, count, seed, calls, events)
    if json_:
        import json

        json.dump([q.as_json() for q in questions], sys.stdout, ensure_ascii=False, indent=1)
        sys.stdout.write("\n")
        return
    ask(questions, packets, _pipeline, sys.stdin, sys.stdout)


def ask(questions: list, packets: list[Annotated], pipeline: Pipeline,  # type: ignore[type-arg]
        keys: TextIO, out: TextIO) -> int:
    """Ask each question in turn; show the packets before it; return the score."""
    from sockcap.render.quiz import check_answer, choice_text, score_line
    from sockcap.render.timeline import Timeline

    timeline = Timeline(clock=pipeline)
    shown = 0
    right = 0
    asked = 0
    lines = {a.no: timeline.line(a) for a in packets}
    for n, q in enumerate(questions, 1):
        for no, line in lines.items():
            if shown < no < q.packet:
                out.write(line + "\n")
        shown = max(shown, q.packet - 1)
        out.write("\n" + _("question {n} of {total}: {question}").format(
            n=n, total=len(questions), question=q.question) + "\n")
        if q.choices is not None:
            for i, c in enumerate(q.choices, 1):
                out.write(f"  {i}) {choice_text(q.field, c)}\n")
        out.write(_("your answer: "))
        out.flush()
        typed = keys.readline()
        if not typed:
            out.write("\n")
            break
        asked += 1
        if check_answer(q, typed):
            right += 1
            out.write(_("right!") + "\n")
        else:
            out.write(_("not quite: the answer is {answer}.").format(
                answer=choice_text(q.field, q.answer)) + "\n")
        if shown < q.packet:  # the packet, revealed
            out.write(lines[q.packet] + "\n")
            shown = q.packet
        out.write("  " + q.explanation + "\n")
    out.write("\n" + score_line(right, asked) + "\n")
    out.flush()
    return right


@click.command("exercise", help=_("Write a printable worksheet drawn from a real capture (fill in Seq/Ack, mark the handshake, predict packets and states, explain a retransmission), and with --answers its answer key."))
@_source_options
@click.option("-o", "--out", type=click.Path(dir_okay=False), required=True, metavar="FILE",
              help=_("The worksheet (HTML) to write."))
@click.option("--answers", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help=_("Also write the answer key (HTML) to FILE."))
@click.option("--seed", type=SEED, default=0, show_default=True,
              help=_("Which questions are drawn (the same seed gives the same quiz)."))
@click.option("--force", is_flag=True, help=_("Overwrite the -o file if it exists."))
def exercise(file: str | None, scenario: str | None, stream: int | None, out: str,
             answers: str | None, seed: int, force: bool) -> None:
    from pathlib import Path

    from sockcap.commands.outfile import write_text_file
    from sockcap.output import Output
    from sockcap.owner import check_output_path
    from sockcap.render.worksheet import worksheet_html

    check_output_path(out, force=force)
    if answers is not None:
        check_output_path(answers, force=force)
    output = Output()
    _pipeline, packets, calls, events = read_recorded(file, scenario, stream)
    title = Path(file).name if file else _("scenario {name}").format(name=scenario)
    for path, key in ((out, False), (answers, True)):
        if path is not None:
            page = worksheet_html(packets, title, answers=key, seed=seed, calls=calls,
                                  events=events)
            write_text_file(path, page, force=force, note=output.note)
            output.note(_("sockcap: wrote {path} ({size} KiB)").format(
                path=path, size=len(page.encode()) >> 10))


@click.command("step", help=_("Step through a connection packet by packet (→ next, ← previous, q quit): the ladder, the packet's bytes and explanation, and both ends' TCP state."))
@_source_options
@click.option("--ascii", "ascii_", is_flag=True, help=_("ASCII lines instead of box-drawing characters."))
@click.option("--kernel", is_flag=True, help=_("Show the kernel's recorded TCP states instead of inferred ones: with --scenario, also trace the kernel (needs root); a FILE must keep them (a .pcapng saved by run --capture --kernel; such a file shows them without --kernel)."))
def step(file: str | None, scenario: str | None, stream: int | None, ascii_: bool,
         kernel: bool) -> None:
    from sockcap.render.step import prepare_steps

    pipeline, packets, calls, events = read_recorded(file, scenario, stream, kernel)
    try:
        steps = prepare_steps(packets, pipeline, calls, events)
    except ValueError as e:
        raise click.UsageError(str(e)) from None
    if sys.stdin.isatty():
        with _raw_keys(sys.stdin):
            walk(steps, pipeline.first_ts, _tty_keys(sys.stdin), sys.stdout, clear=True,
                 ascii=ascii_)
    else:
        walk(steps, pipeline.first_ts, (line.strip() for line in sys.stdin), sys.stdout,
             clear=False, ascii=ascii_)


KEYS_NEXT = {"\x1b[C", "n", " ", "l", "\r", ""}
KEYS_BACK = {"\x1b[D", "p", "h"}
KEYS_QUIT = {"q", "\x03", "\x1b"}


def walk(steps, first_ts: int, keys, out: TextIO, *, clear: bool,  # type: ignore[no-untyped-def]
         ascii: bool = False) -> int:
    """Draw step after step as the keys say; returns the last step shown (0-based)."""
    from sockcap.render.step import step_screen

    width = _width(out)
    i = 0
    while True:
        if clear:
            out.write("\x1b[H\x1b[2J")
        for text, _style in step_screen(steps, i, first_ts, width=width, ascii=ascii):
            out.write(text + ("\r\n" if clear else "\n"))
        out.flush()
        key = next(keys, None)
        if key is None or key in KEYS_QUIT:
            return i
        if key in KEYS_NEXT:
            i = min(i + 1, len(steps.packets) - 1)
        elif key in KEYS_BACK:
            i = max(i - 1, 0)


def _width(out: TextIO) -> int:
    try:
        return max(60, min(os.get_terminal_size(out.fileno()).columns, 160))
    except (OSError, ValueError, AttributeError):
        return 80


def _tty_keys(stream: TextIO):  # type: ignore[no-untyped-def]
    """Keys from a terminal in raw mode: an arrow's escape sequence is one key."""
    fd = stream.fileno()
    while True:
        ch = os.read(fd, 1).decode("latin-1")
        if not ch:
            return
        if ch == "\x1b":
            rest = os.read(fd, 2).decode("latin-1")
            yield ch + rest
        else:
            yield ch


class _raw_keys:
    """The terminal in cbreak mode (keys one at a time, no echo), restored on exit."""

    def __init__(self, stream: TextIO) -> None:
        self.fd = stream.fileno()
        self.saved: list | None = None  # type: ignore[type-arg]

    def __enter__(self) -> _raw_keys:
        import termios
        import tty

        self.saved = termios.tcgetattr(self.fd)
        tty.setcbreak(self.fd)
        return self

    def __exit__(self, *exc: object) -> None:
        import termios

        if self.saved is not None:
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)
