"""``sockcap lab``: TCP's reliability against UDP's speed, over a link that loses packets.

Only click and the standard library are imported at the top (``sockcap --help`` stays
fast). The command wires: the namespaces and the link (:mod:`sockcap.lab`), the run
(:func:`sockcap.lab.session.run_lab`), the merge and the verdict
(:mod:`sockcap.analysis.link`), the pipeline and the views (:mod:`sockcap.render.lab`).
"""

from __future__ import annotations

import time

import click

from sockcap.commands.options import STYLES, FiniteFloat
from sockcap.i18n import _

MAX_DATAGRAM = 1472  # the largest UDP payload one 1500-byte frame holds (no IP fragments)


def _percent(ctx: click.Context, param: click.Parameter, value: str | None) -> float:
    if value is None:
        return 0.0
    text = value.strip().removesuffix("%")
    try:
        loss = float(text)
    except ValueError:
        raise click.BadParameter(_("{value!r} is not a percentage (e.g. 10%)").format(
            value=value)) from None
    if not 0 <= loss <= 100:
        raise click.BadParameter(_("{value} is not between 0% and 100%").format(value=value))
    return loss


@click.command(short_help=_("TCP against UDP over a lossy link, captured at both ends."),
               help=_('Two hosts and a lossy link: an echo over TCP and over UDP, captured at both ends.\n'
               '\n'
               'The hosts are network namespaces joined by a link (MTU 1500) that loses packets both\n'
               'ways: tc netem where the kernel has it, nftables otherwise. Each end is captured, so a\n'
               'packet sent and never received shows as "lost on the link". Then one line says what\n'
               'TCP and UDP made of it. Needs no root: without it the lab runs in a user namespace.'))
@click.option("--loss", callback=_percent, metavar="P%", help=_("Lose P% (e.g. 10%) of the packets each way, at random."))
@click.option("--drop-every", type=click.IntRange(2, 1000), default=None, metavar="N", help=_("Drop every Nth TCP and every Nth UDP packet each way (deterministic)."))
@click.option("--delay", type=FiniteFloat(0, 10_000), default=0.0, metavar="MS", help=_("Delay each packet by MS milliseconds each way (needs the kernel module sch_netem)."))
@click.option("--tcp", "tcp_", is_flag=True, help=_("Only the TCP echo."))
@click.option("--udp", "udp_", is_flag=True, help=_("Only the UDP echo."))
@click.option("--both", is_flag=True, help=_("TCP, then UDP (the default; also --tcp --udp)."))
@click.option("-m", "--message", "messages", multiple=True, help=_("A message to send (repeat); default: --count messages."))
@click.option("--count", type=click.IntRange(1, 1000), default=20, show_default=True, help=_("Messages to send (without -m)."))
@click.option("--size", type=click.IntRange(1, 10_000_000), default=None, metavar="BYTES", help=_("Each message this many bytes (without -m)."))
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None, help=_("Folder for the pcap files (default: captures/lab-<time>/)."))
@click.option("--force", is_flag=True, help=_("Overwrite pcap files in --out."))
@click.option("--timeout", type=FiniteFloat(1, 600), default=30.0, show_default=True, help=_("Seconds to wait for each TCP echo."))
@click.option("--json", "json_", is_flag=True, help=_("One JSON object: the verdict, the link, the files and every packet."))
@click.option("--style", type=STYLES, default="wireshark", show_default=True, help=_("Notation of the timelines."))
@click.option("--no-color", is_flag=True, help=_("No colour (also: NO_COLOR=1)."))
@click.option("--explain", is_flag=True, help=_("A plain sentence under every packet, and each connection's state."))
def lab(loss: float, drop_every: int | None, delay: float, tcp_: bool, udp_: bool, both: bool,
        messages: tuple[str, ...],
        count: int, size: int | None, out_dir: str | None, force: bool, timeout: float,
        json_: bool, style: str, no_color: bool, explain: bool) -> None:
    from sockcap.commands.lab_run import LabRequest, lab_command
    from sockcap.lab.wire import LinkOptions

    # each flag adds its echo and none means both: --tcp --udp is both, not the last one
    tcp, udp = tcp_ or both or not udp_, udp_ or both or not tcp_
    payloads = _messages(messages, count, size)
    if udp and max(len(p) for p in payloads) > MAX_DATAGRAM:
        raise click.BadParameter(
            _("a UDP datagram of more than {limit} bytes would be cut into IP fragments; "
              "use --tcp for large messages").format(limit=MAX_DATAGRAM), param_hint="'--size' / '-m'")
    if "" in messages:
        raise click.BadParameter(_("an empty message shows nothing on the link (over TCP it "
                                   "is not even sent)"), param_hint="'-m'")
    folder = out_dir or time.strftime("captures/lab-%Y%m%d-%H%M%S")
    from sockcap.owner import check_output_path

    check_output_path(folder)
    lab_command(LabRequest(
        link=LinkOptions(loss=loss, drop_every=drop_every or 0, delay_ms=delay),
        messages=payloads, tcp=tcp, udp=udp, out_dir=folder, force=force, timeout=timeout,
        json=json_, style=style, no_color=no_color, explain=explain))


def _messages(messages: tuple[str, ...], count: int, size: int | None) -> tuple[bytes, ...]:
    """The -m messages, or ``count`` numbered ones (``size`` bytes each when given)."""
    if messages:
        return tuple(m.encode() for m in messages)
    if size is None:
        return tuple(f"message {n}".encode() for n in range(1, count + 1))
    filler = b"abcdefghijklmnopqrstuvwxyz0123456789"
    return tuple((f"message {n} ".encode() + filler * (size // len(filler) + 1))[:size]
                 for n in range(1, count + 1))

