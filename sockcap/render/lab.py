"""The lab's views: the side-by-side verdict (a line, or ``--json``) and the merged
timeline, where a packet sent and never received says so (pure: records in, text out).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict
from typing import Any

from sockcap.analysis.calls import Call
from sockcap.analysis.conversation import Annotated
from sockcap.analysis.link import (
    SSTHRESH_INFINITE,
    CwndSample,
    CwndStory,
    Hop,
    Stall,
    TcpVerdict,
    UdpVerdict,
    datagrams,
    give_up_seconds,
)
from sockcap.analysis.shape import Counts, LinkOptions
from sockcap.analysis.story import CLOCK_SLACK_NS, Moment, story
from sockcap.decode.ftrace import KernelEvent
from sockcap.i18n import _
from sockcap.render.calls import call_explain, call_line, call_record, cause_line, kernel_ties
from sockcap.render.kernel import ProbeFilter, kernel_line
from sockcap.render.packets import PacketView
from sockcap.render.timeline import json_record

LOST_STYLE = "bold red"
KERNEL_STYLE = "magenta"  # as the timeline's ◆ lines
CALL_STYLE = "cyan"  # as run --capture's ▸ lines


def seconds_text(seconds: float) -> str:
    """``3.41``; below a second two significant digits (``0.00043``), as UDP is that quick."""
    if seconds == 0:
        return "0"
    if seconds >= 1:
        return f"{seconds:.2f}"
    return f"{seconds:.2g}" if seconds >= 1e-4 else f"{seconds:.6f}"  # never 4.3e-05


def rate_text(bits_per_second: float) -> str:
    """``950 kbit/s``, ``1.20 Mbit/s``: a goodput beside the link's ``--rate``."""
    if bits_per_second >= 1e6:
        return _("{n:.2f} Mbit/s").format(n=bits_per_second / 1e6)
    if bits_per_second >= 1e3:
        return _("{n:.0f} kbit/s").format(n=bits_per_second / 1e3)
    return _("{n:.0f} bit/s").format(n=bits_per_second)


def tcp_sentence(v: TcpVerdict, failed: Call | None = None) -> str:
    """The TCP verdict; ``failed``: the client's connect() when the kernel made it fail
    (it gave up on the handshake itself, so the lab did not stop it): its errno and how
    long it waited."""
    if failed is not None:
        return _("TCP: {intact} of {messages} messages delivered: the client's connect() "
                 "failed with {errno} after {seconds} s, {lost} segments lost, {resent} "
                 "retransmitted").format(
            intact=v.intact, messages=v.messages, errno=failed.error,
            seconds=seconds_text((failed.returned_ns - failed.ts_ns) / 1e9),
            lost=v.lost_segments, resent=v.retransmissions)
    if not v.finished:
        return _("TCP: {intact} of {messages} messages delivered intact when the lab stopped "
                 "it after {seconds} s, {lost} segments lost, {resent} retransmitted "
                 "({timeout} by timeout, {fast} fast)").format(
            intact=v.intact, messages=v.messages, seconds=seconds_text(v.seconds),
            lost=v.lost_segments, resent=v.retransmissions, timeout=v.by_timeout, fast=v.fast)
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


def time_line(v: TcpVerdict, pattern: str) -> str:
    """Where TCP's time went: the handshake, the round trips, the timeouts; its goodput."""
    waits = v.intact if pattern == "ping-pong" else 1
    return _("TCP's {seconds} s: {handshake} s for the handshake (a round trip of {rtt} s), "
             "{waits} round trips waiting for echoes, {in_timeouts} s waiting for {timeouts} "
             "retransmission timeouts; goodput {goodput}").format(
        seconds=seconds_text(v.seconds), handshake=seconds_text(v.timing.handshake),
        rtt=seconds_text(v.timing.rtt), waits=waits,
        in_timeouts=seconds_text(v.timing.in_timeouts), timeouts=v.timing.timeouts,
        goodput=rate_text(8 * v.goodput))


def udp_time_line(v: UdpVerdict) -> str:
    text = _("UDP's {seconds} s: no handshake, no acknowledgment, nothing resent; goodput "
             "{goodput}").format(seconds=seconds_text(v.seconds), goodput=rate_text(8 * v.goodput))
    if v.fragments:
        text += "; " + _("its datagrams went as {n} IP fragments").format(n=v.fragments)
    if v.by_a_fragment:
        text += "; " + _("lost by a single fragment: {numbers} (one lost fragment loses the "
                         "whole datagram)").format(
            numbers=" ".join(f"#{n}" for n in v.by_a_fragment))
    return text


