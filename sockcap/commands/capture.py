"""``sockcap capture``: a live capture streamed as a timeline, optionally around a command.

Only click and the standard library are imported at the top (``sockcap --help`` stays
fast); the capture engine is :mod:`sockcap.capture.live`.

Where things go: the timeline (or one JSON object per packet) on stdout, flushed after
every batch so a pipe sees packets as they arrive; notes and the tcpdump-style counters
on stderr. With ``--json`` the last stdout line is ``{"summary": {...}}`` (the same
counters, for scripts), and the command's own stdout goes to stderr so stdout stays JSON.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from sockcap.commands.options import COUNT, FiniteFloat, output_options
from sockcap.i18n import _, ngettext

BACKEND_CHOICE = click.Choice(["auto", "afpacket", "dumpcap", "scapy"])
NAMESPACE_NOTE = ("; capturing other programs on this machine's interfaces needs this "
                  "privilege, while 'sockcap run --capture' and 'sockcap lab' need none")


@click.command(context_settings={"ignore_unknown_options": False},
               help=_("Capture live and show the timeline; with '-- COMMAND ARGS...' capture while it runs.\n"
               '\n'
               '\b\n'
               "sudo sockcap capture -f 'tcp port 5001' -- ./client\n"
               "    a C client's whole exchange\n"
               'sockcap capture -c 20 -w out.pcap\n'
               '    20 packets on lo, also saved\n'
               '\n'
               'Ctrl-C stops; the counters at the end say what the kernel dropped, if anything.\n'
               '\n'
               "--duration is the whole capture's length, whether the command ends before or not;\n"
               "--linger S ends it S seconds after the command (a server's late FIN is still captured).\n"
               'A command still running when the capture ends (-c, --duration, Ctrl-C) is stopped, and\n'
               'sockcap says so. A command that exits on its own with a failure status still gets its\n'
               'capture shown and saved; sockcap then names the status and exits with 1.'))
@click.option("-i", "--interface", "iface", default="lo", show_default=True, help=_("Interface to capture on (see 'sockcap interfaces')."))
@click.option("-f", "--filter", "filter_", default="", metavar="EXPR", help=_("Capture filter, tcpdump syntax, run in the kernel (e.g. 'tcp port 5001')."))
@click.option("-c", "count", type=COUNT, default=None, help=_("Stop after N packets."))
@click.option("--duration", type=FiniteFloat(0, min_open=True), default=None, metavar="S", help=_("Stop after S seconds."))
@click.option("-w", "--write", "out", type=click.Path(dir_okay=False), default=None, help=_("Also write the packets to this pcap file (mode 0600), as they arrive."))
@click.option("--force", is_flag=True, help=_("Overwrite the -w file if it exists."))
@click.option("-G", "rotate_seconds", type=FiniteFloat(0, 10_000_000, min_open=True), default=None, metavar="SECONDS", help=_("Start a new -w file every SECONDS; the -w name is a strftime pattern (lab-%Y%m%d-%H%M%S.pcap), as tcpdump's."))
@click.option("-C", "rotate_mb", type=FiniteFloat(0, 10_000_000, min_open=True), default=None, metavar="MB", help=_("Start a new -w file once it holds over MB million bytes: NAME, NAME1, NAME2..."))
@click.option("-W", "rotate_files", type=click.IntRange(1, 1_000_000), default=None, metavar="FILES", help=_("With -C: a ring of FILES files (NAME0 .. NAME{N-1}), the oldest overwritten; with -G alone: stop after FILES files."))
@click.option("--linger", type=FiniteFloat(0), default=None, metavar="S", help=_("With a command: keep capturing S seconds after it ends (default: until --duration ends, else a short drain)."))
@click.option("-q", "--quiet", is_flag=True, help=_("No timeline: only the file and the counters."))
@click.option("--backend", type=BACKEND_CHOICE, default="auto", show_default=True, help=_("Capture engine (auto: the best one permitted; said on stderr)."))
@click.option("--calls", is_flag=True, help=_("With a command: also record its socket calls (and its children's) with strace, shown among the packets they caused; the timeline is written when the command ends."))
@click.option("--kernel", is_flag=True, help=_("Also show the kernel's side: TCP states, drops and their reasons, resets, the congestion window (needs root); the timeline is written at the end."))
@output_options
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def capture(iface: str, filter_: str, count: int | None, duration: float | None, out: str | None,
            force: bool, rotate_seconds: float | None, rotate_mb: float | None,
            rotate_files: int | None, linger: float | None, quiet: bool, backend: str,
            calls: bool, kernel: bool, hex_: bool, json_: bool, style: str, no_color: bool,
            explain: bool, command: tuple[str, ...], color: str = "auto") -> None:
    from sockcap.capture.filters import with_icmp_errors
    from sockcap.capture.live import LiveOptions
    from sockcap.owner import check_output_path

    if linger is not None and not command:
        raise click.UsageError(_("--linger keeps capturing after a command: give one after --"))
    if calls and not command:
        raise click.UsageError(_("--calls records a command's socket calls: give one after --"))
    rotation = _rotation(out, rotate_seconds, rotate_mb, rotate_files)
    if out is not None:
        check_output_path(_first_file(out, rotation, force), force=force)
    widened, icmp_port = with_icmp_errors(filter_)
    if icmp_port:
        click.echo(_("sockcap: the filter also keeps the ICMP errors that quote port {port} "
                     "(port unreachable: a datagram sent where nothing listens)").format(
                         port=icmp_port), err=True)
    opts = LiveOptions(iface=iface, filter=widened, count=count or 0, duration=duration or 0.0,
                       out=out, force=force, backend=backend, command=command,
                       command_stdout=2 if json_ else None, linger=linger, rotation=rotation)
    run_capture(opts, quiet=quiet, hex_=hex_, json_=json_, style=style, no_color=no_color,
                color=color,
                calls=calls, kernel=kernel, explain=explain)


def _rotation(out: str | None, seconds: float | None, mb: float | None,
              files: int | None) -> Any:
    """tcpdump's -G/-C/-W as a Rotation, or None; a combination that cannot work is a
    usage error said before the capture starts."""
    if seconds is None and mb is None and files is None:
        return None
    from sockcap.pcapfile.rotation import Rotation, has_time_fields

    if out is None:
        raise click.UsageError(_("-G, -C and -W rotate the -w file: give -w NAME"))
    if seconds is None and mb is None:
        raise click.UsageError(_("-W counts the files of -C or -G: give one of them"))
    if seconds is not None and not has_time_fields(out):
        raise click.UsageError(_("with -G the -w name needs time fields, or every file would "
                                 "have one name: e.g. -w 'lab-%Y%m%d-%H%M%S.pcap'"))
    return Rotation(seconds or 0.0, mb or 0.0, files or 0)


def _first_file(out: str, rotation: Any, force: bool) -> str:
    """The first file's name; with -C alone, a file of an earlier series in its place
    (NAME1, NAME2...) is refused now, not when the capture reaches its number."""
    if rotation is None:
        return out
    import glob
    import re
    import time
    from pathlib import Path

    from sockcap.errors import OutputExistsError
    from sockcap.pcapfile.rotation import file_name

    if rotation.megabytes and not rotation.seconds and not force:
        target = Path(out)
        series = re.compile(re.escape(target.name) + r"\d+")
        for old in sorted(target.parent.glob(glob.escape(target.name) + "*")):
            if series.fullmatch(old.name):
                raise OutputExistsError(_("{path} exists; use --force to overwrite").format(
                    path=old))
    return file_name(out, rotation, 0, time.time())


def run_capture(opts: Any, *, quiet: bool, hex_: bool, json_: bool, style: str,
                no_color: bool, calls: bool = False, kernel: bool = False,
                explain: bool = False, color: str = "auto") -> None:
    """Wire the capture to the view and the output; print the counters; re-raise an interrupt.

    With ``calls`` the command runs under strace (:mod:`sockcap.capture.calls`); with
    ``kernel`` a tracefs instance records the kernel's TCP events
    (:mod:`sockcap.capture.kernel`). Either way the packets are kept, not printed as they
    come, and the whole story (packets, calls, events, tied together) is printed once the
    capture is over: a call is known only when strace has written it, and a kernel event
    only when the trace is read."""
    import dataclasses

    from sockcap.capture.live import capture_live
    from sockcap.errors import CapturePermissionError, CommandFailedError
    from sockcap.output import Output, color_choice
    from sockcap.pipeline import Pipeline
    from sockcap.signals import sigterm_raises

    output = Output(color=color_choice(color, no_color))
    pipeline = Pipeline()
    view = _view(pipeline, json_=json_, style=style, hex_=hex_, explain=explain)
    kept: list[Any] = []
    later = calls or kernel

    def show(frames: list[Any]) -> None:
        if later:
            kept.extend(pipeline.packets(frames))
        elif not quiet:
            for a in pipeline.packets(frames):
                output.lines(view.styled(a))
            output.flush()

    def note(text: str) -> None:
        output.note(_("sockcap: {text}").format(text=text))

    shown = opts.command
    trace_path = _traced(opts, note) if calls else None
    if trace_path is not None:
        opts = dataclasses.replace(opts, command=_traced_argv(opts.command, trace_path),
                                   own_group=True)
    tell = note if sys.stderr.isatty() else None  # progress words, for a person only
    with sigterm_raises(), _kernel(kernel, opts.filter, note) as trace:
        try:
            result = capture_live(opts, show, note, tell)
        except CapturePermissionError as e:  # the host's interfaces: no namespace helps
            raise CapturePermissionError(e.message, e.hint + NAMESPACE_NOTE) from None
        finally:
            events = trace.stop() if trace is not None else []
            found = _read_calls(trace_path)
    if later:
        _story(kept, found, events, trace.overflows if trace is not None else 0, result,
               pipeline.first_ts, view, output, quiet=quiet, json_=json_, explain=explain)
    opts = dataclasses.replace(opts, command=shown)
    _report(result, opts, output, json_)
    if result.interrupt is not None:
        raise result.interrupt
    if result.command_status and not result.command_stopped:
        raise CommandFailedError(_("{command} {status}").format(command=opts.command[0], status=status_words(result.command_status)))


def _view(pipeline: Any, *, json_: bool, style: str, hex_: bool, explain: bool) -> Any:
    """The packets' view (with its explainer's modules only when asked for)."""
    from sockcap.render.packets import PacketView

    explainer = None
    if explain:
        from sockcap.render.explain import PacketExplainer

        explainer = PacketExplainer()
    return PacketView(pipeline, json=json_, style=style, hex_=hex_, explainer=explainer)


def _story(kept: list[Any], found: list[Any], events: list[Any], overflows: int, result: Any,
           first_ts: int, view: Any, output: Any, *, quiet: bool, json_: bool,
           explain: bool) -> None:
    """After a capture with ``--calls``/``--kernel``: the packets, calls and kernel events
    tied together and printed (unless ``quiet``); a ``-w FILE.pcapng`` keeps them."""
    if not quiet:
        from sockcap.commands.exchange import print_story

        tied = print_story(kept, found, events, first_ts, view, output, json_=json_,
                           explain=explain, overflows=overflows)
        output.flush()
    else:
        from sockcap.analysis.story import tie_calls, tie_kernel

        tied = tie_calls(found, kept), tie_kernel(events, kept, overflows)
    if result.path and len(result.files) <= 1:  # -w FILE.pcapng keeps them
        from sockcap.commands.exchange import keep_story

        keep_story(result.files[0] if result.files else result.path, found, events, overflows,
                   tied[0], tied[1], first_ts, output)


def _traced(opts: Any, note: Any) -> str | None:
    """The trace file's path for ``--calls``, or None (said in one line) without strace."""
    import os

    from sockcap.capture.calls import strace_path, trace_folder
    from sockcap.errors import InputError

    if strace_path() is None:
        note(_("--calls needs strace (sudo apt install strace): the calls are left out, the "
               "capture goes on"))
        return None
    import shutil

    if shutil.which(opts.command[0]) is None:
        raise InputError(_("command not found: {argv}").format(argv=opts.command[0]))
    return os.path.join(trace_folder(), "calls.strace")


