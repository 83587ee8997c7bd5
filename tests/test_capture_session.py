"""The one capture session of ``capture`` and ``run --capture``, driven directly on real
loopback traffic: what it hands on is what its file holds, ``count`` bounds both, the drain
waits for the caller's condition, and an error in the event loop's reader reaches the task.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import needs_capture, never_engine

from sockcap.capture.dumpcap import dumpcap_path
from sockcap.capture.session import CaptureSession
from sockcap.decode.records import RawFrame
from sockcap.errors import WriteError
from sockcap.owner import Owner
from sockcap.pcapfile.reader import open_capture

pytestmark = never_engine()

BACKENDS = ["afpacket", pytest.param("dumpcap", marks=pytest.mark.skipif(
    dumpcap_path() is None, reason="dumpcap is not installed"))]


@contextmanager
def udp_sink() -> Iterator[tuple[int, socket.socket]]:
    """A bound UDP socket that never reads (no ICMP errors) and a socket to send to it."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        sink.bind(("127.0.0.1", 0))
        sender.connect(sink.getsockname())
        yield sink.getsockname()[1], sender


def started(backend: str, port: int, seen: list[RawFrame], out: Path,
            count: int = 0) -> CaptureSession:
    session = CaptureSession.open(backend, "lo", seen.extend, Owner(), count=count)
    session.set_filter(f"udp port {port}")
    session.start()
    session.open_file(str(out))
    return session


def file_frames(path: Path) -> list[RawFrame]:
    with open(path, "rb") as f:
        return list(open_capture(f))


@needs_capture
@pytest.mark.parametrize("backend", BACKENDS)
def test_what_is_handed_on_is_what_the_file_holds(tmp_path: Path, backend: str) -> None:
    out, seen = tmp_path / "s.pcap", []
    with udp_sink() as (port, sender):
        session = started(backend, port, seen, out)
        try:
            for i in range(5):
                sender.send(b"datagram %d" % i)
            session.drain(until=lambda: len(seen) >= 5, limit=30)
        finally:
            stats = session.finish()
    assert [f.data[42:] for f in seen] == [b"datagram %d" % i for i in range(5)]
    assert file_frames(out) == seen  # the time cut to the microsecond, as stored
    assert all(f.ts_ns % 1000 == 0 for f in seen)
    assert session.frames == session.written == 5 and stats.captured == 5
    assert session.finish() is stats  # finishing again changes nothing


@needs_capture
def test_count_bounds_both_the_view_and_the_file(tmp_path: Path) -> None:
    out, seen = tmp_path / "c.pcap", []
    with udp_sink() as (port, sender):
        session = started("afpacket", port, seen, out, count=3)
        try:
            for _ in range(8):
                sender.send(b"x")
            session.drain(until=lambda: False, limit=30)  # only the count ends it
            assert session.full
        finally:
            session.finish()
    assert len(seen) == 3 and len(file_frames(out)) == 3 and session.written == 3


@needs_capture
def test_drain_from_the_event_loop_waits_for_the_callers_condition(tmp_path: Path) -> None:
    """Two datagrams, then quiet for longer than the backend's settle time, then two more:
    a drain that stopped at the first quiet would have only two."""
    out, seen = tmp_path / "a.pcap", []

    async def main(port: int, sender: socket.socket) -> None:
        session = started("afpacket", port, seen, out)
        try:
            session.watch(asyncio.get_running_loop())
            sender.send(b"one")
            sender.send(b"two")
            loop = asyncio.get_running_loop()
            quiet = 4 * session.cap.settle_seconds
            loop.call_later(quiet, sender.send, b"three")
            loop.call_later(quiet, sender.send, b"four")
            await session.drain_async(until=lambda: len(seen) >= 4, limit=30)
        finally:
            session.finish()

    with udp_sink() as (port, sender):
        asyncio.run(main(port, sender))
    assert [f.data[42:] for f in seen] == [b"one", b"two", b"three", b"four"]
    assert len(file_frames(out)) == 4


@needs_capture
def test_an_error_in_the_loops_reader_is_raised_in_the_task(tmp_path: Path) -> None:
    """A failure in the reader callback cannot escape the event loop; the drain raises it,
    and the file still holds the batch written before the failure."""
    out = tmp_path / "e.pcap"

    def broken(frames: list[RawFrame]) -> None:
        raise WriteError("the view failed")

    async def main(port: int, sender: socket.socket) -> CaptureSession:
        session = CaptureSession.open("afpacket", "lo", broken, Owner())
        session.set_filter(f"udp port {port}")
        session.start()
        session.open_file(str(out))
        try:
            session.watch(asyncio.get_running_loop())
            sender.send(b"x")
            with pytest.raises(WriteError, match="the view failed"):
                await session.drain_async(until=lambda: False, limit=30)
        finally:
            session.finish()
        return session

    with udp_sink() as (port, sender):
        session = asyncio.run(main(port, sender))
    assert session.failed and len(file_frames(out)) == session.written == 1
