"""The lab's views: the side-by-side verdict (a line, or ``--json``) and the merged
timeline, where a packet sent and never received says so (pure: records in, text out).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sockcap.analysis.conversation import Annotated
from sockcap.analysis.link import Hop, TcpVerdict, UdpVerdict
from sockcap.decode.ftrace import KernelEvent
from sockcap.i18n import _
from sockcap.render.kernel import ProbeFilter, kernel_line
from sockcap.render.packets import PacketView
from sockcap.render.timeline import json_record

LOST_STYLE = "bold red"
KERNEL_STYLE = "magenta"  # as the timeline's ◆ lines


def seconds_text(seconds: float) -> str:
    """``3.41``; below a second two significant digits (``0.00043``), as UDP is that quick."""
    if seconds >= 1:
        return f"{seconds:.2f}"
    return f"{seconds:.2g}" if seconds >= 1e-4 else f"{seconds:.6f}"  # never 4.3e-05


def tcp_sentence(v: TcpVerdict) -> str:
    return _("TCP: {intact} of {messages} messages delivered intact in {seconds} s, "
             "{lost} segments lost, {resent} retransmitted ({timeout} by timeout, "
             "{fast} fast)").format(intact=v.intact, messages=v.messages, seconds=seconds_text(v.seconds),
                                    lost=v.lost_segments, resent=v.retransmissions,
                                    timeout=v.by_timeout, fast=v.fast)


def udp_sentence(v: UdpVerdict) -> str:
    resent = (_("nothing resent") if v.resent == 0
              else _("{n} resent").format(n=v.resent))
    if v.lost:
        numbers = " ".join(f"#{n}" for n in v.lost_numbers)
        return _("UDP: {delivered} of {sent} datagrams delivered in {seconds} s, "
                 "{lost} lost ({numbers}), {echoes_lost} of {echoes} echoes lost, "
                 "{resent}").format(delivered=v.delivered, sent=v.sent, seconds=seconds_text(v.seconds),
                                    lost=v.lost, numbers=numbers,
                                    echoes_lost=v.echoes_sent - v.echoes_delivered,
                                    echoes=v.echoes_sent, resent=resent)
    return _("UDP: {delivered} of {sent} datagrams delivered in {seconds} s, none lost, "
             "{echoes_lost} of {echoes} echoes lost, {resent}").format(
        delivered=v.delivered, sent=v.sent, seconds=seconds_text(v.seconds),
        echoes_lost=v.echoes_sent - v.echoes_delivered, echoes=v.echoes_sent, resent=resent)


def verdict_line(tcp: TcpVerdict | None, udp: UdpVerdict | None) -> str:
    """``TCP: ... | UDP: ...`` (either alone when only one ran)."""
    return " | ".join([*([tcp_sentence(tcp)] if tcp else []), *([udp_sentence(udp)] if udp else [])])


def verdict_record(tcp: TcpVerdict | None, udp: UdpVerdict | None) -> dict[str, Any]:
    """The verdict for ``--json`` (stable keys; a protocol that did not run is absent)."""
    record: dict[str, Any] = {}
    if tcp is not None:
        record["tcp"] = {
            "messages": tcp.messages, "intact": tcp.intact,
            "sent_bytes": tcp.sent_bytes, "delivered_bytes": tcp.delivered_bytes,
            "lost_segments": tcp.lost_segments, "retransmissions": tcp.retransmissions,
            "retransmissions_timeout": tcp.by_timeout, "retransmissions_fast": tcp.fast,
            "seconds": round(tcp.seconds, 6),
        }
    if udp is not None:
        record["udp"] = {
            "sent": udp.sent, "delivered": udp.delivered, "lost": udp.lost,
            "lost_numbers": list(udp.lost_numbers), "echoes_sent": udp.echoes_sent,
            "echoes_delivered": udp.echoes_delivered, "resent": udp.resent,
            "seconds": round(udp.seconds, 6),
        }
    return record


def timeline(view: PacketView, pairs: Sequence[tuple[Hop, Annotated]],
             events: Sequence[KernelEvent] = (), first_ts: int = 0,
             ) -> Iterator[tuple[str, str]]:
    """The merged timeline as ``(line, style)`` pairs: every packet put on the link, at the
    time it was sent; one that never arrived is marked *lost on the link*. ``events``
    (``--kernel``, tied): the kernel's lines among the packets by time."""
    mark = "  ✗ " + _("lost on the link")
    probes = ProbeFilter()
    pending = sorted(events, key=lambda e: e.ts_ns)
    for hop, a in pairs:
        while pending and pending[0].ts_ns <= a.packet.ts_ns:
            event = pending.pop(0)
            if probes.shown(event):
                yield kernel_line(event, first_ts), KERNEL_STYLE
        lines = list(view.styled(a))
        if hop.lost:  # the packet's own line comes after any line said before it
            first = view.timeline.lines(a)[0]
            main = next(i for i, (text, _style) in enumerate(lines) if text == first)
            lines[main] = (lines[main][0] + mark, LOST_STYLE)
        yield from lines
    for event in pending:
        if probes.shown(event):
            yield kernel_line(event, first_ts), KERNEL_STYLE


def packet_records(pairs: Sequence[tuple[Hop, Annotated]], first_ts: int) -> list[dict[str, Any]]:
    """The packets for ``--json``: sockcap's usual per-packet keys, plus ``link``
    (``"delivered"`` or ``"lost"``) and ``delivered_time`` (seconds, null when lost)."""
    records = []
    for hop, a in pairs:
        record = json_record(a, first_ts)
        record["link"] = "lost" if hop.lost else "delivered"
        record["delivered_time"] = (None if hop.lost
                                    else round((hop.received_ns - first_ts) / 1e9, 6))
        records.append(record)
    return records


def link_words(loss: float, drop_every: int, delay_ms: float, loss_by: str) -> str:
    """What the link does to packets, and with what (``netem`` or ``nftables``)."""
    parts = []
    if drop_every:
        n = drop_every
        parts.append(_("TCP packets and UDP packets number {n}, {n2}, {n3}, … dropped each way")
                     .format(n=n, n2=2 * n, n3=3 * n))
    if loss:
        parts.append(_("packets lost each way at random: {loss:g}%").format(loss=loss))
    if delay_ms:
        parts.append(_("{delay:g} ms of delay each way").format(delay=delay_ms))
    if not parts:
        return _("the link: loses nothing")
    return _("the link: {what} (by {tool})").format(what="; ".join(parts), tool=loss_by)