def _traced_argv(argv: Any, trace_path: str) -> tuple[str, ...]:
    from sockcap.capture.calls import traced_argv

    return tuple(traced_argv(list(argv), trace_path))


def _read_calls(trace_path: str | None) -> list[Any]:
    if trace_path is None:
        return []
    from sockcap.capture.calls import read_calls, remove_trace

    try:
        return read_calls(trace_path)
    finally:
        remove_trace(trace_path)


def _kernel(kernel: bool, filter_: str, note: Any) -> Any:
    """The kernel's trace for ``--kernel`` (filtered to the ports the capture filter
    names, if any), or a context that gives None."""
    import contextlib
    import re

    if not kernel:
        return contextlib.nullcontext(None)
    from sockcap.capture.kernel import KernelTrace

    ports = [int(p) for p in re.findall(r"\bport\s+(\d+)", filter_)]
    trace = KernelTrace.open(ports, note)
    if trace is None:
        return contextlib.nullcontext(None)

    @contextlib.contextmanager
    def closing() -> Any:
        try:
            yield trace
        finally:
            trace.close()

    return closing()


def status_words(status: int) -> str:
    """``exited with status 3``, or ``was killed by signal 11 (SIGSEGV)`` (Popen's -11)."""
    if status >= 0:
        return f"exited with status {status}"
    import signal

    try:
        name = f" ({signal.Signals(-status).name})"
    except ValueError:
        name = ""
    return f"was killed by signal {-status}{name}"


