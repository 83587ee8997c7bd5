"""``sockcap run``: an echo server and client on loopback, optionally captured.

The order is what makes the capture complete: the capture socket is opened first (so a
missing permission stops everything before any traffic), the server starts, the capture
is bound with a kernel filter for the server's port and is ready, the client exchange
runs and closes gracefully, the server's side closes, and the capture keeps reading until
the teardown's last ACK is in (or a short deadline passes). Every packet is written to
the pcap file as it arrives, so an interrupt leaves a valid file with all packets so far.
Under sudo the file, and the ``captures/`` folder if this run made it, belong to the user
who ran sudo (:mod:`sockcap.owner`).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sockcap.analysis.conversation import Annotated, teardown_complete
from sockcap.capture.backends import choose_backend
from sockcap.capture.base import Capture, CaptureStats
from sockcap.capture.bpf import port_filter
from sockcap.decode.records import RawFrame
from sockcap.endpoints.client import tcp_exchange, udp_exchange
from sockcap.endpoints.server import EchoServer
from sockcap.errors import WriteError
from sockcap.i18n import _
from sockcap.owner import Owner
from sockcap.pcapfile.writer import PcapWriter
from sockcap.pipeline import Pipeline

DEFAULT_MESSAGES = ("hello", "world", "quit")
SETTLE_SECONDS = 2.0  # longest wait for the teardown after the client has closed
QUIET_SECONDS = 0.05  # a capture is drained when nothing more arrived for this long


@dataclass
class RunOptions:
    udp: bool = False
    capture: bool = False
    messages: tuple[str, ...] = DEFAULT_MESSAGES
    host: str = "127.0.0.1"
    port: int = 0
    out: str | None = None
    force: bool = False
    timeout: float = 5.0


@dataclass
class RunResult:
    exchanges: Sequence[tuple[str, bytes | None]]
    port: int
    path: str | None = None
    annotated: list[Annotated] = field(default_factory=list)
    stats: CaptureStats | None = None


def default_capture_path(udp: bool, port: int, now: float | None = None) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    return os.path.join("captures", f"{stamp}-{'udp' if udp else 'tcp'}-{port}.pcap")


class _Recorder:
    """Reads the capture socket from the event loop; writes and annotates each frame."""

    def __init__(self, cap: Capture, writer: PcapWriter, pipeline: Pipeline) -> None:
        self.cap = cap
        self.writer = writer
        self.pipeline = pipeline
        self.annotated: list[Annotated] = []
        self.done = False
        self.last_arrival = time.monotonic()

    def pump(self) -> None:
        frames = self.cap.read(0)
        if frames:
            self.last_arrival = time.monotonic()
        for frame in frames:
            self._annotate(self.writer.write(frame))  # the frame as the file holds it

    def _annotate(self, frame: RawFrame) -> None:
        for a in self.pipeline.packets([frame]):
            self.annotated.append(a)
            self.done = self.done or teardown_complete(a)

    async def settle(self, udp: bool) -> None:
        deadline = time.monotonic() + SETTLE_SECONDS
        self.last_arrival = time.monotonic()  # a backend may hand packets over late
        quiet_for = max(QUIET_SECONDS, self.cap.settle_seconds)
        while time.monotonic() < deadline:
            self.pump()
            quiet = time.monotonic() - self.last_arrival >= quiet_for
            if quiet and (self.done or udp):
                return
            await asyncio.sleep(0.01)


async def _exchange(opts: RunOptions, port: int) -> Sequence[tuple[str, bytes | None]]:
    if opts.udp:
        return await udp_exchange(opts.host, port, opts.messages, timeout=opts.timeout)
    return await tcp_exchange(opts.host, port, opts.messages, timeout=opts.timeout)


async def run_exchange(opts: RunOptions, pipeline: Pipeline | None = None,
                       on_path: Callable[[str], None] | None = None,
                       note: Callable[[str], None] | None = None) -> RunResult:
    """Run the exchange (and the capture); see the module docstring for the order.

    ``on_path`` is told the pcap file's path once it exists; ``note`` gets warnings.
    """
    cap = choose_backend("auto", "lo") if opts.capture else None  # opened: permission checked
    server = EchoServer(opts.host, opts.port, udp=opts.udp)
    await server.start()
    try:
        if cap is None:
            return RunResult(await _exchange(opts, server.port), server.port)
        return await _captured(opts, cap, server, pipeline or Pipeline(), on_path,
                              Owner(note))
    finally:
        await server.close()


async def _captured(opts: RunOptions, cap: Capture, server: EchoServer, pipeline: Pipeline,
                    on_path: Callable[[str], None] | None, owner: Owner) -> RunResult:
    path = opts.out or default_capture_path(opts.udp, server.port)
    try:
        owner.make_folder(Path(path).parent)
    except OSError as e:
        raise WriteError(_("cannot create {parent}: {e}").format(parent=Path(path).parent, e=e.strerror or e)) from None
    cap.set_filter(f"tcp port {server.port} or udp port {server.port}", port_filter(server.port))
    writer = PcapWriter(path, cap.linktype, force=opts.force, owner=owner)
    if on_path:
        on_path(path)
    rec = _Recorder(cap, writer, pipeline)
    loop = asyncio.get_running_loop()
    try:
        cap.start()
        loop.add_reader(cap.fileno(), rec.pump)
        exchanges = await _exchange(opts, server.port)
        if not opts.udp:
            await server.wait_idle(SETTLE_SECONDS)
        await rec.settle(opts.udp)
    finally:
        if cap.fileno() >= 0:
            loop.remove_reader(cap.fileno())
            rec.pump()
        stats = cap.stop()
        rec.pump()  # what was still in flight (dumpcap's pipe)
        writer.close()
    return RunResult(exchanges, server.port, path, rec.annotated, stats)
