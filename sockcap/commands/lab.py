"""``sockcap lab``: TCP's reliability against UDP's speed, over a link that loses packets.

Only click and the standard library are imported at the top (``sockcap --help`` stays
fast). The command wires: the namespaces and the link (:mod:`sockcap.lab`), the run
(:func:`sockcap.lab.session.run_lab`), the merge and the verdict
(:mod:`sockcap.analysis.link`), the pipeline and the views (:mod:`sockcap.render.lab`).
"""

from __future__ import annotations

import time

import click

from sockcap.commands.options import STYLES, FiniteFloat, color_options
from sockcap.i18n import _

MAX_DATAGRAM = 65507  # the largest UDP payload (65535 - 20 IP - 8 UDP); above 1472: fragments
RATE_UNITS = {"bit": 1, "kbit": 1000, "mbit": 1000_000, "gbit": 1000_000_000,
              "bps": 8, "kbps": 8000, "mbps": 8000_000}  # tc's units: bits, or bytes (bps)


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


def _rate(ctx: click.Context, param: click.Parameter, value: str | None) -> int:
    """``1mbit``, ``100kbit``, ``500kbps`` (bytes) as tc writes them: bits per second."""
    if value is None:
        return 0
    text = value.strip().lower()
    unit = next((u for u in sorted(RATE_UNITS, key=len, reverse=True) if text.endswith(u)), "")
    try:
        rate = float(text.removesuffix(unit)) * RATE_UNITS.get(unit, 1)
    except ValueError:
        rate = 0
    if not 1000 <= rate <= 10_000_000_000:
        raise click.BadParameter(_("{value!r} is not a rate from 1kbit to 10gbit (e.g. 1mbit, "
                                   "100kbit, 500kbps)").format(value=value))
    return int(rate)


@click.command(help=_('Two hosts and a lossy link: an echo over TCP and over UDP, captured at both ends.\n'
               '\n'
               'The hosts are network namespaces joined by a link (MTU 1500) that can lose, delay,\n'
               'slow down, reorder, duplicate and corrupt packets, either way or both: sockcap\n'
               'forwards each frame itself (no kernel module needed). Each end is captured, so a\n'
               'packet sent and never received shows as "lost on the link". Both protocols send\n'
               'the same messages in the same pattern; then the lab says how long each took, where\n'
               "TCP's time went and what UDP lost. Needs no root: without it the lab runs in a user\n"
               'namespace.'))
