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
from collections.abc import Sequence
from dataclasses import dataclass

from sockcap.analysis.calls import Call
from sockcap.analysis.conversation import Annotated
from sockcap.analysis.link import (
    IPPROTO_TCP,
    IPPROTO_UDP,
    SSTHRESH_INFINITE,
    CwndSample,
    CwndStory,
    Hop,
    TcpVerdict,
    UdpVerdict,
    cwnd_story,
    merge_ends,
    of_proto,
    tcp_verdict,
    udp_verdict,
)
from sockcap.analysis.shape import Counts, LinkOptions
from sockcap.analysis.story import tie_calls, tie_kernel
from sockcap.commands.outfile import write_text_file
from sockcap.decode.ftrace import KernelEvent
from sockcap.decode.records import LINKTYPE_ETHERNET
from sockcap.errors import ExitCode, InputError
from sockcap.i18n import _
from sockcap.lab.namespaces import Namespaces
from sockcap.lab.session import LabOptions, LabResult, run_lab
from sockcap.lab.wire import CLIENT_ADDRESS, NAMESPACES, SERVER_ADDRESS, Wire, build
from sockcap.output import Output, color_choice
from sockcap.owner import Owner
from sockcap.pcapfile.writer import PcapWriter
from sockcap.pipeline import Pipeline
from sockcap.render.explain import PacketExplainer
from sockcap.render.kernel import kernel_record
from sockcap.render.lab import (
    counts_line,
    cwnd_lines,
    cwnd_record,
    lab_call_records,
    link_record,
    link_words,
    needless_line,
    packet_records,
    race_line,
    stall_line,
    time_line,
    timeline,
    udp_time_line,
    verdict_line,
    verdict_record,
)
from sockcap.render.packets import PacketView
from sockcap.render.seqgraph import (
    probe_cwnd,
    probe_source,
    probe_srtt,
    sender_mss,
    seqgraph_layout,
)
from sockcap.render.svg import cwnd_graph_svg
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
    color: str = "auto"  # --color (no_color: --no-color, which wins)
    explain: bool = False
    pattern: str = "ping-pong"
    cc: str = ""
    fresh: bool = False  # out_dir is the default name: a new folder each run
    graph: str = ""  # write the TCP time-sequence graph with cwnd and ssthresh here
    kernel: bool = False  # the kernel's TCP events of the TCP echo

AVAILABLE_CC = "/proc/sys/net/ipv4/tcp_available_congestion_control"
RETRIES2 = "/proc/sys/net/ipv4/tcp_retries2"
DEFAULT_CC = "/proc/sys/net/ipv4/tcp_congestion_control"
FRAME_OVERHEAD = 14 + 20 + 8  # Ethernet, IP and UDP headers around a message


def check_cc(name: str) -> None:
    """``--cc NAME`` where this kernel has it; else one line listing what it has."""
    try:
        with open(AVAILABLE_CC) as f:
            have = f.read().split()
    except OSError:
        have = []
    if name not in have:
        raise InputError(_("this kernel has no congestion control {name!r}; it has: {have}")
                         .format(name=name, have=", ".join(have) or _("none listed")))


def _default_cc() -> str:
    try:
        with open(DEFAULT_CC) as f:
            return f.read().strip()
    except OSError:
        return "?"


def _retries2() -> int:
    try:
        with open(RETRIES2) as f:
            return int(f.read())
    except (OSError, ValueError):
        return 15  # the kernel's default


def lab_command(req: LabRequest) -> None:
    output = Output(color=color_choice(req.color, req.no_color))
    ns = Namespaces(NAMESPACES)
    wire = build(ns, req.link)
    folder = [req.out_dir]  # the one run_lab made (``-2``, ... for a fresh one)
    try:
        result, signals = _run(req, ns, wire, output, folder)
    finally:
        wire.stop()
    if signals:
        where = _("; the packets captured so far are in {folder}").format(folder=folder[-1])
        if signals[0] == signal.SIGTERM:
            raise Stopped(_("terminated") + where, ExitCode.TERMINATED)
        raise Stopped(_("interrupted") + where, ExitCode.INTERRUPTED)
    assert result is not None
    if not _show(req, wire, result, output, _retries2(), req.cc or _default_cc()):
        raise SystemExit(ExitCode.ERROR)


