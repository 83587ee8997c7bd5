"""``sockcap check``: a student's echo server (and client) judged from the wire.

Only click is imported at the top; the work is :mod:`sockcap.check.runner` (the edge that
runs and captures) and :mod:`sockcap.render.check` (the words).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import click

from sockcap.commands.options import PORT, FiniteFloat
from sockcap.i18n import _

# The checks --only picks: their names are the spec's and the JSON's
CHECK_NAMES = ("echo", "close", "partial", "large", "concurrent", "backlog",
               "client_echo", "client_close", "client_server_closes", "client_refused",
               "udp_clients", "udp_large", "client_timeout", "client_duplicates", "client_reorder")


@click.command(help=_('Run your server (and client) on loopback, capture it, and say what is right and wrong.\n'
               '\n'
               '\b\n'
               "sockcap check --server './server {port}'\n"
               "sockcap check --server './server 5001' --client './client 127.0.0.1 5001'\n"
               "sockcap check --client './client 127.0.0.1 {port}'\n"
               '\n'
               'Scenarios: an echo of a few messages, then the client closes (is the echo exact? does\n'
               'the server close with FIN?); a message in 1-byte segments; a 100 kB message; a second\n'
               'client while the first is connected; a burst of connections. Every finding names its\n'
               'packets in the saved pcap. Exit status 1 when a check fails.\n'
               '\n'
               '--client alone checks your client against sockcap\'s own server: it gets the\n'
               'messages on stdin; the echo comes back in pieces, slowly (does it read it all and\n'
               'close with FIN?); a server that closes without answering; a refused connection.\n'
               '\n'
               'Your programs run in a sandbox: this folder mounted as their own, the system\n'
               'read-only, their own /tmp, processes and network (only lo); they never run as root.'))
@click.option("--server", "server", default=None, metavar="CMD", help=_("The server to check, e.g. './server {port}' ({port} becomes --port)."))
@click.option("--client", "client", default=None, metavar="CMD", help=_("Your client, e.g. './client 127.0.0.1 {port}' (it gets the messages on stdin): with --server, for the echo exchange (default: sockcap's own); alone, the client is checked against sockcap's server."))
@click.option("--port", type=PORT, default=5001, show_default=True, help=_("The port the server listens on."))
@click.option("--udp", is_flag=True, help=_("A UDP echo server (one request, one reply datagram) or client: also over the lab's link (two hosts, MTU 1500, a link that loses datagrams): two clients at once, a datagram larger than the MTU; a client must not wait for ever for a lost reply, nor take replies to come in order. A client's command reaches the server as {host}."))
@click.option("--only", "only", multiple=True, type=click.Choice(CHECK_NAMES), metavar="CHECK", help=_("Run only this check (repeat): {names}.").format(names=", ".join(CHECK_NAMES)))
@click.option("-m", "--message", "messages", multiple=True, help=_("A message for the echo exchange (repeat; a newline is added unless --no-newline)."))
@click.option("--no-newline", is_flag=True, help=_("sockcap's client sends every message without a trailing newline (as a client that sends what was typed and nothing more); the report says what the server needed before it answered. Your own --client still gets them as lines on stdin."))
@click.option("--close-seconds", type=FiniteFloat(0.1, 600), default=6.0, show_default=True, metavar="S", help=_("How long the server has to close (send its FIN) after the client closed."))
@click.option("-w", "--write", "out", type=click.Path(dir_okay=False), default=None, help=_("The pcap file (default: captures/<time>-check-<port>.pcap)."))
@click.option("--force", is_flag=True, help=_("Overwrite the -w file if it exists."))
@click.option("--kernel", is_flag=True, help=_("Also the kernel's side under each failing finding: the TCP states, the drops and their reasons, the resets it sent (needs root)."))
@click.option("--json", "json_", is_flag=True, help=_("The report as one JSON object."))
@click.option("--html", "html", type=click.Path(dir_okay=False), default=None, metavar="FILE", help=_("Also write the report as one HTML page (e.g. report.html): the findings on top, a finding's packets marked in the ladder and the table."))
def check(server: str | None, client: str | None, port: int, udp: bool, only: tuple[str, ...],
          messages: tuple[str, ...], no_newline: bool, close_seconds: float, out: str | None,
          force: bool, kernel: bool, json_: bool, html: str | None) -> None:
    from sockcap.analysis.check.codes import CLIENT_CHECKS, SCENARIO_OF, UDP_CHECKS, Check
    from sockcap.check.options import DEFAULT_MESSAGES, CheckOptions, default_scenarios
    from sockcap.owner import check_output_path

    if out is not None:
        check_output_path(out, force=force)
    if html is not None:
        check_output_path(html, force=force)
        if out is not None and os.path.abspath(html) == os.path.abspath(out):
            raise click.UsageError(_("--html and -w name the same file"))
    if server is None and client is None:
        raise click.UsageError(_("give --server, --client or both"))
    checks = [Check(n) for n in only]
    if server is None and not all(c in CLIENT_CHECKS for c in checks):
        raise click.UsageError(_("--only {names}: that checks a server, and there is no --server").format(
            names=", ".join(str(c) for c in checks if c not in CLIENT_CHECKS)))
    if client is None and any(c in CLIENT_CHECKS for c in checks):
        raise click.UsageError(_("--only {names}: that checks a client, and there is no --client").format(
            names=", ".join(str(c) for c in checks if c in CLIENT_CHECKS)))
    wrong = [str(c) for c in checks if (c in UDP_CHECKS) != udp and c is not Check.ECHO]
    if wrong:
        raise click.UsageError((_("--only {names}: that is about UDP, and there is no --udp") if not udp
                                else _("--only {names}: that is about TCP, and --udp is given")).format(
            names=", ".join(wrong)))
    default = default_scenarios(server is not None, client is not None, udp)
    opts = CheckOptions(
        server=_argv(server, "--server") if server else (),
        client=_argv(client, "--client") if client else (),
        port=port, udp=udp,
        scenarios=tuple(dict.fromkeys(SCENARIO_OF[c] for c in checks)) if checks else default,
        messages=tuple(m.encode() + b"\n" for m in messages) or DEFAULT_MESSAGES,
        newline=not no_newline, close_seconds=close_seconds, kernel=kernel)
    failed = run_check_command(opts, out=out, force=force, json_=json_, html=html)
    sys.exit(1 if failed else 0)


def _argv(text: str, option: str) -> tuple[str, ...]:
    import shlex

    try:
        argv = tuple(shlex.split(text))
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint=f"'{option}'") from None
    if not argv:
        raise click.BadParameter(_("an empty command"), param_hint=f"'{option}'")
    return argv


def run_check_command(opts: Any, *, out: str | None, force: bool, json_: bool,
                      html: str | None = None) -> bool:
    """Run, save the pcap (and the HTML page), print the report (through
    :class:`~sockcap.output.Output`, as every command prints: notes to stderr, colour only
    on a terminal); True if a check failed."""
    import dataclasses

    from sockcap.check.runner import run_check
    from sockcap.check.sandbox import enter_user_namespace
    from sockcap.check.staging import sandbox_for
    from sockcap.output import Output
    from sockcap.signals import sigterm_raises

    output = Output()

    def note(text: str) -> None:
        output.note(_("sockcap: {text}").format(text=text))

    enter_user_namespace()
    programs = tuple(p for p in (opts.server, opts.client) if p)
    with sigterm_raises(), sandbox_for(programs, opts.limits, note) as (box, cwd):
        result = run_check(dataclasses.replace(opts, cwd=cwd), note, box)
    return _report(opts, result, out, force, json_, html, output, note)


def _report(opts: Any, result: Any, out: str | None, force: bool, json_: bool,
            html: str | None, output: Any, note: Callable[[str], None]) -> bool:
    """Save the pcap (and the HTML page), print the report; True if a check failed."""
    import json
    from pathlib import Path

    from sockcap.check.options import expand
    from sockcap.check.runner import default_pcap_path
    from sockcap.owner import Owner
    from sockcap.pcapfile.writer import PcapWriter
    from sockcap.render.check import outcomes, report_pairs, report_record

    path = out or default_pcap_path(opts.port)
    owner = Owner(note)
    owner.make_folder(Path(path).parent)
    with PcapWriter(path, result.linktype, force=force, owner=owner) as writer:
        for frame in result.frames:
            writer.write(frame)
    if html is not None:
        write_check_page(result, html, path, force, output.note)
    if json_:
        output.line(json.dumps(report_record(result.verdicts, result.outputs, path,
                                             result.calls, result.first_ts, result.events)))
    else:
        output.line(_("checking {server} on {host}:{port} ({proto})").format(
            server=" ".join(expand(opts.server or opts.client, opts.port)), host=opts.host,
            port=opts.port, proto="UDP" if opts.udp else "TCP"))
        output.lines(report_pairs(result.verdicts, result.packets, result.first_ts,
                                  result.outputs, path, result.calls, result.events))
    output.flush()
    return not all(o.ok for o in outcomes(result.verdicts))


def write_check_page(result: Any, html: str, pcap: str, force: bool,
                     say: Callable[[str], None]) -> None:
    """The report page of one check, as ``grade`` writes it for each student: the findings
    on top (the first failing one chosen), the packets of the saved pcap below with the
    programs' socket calls (``▸`` rows, strace in the sandbox) and ``--kernel``'s events
    (``◆``) among them, as ``report`` shows them. ``say`` writes a line to stderr as it
    is."""
    from sockcap.commands.outfile import write_text_file
    from sockcap.render.check import verdict_record
    from sockcap.render.report import report_html

    page = report_html(result.packets, result.pipeline.tracker.conversations, result.pipeline,
                       os.path.basename(pcap), [verdict_record(v) for v in result.verdicts],
                       calls=result.calls, events=result.events)
    write_text_file(html, page, force=force, note=say)
    say(_("sockcap: wrote {path} ({size} KiB)").format(path=html, size=len(page.encode()) >> 10))