def stall_line(s: Stall, retries2: int) -> str:
    """What TCP was doing when the lab stopped it, and how long it would have gone on."""
    return _("message {message} was still being retransmitted: {tries} tries, the timeout "
             "growing {first} → {last} s — TCP backs off and would give up after ~{minutes} "
             "min (tcp_retries2 = {retries2})").format(
        message=s.message, tries=s.tries, first=f"{s.first_wait:.1f}", last=f"{s.last_wait:.1f}",
        minutes=f"{give_up_seconds(retries2) / 60:.0f}", retries2=retries2)


def race_line(tcp: TcpVerdict, udp: UdpVerdict, pattern: str) -> str:
    """The course's point in one sentence, with this run's numbers."""
    said = _("the same {n} messages, {pattern}").format(n=tcp.messages, pattern=pattern)
    if not tcp.finished:
        return _("Reliable vs fast ({said}): TCP kept retransmitting and had delivered "
                 "{intact} of {n} when the lab stopped it; UDP delivered {delivered} of {n} in "
                 "{udp} s and will never resend the rest.").format(
            said=said, intact=tcp.intact, n=tcp.messages, delivered=udp.delivered,
            udp=seconds_text(udp.seconds))
    gap = tcp.seconds - udp.seconds
    echoes_lost = udp.echoes_sent - udp.echoes_delivered
    if udp.lost or echoes_lost:
        if gap >= 0:
            text = _("Reliable vs fast ({said}): TCP delivered {intact} of {n} in {tcp} s, "
                     "{gap} s slower than UDP, which took {udp} s and lost {lost} of {n} "
                     "messages and {echoes} echoes for good.")
        else:
            text = _("Reliable vs fast ({said}): TCP delivered {intact} of {n} in {tcp} s, "
                     "{gap} s sooner than UDP, which took {udp} s (waiting for echoes that "
                     "never came) and lost {lost} of {n} messages and {echoes} echoes for good.")
    elif gap >= 0:
        text = _("Reliable vs fast ({said}): TCP delivered {intact} of {n} in {tcp} s, {gap} s "
                 "slower than UDP, which took {udp} s and this time lost nothing.")
    else:
        text = _("Reliable vs fast ({said}): TCP delivered {intact} of {n} in {tcp} s, {gap} s "
                 "sooner than UDP, which took {udp} s and this time lost nothing.")
    return text.format(said=said, intact=tcp.intact, n=tcp.messages,
                       tcp=seconds_text(tcp.seconds), gap=seconds_text(abs(gap)),
                       udp=seconds_text(udp.seconds), lost=udp.lost, echoes=echoes_lost)


def needless_line(v: TcpVerdict, queue_full: int, link_lost: int) -> str:
    """A retransmission the link's losses do not explain, named with its evidence ("" if
    none)."""
    if v.needless_queued:
        return _("{n} of TCP's {resent} retransmissions were spurious: the first copy was still "
                 "queued on the link when it was resent (it arrived up to {gap} s later) — TCP's "
                 "timer or its loss detection was quicker than the queue").format(
            n=v.needless_queued, resent=v.retransmissions, gap=seconds_text(v.needless_gap))
    if v.needless:
        if queue_full:
            return _("{n} of TCP's {resent} retransmissions were spurious: the first copy had "
                     "arrived up to {gap} s before it was resent; the link's queue overflowed "
                     "{full} times").format(n=v.needless, resent=v.retransmissions,
                                            gap=seconds_text(v.needless_gap), full=queue_full)
        return _("{n} of TCP's {resent} retransmissions were spurious: the first copy had "
                 "arrived up to {gap} s before it was resent; the receiving host dropped it "
                 "after it arrived (a full queue or buffer), or the retransmission timeout was "
                 "too short").format(n=v.needless, resent=v.retransmissions,
                                     gap=seconds_text(v.needless_gap))
    if v.retransmissions and not link_lost:
        return _("TCP retransmitted {resent} segments on a link that lost nothing: the "
                 "receiving host dropped them after they arrived (a full queue or buffer)"
                 ).format(resent=v.retransmissions)
    return ""


