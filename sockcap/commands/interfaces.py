"""``sockcap interfaces``: what ``-i`` can name, with state, link type and addresses."""

from __future__ import annotations

import click

from sockcap.i18n import _


@click.command(help=_('List the network interfaces (name, up/down, link type, addresses).'))
@click.option("--json", "json_", is_flag=True, help=_("One JSON object per interface per line."))
def interfaces(json_: bool) -> None:
    import json

    from sockcap.capture.interfaces import list_interfaces

    for info in list_interfaces():
        if json_:
            click.echo(json.dumps(info._asdict(), separators=(",", ":")))
            continue
        state = "up" if info.up else "down"
        addrs = ", ".join(info.addresses) or "-"
        click.echo(_("{ifindex:>3}. {info:<12} {state:<5} {link:<20} {addrs}").format(ifindex=info.ifindex, info=info.name, state=state, link=info.link, addrs=addrs))
