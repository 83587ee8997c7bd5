"""Options that several commands share (declared once; cli.py and the command modules
use them, so no command module reaches up into the CLI)."""

from __future__ import annotations

import inspect
import ipaddress
from collections.abc import Callable
from typing import Any

import click

from sockcap.i18n import _

STYLES = click.Choice(["wireshark", "tcpdump"])
PORT = click.IntRange(1, 65535)


def host_address(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if value == "localhost":
        return "127.0.0.1"
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise click.BadParameter(_("{value!r} is not an IP address (e.g. 127.0.0.1 or ::1)").format(value=value)) from None
    return value


def loopback_address(ctx: click.Context, param: click.Parameter, value: str) -> str:
    value = host_address(ctx, param, value)
    if not ipaddress.ip_address(value).is_loopback:
        raise click.BadParameter(_("{value} is not a loopback address (run stays on 127.0.0.0/8 or ::1)").format(value=value))
    return value


def output_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """The view options shared by every command that prints a timeline.

    ``--explain`` and ``--filters`` are offered to the commands whose function takes an
    ``explain`` or ``filters`` argument.
    """
    if "explain" in inspect.signature(f).parameters:
        f = click.option("--explain", is_flag=True, help=_("After the timeline, say in a sentence what each kind of note means."))(f)
    if "filters" in inspect.signature(f).parameters:
        f = click.option("--filters", is_flag=True, help=_("Under each packet, the Wireshark display filter that finds it; at the end, Wireshark's menus for each stream (Follow, Flow Graph)."))(f)
    for opt in reversed([
        click.option("--hex", "hex_", is_flag=True, help=_("Payload bytes under each packet (Show Packet Bytes).")),
        click.option("--json", "json_", is_flag=True, help=_("One JSON object per packet per line.")),
        click.option("--style", type=STYLES, default="wireshark", show_default=True,
                     help=_("Notation of the timeline: Wireshark's columns, or what tcpdump -nn prints.")),
        click.option("--no-color", is_flag=True, help=_("No colour (also: NO_COLOR=1).")),
    ]):
        f = opt(f)
    return f
