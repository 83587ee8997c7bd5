"""``sockcap capture``: a live capture from start to stop, optionally around a command.

The capture itself (backend, pcap file, batches, drain, counters) is a
:class:`~sockcap.capture.session.CaptureSession`, the same as ``sockcap run --capture``'s;
this module adds what only ``capture`` has: the end conditions and the watched command.
The order is what makes a capture complete and safe:

1. the backend is chosen and its permission checked (``open``) before anything runs;
2. the capture starts and is *ready* (every packet from now on is kept);
3. only then the pcap file is created (under sudo, given to the user who ran sudo: see
   :mod:`sockcap.owner`) and the command (if any) is started;
4. frames are read in batches: each batch is written to the file (flushed) before it is
   handed to ``on_frames`` for the timeline, so the file always holds every packet shown;
5. the capture ends at ``count`` packets, after ``duration`` (the whole capture's length,
   whether the command ends before or not), on an interrupt, or after the command has
   exited: ``linger`` seconds later when given (a server's late FIN is still captured),
   else at the end of ``duration``, else when the session's drain is over (nothing more
   arrived for the backend's ``settle_seconds``, bounded by ``DRAIN_SECONDS``), so the
   command's last packets are in. ``tell`` (given on a terminal) hears how much longer
   the capture goes on once the command has ended;
6. the command is stopped by its PID if it still runs (the result says why), then the
   session finishes: the backend is stopped (its counters read), what was still in flight
   is read, and the file is closed.

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
import math
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sockcap.capture.session import (
    DRAIN_SECONDS,
    NO_STATS,
    READ_SECONDS,
    CaptureSession,
    FrameSink,
    fewer_gc_passes,
)
from sockcap.decode.records import CaptureStats
from sockcap.errors import InputError, SockcapError
from sockcap.i18n import _
from sockcap.owner import Owner, sudo_user
from sockcap.pcapfile.rotation import Rotation

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
    linger: float | None = None  # seconds to keep capturing after the command ends
    rotation: Rotation | None = None  # -G / -C / -W: the file is a series (out: its pattern)
    own_group: bool = False  # run the command in a process group of its own, stopped whole


@dataclass
class LiveResult:
    backend: str = ""
    stats: CaptureStats = field(default_factory=lambda: NO_STATS)
    written: int = 0
    path: str | None = None
    command_status: int | None = None  # the command's exit status (-N: signal N)
    command_stopped: str = ""  # why sockcap stopped the command ("": it exited on its own)
    interrupt: BaseException | None = None
    frames: int = 0
    files: list[str] = field(default_factory=list)  # the files written, rotation or not
    extra: dict[str, Any] = field(default_factory=dict)


def capture_live(opts: LiveOptions, on_frames: FrameSink,
                 note: Callable[[str], None],
                 tell: Callable[[str], None] | None = None) -> LiveResult:
    """Run a capture as the module docstring says; returns its result (interrupt included)."""
    session = CaptureSession.open(opts.backend, opts.iface, on_frames, Owner(note),
                                  count=opts.count)
    result = LiveResult(backend=session.name, path=opts.out)
    watch = _Watch(opts, session, result, tell)
    try:
        session.set_filter(opts.filter)
        session.start()
        note(f"capturing on {opts.iface} with {session.name}"  # said once ready, as tcpdump does
             + (f", filter {opts.filter!r}" if opts.filter else ""))
        if opts.out:
            session.open_file(opts.out, force=opts.force, rotation=opts.rotation)
        watch.start_command()
        watch.loop()
    except (KeyboardInterrupt, SockcapError) as e:
        if not _is_interrupt(e):
            watch.stop_reason = "when the capture failed"
            watch.finish()
            raise
        result.interrupt = e
        watch.stop_reason = "on the interrupt"
    watch.finish()
    return result


def _is_interrupt(e: BaseException) -> bool:
    from sockcap.signals import Terminated

    return isinstance(e, KeyboardInterrupt | Terminated)


class _Watch:
    """What ``capture`` adds to its session: the end conditions and the watched command."""

    def __init__(self, opts: LiveOptions, session: CaptureSession, result: LiveResult,
                 tell: Callable[[str], None] | None = None) -> None:
        self.opts = opts
        self.tell = tell
        self.session = session
        self.result = result
        self.child: subprocess.Popen[bytes] | None = None
        self.finished = False
        self.stop_reason = "when the capture ended"  # said if the command still ran

    def start_command(self) -> None:
        if self.opts.command:
            self.child = start_command(self.opts.command, self.opts.command_stdout,
                                       own_group=self.opts.own_group)

    def loop(self) -> None:
        """Read until ``count``, ``duration`` or the command's exit (then linger or drain)."""
        opts, session = self.opts, self.session
        deadline = time.monotonic() + opts.duration if opts.duration else math.inf
        with fewer_gc_passes():
            while not session.full:
                session.read(min(READ_SECONDS, max(0.0, deadline - time.monotonic())))
                if time.monotonic() >= deadline:
                    self.stop_reason = f"after the duration (--duration {opts.duration:g}) ran out"
                    return
                if self.child is not None and self.child.poll() is not None:
                    self._after_command(deadline)
                    return
        if session.rotation_done:
            files = opts.rotation.files if opts.rotation is not None else 0
            self.stop_reason = f"after the last file (-W {files}) was written"
        else:
            self.stop_reason = f"after the count (-c {opts.count}) was reached"

    def _after_command(self, deadline: float) -> None:
        """The command has ended: the short drain, or ``linger`` seconds (within
        ``duration``), or what is left of ``duration``."""
        opts, session = self.opts, self.session
        if opts.linger is None and deadline == math.inf:
            session.drain(limit=DRAIN_SECONDS)
            return
        now = time.monotonic()
        end = min(deadline, now + (opts.linger if opts.linger is not None else math.inf))
        if self.tell is not None and end > now:
            self.tell(_("the command ended; capturing {seconds:g} s more").format(
                seconds=round(end - now, 1)))
        while not session.full and (left := end - time.monotonic()) > 0:
            session.read(min(READ_SECONDS, left))

    def finish(self) -> None:
        """Stop the command (noting why if it still ran), then finish the session."""
        if self.finished:
            return
        self.finished = True
        with _interrupts_held():
            try:
                if self.child is not None and self.child.poll() is None:
                    self.result.command_stopped = self.stop_reason
                self.result.command_status = stop_command(self.child)
                if self.opts.own_group and self.child is not None:
                    stop_group(self.child.pid)
            finally:
                self.result.stats = self.session.finish()
                self.result.frames = self.session.frames
                self.result.written = self.session.written
                self.result.files = self.session.files


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