def cwnd_lines(story: CwndStory, cc: str) -> list[str]:
    """The client's congestion window in a line each: slow start, the loss, the recovery."""
    lines = [_("slow start ({cc}): the congestion window grew from {start} to {peak} segments "
               "in {seconds} s").format(cc=cc, start=story.start, peak=story.peak,
                                        seconds=seconds_text(story.peak_at))]
    if story.fell_at < 0:
        lines.append(_("no loss: the congestion window never fell (it ended at {end})").format(
            end=story.end))
        return lines
    ssthresh = "∞" if story.ssthresh >= SSTHRESH_INFINITE else str(story.ssthresh)
    lines.append(_("the loss at {at} s: the congestion window fell from {peak} to {to} "
                   "segments, the slow-start threshold set to {ssthresh}").format(
        at=seconds_text(story.fell_at), peak=story.peak, to=story.fell_to, ssthresh=ssthresh))
    lines.append(_("recovery: from there the congestion window grew to {end} segments by "
                   "{at} s (a round trip of {rtt} s)").format(end=story.end, at=seconds_text(story.end_at),
                                             rtt=seconds_text(story.rtt)))
    return lines


def verdict_line(tcp: TcpVerdict | None, udp: UdpVerdict | None,
                 failed: Call | None = None) -> str:
    """``TCP: ... | UDP: ...`` (either alone when only one ran); ``failed``: see
    :func:`tcp_sentence`."""
    return " | ".join([*([tcp_sentence(tcp, failed)] if tcp else []),
                       *([udp_sentence(udp)] if udp else [])])


def verdict_record(tcp: TcpVerdict | None, udp: UdpVerdict | None) -> dict[str, Any]:
    """The verdict for ``--json`` (stable keys; a protocol that did not run is absent)."""
    record: dict[str, Any] = {}
    if tcp is not None:
        record["tcp"] = {
            "messages": tcp.messages, "intact": tcp.intact,
            "sent_bytes": tcp.sent_bytes, "delivered_bytes": tcp.delivered_bytes,
            "lost_segments": tcp.lost_segments, "retransmissions": tcp.retransmissions,
            "retransmissions_timeout": tcp.by_timeout, "retransmissions_fast": tcp.fast,
            "seconds": round(tcp.seconds, 6), "finished": tcp.finished,
            "goodput_bps": round(8 * tcp.goodput),
            "handshake_seconds": round(tcp.timing.handshake, 6),
            "rtt_seconds": round(tcp.timing.rtt, 6),
            "timeout_seconds": round(tcp.timing.in_timeouts, 6),
            "timeouts": tcp.timing.timeouts, "spurious": tcp.needless,
            "spurious_queued": tcp.needless_queued,
            "stall": None if tcp.stall is None else {
                "message": tcp.stall.message, "tries": tcp.stall.tries,
                "first_wait": round(tcp.stall.first_wait, 6),
                "last_wait": round(tcp.stall.last_wait, 6)},
        }
    if udp is not None:
        record["udp"] = {
            "sent": udp.sent, "delivered": udp.delivered, "lost": udp.lost,
            "lost_numbers": list(udp.lost_numbers), "echoes_sent": udp.echoes_sent,
            "echoes_delivered": udp.echoes_delivered, "resent": udp.resent,
            "seconds": round(udp.seconds, 6), "finished": udp.finished,
            "goodput_bps": round(8 * udp.goodput), "fragments": udp.fragments,
            "lost_by_a_fragment": list(udp.by_a_fragment),
        }
    return record


