"""The command line: parse, call the core, map errors to one line and an exit code.

Thin on purpose (httpie's split): the commands and their options are declared here
(the options several commands share live in :mod:`sockcap.commands.options`), the work is done in
``sockcap.endpoints``, ``sockcap.pipeline`` and friends, imported inside each
command so that ``sockcap --help`` imports neither scapy nor pyshark nor rich.
"""

from __future__ import annotations

import gettext
import importlib
import sys
from collections.abc import Sequence

import click
from click.core import ParameterSource

from sockcap.commands.options import (
    COUNT,
    PORT,
    FiniteFloat,
    host_address,
    loopback_address,
    output_options,
    refuse_together,
)
from sockcap.commands.toplevel import (
    COMMANDS_METAVAR,
    DEBUG_HELP,
    DECLARED_COMMANDS,
    GROUP_HELP,
    LANG_HELP,
    LAZY_COMMANDS,
    OPTIONS_METAVAR,
    VERSION_HELP,
)
from sockcap.errors import ExitCode
from sockcap.exits import fail, guarded
from sockcap.i18n import N_, _, available_languages, language, ngettext, use_language
from sockcap.output import prepare_std_streams

# the group's words (its help, its options' help, every command's summary) live in
# sockcap.commands.toplevel: `sockcap --help` is also written from them without click


# click's own words (its catalogue, sockcap.entry.translate_click), named so that the
# extraction of sockcap's messages does not take them
click_word = gettext.gettext


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *LAZY_COMMANDS])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        lazy = LAZY_COMMANDS.get(name)
        if lazy is None:
            found = super().get_command(ctx, name)
            return None if found is None else localize(found)
        module, attr = lazy[0].split(":")
        command: click.Command = getattr(importlib.import_module(module), attr)
        command.short_help = _(lazy[1])
        return localize(command)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """click's listing (its layout, its words), with the lazy commands' summaries
        from :data:`LAZY_COMMANDS`: listing a command does not import it."""
        rows: list[tuple[str, str]] = []
        for name in self.list_commands(ctx):
            lazy = LAZY_COMMANDS.get(name)
            if lazy is not None:
                rows.append((name, _(lazy[1])))
                continue
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, ""))
        if not rows:
            return
        limit = formatter.width - 6 - max(len(name) for name, _help in rows)
        rows = [(name, text or self._short_help(ctx, name, limit)) for name, text in rows]
        with formatter.section(click_word("Commands")):
            formatter.write_dl(rows)

    def _short_help(self, ctx: click.Context, name: str, limit: int) -> str:
        command = self.get_command(ctx, name)
        return "" if command is None else command.get_short_help_str(limit)


# Words click writes on a help page without gettext: a plain type's name ("--questions
# INTEGER RANGE") and the usage line's "[OPTIONS]" / "COMMAND [ARGS]...". They are
# sockcap's messages, set on each command as it is loaded, so that a help page is in
# one language.
TYPE_WORDS = {
    "integer": N_("INTEGER"), "integer range": N_("INTEGER RANGE"), "float": N_("FLOAT"),
    "float range": N_("FLOAT RANGE"), "text": N_("TEXT"), "path": N_("PATH"),
    "file": N_("FILE"), "directory": N_("DIRECTORY"), "boolean": N_("BOOLEAN"),
}


def localize(command: click.Command) -> click.Command:
    """Put the words click does not translate into the reader's language (once)."""
    if getattr(command, "_sockcap_words", False):
        return command
    command.options_metavar = _(OPTIONS_METAVAR)
    if isinstance(command, click.Group):
        command.subcommand_metavar = _(COMMANDS_METAVAR)
    for param in command.params:
        words = TYPE_WORDS.get(param.type.name)
        if (isinstance(param, click.Option) and param.metavar is None and not param.is_flag
                and words is not None):
            param.metavar = _(words)
    command._sockcap_words = True  # type: ignore[attr-defined]
    return command


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """``sockcap 0.1.0 (compiled (sockcap._speedups))``: the version and the path in use."""
    if not value or ctx.resilient_parsing:
        return
    from sockcap.commands.toplevel import version_line

    click.echo(version_line())
    ctx.exit()


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]},
             help=_(GROUP_HELP))
@click.option("--version", is_flag=True, expose_value=False, is_eager=True,
              callback=_print_version, help=_(VERSION_HELP))
@click.option("--debug", is_flag=True, help=_(DEBUG_HELP))
@click.option("--lang", type=click.Choice(available_languages()), metavar="LANG",
              help=_(LANG_HELP).format(languages=", ".join(available_languages())))
@click.pass_context
def cli(ctx: click.Context, debug: bool, lang: str | None) -> None:
    # the help text is the group's help= (translated); the language was chosen by
    # sockcap.entry before this module was imported (help texts are translated then)
    if lang is not None and lang != language():
        use_language(lang)
    ctx.obj = {"debug": debug}


localize(cli)

