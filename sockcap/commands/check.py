"""``sockcap check``: a student's echo server (and client) judged from the wire.

Only click is imported at the top; the work is :mod:`sockcap.check.runner` (the edge that
runs and captures) and :mod:`sockcap.render.check` (the words).
"""

from __future__ import annotations

import shlex
import sys
from typing import Any

import click

from sockcap.commands.options import PORT
from sockcap.i18n import _

SCENARIO_NAMES = ("echo", "partial", "large", "concurrent", "burst")


@click.command(short_help=_("Run your server (and client) and say what is wrong."),
               help=_('Run your server (and client) on loopback, capture it, and say what is right and wrong.\n'
               '\n'
               '\b\n'
               "sudo sockcap check --server './server {port}'\n"
               "sudo sockcap check --server './server 5001' --client './client 127.0.0.1 5001'\n"
               '\n'
               'Scenarios: an echo of a few messages, then the client closes (is the echo exact? does\n'
               'the server close with FIN?); a message in 1-byte segments; a 100 kB message; a second\n'
               'client while the first is connected; a burst of connections. Every finding names its\n'
               'packets in the saved pcap. Exit status 1 when a check fails.'))
@click.option("--server", "server", required=True, metavar="CMD", help=_("The server to check, e.g. './server {port}' ({port} becomes --port)."))
@click.option("--client", "client", default=None, metavar="CMD", help=_("Your client for the echo exchange, e.g. './client 127.0.0.1 {port}' (it gets the messages on stdin); default: sockcap's own."))
@click.option("--port", type=PORT, default=5001, show_default=True, help=_("The port the server listens on."))
@click.option("--udp", is_flag=True, help=_("A UDP echo server (one request, one reply datagram)."))
@click.option("--only", "only", multiple=True, type=click.Choice(SCENARIO_NAMES), help=_("Run only this scenario (repeat)."))
@click.option("-m", "--message", "messages", multiple=True, help=_("A message for the echo exchange (repeat; a newline is added)."))
@click.option("-w", "--write", "out", type=click.Path(dir_okay=False), default=None, help=_("The pcap file (default: captures/<time>-check-<port>.pcap)."))
@click.option("--force", is_flag=True, help=_("Overwrite the -w file if it exists."))
@click.option("--json", "json_", is_flag=True, help=_("The report as one JSON object."))
def check(server: str, client: str | None, port: int, udp: bool, only: tuple[str, ...],
          messages: tuple[str, ...], out: str | None, force: bool, json_: bool) -> None:
    from sockcap.analysis.check import Scenario
    from sockcap.check.runner import DEFAULT_MESSAGES, TCP_SCENARIOS, CheckOptions
    from sockcap.owner import check_output_path

    if out is not None:
        check_output_path(out, force=force)

    opts = CheckOptions(
        server=_argv(server, "--server"), client=_argv(client, "--client") if client else (),
        port=port, udp=udp,
        scenarios=tuple(Scenario(n) for n in only) if only else TCP_SCENARIOS,
        messages=tuple(m.encode() + b"\n" for m in messages) or DEFAULT_MESSAGES)
    failed = run_check_command(opts, out=out, force=force, json_=json_)
    sys.exit(1 if failed else 0)


def _argv(text: str, option: str) -> tuple[str, ...]:
    try:
        argv = tuple(shlex.split(text))
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint=f"'{option}'") from None
    if not argv:
        raise click.BadParameter(_("an empty command"), param_hint=f"'{option}'")
    return argv


def run_check_command(opts: Any, *, out: str | None, force: bool, json_: bool) -> bool:
    """Run, save the pcap, print the report; True if a check failed."""
    import json
    from pathlib import Path

    from sockcap.check.runner import default_pcap_path, expand, run_check
    from sockcap.owner import Owner
    from sockcap.pcapfile.writer import PcapWriter
    from sockcap.render.check import outcomes, report_lines, report_record
    from sockcap.signals import sigterm_raises

    def note(text: str) -> None:
        click.echo(_("sockcap: {text}").format(text=text), err=True)

    with sigterm_raises():
        result = run_check(opts, note)
    path = out or default_pcap_path(opts.port)
    owner = Owner(note)
    owner.make_folder(Path(path).parent)
    with PcapWriter(path, result.linktype, force=force, owner=owner) as writer:
        for frame in result.frames:
            writer.write(frame)
    if json_:
        click.echo(json.dumps(report_record(result.verdicts, result.outputs, path)))
    else:

        click.echo(_("checking {server} on {host}:{port} ({proto})").format(
            server=" ".join(expand(opts.server, opts.port)), host=opts.host, port=opts.port,
            proto="UDP" if opts.udp else "TCP"))
        for line in report_lines(result.verdicts, result.packets, result.first_ts,
                                 result.outputs, path):
            click.echo(line)
    return not all(o.ok for o in outcomes(result.verdicts))