@click.option("--loss", callback=_percent, metavar="P%", help=_("Lose P% (e.g. 10%) of the packets each way, at random."))
@click.option("--drop-every", type=click.IntRange(2, 1000), default=None, metavar="N", help=_("Drop every Nth TCP and every Nth UDP packet each way (deterministic)."))
@click.option("--delay", type=FiniteFloat(0, 10_000), default=0.0, metavar="MS", help=_("Delay each packet by MS milliseconds."))
@click.option("--jitter", type=FiniteFloat(0, 10_000), default=0.0, metavar="MS", help=_("Vary the delay by up to MS milliseconds either way (packets may swap)."))
@click.option("--rate", callback=_rate, metavar="RATE", help=_("Send at most RATE (e.g. 1mbit, 100kbit, 500kbps) each way."))
@click.option("--queue", type=click.IntRange(1, 100_000), default=1000, show_default=True, metavar="PACKETS", help=_("Packets that may wait for the rate; more are dropped (a full queue)."))
@click.option("--reorder", callback=_percent, metavar="P%", help=_("Send P% (e.g. 10%) of the packets ahead of those before them."))
@click.option("--duplicate", callback=_percent, metavar="P%", help=_("Send P% (e.g. 10%) of the packets twice."))
@click.option("--corrupt", callback=_percent, metavar="P%", help=_("Flip one bit in P% (e.g. 10%) of the packets (the receiver drops them)."))
@click.option("--direction", type=click.Choice(["both", "to-server", "to-client"]), default="both", show_default=True, help=_("Which way the link properties apply."))
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=None, help=_("The same random choices on every run."))
@click.option("--pattern", type=click.Choice(["ping-pong", "stream"]), default="ping-pong", show_default=True, help=_("ping-pong: each message waits for its echo; stream: send all, then read (the same for TCP and UDP)."))
@click.option("--graph", type=click.Path(dir_okay=False), default=None, metavar="FILE.svg", help=_("Write the TCP time-sequence graph, with the congestion window and ssthresh under it."))
@click.option("--cc", default=None, metavar="NAME", help=_("The client's TCP congestion control (e.g. reno, cubic, bbr: what the kernel has)."))
@click.option("--tcp", "tcp_", is_flag=True, help=_("Only the TCP echo."))
@click.option("--udp", "udp_", is_flag=True, help=_("Only the UDP echo."))
@click.option("--both", is_flag=True, help=_("TCP, then UDP (the default; also --tcp --udp)."))
@click.option("-m", "--message", "messages", multiple=True, help=_("A message to send (repeat); default: --count messages."))
@click.option("--count", type=click.IntRange(1, 1000), default=20, show_default=True, help=_("Messages to send (without -m)."))
@click.option("--size", type=click.IntRange(1, 10_000_000), default=None, metavar="BYTES", help=_("Each message this many bytes (without -m)."))
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None, help=_("Folder for the pcap files (default: captures/lab-<time>/)."))
@click.option("--force", is_flag=True, help=_("Overwrite pcap files in --out."))
@click.option("--timeout", type=FiniteFloat(1, 3600), default=60.0, show_default=True, help=_("Seconds for the whole run; then the lab stops and says what was delivered so far."))
@click.option("--json", "json_", is_flag=True, help=_("One JSON object: the verdict, the link, the files and every packet."))
@click.option("--style", type=STYLES, default="wireshark", show_default=True, help=_("Notation of the timelines."))
@color_options
@click.option("--explain", is_flag=True, help=_("A plain sentence under every packet, and each connection's state."))
@click.option("--kernel", is_flag=True, help=_("Also show the kernel's side of the TCP echo: states, drops, retransmissions, the congestion window falling after a loss (needs root)."))
def lab(loss: float, drop_every: int | None, delay: float, jitter: float, rate: int, queue: int,
        reorder: float, duplicate: float, corrupt: float, direction: str, seed: int | None,
        pattern: str, graph: str | None, cc: str | None, tcp_: bool, udp_: bool, both: bool,
        messages: tuple[str, ...],
        count: int, size: int | None, out_dir: str | None, force: bool, timeout: float,
        json_: bool, style: str, no_color: bool, explain: bool, kernel: bool,
        color: str) -> None:
    from sockcap.analysis.shape import LinkOptions
    from sockcap.commands.lab_run import LabRequest, check_cc, lab_command

    # each flag adds its echo and none means both: --tcp --udp is both, not the last one
    tcp, udp = tcp_ or both or not udp_, udp_ or both or not tcp_
    payloads = _messages(messages, count, size)
    if udp and max(len(p) for p in payloads) > MAX_DATAGRAM:
        raise click.BadParameter(
            _("a UDP datagram holds at most {limit} bytes; use --tcp for larger messages")
            .format(limit=MAX_DATAGRAM), param_hint="'--size' / '-m'")
    if cc:
        check_cc(cc)
    if "" in messages:
        raise click.BadParameter(_("an empty message shows nothing on the link (over TCP it "
                                   "is not even sent)"), param_hint="'-m'")
    folder = out_dir or time.strftime("captures/lab-%Y%m%d-%H%M%S")
    from sockcap.owner import check_output_path

    check_output_path(folder)
    if graph:
        check_output_path(graph, force=force)
    lab_command(LabRequest(
        link=LinkOptions(loss=loss, drop_every=drop_every or 0, delay_ms=delay,
                         jitter_ms=jitter, rate_bps=rate, queue=queue, reorder=reorder,
                         duplicate=duplicate, corrupt=corrupt, direction=direction, seed=seed),
        messages=payloads, tcp=tcp, udp=udp, out_dir=folder, force=force, timeout=timeout,
        json=json_, style=style, no_color=no_color, color=color, explain=explain, kernel=kernel,
        pattern=pattern,
        cc=cc or "", fresh=out_dir is None, graph=graph or ""))


def _messages(messages: tuple[str, ...], count: int, size: int | None) -> tuple[bytes, ...]:
    """The -m messages, or ``count`` numbered ones (``size`` bytes each when given)."""
    if messages:
        return tuple(m.encode() for m in messages)
    if size is None:
        return tuple(f"message {n}".encode() for n in range(1, count + 1))
    filler = b"abcdefghijklmnopqrstuvwxyz0123456789"
    return tuple((f"message {n} ".encode() + filler * (size // len(filler) + 1))[:size]
                 for n in range(1, count + 1))

