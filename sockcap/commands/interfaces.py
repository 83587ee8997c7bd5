"""``sockcap interfaces``: what ``-i`` can name, with state, link type and addresses."""

from __future__ import annotations

import click


@click.command()
@click.option("--json", "json_", is_flag=True, help="One JSON object per interface per line.")
def interfaces(json_: bool) -> None:
    """List the network interfaces (name, up/down, link type, addresses)."""
    import json

    from sockcap.capture.interfaces import list_interfaces

    for info in list_interfaces():
        if json_:
            click.echo(json.dumps(info._asdict(), separators=(",", ":")))
            continue
        state = "up" if info.up else "down"
        addrs = ", ".join(info.addresses) or "-"
        click.echo(f"{info.ifindex:>3}. {info.name:<12} {state:<5} {info.link:<20} {addrs}")