def timeline(view: PacketView, pairs: Sequence[tuple[Hop, Annotated]],
             client: str = "", events: Sequence[KernelEvent] = (),
             first_ts: int = 0, calls: Sequence[Call] = (),
             explain: bool = False) -> Iterator[tuple[str, str]]:
    """The merged timeline as ``(line, style)`` pairs: every packet put on the link, at the
    time it was sent; one that never arrived is marked *lost on the link*. An IP fragment
    says so as tshark does (``Fragmented IP protocol (proto=UDP 17, off=1480, ID=3c4d)``),
    and a lost one names the datagram it takes with it. ``events`` (``--kernel``, tied to
    the packets): the kernel's ``◆`` lines among the packets by time. ``calls`` (the lab's
    own endpoints', tied to the packets by :func:`sockcap.analysis.story.tie_calls`): a
    ``▸`` line where each began and where it returned, as ``run --capture`` shows them
    (:func:`sockcap.analysis.story.story` places them), a failed one with the packets
    (and kernel events) that made it fail, and with ``explain`` its sentence."""
    mark = "  ✗ " + _("lost on the link")
    marks = _fragment_marks(pairs, client)
    probes = ProbeFilter()
    pending = sorted(events, key=lambda e: e.ts_ns)
    hops = {a.no: hop for hop, a in pairs}
    annotated = [a for _hop, a in pairs]
    for entry in story(annotated, calls):
        while pending and pending[0].ts_ns <= entry.ts_ns:
            event = pending.pop(0)
            if probes.shown(event):
                yield kernel_line(event, first_ts), KERNEL_STYLE
        if entry.call is not None:
            yield from _call_lines(entry.call, entry.moment, annotated, events, first_ts,
                                   explain)
            continue
        a = entry.packet
        assert a is not None
        hop = hops[a.no]
        lines = list(view.styled(a))
        first = view.timeline.lines(a)[0]
        main = next(i for i, (text, _style) in enumerate(lines) if text == first)
        text, style = lines[main]
        extra, lost_too = marks.get(a.no, ("", ""))
        text += extra
        if hop.late:
            text += "  ↯ " + _("overtaken on the link: arrived after a packet sent later")
        if hop.copies:
            text += "  ⧉ " + _("duplicated on the link: arrived {n} times").format(
                n=hop.copies + 1)
        if hop.lost:  # the packet's own line comes after any line said before it
            text, style = text + mark + lost_too, LOST_STYLE
        lines[main] = (text, style)
        yield from lines
    for event in pending:
        if probes.shown(event):
            yield kernel_line(event, first_ts), KERNEL_STYLE


def _call_lines(call: Call, moment: Moment, annotated: Sequence[Annotated],
                events: Sequence[KernelEvent], first_ts: int,
                explain: bool) -> Iterator[tuple[str, str]]:
    """A call's ``▸`` line; where it returned, what made it fail (``cause_line``) and,
    with ``explain``, its sentence."""
    yield call_line(call, first_ts, moment), CALL_STYLE
    if moment is Moment.BEGUN:
        return
    end = call.returned_ns + CLOCK_SLACK_NS
    cause = cause_line(call, [a for a in annotated if a.packet.ts_ns <= end], events,
                       first_ts)
    if cause is not None:
        yield cause, CALL_STYLE
    why = call_explain(call) if explain else None
    if why is not None:
        yield why, CALL_STYLE


def lab_call_records(calls: Sequence[Call], annotated: Sequence[Annotated],
                     events: Sequence[KernelEvent], first_ts: int) -> list[dict[str, Any]]:
    """The calls for the lab's ``--json`` (``"type": "call"`` records as ``run --capture
    --json`` writes them, each with the packets that made it fail and, with ``--kernel``,
    the kernel's events behind them)."""
    records = []
    for call in calls:
        end = call.returned_ns + CLOCK_SLACK_NS
        record = call_record(call, first_ts, [a for a in annotated if a.packet.ts_ns <= end])
        record["kernel"] = kernel_ties(call, events, first_ts)
        records.append(record)
    return records


def _fragment_marks(pairs: Sequence[tuple[Hop, Annotated]],
                    client: str) -> dict[int, tuple[str, str]]:
    """For each IP fragment (by packet number): its tshark-like words, and what its loss
    costs."""
    marks: dict[int, tuple[str, str]] = {}
    number = 0
    for gram in datagrams(pairs):
        if gram[0][0].sender == client:
            number += 1
        if len(gram) < 2:
            continue
        whole = (_(" — datagram #{n} is lost with it").format(n=number)
                 if gram[0][0].sender == client else _(" — the echo is lost with it"))
        for _hop, a in gram:
            data = a.packet.data
            offset = (int.from_bytes(data[20:22], "big") & 0x1FFF) * 8 if len(data) >= 22 else 0
            marks[a.no] = ("  " + _("Fragmented IP protocol (proto=UDP 17, off={off}, "
                                    "ID={id:04x})").format(off=offset, id=a.packet.ip_id),
                           whole)
    return marks


