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

from sockcap.commands.options import output_options
from sockcap.i18n import _

BACKEND_CHOICE = click.Choice(["auto", "afpacket", "dumpcap", "scapy"])
NAMESPACE_NOTE = ("; capturing other programs on this machine's interfaces needs this "
                  "privilege, while 'sockcap run --capture' and 'sockcap lab' need none")


@click.command(context_settings={"ignore_unknown_options": False})
@click.option("-i", "--interface", "iface", default="lo", show_default=True, help=_("Interface to capture on (see 'sockcap interfaces')."))
@click.option("-f", "--filter", "filter_", default="", metavar="EXPR", help=_("Capture filter, tcpdump syntax, run in the kernel (e.g. 'tcp port 5001')."))
@click.option("-c", "count", type=click.IntRange(1), default=None, help=_("Stop after N packets."))
@click.option("--duration", type=click.FloatRange(0, min_open=True), default=None, metavar="S", help=_("Stop after S seconds."))
@click.option("-w", "--write", "out", type=click.Path(dir_okay=False), default=None, help=_("Also write the packets to this pcap file (mode 0600), as they arrive."))
@click.option("--force", is_flag=True, help=_("Overwrite the -w file if it exists."))
@click.option("-q", "--quiet", is_flag=True, help=_("No timeline: only the file and the counters."))
@click.option("--backend", type=BACKEND_CHOICE, default="auto", show_default=True, help=_("Capture engine (auto: the best one permitted; said on stderr)."))
@output_options
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def capture(iface: str, filter_: str, count: int | None, duration: float | None, out: str | None,
            force: bool, quiet: bool, backend: str, hex_: bool, json_: bool, style: str,
            no_color: bool, command: tuple[str, ...]) -> None:
    """Capture live and show the timeline; with '-- COMMAND ARGS...' capture while it runs.

    \b
    sudo sockcap capture -f 'tcp port 5001' -- ./client      a C client's whole exchange
    sockcap capture -c 20 -w out.pcap                        20 packets on lo, also saved
    Ctrl-C stops; the counters at the end say what the kernel dropped, if anything.

    A command still running when the capture ends (-c, --duration, Ctrl-C) is stopped, and
    sockcap says so. A command that exits on its own with a failure status still gets its
    capture shown and saved; sockcap then names the status and exits with 1.
    """
    from sockcap.capture.live import LiveOptions

    opts = LiveOptions(iface=iface, filter=filter_, count=count or 0, duration=duration or 0.0,
                       out=out, force=force, backend=backend, command=command,
                       command_stdout=2 if json_ else None)
    run_capture(opts, quiet=quiet, hex_=hex_, json_=json_, style=style, no_color=no_color)


def run_capture(opts: Any, *, quiet: bool, hex_: bool, json_: bool, style: str,
                no_color: bool) -> None:
    """Wire the capture to the view and the output; print the counters; re-raise an interrupt."""
    from sockcap.capture.live import capture_live
    from sockcap.errors import CapturePermissionError, CommandFailedError
    from sockcap.output import Output
    from sockcap.pipeline import Pipeline
    from sockcap.render.packets import PacketView
    from sockcap.signals import sigterm_raises

    output = Output(color=False if no_color else None)
    pipeline = Pipeline()
    view = PacketView(pipeline, json=json_, style=style, hex_=hex_)

    def show(frames: list[Any]) -> None:
        if not quiet:
            for a in pipeline.packets(frames):
                output.lines(view.styled(a))
            output.flush()

    def note(text: str) -> None:
        output.note(_("sockcap: {text}").format(text=text))

    with sigterm_raises():
        try:
            result = capture_live(opts, show, note)
        except CapturePermissionError as e:  # the host's interfaces: no namespace helps
            raise CapturePermissionError(e.message, e.hint + NAMESPACE_NOTE) from None
    _report(result, opts, output, json_)
    if result.interrupt is not None:
        raise result.interrupt
    if result.command_status and not result.command_stopped:
        raise CommandFailedError(_("{command} {command_status}").format(command=opts.command[0], command_status=status_words(result.command_status)))


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


def summary_record(result: Any, opts: Any) -> dict[str, Any]:
    """The counters as a JSON-ready dict (``-1``: the backend cannot tell)."""
    s = result.stats
    return {"backend": result.backend, "interface": opts.iface, "filter": opts.filter or None,
            "captured": result.frames, "received": s.received, "dropped": s.dropped,
            "file": result.path, "written": result.written if result.path else None,
            "command_exit": result.command_status,
            "command_stopped": bool(result.command_stopped),
            "interrupted": result.interrupt is not None}


def summary_lines(result: Any) -> list[str]:
    """tcpdump's three closing lines, and a warning whenever the kernel dropped packets."""
    s = result.stats

    def count(n: int) -> str:
        return str(n) if n >= 0 else "unknown number of"

    lines = [f"{result.frames} packets captured", f"{count(s.received)} packets received by filter",
             f"{count(s.dropped)} packets dropped by kernel"]
    if s.dropped > 0:
        lines.append(f"sockcap: warning: the kernel dropped {s.dropped} packets: this capture is "
                     "incomplete (narrow it with -f, or use -q -w FILE and view the file later)")
    return lines


def _report(result: Any, opts: Any, output: Any, json_: bool) -> None:
    import json

    if json_:
        output.line(json.dumps({"summary": summary_record(result, opts)}, separators=(",", ":")))
        output.flush()
    if result.path:
        output.note(_("sockcap: saved {written} packets to {path}").format(written=result.written, path=result.path))
    if result.command_stopped:
        output.note(_("sockcap: stopped {command} {command_stopped}").format(command=opts.command[0], command_stopped=result.command_stopped))
    elif result.command_status == 0:
        output.note(_("sockcap: {command} exited with status 0").format(command=opts.command[0]))
    for line in summary_lines(result):
        output.note(line)
    sys.stdout.flush()