def _run(req: LabRequest, ns: Namespaces, wire: Wire, output: Output,
         folder: list[str]) -> tuple[LabResult | None, list[int]]:
    link = req.link
    biggest = max(len(m) for m in req.messages) + FRAME_OVERHEAD
    opts = LabOptions(messages=req.messages, tcp=req.tcp, udp=req.udp, out_dir=req.out_dir,
                      force=req.force, timeout=req.timeout,
                      delay_ms=link.delay_ms + link.jitter_ms,
                      transfer_s=8 * biggest / link.rate_bps if link.rate_bps else 0.0,
                      pattern=req.pattern, cc=req.cc, fresh=req.fresh, kernel=req.kernel)
    signals: list[int] = []
    result = None
    try:
        result = asyncio.run(cancel_on_signals(
            run_lab(ns, opts, on_paths=lambda paths: folder.append(
                os.path.dirname(paths["server"])),
                note=lambda text: output.note(f"sockcap: {text}")), signals))
    except (KeyboardInterrupt, asyncio.CancelledError):
        signals.append(signals[0] if signals else signal.SIGINT)
    return result, signals


def _show(req: LabRequest, wire: Wire, result: LabResult, output: Output,
          retries2: int, cc: str) -> bool:
    """Say what the run showed; False when the deadline stopped it before the end."""
    hops = merge_ends([(SERVER_ADDRESS, result.frames["server"]),
                       (CLIENT_ADDRESS, result.frames["client"])])
    folder = result.folder or req.out_dir
    files = {**result.paths, "link": os.path.join(folder, "link.pcap")}
    _write_link(files["link"], hops, req.force, output)
    pipeline = Pipeline()
    annotated = list(pipeline.packets(hop.frame for hop in hops))
    tcp_pairs = of_proto(hops, annotated, IPPROTO_TCP)
    udp_pairs = of_proto(hops, annotated, IPPROTO_UDP)
    tcp = tcp_verdict(tcp_pairs, result.tcp, CLIENT_ADDRESS) if result.tcp else None
    udp = (udp_verdict(udp_pairs, CLIENT_ADDRESS, len(req.messages), result.udp.finished)
           if result.udp else None)
    finished = all(v.finished for v in (tcp, udp) if v is not None)
    counts = wire.counts or {}
    samples = result.tcp.cwnd if result.tcp else ()
    story = cwnd_story(samples)
    events = tie_kernel(result.events, annotated, result.listen_overflows)
    calls = tie_calls(result.calls, annotated)  # both ends' own calls, on the link's packets
    if req.graph and tcp_pairs:
        _write_graph(req.graph, [a for _hop, a in tcp_pairs], samples, events, req.force,
                     output)
    if result.dropped:
        output.note(_("sockcap: the captures had no room for {n} packets: the timeline "
                      "misses them").format(n=result.dropped))
    if req.json:
        record = {**verdict_record(tcp, udp), "pattern": req.pattern, "finished": finished,
                  **({"cwnd": cwnd_record(samples, cc)} if result.tcp else {}),
                  "link": link_record(wire.options, wire.loss_by, counts), "files": files,
                  "packets": packet_records(list(zip(hops, annotated, strict=True)),
                                            pipeline.first_ts)}
        record["calls"] = lab_call_records(calls, annotated, events, pipeline.first_ts)
        if req.kernel:
            record["kernel"] = [kernel_record(e, pipeline.first_ts) for e in events]
        output.line(json.dumps(record))
        output.flush()
        return finished
    failed = next((c for c in calls if c.side == "client" and c.syscall == "connect"
                   and c.proto == "TCP" and c.error in ("ETIMEDOUT", "ECONNREFUSED")), None)
    _say(req, tcp, udp, retries2, counts, story, cc, output, failed)
    output.line(link_words(wire.options, wire.loss_by))
    said = counts_line(counts)
    if said:
        output.line(said)
    output.line(_("saved to {folder}: server.pcap and client.pcap (each end's capture), "
                  "link.pcap (every packet put on the link)").format(folder=folder))
    _timelines(req, pipeline, tcp_pairs, udp_pairs, events, calls, output)
    output.flush()
    return finished

