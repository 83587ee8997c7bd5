"""``sockcap run``: an echo server and client on loopback, optionally captured.

The order is what makes the capture complete: the capture socket is opened first (so a
missing permission stops everything before any traffic), the server starts, the capture
is bound with a kernel filter for the server's port and is ready, the client exchange
runs and closes gracefully, the server's side closes, and the capture keeps reading until
the teardown's last ACK is in (or a short deadline passes). Every packet is written to
the pcap file as it arrives, so an interrupt leaves a valid file with all packets so far.
The capture is a :class:`~sockcap.capture.session.CaptureSession` read from the event loop,
the same as ``sockcap capture``'s: its file, its drain rule (here with the complete
teardown as the condition) and its counters.
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
from sockcap.capture.bpf import icmp_quoting, port_filter_with_icmp
from sockcap.capture.session import CaptureSession
from sockcap.decode.records import CaptureStats, RawFrame
from sockcap.endpoints.client import tcp_exchange, udp_exchange
from sockcap.endpoints.server import EchoServer
from sockcap.errors import WriteError
from sockcap.i18n import _
from sockcap.owner import Owner
from sockcap.pipeline import Pipeline

DEFAULT_MESSAGES = ("hello", "world", "quit")
SETTLE_SECONDS = 2.0  # longest wait for the teardown after the client has closed


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
    """Annotates each frame of the session, as the file holds it, and notes when the
    teardown is complete."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.annotated: list[Annotated] = []
        self.done = False

    def frames(self, frames: list[RawFrame]) -> None:
        for frame in frames:
            for a in self.pipeline.packets([frame]):
                self.annotated.append(a)
                self.done = self.done or teardown_complete(a)


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
    rec = _Recorder(pipeline or Pipeline())
    session = (CaptureSession.open("auto", "lo", rec.frames, Owner(note))
               if opts.capture else None)  # opened: permission checked before anything runs
    try:
        server = EchoServer(opts.host, opts.port, udp=opts.udp)
        await server.start()
        try:
            if session is None:
                return RunResult(await _exchange(opts, server.port), server.port)
            return await _captured(opts, session, server, rec, on_path)
        finally:
            await server.close()
    finally:
        if session is not None:
            session.finish()


async def _captured(opts: RunOptions, session: CaptureSession, server: EchoServer,
                    rec: _Recorder, on_path: Callable[[str], None] | None) -> RunResult:
    path = opts.out or default_capture_path(opts.udp, server.port)
    try:
        session.owner.make_folder(Path(path).parent)
    except OSError as e:
        raise WriteError(_("cannot create {parent}: {e}").format(parent=Path(path).parent, e=e.strerror or e)) from None
    session.set_filter(f"tcp port {server.port} or udp port {server.port} or "
                       f"{icmp_quoting(server.port)}", port_filter_with_icmp(server.port))
    session.start()
    session.open_file(path, force=opts.force)
    if on_path:
        on_path(path)
    try:
        session.watch(asyncio.get_running_loop())
        exchanges = await _exchange(opts, server.port)
        if not opts.udp:
            await server.wait_idle(SETTLE_SECONDS)
        await session.drain_async(until=lambda: rec.done or opts.udp, limit=SETTLE_SECONDS)
    finally:
        stats = session.finish()
    return RunResult(exchanges, server.port, path, rec.annotated, stats)