def link_record(o: LinkOptions, by: str, counts: dict[str, Counts]) -> dict[str, Any]:
    """The link for ``--json``: what was asked, with what, and (the delay line's) counts."""
    record: dict[str, Any] = {"loss_percent": o.loss, "drop_every": o.drop_every,
                              "delay_ms": o.delay_ms, "by": by}
    if o.shaped:
        record.update({"jitter_ms": o.jitter_ms, "rate_bps": o.rate_bps, "queue": o.queue,
                       "reorder_percent": o.reorder, "duplicate_percent": o.duplicate,
                       "corrupt_percent": o.corrupt, "direction": o.direction,
                       "counts": {d: asdict(c) for d, c in counts.items()}})
    return record


def cwnd_record(samples: Sequence[CwndSample], cc: str) -> dict[str, Any]:
    """The client's congestion window for ``--json``: ``[seconds from the first sample,
    cwnd, ssthresh, srtt in µs, ca_state]`` at each change."""
    t0 = samples[0].ts_ns if samples else 0
    return {"cc": cc, "samples": [[round((c.ts_ns - t0) / 1e9, 6), c.cwnd, c.ssthresh,
                                   c.rtt_us, c.ca_state] for c in samples]}


def packet_records(pairs: Sequence[tuple[Hop, Annotated]], first_ts: int) -> list[dict[str, Any]]:
    """The packets for ``--json``: sockcap's usual per-packet keys, plus ``link``
    (``"delivered"`` or ``"lost"``), ``delivered_time`` (seconds, null when lost),
    ``link_late`` (overtaken on the link) and ``link_copies`` (extra copies that arrived)."""
    records = []
    for hop, a in pairs:
        record = json_record(a, first_ts)
        record["link"] = "lost" if hop.lost else "delivered"
        record["link_late"] = hop.late
        record["link_copies"] = hop.copies
        record["delivered_time"] = (None if hop.lost
                                    else round((hop.received_ns - first_ts) / 1e9, 6))
        records.append(record)
    return records


def link_words(o: LinkOptions, loss_by: str) -> str:
    """What the link does to packets, which way, and with what (``sockcap``'s delay line,
    ``netem`` or ``nftables``)."""
    parts = []
    if o.drop_every:
        n = o.drop_every
        parts.append(_("TCP packets and UDP packets number {n}, {n2}, {n3}, … dropped")
                     .format(n=n, n2=2 * n, n3=3 * n))
    if o.loss:
        parts.append(_("packets lost at random: {loss:g}%").format(loss=o.loss))
    if o.delay_ms:
        parts.append(_("{delay:g} ms of delay").format(delay=o.delay_ms))
    if o.jitter_ms:
        parts.append(_("± {jitter:g} ms of jitter").format(jitter=o.jitter_ms))
    if o.rate_bps:
        parts.append(_("at most {rate}, {queue} packets queued").format(
            rate=rate_text(o.rate_bps), queue=o.queue))
    if o.reorder:
        parts.append(_("packets reordered: {percent:g}%").format(percent=o.reorder))
    if o.duplicate:
        parts.append(_("packets duplicated: {percent:g}%").format(percent=o.duplicate))
    if o.corrupt:
        parts.append(_("packets corrupted: {percent:g}%").format(percent=o.corrupt))
    if not parts:
        return _("the link: loses nothing")
    what = "; ".join(parts)
    if o.direction == "to-server":
        return _("the link: {what}, toward the server only (by {tool})").format(
            what=what, tool=loss_by)
    if o.direction == "to-client":
        return _("the link: {what}, toward the client only (by {tool})").format(
            what=what, tool=loss_by)
    return _("the link: {what}, each way (by {tool})").format(what=what, tool=loss_by)


def counts_line(counts: dict[str, Counts]) -> str:
    """What the delay line did, each way (only what happened)."""
    said = []
    for direction, c in counts.items():
        parts = [text.format(n=n) for n, text in (
            (c.lost, _("{n} lost")), (c.dropped_every, _("{n} dropped")),
            (c.queue_full, _("{n} dropped by a full queue")), (c.reordered, _("{n} reordered")),
            (c.duplicated, _("{n} duplicated")), (c.corrupted, _("{n} corrupted"))) if n]
        if parts:
            said.append(_("{way}: {frames} packets, {what}").format(
                way=direction, frames=c.frames, what=", ".join(parts)))
    return _("on the link: {what}").format(what="; ".join(said)) if said else ""
