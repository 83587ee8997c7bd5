"""The work behind ``sockcap lab`` (imported only when the command runs).

The order: the namespaces first, while the process has one thread (a user namespace
needs that), then the link, then the run; everything the lab made lives in those
namespaces and goes with the process, however it ends. After the run: the two captures
are merged (:func:`sockcap.analysis.link.merge_ends`), the merged timeline is written as
``link.pcap`` beside the two captures, annotated by the pipeline, judged, and shown.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from dataclasses import dataclass

from sockcap.analysis.link import (
    IPPROTO_TCP,
    IPPROTO_UDP,
    Hop,
    merge_ends,
    of_proto,
    tcp_verdict,
    udp_verdict,
)
from sockcap.analysis.story import tie_kernel
from sockcap.decode.records import LINKTYPE_ETHERNET
from sockcap.errors import ExitCode
from sockcap.i18n import _
from sockcap.lab.namespaces import Namespaces
from sockcap.lab.session import LabOptions, LabResult, run_lab
from sockcap.lab.wire import CLIENT_ADDRESS, NAMESPACES, SERVER_ADDRESS, LinkOptions, Wire, build
from sockcap.output import Output
from sockcap.owner import Owner
from sockcap.pcapfile.writer import PcapWriter
from sockcap.pipeline import Pipeline
from sockcap.render.explain import PacketExplainer
from sockcap.render.kernel import kernel_record
from sockcap.render.lab import link_words, packet_records, timeline, verdict_line, verdict_record
from sockcap.render.packets import PacketView
from sockcap.signals import Stopped, cancel_on_signals


@dataclass(frozen=True, slots=True)
class LabRequest:
    link: LinkOptions
    messages: tuple[bytes, ...]
    tcp: bool
    udp: bool
    out_dir: str
    force: bool
    timeout: float
    json: bool
    style: str
    no_color: bool
    explain: bool = False
    kernel: bool = False


def lab_command(req: LabRequest) -> None:
    output = Output(color=False if req.no_color else None)
    ns = Namespaces(NAMESPACES)
    wire = build(ns, req.link)
    opts = LabOptions(messages=req.messages, tcp=req.tcp, udp=req.udp, out_dir=req.out_dir,
                      force=req.force, timeout=req.timeout, delay_ms=req.link.delay_ms,
                      kernel=req.kernel)
    signals: list[int] = []
    try:
        result = asyncio.run(cancel_on_signals(
            run_lab(ns, opts, note=lambda text: output.note(f"sockcap: {text}")), signals))
    except (KeyboardInterrupt, asyncio.CancelledError):
        signals.append(signals[0] if signals else signal.SIGINT)
    if signals:
        where = _("; the packets captured so far are in {folder}").format(folder=req.out_dir)
        if signals[0] == signal.SIGTERM:
            raise Stopped(_("terminated") + where, ExitCode.TERMINATED)
        raise Stopped(_("interrupted") + where, ExitCode.INTERRUPTED)
    _show(req, wire, result, output)


def _show(req: LabRequest, wire: Wire, result: LabResult, output: Output) -> None:
    hops = merge_ends([(SERVER_ADDRESS, result.frames["server"]),
                       (CLIENT_ADDRESS, result.frames["client"])])
    files = {**result.paths, "link": os.path.join(req.out_dir, "link.pcap")}
    _write_link(files["link"], hops, req.force, output)
    pipeline = Pipeline()
    annotated = list(pipeline.packets(hop.frame for hop in hops))
    tcp_pairs = of_proto(hops, annotated, IPPROTO_TCP)
    udp_pairs = of_proto(hops, annotated, IPPROTO_UDP)
    tcp = tcp_verdict(tcp_pairs, result.tcp) if result.tcp else None
    udp = udp_verdict(udp_pairs, CLIENT_ADDRESS, len(req.messages)) if result.udp else None
    events = tie_kernel(result.events, annotated, result.listen_overflows)
    if result.dropped:
        output.note(_("sockcap: the captures had no room for {n} packets: the timeline "
                      "misses them").format(n=result.dropped))
    if req.json:
        record = {**verdict_record(tcp, udp),
                  "link": {"loss_percent": wire.options.loss,
                           "drop_every": wire.options.drop_every,
                           "delay_ms": wire.options.delay_ms, "by": wire.loss_by},
                  "files": files, "packets": packet_records(list(zip(hops, annotated, strict=True)),
                                                            pipeline.first_ts)}
        if req.kernel:
            record["kernel"] = [kernel_record(e, pipeline.first_ts) for e in events]
        output.line(json.dumps(record))
        output.flush()
        return
    explainer = PacketExplainer() if req.explain else None
    view = PacketView(pipeline, style=req.style, explainer=explainer)
    output.line(verdict_line(tcp, udp))
    o = wire.options
    output.line(link_words(o.loss, o.drop_every, o.delay_ms, wire.loss_by))
    output.line(_("saved to {folder}: server.pcap and client.pcap (each end's capture), "
                  "link.pcap (every packet put on the link)").format(folder=req.out_dir))
    for title, pairs in ((_("TCP echo"), tcp_pairs), (_("UDP echo"), udp_pairs)):
        if pairs:
            output.line("")
            output.line(_("{title}: every packet put on the link, at the time it was sent:")
                        .format(title=title))
            output.lines(timeline(view, pairs, events if title == _("TCP echo") else (),
                                  pipeline.first_ts))
    if explainer is not None:
        output.line("")
        output.lines(explainer.summary())
    output.flush()


def _write_link(path: str, hops: list[Hop], force: bool, output: Output) -> None:
    writer = PcapWriter(path, LINKTYPE_ETHERNET, force=force,
                        owner=Owner(lambda text: output.note(f"sockcap: {text}")))
    try:
        for hop in hops:
            writer.write(hop.frame)
    finally:
        writer.close()
