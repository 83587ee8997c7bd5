"""One live capture session: the backend, the pcap file, the drain rule and the counters.

Every way sockcap captures goes through it: ``sockcap capture`` reads it from a blocking
loop (:mod:`sockcap.capture.live`), ``sockcap run --capture`` from its event loop
(:mod:`sockcap.endpoints.loopback`), ``sockcap check`` from a thread (:mod:`sockcap.check.wire`) and
``sockcap lab`` one session at each host's ``eth0``, in the host's network namespace,
from its event loop (:mod:`sockcap.lab.session`). What each caller does with the packets (a timeline, the teardown
it waits for, a watched command) stays with the caller; what makes a capture complete and
its file whole is written here once:

1. :meth:`CaptureSession.open` chooses the backend and checks the permission before
   anything runs; :meth:`~CaptureSession.set_filter` gives it the kernel filter;
2. :meth:`~CaptureSession.start` returns when the backend is *ready* (every packet from now
   on is kept); :meth:`~CaptureSession.open_file` then creates the pcap file (mode 0600;
   under sudo given to the user who ran sudo: :mod:`sockcap.owner`);
3. every read (:meth:`~CaptureSession.read` blocking up to a timeout, or
   :meth:`~CaptureSession.pump` when the event loop says the backend is readable) is one
   batch: written to the file and flushed, then handed to ``on_frames`` *as the file holds
   it* (the time cut to the microsecond), so the file always holds every packet shown and
   a live view agrees with ``sockcap show`` on the file to the digit. With ``count`` no
   batch goes past it;
4. the drain rule (:meth:`~CaptureSession.drain`, :meth:`~CaptureSession.drain_async`,
   :func:`drain_together` for several captures of one run): read until nothing more
   arrived for the backend's ``settle_seconds`` (how late it may hand over a packet; at
   least ``QUIET_SECONDS``, or the caller's ``quiet``: how late its link may deliver one,
   as the lab's delay line) *and* the caller's ``until()`` holds (the teardown is in), or
   ``DRAIN_SECONDS`` have passed;
5. :meth:`~CaptureSession.finish` reads what has arrived, stops the backend (its counters
   become :attr:`~CaptureSession.stats`), reads what was still in flight (dumpcap's pipe)
   and closes the file. It runs once, however often it is called, so a caller calls it
   from its ``finally`` and an interrupt at any point leaves a valid file.

A batch that cannot be written (a full disk) or handed on ends the reading: the session
reads nothing more, and :meth:`~CaptureSession.finish` only stops the backend and closes
the file. From the event loop the error cannot be raised in the loop's reader callback:
:meth:`~CaptureSession.pump` keeps it, stops watching, and :meth:`~CaptureSession.check`
(called by the drain) raises it in the caller's task.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import Callable, Iterator

from sockcap.capture.backends import choose_backend
from sockcap.capture.base import Capture
from sockcap.capture.bpf import Insn
from sockcap.decode.records import CaptureStats, RawFrame
from sockcap.errors import SockcapError
from sockcap.owner import Owner
from sockcap.pcapfile.rotation import RotatingWriter, Rotation, lock_while_written
from sockcap.pcapfile.writer import PcapWriter

QUIET_SECONDS = 0.05  # the shortest quiet that ends a drain, whatever the backend
DRAIN_SECONDS = 2.0  # the longest a drain waits for the last packets
POLL_SECONDS = 0.01  # how often the event loop's drain looks again
READ_SECONDS = 0.05  # longest blocking read of the drain, before it looks at the clock

FrameSink = Callable[[list[RawFrame]], None]
NO_STATS = CaptureStats(0, -1, -1)


def _always() -> bool:
    return True


class CaptureSession:
    """One capture from start to finish; see the module docstring for the order.

    ``on_frames`` gets each batch as the file holds it; ``owner`` gives the file to the
    user who ran sudo; ``count`` (0: no limit) is the most packets handed on.
    """

    def __init__(self, cap: Capture, on_frames: FrameSink, owner: Owner, *,
                 count: int = 0) -> None:
        self.cap = cap
        self.on_frames = on_frames
        self.owner = owner
        self.count = count
        self.frames = 0  # packets handed to on_frames
        self.stats = NO_STATS  # the backend's counters, once finished
        self.error: SockcapError | None = None  # kept by pump() for check()
        self.failed = False  # a batch could not be written or handed on: read no more
        self.writer: PcapWriter | RotatingWriter | None = None
        self.last_arrival = time.monotonic()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watched = -1
        self._finished = False

    @classmethod
    def open(cls, backend: str, iface: str, on_frames: FrameSink, owner: Owner, *,
             count: int = 0) -> CaptureSession:
        """A session on the backend by name (``auto``: the best permitted), opened: a
        missing permission is raised here, before anything runs."""
        return cls(choose_backend(backend, iface), on_frames, owner, count=count)

    @property
    def name(self) -> str:
        return self.cap.name

    @property
    def written(self) -> int:
        """Packets in the file (0 without one)."""
        return self.writer.count if self.writer is not None else 0

    @property
    def full(self) -> bool:
        """Whether ``count`` packets have been handed on, or the last file ``-W`` allows
        is written."""
        return (bool(self.count) and self.frames >= self.count) or self.rotation_done

    @property
    def files(self) -> list[str]:
        """The files written (several with a rotation)."""
        writer = self.writer
        if isinstance(writer, RotatingWriter):
            return list(writer.files)
        return [writer.path] if writer is not None else []

    @property
    def rotation_done(self) -> bool:
        return isinstance(self.writer, RotatingWriter) and self.writer.done

    def set_filter(self, expr: str, prog: list[Insn] | None = None) -> None:
        self.cap.set_filter(expr, prog)

    def start(self) -> None:
        """Start the backend; returns once every packet from now on is kept."""
        self.cap.start()
        self.last_arrival = time.monotonic()

    def open_file(self, path: str, *, force: bool = False,
                  rotation: Rotation | None = None) -> None:
        """Create the pcap file every later batch is written to (with ``rotation``, the
        first of its series: :mod:`sockcap.pcapfile.rotation`). A file is locked while
        it is written, so ``sockcap export --follow`` leaves it alone until it is whole."""
        if rotation is not None and rotation.active:
            self.writer = RotatingWriter(path, self.cap.linktype, rotation, force=force,
                                         flush_every=1 << 30, owner=self.owner)
        else:
            self.writer = PcapWriter(path, self.cap.linktype, force=force, flush_every=1 << 30,
                                     owner=self.owner, before_header=lock_while_written)

    def tick(self) -> None:
        """Start the next ``-G`` file if its time has come (called before every read, so
        a file is closed on time also when nothing arrives)."""
        if isinstance(self.writer, RotatingWriter):
            self.writer.tick()

    # -- reading -------------------------------------------------------------------------

    def read(self, timeout: float) -> int:
        """One batch: read (waiting up to ``timeout`` for the first packet), write, flush,
        hand on. Returns how many packets were handed on."""
        self.tick()
        if self.full or self.failed:
            return 0
        frames = self.cap.read(timeout)
        if not frames:
            return 0
        self.last_arrival = time.monotonic()
        if self.count:
            frames = frames[: self.count - self.frames]
        try:
            self._deliver(frames)
        except SockcapError:
            self.failed = True
            raise
        return len(frames)

    def _deliver(self, frames: list[RawFrame]) -> None:
        writer = self.writer
        if writer is not None:
            write = writer.write
            frames = [write(frame) for frame in frames]  # as the file holds them
            writer.flush()
        self.frames += len(frames)
        self.on_frames(frames)

    def pump(self) -> None:
        """Read what has arrived without waiting: the event loop's reader callback."""
        try:
            self.read(0)
        except SockcapError as e:
            self.error = e
            self.unwatch()

    def check(self) -> None:
        """Raise the error :meth:`pump` kept, if any (once)."""
        error, self.error = self.error, None
        if error is not None:
            raise error

    def watch(self, loop: asyncio.AbstractEventLoop) -> None:
        """Pump whenever the backend is readable, from ``loop``."""
        self._loop, self._watched = loop, self.cap.fileno()
        loop.add_reader(self._watched, self.pump)

    def unwatch(self) -> None:
        """Stop pumping from the event loop (nothing if not watching)."""
        if self._loop is not None and self._watched >= 0:
            self._loop.remove_reader(self._watched)
        self._loop, self._watched = None, -1

    # -- the drain rule --------------------------------------------------------------------

    def drained(self, since: float, until: Callable[[], bool] = _always,
                limit: float = DRAIN_SECONDS, quiet: float = 0.0) -> bool:
        """Whether a drain begun at ``since`` (``time.monotonic()``) is over: ``count``
        reached, quiet for ``settle_seconds`` (or ``quiet``, if longer) and ``until()``, or
        ``limit`` seconds passed."""
        now = time.monotonic()
        quiet_for = max(QUIET_SECONDS, self.cap.settle_seconds, quiet)
        is_quiet = now - max(self.last_arrival, since) >= quiet_for
        return self.full or (is_quiet and until()) or now - since >= limit

    def drain(self, until: Callable[[], bool] = _always, limit: float = DRAIN_SECONDS,
              quiet: float = 0.0) -> None:
        """Read, blocking, until :meth:`drained` (a caller's loop that reads itself)."""
        since = time.monotonic()
        while not self.drained(since, until, limit, quiet):
            self.read(READ_SECONDS)

    async def drain_async(self, until: Callable[[], bool] = _always,
                          limit: float = DRAIN_SECONDS, quiet: float = 0.0) -> None:
        """Read from the event loop until :meth:`drained`; raises what :meth:`pump` kept."""
        await drain_together([self], until, limit, quiet)

    # -- the end -------------------------------------------------------------------------

    def finish(self) -> CaptureStats:
        """Read what arrived, stop the backend, read what was in flight, close the file.

        Runs once; later calls return the same counters.
        """
        if self._finished:
            return self.stats
        self._finished = True
        self.unwatch()
        try:
            try:
                self.read(0)  # nothing after a failure: read() returns 0
            finally:
                self.stats = self.cap.stop()
            self.read(0)  # what was still in flight (dumpcap's pipe)
        finally:
            if self.writer is not None:
                self.writer.close()
        return self.stats


async def drain_together(sessions: list[CaptureSession], until: Callable[[], bool] = _always,
                         limit: float = DRAIN_SECONDS, quiet: float = 0.0) -> None:
    """Read several sessions of one run (the lab's two ends) from the event loop until
    each is :meth:`~CaptureSession.drained`: the same rule as one session's, so the drain
    ends once none has had a packet for its quiet time; raises what a pump kept."""
    since = time.monotonic()
    while True:
        for session in sessions:
            session.check()
            session.pump()
        if all(session.drained(since, until, limit, quiet) for session in sessions):
            for session in sessions:
                session.check()
            return
        await asyncio.sleep(POLL_SECONDS)


@contextlib.contextmanager
def fewer_gc_passes() -> Iterator[None]:
    """Raise the collector's first threshold while frames stream through.

    Every frame is a small tuple the cyclic collector tracks; with the default threshold
    (700) it runs a pass every few hundred packets, which cost ~25 % of the capture loop at
    200k packets/s (bench/). Frames hold no cycles, so fewer passes lose nothing.
    """
    previous = gc.get_threshold()
    gc.set_threshold(100_000, previous[1], previous[2])
    try:
        yield
    finally:
        gc.set_threshold(*previous)
