"""The student's programs as processes: started bounded, watched through /proc, stopped by PID.

Each program runs from an argv list (never a shell) in its own session, so it and every
child it forks share one process group whose id is the program's PID: the group is what
is watched (CPU time of a forked child spinning after its client left) and stopped
(SIGTERM to the group, SIGKILL after a time limit). It dies with sockcap
(``PR_SET_PDEATHSIG``), and runs under resource limits: address space, CPU seconds,
file size, open files. Its stdout and stderr go to files whose first bytes the report
keeps.

The socket states come from ``/proc/net/tcp`` and ``/proc/net/tcp6``: whether something
listens on the port (no probe connection needed, so the capture holds only the check's
own traffic) and how many server sockets sit in CLOSE_WAIT.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import resource
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import IO

from sockcap.errors import InputError, SockcapError
from sockcap.i18n import _

STOP_SECONDS = 1.0  # after SIGTERM to the group, before SIGKILL
KEPT_OUTPUT = 4096  # bytes of each output stream kept for the report
PR_SET_PDEATHSIG = 1
TCP_LISTEN, TCP_CLOSE_WAIT = "0A", "08"


@dataclass(frozen=True)
class Limits:
    memory_mb: int = 512  # address space of each process
    cpu_seconds: int = 30  # CPU time of each process
    file_mb: int = 64  # largest file a program may write
    open_files: int = 256


@dataclass(frozen=True)
class ProgramOutput:
    """What a program printed, and how it ended."""

    name: str
    argv: tuple[str, ...]
    status: int | None  # exit status (-N: signal N); None: never started
    stopped: bool  # sockcap stopped it (it was still running)
    stdout: bytes
    stderr: bytes


class Program:
    """One started program and its process group."""

    def __init__(self, name: str, argv: Sequence[str], *, cwd: str | None = None,
                 stdin: bytes | None = None, limits: Limits | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.name = name
        self.argv = tuple(argv)
        self._out = tempfile.TemporaryFile()
        self._err = tempfile.TemporaryFile()
        self.stopped = False
        try:
            self.proc = subprocess.Popen(
                list(argv), cwd=cwd, env=env, start_new_session=True,
                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                stdout=self._out, stderr=self._err,
                preexec_fn=_preexec(limits or Limits()))  # noqa: PLW1509 - resolved before fork
        except FileNotFoundError as e:
            raise InputError(_("program not found: {argv}").format(argv=argv[0])) from e
        except PermissionError as e:
            raise InputError(_("cannot run {argv}: permission denied").format(argv=argv[0])) from e
        except OSError as e:
            raise SockcapError(_("cannot run {argv}: {e}").format(argv=argv[0], e=e.strerror or e)) from e
        if stdin is not None and self.proc.stdin is not None:
            try:
                self.proc.stdin.write(stdin)
                self.proc.stdin.close()
            except BrokenPipeError:
                pass

    @property
    def pid(self) -> int:
        return self.proc.pid

    def running(self) -> bool:
        return self.proc.poll() is None

    def wait(self, seconds: float) -> bool:
        """True if the program exited within ``seconds``."""
        try:
            self.proc.wait(seconds)
        except subprocess.TimeoutExpired:
            return False
        return True

    def cpu_ns(self) -> int:
        """CPU time (user + system) used so far by every live process of the group."""
        return group_cpu_ns(self.pid)

    def stop(self) -> ProgramOutput:
        """Stop the group by its id (SIGTERM, then SIGKILL after STOP_SECONDS); the output."""
        if self.running():
            self.stopped = True
        _signal_group(self.pid, signal.SIGTERM)
        if not self.wait(STOP_SECONDS):
            _signal_group(self.pid, signal.SIGKILL)
            self.proc.wait()
        deadline = time.monotonic() + STOP_SECONDS
        while group_members(self.pid) and time.monotonic() < deadline:
            _signal_group(self.pid, signal.SIGKILL)  # forked children left behind
            time.sleep(0.01)
        return ProgramOutput(self.name, self.argv, self.proc.returncode, self.stopped,
                             _head(self._out), _head(self._err))


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _head(f: IO[bytes]) -> bytes:
    f.seek(0)
    data = f.read(KEPT_OUTPUT + 1)
    f.close()
    return data


def _preexec(limits: Limits) -> Callable[[], None]:
    """A function for the child between fork and exec: limits, and death with sockcap."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    prctl = libc.prctl
    parent = os.getpid()
    mb = 1 << 20
    settings = [(resource.RLIMIT_AS, limits.memory_mb * mb),
                (resource.RLIMIT_CPU, limits.cpu_seconds),
                (resource.RLIMIT_FSIZE, limits.file_mb * mb),
                (resource.RLIMIT_NOFILE, limits.open_files),
                (resource.RLIMIT_CORE, 0)]

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:
            os._exit(1)
        for which, value in settings:
            resource.setrlimit(which, (value, value))

    return preexec


def group_members(pgid: int) -> list[int]:
    """The PIDs of live (not zombie) processes in process group ``pgid``."""
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(entry)
            if fields and int(fields[2]) == pgid and fields[0] != "Z":
                members.append(int(entry))
    return members


def group_cpu_ns(pgid: int) -> int:
    """utime + stime of the group's live processes, in ns."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(entry)
            if fields and int(fields[2]) == pgid:
                total += int(fields[11]) + int(fields[12])
    return total * 1_000_000_000 // tick


def _stat_fields(pid: str) -> list[str] | None:
    """/proc/PID/stat after the command name: state, ppid, pgrp, ... (fields 3 onwards)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            text = f.read()
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()


def socket_states(port: int, proto: str = "tcp") -> list[str]:
    """The states (hex codes of /proc/net/tcp or udp) of the sockets whose local port is
    ``port``."""
    states = []
    for table in (f"/proc/net/{proto}", f"/proc/net/{proto}6"):
        try:
            with open(table, encoding="ascii") as f:
                lines = f.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 3 and int(fields[1].rsplit(":", 1)[1], 16) == port:
                states.append(fields[3])
    return states


def wait_listening(port: int, program: Program, seconds: float, udp: bool = False) -> bool:
    """Wait until something listens on ``port`` (False: the time ran out or it exited)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if socket_states(port, "udp") if udp else TCP_LISTEN in socket_states(port):
            return True
        if not program.running():
            return False
        time.sleep(0.01)
    return False


def wait_port_free(port: int, seconds: float) -> None:
    """Wait (bounded) until no socket but TIME_WAIT ones holds ``port`` locally."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if all(state == "06" for state in socket_states(port)):
            return
        time.sleep(0.02)


def close_wait_count(port: int) -> int:
    return socket_states(port).count(TCP_CLOSE_WAIT)
