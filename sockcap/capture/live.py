"""A live capture from start to stop: backend, pcap file, optional command, drain, counters.

The order is what makes a capture complete and safe:

1. the backend is chosen and its permission checked (``open``) before anything runs;
2. the capture starts and is *ready* (every packet from now on is kept);
3. only then the pcap file is created (under sudo, given to the user who ran sudo: see
   :mod:`sockcap.owner`) and the command (if any) is started;
4. frames are read in batches: each batch is written to the file (flushed) before it is
   handed to ``on_frames`` for the timeline, so the file always holds every packet shown;
5. the capture ends at ``count`` packets, after ``duration``, on an interrupt, or when
   the command has exited and nothing more arrived for the backend's ``settle_seconds``
   (bounded by ``DRAIN_SECONDS``), so the command's last packets are in;
6. the command is stopped by its PID if it still runs (the result says why), the backend
   is stopped (its counters read), what was still in flight is read, and the file is
   closed.

An interrupt (Ctrl-C, or SIGTERM through :func:`sockcap.signals.sigterm_raises`) at any
point goes through step 6; further interrupts are ignored while it runs, so no process is
left behind and the file is whole. :class:`LiveResult` keeps the interrupt so the caller
can print the summary before re-raising it.

The command runs from an argv list (never a shell) with ``PR_SET_PDEATHSIG`` set, so it
dies with sockcap even if sockcap is killed. Under ``sudo`` it runs as the user who ran
sudo (:func:`sockcap.owner.sudo_user`): capture needs root, the program being watched does
not.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sockcap.capture.backends import choose_backend
from sockcap.capture.base import Capture, CaptureStats
from sockcap.decode.records import RawFrame
from sockcap.errors import InputError, SockcapError
from sockcap.i18n import _
from sockcap.owner import Owner, sudo_user

READ_SECONDS = 0.05  # longest wait for packets before the loop checks its end conditions
DRAIN_SECONDS = 2.0  # longest wait for the command's last packets after it exited
CHILD_EXIT_SECONDS = 2.0  # after SIGTERM, before SIGKILL
PR_SET_PDEATHSIG = 1


@dataclass
class LiveOptions:
    iface: str = "lo"
    filter: str = ""
    count: int = 0  # stop after this many packets (0: no limit)
    duration: float = 0.0  # stop after this many seconds (0: no limit)
    out: str | None = None
    force: bool = False
    backend: str = "auto"
    command: Sequence[str] = ()
    command_stdout: int | None = None  # a file descriptor for the command's stdout


@dataclass
class LiveResult:
    backend: str = ""
    stats: CaptureStats = field(default_factory=lambda: CaptureStats(0, -1, -1))
    written: int = 0
    path: str | None = None
    command_status: int | None = None  # the command's exit status (-N: signal N)
    command_stopped: str = ""  # why sockcap stopped the command ("": it exited on its own)
    interrupt: BaseException | None = None
    frames: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


FrameSink = Callable[[list[RawFrame]], None]


def capture_live(opts: LiveOptions, on_frames: FrameSink,
                 note: Callable[[str], None]) -> LiveResult:
    """Run a capture as the module docstring says; returns its result (interrupt included)."""
    cap = choose_backend(opts.backend, opts.iface)
    cap.set_filter(opts.filter)
    result = LiveResult(backend=cap.name, path=opts.out)
    cap.start()
    note(f"capturing on {opts.iface} with {cap.name}"  # said once ready, as tcpdump does
         + (f", filter {opts.filter!r}" if opts.filter else ""))
    session = _Session(opts, cap, on_frames, result, Owner(note))
    try:
        session.open_file()
        session.start_command()
        session.loop()
    except (KeyboardInterrupt, SockcapError) as e:
        if not _is_interrupt(e):
            session.stop_reason = "when the capture failed"
            session.finish()
            raise
        result.interrupt = e
        session.stop_reason = "on the interrupt"
    session.finish()
    return result


def _is_interrupt(e: BaseException) -> bool:
    from sockcap.signals import Terminated

    return isinstance(e, KeyboardInterrupt | Terminated)


class _Session:
    """The state of one capture between start and finish."""

    def __init__(self, opts: LiveOptions, cap: Capture, on_frames: FrameSink,
                 result: LiveResult, owner: Owner) -> None:
        self.opts = opts
        self.owner = owner
        self.cap = cap
        self.on_frames = on_frames
        self.result = result
        self.writer: Any = None
        self.child: subprocess.Popen[bytes] | None = None
        self.finished = False
        self.stop_reason = "when the capture ended"  # said if the command still ran

    def open_file(self) -> None:
        if self.opts.out:
            from sockcap.pcapfile.writer import PcapWriter

            self.writer = PcapWriter(self.opts.out, self.cap.linktype, force=self.opts.force,
                                     flush_every=1 << 30, owner=self.owner)

    def start_command(self) -> None:
        if self.opts.command:
            self.child = start_command(self.opts.command, self.opts.command_stdout)

    def loop(self) -> None:
        opts, cap = self.opts, self.cap
        start = last = time.monotonic()
        ended = 0.0
        with _fewer_gc_passes():
            while True:
                if self._full():
                    self.stop_reason = f"after the count (-c {opts.count}) was reached"
                    return
                got = self.deliver(cap.read(READ_SECONDS))
                now = time.monotonic()
                last = now if got else last
                if opts.duration and now - start >= opts.duration:
                    self.stop_reason = f"after the duration (--duration {opts.duration:g}) ran out"
                    return
                if self.child is not None and self.child.poll() is not None:
                    ended = ended or now
                    quiet = now - max(last, ended) >= cap.settle_seconds
                    if quiet or now - ended >= DRAIN_SECONDS:
                        return

    def _full(self) -> bool:
        return bool(self.opts.count) and self.result.frames >= self.opts.count

    def deliver(self, frames: list[RawFrame]) -> int:
        """Write a batch to the file (flushed), then hand it on; never past ``count``."""
        if not frames:
            return 0
        if self.opts.count:
            frames = frames[: self.opts.count - self.result.frames]
        if self.writer is not None:
            write = self.writer.write
            frames = [write(frame) for frame in frames]  # as the file holds them
            self.writer.flush()
            self.result.written = self.writer.count
        self.result.frames += len(frames)
        self.on_frames(frames)
        return len(frames)

    def finish(self) -> None:
        """Stop the command (noting why if it still ran) and the capture, take the last
        frames, close the file."""
        if self.finished:
            return
        self.finished = True
        with _interrupts_held():
            try:
                if self.child is not None and self.child.poll() is None:
                    self.result.command_stopped = self.stop_reason
                self.result.command_status = stop_command(self.child)
                self.result.stats = self.cap.stop()
                if not self._full():
                    self.deliver(self.cap.read(0))
            finally:
                if self.writer is not None:
                    self.writer.close()
                    self.result.written = self.writer.count


@contextlib.contextmanager
def _fewer_gc_passes() -> Iterator[None]:
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


@contextlib.contextmanager
def _interrupts_held() -> Iterator[None]:
    """Ignore SIGINT/SIGTERM while cleaning up, so a second Ctrl-C cannot leave a process."""
    held = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in held.items():
            signal.signal(sig, handler)


def _die_with_parent_fn() -> Callable[[], None]:
    """A preexec function, resolved before fork: prctl(PR_SET_PDEATHSIG, SIGTERM)."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    prctl = libc.prctl
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


