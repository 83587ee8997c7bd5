"""One lab run: captures at both ends, the TCP echo, then the UDP echo, then the drain.

The order, as in ``sockcap run``: both captures are ready before the first packet; the
echo server is started in the server host and the client runs in the client host (the
thread steps into a host's namespace only to make its sockets); after the exchanges the
captures keep reading until nothing more arrived for a while (the last ACKs of the
teardown, a late retransmission); every frame is written to its end's pcap file as it
arrives, so an interrupt leaves valid files with everything so far.

The UDP client sends all its datagrams at once and then collects the echoes for a short
while: UDP has no acknowledgments and resends nothing, and the lab shows how quickly it
is done — and what it lost.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sockcap.analysis.link import Delivery
from sockcap.capture.afpacket import AfPacketCapture
from sockcap.capture.bpf import JEQ_K, LD_H_ABS, RET_K, SNAPLEN, Insn, Op, assemble
from sockcap.capture.kernel import KernelTrace
from sockcap.decode.ftrace import KernelEvent
from sockcap.decode.records import LINKTYPE_ETHERNET, RawFrame
from sockcap.endpoints.client import tcp_exchange
from sockcap.endpoints.server import EchoServer
from sockcap.errors import EndpointError, WriteError
from sockcap.i18n import _
from sockcap.lab.namespaces import Namespaces
from sockcap.lab.wire import CLIENT_ADDRESS, HOST_IFACE, SERVER_ADDRESS
from sockcap.owner import Owner
from sockcap.pcapfile.writer import PcapWriter

RING_BYTES = 16 << 20
QUIET_SECONDS = 0.3  # the captures are drained when nothing arrived for this long
SETTLE_SECONDS = 5.0  # longest wait for the last packets after the exchanges
UDP_WAIT_SECONDS = 0.5  # how long the UDP client waits for echoes after the last one came
HOSTS = ("server", "client")


@dataclass
class LabOptions:
    messages: tuple[bytes, ...]
    tcp: bool = True
    udp: bool = True
    out_dir: str = "captures"
    force: bool = False
    timeout: float = 30.0  # seconds to wait for each TCP echo
    delay_ms: float = 0.0
    kernel: bool = False  # trace the kernel's TCP events of the TCP echo (--kernel)


@dataclass
class LabResult:
    frames: dict[str, list[RawFrame]] = field(default_factory=dict)  # by host
    paths: dict[str, str] = field(default_factory=dict)  # pcap file by host
    tcp: Delivery | None = None
    udp: Delivery | None = None
    dropped: int = 0  # frames the captures' rings had no room for
    events: list[KernelEvent] = field(default_factory=list)  # the kernel's, with --kernel
    listen_overflows: int = 0


def ipv4_only() -> list[Insn]:
    """A kernel filter keeping IPv4 frames (no ARP) on an Ethernet interface."""
    return assemble([Op(LD_H_ABS, 12), Op(JEQ_K, 0x0800, jf="reject"), Op(RET_K, SNAPLEN),
                     "reject", Op(RET_K, 0)])


class _End:
    """The capture at one host's ``eth0`` and its pcap file."""

    def __init__(self, ns: Namespaces, host: str, path: Path, force: bool, owner: Owner) -> None:
        with ns.inside(host):
            self.cap = AfPacketCapture(HOST_IFACE, ipv4_only(), RING_BYTES,
                                       linktype=LINKTYPE_ETHERNET, both_ways=True)
            self.cap.start()
        self.writer = PcapWriter(path, LINKTYPE_ETHERNET, force=force, owner=owner)
        self.frames: list[RawFrame] = []
        self.last = time.monotonic()

    def pump(self) -> None:
        frames = self.cap.read(0)
        if frames:
            self.last = time.monotonic()
            self.frames.extend(self.writer.write(frame) for frame in frames)

    def stop(self) -> int:
        self.pump()
        stats = self.cap.stop()
        self.pump()  # what the ring held at the stop
        self.writer.close()
        return max(0, stats.dropped)


