"""Options that several commands share (declared once; cli.py and the command modules
use them, so no command module reaches up into the CLI)."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

import click
from click.core import ParameterSource

from sockcap.i18n import _

STYLES = click.Choice(["wireshark", "tcpdump"])
COLORS = click.Choice(["auto", "always", "never"])  # sockcap.output.COLOR_CHOICES


def color_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """``--color auto|always|never`` and ``--no-color`` (``--color never``, and it wins):
    the command's function takes ``color`` and ``no_color`` and gives
    ``sockcap.output.color_choice(color, no_color)`` to its Output, which reads
    ``NO_COLOR`` and ``FORCE_COLOR`` under ``auto`` (sockcap.output.wants_color)."""
    f = click.option("--no-color", is_flag=True, help=_("No colour (also: NO_COLOR=1)."))(f)
    return click.option("--color", type=COLORS, default="auto", show_default=True,
                        help=_("Colour: auto (on a terminal; NO_COLOR=1 turns it off, "
                               "FORCE_COLOR=1 on), always (on a pipe too), never."))(f)
PORT = click.IntRange(1, 65535)

# Every number a user gives has both bounds, so none reaches a C ``int64_t`` or a timer
# as a value they cannot hold (``-c 99999999999999999999`` was an OverflowError) and
# click's message names the range. 10**12 packets or streams is more than any file holds.
MAX_COUNT = 10**12
COUNT = click.IntRange(1, MAX_COUNT)  # packets, a packet number
STREAM = click.IntRange(0, MAX_COUNT)  # a stream number
SEED = click.IntRange(0, 2**32 - 1)  # which questions a quiz or a worksheet draws
MAX_SECONDS = 10_000_000.0  # about 115 days: any duration, timeout or linger


class FiniteFloat(click.FloatRange):
    """A FloatRange that also refuses ``nan`` (which passes every comparison) and whose
    upper bound is :data:`MAX_SECONDS` unless given."""

    def __init__(self, min: float | None = None, max: float = MAX_SECONDS,
                 min_open: bool = False) -> None:
        super().__init__(min, max, min_open=min_open)

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if isinstance(number, float) and math.isnan(number):
            self.fail(_("{value!r} is not a number").format(value=value), param, ctx)
        return number


def host_address(ctx: click.Context, param: click.Parameter, value: str) -> str:
    import ipaddress  # here, not at the top: every command's start-up imports this module

    if value == "localhost":
        return "127.0.0.1"
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise click.BadParameter(_("{value!r} is not an IP address (e.g. 127.0.0.1 or ::1)").format(value=value)) from None
    return value


def loopback_address(ctx: click.Context, param: click.Parameter, value: str) -> str:
    import ipaddress

    value = host_address(ctx, param, value)
    if not ipaddress.ip_address(value).is_loopback:
        raise click.BadParameter(_("{value} is not a loopback address (run stays on 127.0.0.0/8 or ::1)").format(value=value))
    return value


def refuse_together(ctx: click.Context, first: str, *others: str) -> None:
    """A usage error naming both options when ``first`` and one of ``others`` were given
    on the command line: an option one of them would drop is never dropped in silence."""
    given = {p.name: max(p.opts, key=len) for p in ctx.command.params
             if p.name is not None and ctx.get_parameter_source(p.name) in (
                 ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)}
    if first not in given:
        return
    for other in others:
        if other in given:
            raise click.UsageError(_("{first} and {other} cannot be used together").format(
                first=given[first], other=given[other]), ctx)


def output_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """The view options shared by every command that prints a timeline.

    ``--explain`` and ``--filters`` are offered to the commands whose function takes an
    ``explain`` or ``filters`` argument.
    """
    if "explain" in inspect.signature(f).parameters:
        f = click.option("--explain", is_flag=True, help=_("A plain sentence under every packet, with the arithmetic shown; after the timeline, each connection's state and what each kind of note means."))(f)
    if "filters" in inspect.signature(f).parameters:
        f = click.option("--filters", is_flag=True, help=_("Under each packet, the Wireshark display filter that finds it; at the end, Wireshark's menus for each stream (Follow, Flow Graph)."))(f)
    f = color_options(f)
    for opt in reversed([
        click.option("--hex", "hex_", is_flag=True, help=_("Payload bytes under each packet (Show Packet Bytes).")),
        click.option("--json", "json_", is_flag=True, help=_("One JSON object per packet per line.")),
        click.option("--style", type=STYLES, default="wireshark", show_default=True,
                     help=_("Notation of the timeline: Wireshark's columns, or what tcpdump -nn prints.")),
    ]):
        f = opt(f)
    return f