def _timelines(req: LabRequest, pipeline: Pipeline, tcp_pairs: Sequence[tuple[Hop, Annotated]],
               udp_pairs: Sequence[tuple[Hop, Annotated]], events: Sequence[KernelEvent],
               calls: Sequence[Call], output: Output) -> None:
    """Each echo's timeline: the packets put on the link, the two ends' calls among them,
    the kernel's events on the TCP one; with ``--explain`` the sentences and the summary."""
    explainer = PacketExplainer() if req.explain else None
    if explainer is not None:  # a FIN is explained by the call that sent it
        explainer.know_calls(calls)
    view = PacketView(pipeline, style=req.style, explainer=explainer)
    for title, pairs, proto in ((_("TCP echo"), tcp_pairs, "TCP"),
                                (_("UDP echo"), udp_pairs, "UDP")):
        if pairs or any(c.proto == proto for c in calls):
            output.line("")
            output.line(_("{title}: every packet put on the link, at the time it was sent:")
                        .format(title=title))
            output.lines(timeline(view, pairs, CLIENT_ADDRESS,
                                  events if pairs is tcp_pairs else (), pipeline.first_ts,
                                  [c for c in calls if c.proto == proto], req.explain))
    if explainer is not None:
        output.line("")
        output.lines(explainer.summary())



def _say(req: LabRequest, tcp: TcpVerdict | None, udp: UdpVerdict | None, retries2: int,
         counts: dict[str, Counts], story: CwndStory | None, cc: str, output: Output,
         failed: Call | None = None) -> None:
    """The verdict, the race, where each protocol's time went, the congestion window;
    ``failed``: the client's connect(), when the kernel made it fail."""
    output.line(verdict_line(tcp, udp, failed))
    if tcp is not None and udp is not None:
        output.line(race_line(tcp, udp, req.pattern))
    if tcp is not None:
        output.line(time_line(tcp, req.pattern))
        if tcp.stall is not None:
            output.line(stall_line(tcp.stall, retries2))
        queue_full = sum(c.queue_full for c in counts.values())
        needless = needless_line(tcp, queue_full, tcp.lost_segments)
        if needless:
            output.line(needless)
        if story is not None and (req.pattern == "stream" or req.graph):
            for line in cwnd_lines(story, cc):
                output.line(line)
    if udp is not None:
        output.line(udp_time_line(udp))


def _write_graph(path: str, packets: list[Annotated], samples: tuple[CwndSample, ...],
                 events: list[KernelEvent], force: bool, output: Output) -> None:
    """The client's time-sequence graph with its congestion window under it: with
    ``--kernel``, from the ``tcp:tcp_probe`` tracepoint (the kernel's own cwnd and ssthresh
    each time the client's socket received a segment, :func:`probe_cwnd`); else from the
    client's ``TCP_INFO`` samples (read by the client between its writes, so coarser).
    Both count segments; the graph draws bytes, each segment the MSS the handshake
    negotiated (:func:`sender_mss`)."""
    start = packets[0].packet.ts_ns
    graph = seqgraph_layout(packets, from_client=True,
                            title=_("TCP: the client's data, its congestion window"))
    cwnd = list(probe_cwnd(events, packets, True))
    source = probe_source()
    mss = sender_mss(packets, True)
    if not cwnd:
        cwnd = [((c.ts_ns - start) / 1e9, c.cwnd * mss,
                 0 if c.ssthresh >= SSTHRESH_INFINITE else c.ssthresh * mss) for c in samples]
        source = _("from the client's TCP_INFO")
    srtt = probe_srtt(events, packets, True)
    write_text_file(path, cwnd_graph_svg(graph, cwnd, mss, source=source, srtt=srtt), force=force,
                    note=output.note)


def _write_link(path: str, hops: list[Hop], force: bool, output: Output) -> None:
    writer = PcapWriter(path, LINKTYPE_ETHERNET, force=force,
                        owner=Owner(lambda text: output.note(f"sockcap: {text}")))
    try:
        for hop in hops:
            writer.write(hop.frame)
    finally:
        writer.close()