async def run_lab(ns: Namespaces, opts: LabOptions,
                  on_paths: Callable[[dict[str, str]], None] | None = None,
                  note: Callable[[str], None] | None = None) -> LabResult:
    """Run the lab on the network :func:`sockcap.lab.wire.build` made."""
    owner = Owner(note)
    folder = Path(opts.out_dir)
    try:
        owner.make_folder(folder)
    except OSError as e:
        raise WriteError(_("cannot create {folder}: {reason}").format(
            folder=folder, reason=e.strerror or e)) from None
    result = LabResult(paths={h: str(folder / f"{h}.pcap") for h in HOSTS})
    ends: dict[str, _End] = {}
    loop = asyncio.get_running_loop()
    try:
        for host in HOSTS:
            ends[host] = _End(ns, host, Path(result.paths[host]), opts.force, owner)
            loop.add_reader(ends[host].cap.fileno(), ends[host].pump)
        if on_paths:
            on_paths(result.paths)
        if opts.tcp:
            result.tcp = await _tcp(ns, opts, result, note)
        if opts.udp:
            result.udp = await _udp(ns, opts)
        await _settle(list(ends.values()), max(QUIET_SECONDS, 3 * opts.delay_ms / 1000))
    finally:
        for end in ends.values():
            if end.cap.fileno() >= 0:
                loop.remove_reader(end.cap.fileno())
            result.dropped += end.stop()
    result.frames = {host: end.frames for host, end in ends.items()}
    return result


async def _settle(ends: list[_End], quiet: float) -> None:
    deadline = time.monotonic() + SETTLE_SECONDS
    start = time.monotonic()
    while time.monotonic() < deadline:
        for end in ends:
            end.pump()
        last = max(start, *(end.last for end in ends))
        if time.monotonic() - last >= quiet:
            return
        await asyncio.sleep(0.02)


async def _server(ns: Namespaces, udp: bool) -> EchoServer:
    with ns.inside("server"):
        server = EchoServer(SERVER_ADDRESS, 0, udp=udp, max_message=1 << 20)
        await server.start()
    return server


async def _tcp(ns: Namespaces, opts: LabOptions, result: LabResult,
               note: Callable[[str], None] | None = None) -> Delivery:
    """The TCP echo; with ``opts.kernel`` the kernel's events on the server's port
    (tracefs is one for the whole machine: the namespaces' sockets are in it too)."""
    server = await _server(ns, udp=False)
    trace = KernelTrace.open([server.port], note or (lambda _t: None)) if opts.kernel else None
    try:
        with ns.inside("client"):
            texts = [m.decode() for m in opts.messages]
            exchanges = await tcp_exchange(SERVER_ADDRESS, server.port, texts,
                                           timeout=opts.timeout, strict_close=False)
        await server.wait_idle(opts.timeout)
        replies = tuple(e.reply for e in exchanges) + (None,) * (len(texts) - len(exchanges))
        if trace is not None:
            result.events = trace.stop()
            result.listen_overflows = trace.overflows
        return Delivery(opts.messages, replies, server.stats.bytes)
    finally:
        if trace is not None:
            trace.close()
        await server.close()


class _Echoes(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.replies: list[bytes] = []
        self.last = time.monotonic()

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.replies.append(data)
        self.last = time.monotonic()

    def error_received(self, exc: Exception) -> None:
        pass  # a lost echo is what the lab shows, not an error


async def _udp(ns: Namespaces, opts: LabOptions) -> Delivery:
    server = await _server(ns, udp=True)
    try:
        loop = asyncio.get_running_loop()
        with ns.inside("client"):
            transport, echoes = await loop.create_datagram_endpoint(
                _Echoes, local_addr=(CLIENT_ADDRESS, 0),
                remote_addr=(SERVER_ADDRESS, server.port))
        try:
            for message in opts.messages:
                transport.sendto(message)
            await _collect(echoes, len(opts.messages), opts)
        finally:
            transport.close()
        return Delivery(opts.messages, _match(opts.messages, echoes.replies),
                        server.stats.bytes)
    except OSError as e:
        raise EndpointError(_("the lab's UDP echo failed: {reason}").format(
            reason=e.strerror or e)) from None
    finally:
        await server.close()


async def _collect(echoes: _Echoes, expected: int, opts: LabOptions) -> None:
    wait = UDP_WAIT_SECONDS + 2 * opts.delay_ms / 1000
    echoes.last = time.monotonic()
    deadline = echoes.last + max(opts.timeout, wait)
    while len(echoes.replies) < expected and time.monotonic() < deadline:
        if time.monotonic() - echoes.last >= wait:
            return
        await asyncio.sleep(0.01)


def _match(messages: tuple[bytes, ...], replies: list[bytes]) -> tuple[bytes | None, ...]:
    """Each message's echo, if it came back (messages are told apart by their bytes)."""
    left = list(replies)
    found: list[bytes | None] = []
    for message in messages:
        if message in left:
            left.remove(message)
            found.append(message)
        else:
            found.append(None)
    return tuple(found)