# run's options that shape or save the captured timeline: without --capture there is none
CAPTURE_ONLY = ("json_", "hex_", "style", "follow_", "explain", "out", "out_alias", "force",
                "diagram", "report", "scenario", "kernel")


def _require_capture(ctx: click.Context) -> None:
    """A usage error naming the CAPTURE_ONLY options given on the command line."""
    given = [max(p.opts, key=len) for p in ctx.command.params if p.name in CAPTURE_ONLY
             and ctx.get_parameter_source(p.name) is ParameterSource.COMMANDLINE]
    if given:
        raise click.UsageError(ngettext(
            "{options} needs --capture: add --capture to capture the exchange",
            "{options} need --capture: add --capture to capture the exchange",
            len(given)).format(options=", ".join(given)), ctx)


@cli.command(short_help=_(DECLARED_COMMANDS["run"]),
             help=_("Start an echo server and client on loopback and run an exchange (with --capture: "
                    "show every packet).\n\n"
                    "The timeline options (--json, --hex, --style, --follow, --explain, --diagram, "
                    "--report) and -w/--force need --capture."))
@click.option("--udp", is_flag=True, help=_("UDP instead of TCP."))
@click.option("--capture", is_flag=True, help=_("Capture the exchange on lo and explain it (without root or CAP_NET_RAW: in a private network namespace of its own)."))
@click.option("-m", "--message", "messages", multiple=True, help=_("A message to send (repeat; default: hello, world, quit)."))
@click.option("--host", default="127.0.0.1", show_default=True, callback=loopback_address, help=_("Loopback address to use."))
@click.option("--port", type=click.IntRange(0, 65535), default=0, help=_("Server port (default: a free one)."))
@click.option("-w", "--write", "out", type=click.Path(dir_okay=False), metavar="FILE", help=_("pcap file to write (default: captures/<time>-<proto>-<port>.pcap)."))
@click.option("--out", "out_alias", type=click.Path(dir_okay=False), hidden=True)  # older name
@click.option("--force", is_flag=True, help=_("Overwrite the -w file if it exists."))
@click.option("--timeout", type=FiniteFloat(0.1, 60), default=5.0, show_default=True, help=_("Seconds to wait for each reply."))
@click.option("--follow", "follow_", is_flag=True, help=_("With --capture: after the timeline, the bytes each side sent (Follow TCP Stream)."))
@click.option("--diagram", is_flag=True, help=_("With --capture: after the timeline, the exchange as a ladder diagram."))
@click.option("--report", is_flag=True, help=_("With --capture: also write an HTML report next to the pcap (same name, .html)."))
@click.option("--no-echo-check", is_flag=True, help=_("Do not compare each reply with what was sent."))
@click.option("--scenario", metavar="NAME", help=_("With --capture: run this scenario instead of the echo exchange ('--scenario list' lists them)."))
@click.option("--kernel", is_flag=True, help=_("With --capture: also show the kernel's side (TCP states, drops and their reasons, resets, the congestion window); needs root."))
@output_options
def run(udp: bool, capture: bool, messages: tuple[str, ...], host: str, port: int, out: str | None,
        out_alias: str | None, force: bool, timeout: float, follow_: bool, diagram: bool,
        report: bool, no_echo_check: bool, scenario: str | None, kernel: bool, hex_: bool,
        json_: bool, style: str, no_color: bool, explain: bool, color: str) -> None:
    from sockcap.commands.exchange import list_scenarios, run_command, scenario_names

    if scenario == "list":
        list_scenarios()
        return
    if scenario is not None and scenario not in scenario_names():
        raise click.BadParameter(_("no scenario {name!r}: one of {names}, or list").format(
            name=scenario, names=", ".join(scenario_names())), param_hint="'--scenario'")
    _no_empty_tcp_message(messages, udp)
    ctx = click.get_current_context()
    if not capture:
        _require_capture(ctx)
    if scenario is not None:  # a scenario makes its own sockets: TCP, its own messages
        refuse_together(ctx, "scenario", "udp", "messages")
    if json_:  # one JSON object per line on stdout: no room for the bytes or the ladder
        refuse_together(ctx, "json_", "follow_", "diagram")

    out = out or out_alias
    run_command(udp=udp, capture=capture, messages=messages, host=host, port=port, out=out,
                force=force, timeout=timeout, hex_=hex_, json_=json_, style=style,
                no_color=no_color, color=color,
                explain=explain, follow=follow_, diagram=diagram, report=report,
                echo_check=not no_echo_check, scenario=scenario, kernel=kernel)


@cli.command(short_help=_(DECLARED_COMMANDS["server"]),
             help=_("Run an echo server (Ctrl-C stops it: exit code 130; SIGTERM: 143)."))