def _as_sudo_user() -> dict[str, Any]:
    """Under sudo, run the command as the user who ran sudo (capture needs root, it does not)."""
    user = sudo_user()
    return {} if user is None else {"user": user.uid, "group": user.gid, "extra_groups": []}


def start_command(argv: Sequence[str], stdout: int | None = None) -> subprocess.Popen[bytes]:
    """Start the watched command (argv list, no shell); it dies with sockcap."""
    try:
        # preexec_fn with threads (dumpcap's readers): it only calls a prctl resolved before fork
        return subprocess.Popen(list(argv), stdout=stdout, preexec_fn=_die_with_parent_fn(),  # noqa: PLW1509
                                **_as_sudo_user())
    except FileNotFoundError as e:
        raise InputError(_("command not found: {argv}").format(argv=argv[0])) from e
    except PermissionError as e:
        raise InputError(_("cannot run {argv}: permission denied").format(argv=argv[0])) from e
    except OSError as e:
        raise SockcapError(_("cannot run {argv}: {e}").format(argv=argv[0], e=e.strerror or e)) from e


def stop_command(child: subprocess.Popen[bytes] | None) -> int | None:
    """The command's exit status, after stopping it by its PID if it still runs."""
    if child is None:
        return None
    if child.poll() is None:
        child.terminate()
        try:
            child.wait(CHILD_EXIT_SECONDS)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    return child.returncode
