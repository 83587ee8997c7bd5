"""``sockcap run``'s work: an echo server and client (or a scenario) on loopback, optionally
captured, all in one event loop. What is printed of it is :mod:`sockcap.commands.exchange`.

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
import contextlib
import dataclasses
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sockcap.analysis.calls import Call
from sockcap.analysis.conversation import Annotated, teardown_complete
from sockcap.capture.bpf import icmp_quoting, port_filter, port_filter_with_icmp
from sockcap.capture.session import CaptureSession
from sockcap.decode.ftrace import KernelEvent
from sockcap.decode.records import CaptureStats, RawFrame
from sockcap.endpoints.client import tcp_exchange, udp_exchange
from sockcap.endpoints.recorded import CallRecorder
from sockcap.endpoints.scenarios import SCENARIOS, CallLog
from sockcap.endpoints.server import EchoServer
from sockcap.errors import WriteError
from sockcap.i18n import _
from sockcap.owner import Owner
from sockcap.pipeline import Pipeline

if TYPE_CHECKING:
    from sockcap.capture.kernel import KernelTrace

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
    kernel: bool = False  # also trace the kernel's TCP events (needs root)


@dataclass
class RunResult:
    exchanges: Sequence[tuple[str, bytes | None]]
    port: int
    path: str | None = None
    annotated: list[Annotated] = field(default_factory=list)
    stats: CaptureStats | None = None
    calls: list[Call] = field(default_factory=list)  # the endpoints' socket calls (wall-clock ns)
    events: list[KernelEvent] = field(default_factory=list)  # the kernel's, with --kernel
    listen_overflows: int = 0  # SYNs dropped at a full accept queue meanwhile (--kernel)


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


async def _exchange(opts: RunOptions, port: int, recorder: CallRecorder | None = None,
                    ) -> Sequence[tuple[str, bytes | None]]:
    if opts.udp:
        return await udp_exchange(opts.host, port, opts.messages, timeout=opts.timeout,
                                  recorder=recorder)
    return await tcp_exchange(opts.host, port, opts.messages, timeout=opts.timeout,
                              recorder=recorder)


async def run_exchange(opts: RunOptions, pipeline: Pipeline | None = None,
                       on_path: Callable[[str], None] | None = None,
                       note: Callable[[str], None] | None = None) -> RunResult:
    """Run the exchange (and the capture); see the module docstring for the order.

    ``on_path`` is told the pcap file's path once it exists; ``note`` gets warnings.
    """
    rec = _Recorder(pipeline or Pipeline())
    session = (CaptureSession.open("auto", "lo", rec.frames, Owner(note))
               if opts.capture else None)  # opened: permission checked before anything runs
    calls = CallRecorder() if opts.capture else None
    try:
        server = EchoServer(opts.host, opts.port, udp=opts.udp, recorder=calls)
        await server.start()
        try:
            if session is None:
                return RunResult(await _exchange(opts, server.port), server.port)
            assert calls is not None
            with kernel_trace(opts, server.port, note) as trace:
                result = await _captured(opts, session, server, rec, on_path, calls)
                if trace is not None:
                    result.events = trace.stop()
                    result.listen_overflows = trace.overflows
        finally:
            await server.close()
        result.calls = list(calls.calls)  # the server's close() too
        return result
    finally:
        if session is not None:
            session.finish()


@contextlib.contextmanager
def kernel_trace(opts: RunOptions, port: int, note: Callable[[str], None] | None,
                 ) -> Iterator[KernelTrace | None]:
    """With ``--kernel``, the kernel's TCP events on ``port`` while the body runs (None
    without: or when not permitted, said in one line); the instance is gone after any exit."""
    if not opts.kernel:
        yield None
        return
    from sockcap.capture.kernel import KernelTrace

    trace = KernelTrace.open([port], note or (lambda _t: None))
    try:
        yield trace
    finally:
        if trace is not None:
            trace.close()


async def _captured(opts: RunOptions, session: CaptureSession, server: EchoServer,
                    rec: _Recorder, on_path: Callable[[str], None] | None,
                    calls: CallRecorder) -> RunResult:
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
        exchanges = await _exchange(opts, server.port, calls)
        if not opts.udp:
            await server.wait_idle(SETTLE_SECONDS)
        await session.drain_async(until=lambda: rec.done or opts.udp, limit=SETTLE_SECONDS)
    finally:
        stats = session.finish()
    return RunResult(exchanges, server.port, path, rec.annotated, stats)


def scenario_capture_path(name: str, port: int, now: float | None = None) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    return os.path.join("captures", f"{stamp}-{name}-{port}.pcap")


def free_port(host: str) -> int:
    """A port nothing listens on now (the kernel's pick for an ephemeral bind)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


async def run_scenario(name: str, opts: RunOptions, pipeline: Pipeline | None = None,
                       on_path: Callable[[str], None] | None = None,
                       note: Callable[[str], None] | None = None) -> RunResult:
    """Run scenario ``name`` (:mod:`sockcap.endpoints.scenarios`) on loopback, captured:
    the same session, filter and file as the echo exchange; the scenario's sockets run
    in a thread, bounded in time by the scenario itself."""
    scenario = SCENARIOS[name]
    rec = _Recorder(pipeline or Pipeline())
    session = CaptureSession.open("auto", "lo", rec.frames, Owner(note))
    try:
        port = opts.port or free_port("127.0.0.1")
        path = opts.out or scenario_capture_path(name, port)
        try:
            session.owner.make_folder(Path(path).parent)
        except OSError as e:
            raise WriteError(_("cannot create {parent}: {e}").format(parent=Path(path).parent, e=e.strerror or e)) from None
        session.set_filter(f"tcp port {port}", port_filter(port))
        session.start()
        session.open_file(path, force=opts.force)
        if on_path:
            on_path(path)
        log = CallLog()
        wall, mono = time.time_ns(), time.monotonic_ns()
        with kernel_trace(opts, port, note) as trace:
            try:
                session.watch(asyncio.get_running_loop())
                await asyncio.to_thread(scenario.run, port, log)
                await session.drain_async(until=lambda: rec.done, limit=SETTLE_SECONDS / 2)
            finally:
                stats = session.finish()
            events = trace.stop() if trace is not None else []
        calls = [dataclasses.replace(c, ts_ns=c.ts_ns - mono + wall,
                                     end_ns=c.end_ns - mono + wall if c.end_ns >= 0 else -1)
                 for c in log.calls]
        return RunResult((), port, path, rec.annotated, stats, calls, events,
                         trace.overflows if trace is not None else 0)
    finally:
        session.finish()