@click.option("--udp", is_flag=True, help=_("UDP instead of TCP."))
@click.option("--host", default="127.0.0.1", show_default=True, callback=host_address, help=_("Address to bind (0.0.0.0 to accept other machines)."))
@click.option("--port", type=PORT, default=5001, show_default=True, help=_("Port to listen on."))
@click.option("--max-clients", type=click.IntRange(1, 1_000_000), default=1024, show_default=True, help=_("Connections served at once (by each worker); more are refused."))
@click.option("--idle-timeout", type=FiniteFloat(0.1), default=300.0, show_default=True, help=_("Close a connection silent for this many seconds."))
@click.option("--max-message", type=click.IntRange(1, 16 << 20), default=65536, show_default=True, help=_("Largest read echoed at once, in bytes."))
@click.option("--workers", type=click.IntRange(1, 256), default=1, show_default=True, help=_("Processes serving the port (SO_REUSEPORT: the kernel spreads clients over them)."))
def server(udp: bool, host: str, port: int, max_clients: int, idle_timeout: float, max_message: int,
           workers: int) -> None:
    from sockcap.endpoints.server import run_server

    code = run_server(host, port, udp=udp, max_clients=max_clients, idle_timeout=idle_timeout,
                      max_message=max_message, workers=workers, log=_log_line)
    sys.exit(code)


@cli.command(short_help=_(DECLARED_COMMANDS["client"]),
             help=_("Send messages to an echo server and print each reply (\"quit\" ends)."))
@click.option("--udp", is_flag=True, help=_("UDP instead of TCP."))
@click.option("--host", default="127.0.0.1", show_default=True, callback=host_address, help=_("Address of the server."))
@click.option("--port", type=PORT, default=5001, show_default=True, help=_("Port of the server."))
@click.option("-m", "--message", "messages", multiple=True, help=_("A message to send (repeat); without -m lines are read from stdin."))
@click.option("--timeout", type=FiniteFloat(0.1, 600), default=5.0, show_default=True, help=_("Seconds to wait for each reply."))
@click.option("--no-echo-check", is_flag=True, help=_("Do not compare each reply with what was sent (for a server that is not an echo server)."))
def client(udp: bool, host: str, port: int, messages: tuple[str, ...], timeout: float,
           no_echo_check: bool) -> None:
    from sockcap.endpoints.client import run_client

    _no_empty_tcp_message(messages, udp)

    lines = None if messages else sys.stdin
    code = run_client(host, port, udp=udp, messages=list(messages) or None, out=_log_line,
                      input_lines=lines, timeout=timeout, echo_check=not no_echo_check,
                      note=_note_line)
    sys.exit(code)


@cli.command(short_help=_(DECLARED_COMMANDS["show"]),
             help=_("Print the timeline of a pcap or pcapng file ('-' reads stdin)."))
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("-c", "count", type=COUNT, default=None, help=_("Show only the first N packets."))
@click.option("--port", type=PORT, default=None, help=_("Only TCP/UDP packets to or from this port (a display filter: numbers, times and streams stay the file's)."))
@click.option("--dissect", type=COUNT, default=None, metavar="N", help=_("Wireshark's full dissection of packet N: what 'tshark -V' prints (needs tshark)."))
@output_options
def show(file: str, count: int | None, port: int | None, dissect: int | None, hex_: bool,
         json_: bool, style: str, no_color: bool, explain: bool, filters: bool,
         color: str) -> None:
    # the plain forms of ``sockcap show`` are read without click (sockcap.entry); both
    # ways run this with click's parameters
    from sockcap.commands.quick import show as show_with

    show_with(click.get_current_context().params)


def _log_line(text: str) -> None:
    click.echo(text)


def _note_line(text: str) -> None:
    sys.stdout.flush()
    click.echo(text, err=True)


def _no_empty_tcp_message(messages: tuple[str, ...], udp: bool) -> None:
    """An empty TCP message would show an echo that never crossed the wire."""
    if "" in messages and not udp:
        raise click.BadParameter(
            _("an empty message sends nothing over TCP (a zero-length write puts no segment "
            "on the wire); UDP can send an empty datagram: add --udp"), param_hint="'-m'")


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: one line and an exit code for every error a user can cause."""
    args = list(sys.argv[1:] if argv is None else argv)
    prepare_std_streams()
    guarded(lambda: _invoke(args), debug="--debug" in args)


def _invoke(args: list[str]) -> None:
    """The command line through click, click's errors as one line and an exit code."""
    try:
        # make_context + invoke rather than cli.main(): main() prints a bare newline to
        # stderr on Ctrl-C before re-raising, and the user should see one line only.
        with cli.make_context("sockcap", args) as ctx:
            cli.invoke(ctx)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        fail("interrupted", ExitCode.INTERRUPTED)
    except click.exceptions.NoArgsIsHelpError as e:
        click.echo(e.ctx.get_help() if e.ctx else str(e))
        sys.exit(0)
    except click.UsageError as e:
        cmd = e.ctx.command_path if e.ctx else "sockcap"
        fail(_("{format_message} (see '{cmd} --help')").format(format_message=e.format_message(), cmd=cmd), ExitCode.USAGE)
    except click.ClickException as e:
        fail(e.format_message(), e.exit_code)