def unread(result: Any) -> int:
    """Packets the kernel accepted into the ring that were never handed on (0: unknown or
    none): not read before the stop, or past the count."""
    s = result.stats
    if s.received < 0 or s.dropped < 0:
        return 0
    return max(0, int(s.received - s.dropped - result.frames))


def summary_record(result: Any, opts: Any) -> dict[str, Any]:
    """The counters as a JSON-ready dict (``-1``: the backend cannot tell)."""
    s = result.stats
    return {"backend": result.backend, "interface": opts.iface, "filter": opts.filter or None,
            "captured": result.frames, "received": s.received, "dropped": s.dropped,
            "unread": unread(result),
            "file": result.path, "written": result.written if result.path else None,
            "files": result.files,
            "command_exit": result.command_status,
            "command_stopped": bool(result.command_stopped),
            "interrupted": result.interrupt is not None}


def summary_lines(result: Any, count_limit: int = 0) -> list[str]:
    """tcpdump's three closing lines, the packets received but never handed on (so that
    captured + dropped + these = received), and a warning whenever the kernel dropped
    packets."""
    s = result.stats

    def count(n: int, what: str) -> str:
        """tcpdump's words: ``1 packet captured``, ``2 packets ...`` (its PLURAL_SUFFIX)."""
        if n < 0:
            return f"unknown number of packets {what}"
        return f"{n} packet{'' if n == 1 else 's'} {what}"

    lines = [count(result.frames, "captured"), count(s.received, "received by filter"),
             count(s.dropped, "dropped by kernel")]
    left = unread(result)
    if left and count_limit and result.frames >= count_limit:
        lines.append(ngettext(
            "{count} packet received after the count (-c {limit}) was reached, not kept",
            "{count} packets received after the count (-c {limit}) was reached, not kept",
            left).format(count=left, limit=count_limit))
    elif left:
        lines.append(ngettext("{count} packet received but not read before the stop",
                              "{count} packets received but not read before the stop",
                              left).format(count=left))
    if s.dropped > 0:
        lines.append(f"sockcap: warning: the kernel dropped {s.dropped} packets: this capture is "
                     "incomplete (narrow it with -f, or use -q -w FILE and view the file later)")
    return lines


def _report(result: Any, opts: Any, output: Any, json_: bool) -> None:
    import json

    if json_:
        output.line(json.dumps({"summary": summary_record(result, opts)}, separators=(",", ":")))
        output.flush()
    if len(result.files) > 1:
        output.note(ngettext("sockcap: saved {written} packet to {files} files, {first} .. {last}",
                             "sockcap: saved {written} packets to {files} files, {first} .. {last}",
                             result.written).format(written=result.written,
                                                    files=len(result.files),
                                                    first=result.files[0],
                                                    last=result.files[-1]))
    elif result.path:
        path = result.files[0] if result.files else result.path
        output.note(ngettext("sockcap: saved {written} packet to {path}",
                             "sockcap: saved {written} packets to {path}",
                             result.written).format(written=result.written, path=path))
    if result.command_stopped:
        output.note(_("sockcap: stopped {command} {reason}").format(command=opts.command[0], reason=result.command_stopped))
    elif result.command_status == 0:
        output.note(_("sockcap: {command} exited with status 0").format(command=opts.command[0]))
    for line in summary_lines(result, opts.count):
        output.note(line)
    sys.stdout.flush()