def start_command(argv: Sequence[str], stdout: int | None = None, *,
                  own_group: bool = False) -> subprocess.Popen[bytes]:
    """Start the watched command (argv list, no shell); it dies with sockcap. ``own_group``:
    in a new process group (its PID is the group's), so :func:`stop_group` can stop the
    children it forked too (a forking server's)."""
    group: dict[str, Any] = {"process_group": 0} if own_group else {}
    try:
        # preexec_fn with threads (dumpcap's readers): it only calls a prctl resolved before fork
        return subprocess.Popen(list(argv), stdout=stdout, preexec_fn=_die_with_parent_fn(),  # noqa: PLW1509
                                **_as_sudo_user(), **group)
    except FileNotFoundError as e:
        raise InputError(_("command not found: {argv}").format(argv=argv[0])) from e
    except PermissionError as e:
        raise InputError(_("cannot run {argv}: permission denied").format(argv=argv[0])) from e
    except OSError as e:
        raise SockcapError(_("cannot run {argv}: {e}").format(argv=argv[0], e=e.strerror or e)) from e


def stop_group(pgid: int) -> None:
    """Stop what is left of the process group ``pgid`` that :func:`start_command` made (the
    command has ended or been stopped; its forked children may still run): SIGTERM, then
    SIGKILL after :data:`CHILD_EXIT_SECONDS`. The kernel does not reuse a PID while a
    group of that number has members, so the signal reaches only the command's own."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + CHILD_EXIT_SECONDS
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.02)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


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
