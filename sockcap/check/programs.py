"""The student's programs as processes: started bounded, watched through /proc, stopped by PID.

Each program runs from an argv list (never a shell) inside its submission's sandbox
(:mod:`sockcap.check.sandbox`: its own user, namespaces and cgroup, per-process limits,
death with sockcap), under bubblewrap started in a session of its own: its process tree
is what is watched (CPU time of a forked child spinning after its client left) and
stopped (SIGTERM, SIGKILL after a time limit; its PID namespace with it). Its stdout and
stderr go to files whose first bytes the report keeps.

The socket states come from ``/proc/net/tcp`` and ``/proc/net/tcp6``: whether something
listens on the port (no probe connection needed, so the capture holds only the check's
own traffic) and how many server sockets sit in CLOSE_WAIT.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from sockcap.analysis.calls import Call
from sockcap.check.cgroup import Limits
from sockcap.check.sandbox import TRACE_BYTES, TRACE_FILE, TRACE_MOUNT, Sandbox
from sockcap.codes import Code
from sockcap.errors import ExitCode, InputError, SockcapError
from sockcap.i18n import _

STOP_SECONDS = 1.0  # after SIGTERM to the group, before SIGKILL
KEPT_OUTPUT = 4096  # bytes of each output stream kept for the report
TCP_LISTEN, TCP_CLOSE_WAIT = "0A", "08"


class Limit(Code):
    """Which limit ended a program (the words are in :mod:`sockcap.render.check`)."""

    OUTPUT = "output"  # RLIMIT_FSIZE: SIGXFSZ
    MEMORY = "memory"  # the cgroup's memory limit (the kernel's OOM kill), or RLIMIT_AS
    CPU = "cpu"  # the CPU time of the submission (cgroup) or of one process (SIGXCPU)


@dataclass(frozen=True)
class ProgramOutput:
    """What a program printed, and how it ended."""

    name: str
    argv: tuple[str, ...]
    status: int | None  # exit status (-N: signal N); None: never started
    stopped: bool  # sockcap stopped it (it was still running)
    stdout: bytes
    stderr: bytes
    limit: Limit | None = None  # the limit that ended it, when one did
    calls: tuple[Call, ...] = ()  # its socket calls, when it was traced (wall clock)


class Program:
    """One started program and its process group, always in a :class:`Sandbox`: the argv
    runs under bubblewrap there, and its ``./x`` and ``cwd`` are the sandbox's (a student's
    program never runs outside one).

    ``trace``: the side its socket calls are recorded as ("server", "client"), under
    strace inside the sandbox (:meth:`Sandbox.tracing`); "" (or no strace there): not
    traced. The calls come with its output from :meth:`stop`."""

    def __init__(self, name: str, argv: Sequence[str], *, sandbox: Sandbox,
                 cwd: str | None = None, stdin: bytes | None = None,
                 limits: Limits | None = None, trace: str = "") -> None:
        self.name = name
        self.argv = tuple(argv)
        self.sandbox = sandbox
        self.limits = limits or sandbox.limits
        self._out = tempfile.TemporaryFile()
        self._err = tempfile.TemporaryFile()
        self.stopped = False
        self.trace_side = trace
        self.trace_folder: Path | None = None
        run, binds = list(argv), []
        if trace and not sandbox.tracing():
            from sockcap.capture.calls import traced_argv

            self.trace_folder = sandbox.trace_folder()
            bound = min(TRACE_BYTES, self.limits.file_mb << 19)  # under the file limit
            run = traced_argv(run, f"{TRACE_MOUNT}/{TRACE_FILE}", bound=bound)
            binds = [(self.trace_folder, TRACE_MOUNT)]
        try:
            self.proc = subprocess.Popen(
                sandbox.argv(run, cwd, binds), cwd="/", env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
                start_new_session=True,
                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                stdout=self._out, stderr=self._err,
                preexec_fn=sandbox.preexec(self.limits))  # noqa: PLW1509 - resolved before fork
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
        """CPU time (user + system) used so far by the program's live processes (every
        descendant, in or out of its process group)."""
        return tree_cpu_ns(self.pid)

    def members(self) -> list[int]:
        """The PIDs of its live processes (the program and every descendant)."""
        return [pid for pid, _cpu in _tree(self.pid)]

    def stop(self) -> ProgramOutput:
        """Stop the group by its id (SIGTERM, then SIGKILL after STOP_SECONDS); the output.
        In a sandbox, killing bubblewrap ends its PID namespace: every process the program
        started dies with it; this returns once they are gone (the namespace's init, and
        every descendant seen when the stop began)."""
        if self.running():
            self.stopped = True
            self._stop_tracer()
        inner = [pid for pid in self.members() if pid != self.pid]
        _signal_group(self.pid, signal.SIGTERM)
        if not self.wait(STOP_SECONDS):
            _signal_group(self.pid, signal.SIGKILL)
            self.proc.wait()
        deadline = time.monotonic() + STOP_SECONDS
        while group_members(self.pid) and time.monotonic() < deadline:
            _signal_group(self.pid, signal.SIGKILL)  # forked children left behind
            time.sleep(0.01)
        while inner and time.monotonic() < deadline + STOP_SECONDS:
            inner = [pid for pid in inner if _alive(pid)]  # the namespace being torn down
            time.sleep(0.005)
        status = self.proc.returncode
        if status is not None and 128 < status < 128 + 65:
            status = -(status - 128)  # bubblewrap exits 128 + N for a child killed by N
        return ProgramOutput(self.name, self.argv, status, self.stopped,
                             _head(self._out), _head(self._err), self._limit(status),
                             self._calls())

    def _stop_tracer(self) -> None:
        """A traced program is stopped through strace first (SIGTERM): strace passes the
        signal on to the program, writes out the lines it still holds (its output is
        buffered: killed outright, it would lose the last calls, such as a forked
        child's whole exchange) and waits for the writer of its trace; its exit ends the
        sandbox's PID namespace. A program that ignores the signal dies with it."""
        if self.trace_folder is None:
            return
        from sockcap.capture.calls import strace_path

        strace = os.path.realpath(strace_path() or "strace")
        for pid in self.members():
            try:
                exe = os.readlink(f"/proc/{pid}/exe")
            except OSError:
                continue
            if exe == strace:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGTERM)
                break
        self.wait(STOP_SECONDS)

    def _calls(self) -> tuple[Call, ...]:
        """The calls strace wrote, read once every process of the program is gone (the
        file is the program's to write too: read as untrusted, bounded)."""
        if self.trace_folder is None:
            return ()
        from sockcap.capture.calls import read_calls

        return tuple(read_calls(str(self.trace_folder / TRACE_FILE), self.trace_side))

    def _limit(self, status: int | None) -> Limit | None:
        if self.stopped or status is None or status >= 0:
            return None
        if status == -signal.SIGXFSZ:
            return Limit.OUTPUT
        if status == -signal.SIGXCPU or self.sandbox.cpu_exceeded.is_set():
            return Limit.CPU
        if status == -signal.SIGKILL and self.sandbox.memory_killed():
            return Limit.MEMORY
        return None


def _alive(pid: int) -> bool:
    fields = _stat_fields(str(pid))
    return fields is not None and fields[0] not in ("Z", "X")


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


def group_members(pgid: int) -> list[int]:
    """The PIDs of live (not zombie) processes in process group ``pgid``."""
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(entry)
            if fields and int(fields[2]) == pgid and fields[0] != "Z":
                members.append(int(entry))
    return members


def _tree(root: int) -> list[tuple[int, int]]:
    """(pid, utime + stime in ticks) of ``root`` and its live descendants."""
    parent: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(entry)
            if fields and fields[0] != "Z":
                parent[int(entry)] = int(fields[1])
                ticks[int(entry)] = int(fields[11]) + int(fields[12])
    found, frontier = [], [root]
    children: dict[int, list[int]] = {}
    for pid, ppid in parent.items():
        children.setdefault(ppid, []).append(pid)
    while frontier:
        pid = frontier.pop()
        if pid in ticks:
            found.append((pid, ticks[pid]))
        frontier += children.get(pid, [])
    return found


def tree_cpu_ns(root: int) -> int:
    """utime + stime of ``root`` and its live descendants, in ns."""
    tick = os.sysconf("SC_CLK_TCK")
    return sum(t for _pid, t in _tree(root)) * 1_000_000_000 // tick


def _stat_fields(pid: str) -> list[str] | None:
    """/proc/PID/stat after the command name: state, ppid, pgrp, ... (fields 3 onwards)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            text = f.read()
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()


def _sockets(port: int, proto: str) -> list[list[str]]:
    """The rows of /proc/net/{tcp,udp}(6) whose local port is ``port``, in the calling
    thread's network namespace (``thread-self``: a check's thread steps into the
    sandbox's namespace, the process stays where it is)."""
    rows = []
    for table in (f"/proc/thread-self/net/{proto}", f"/proc/thread-self/net/{proto}6"):
        try:
            with open(table, encoding="ascii") as f:
                lines = f.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and int(fields[1].rsplit(":", 1)[1], 16) == port:
                rows.append(fields)
    return rows


def socket_states(port: int, proto: str = "tcp") -> list[str]:
    """The states (hex codes of /proc/net/tcp or udp) of the sockets whose local port is
    ``port``."""
    return [fields[3] for fields in _sockets(port, proto)]


class PortHeldError(SockcapError):
    """The port is held by a program other than the one under test (exit 2, no verdict)."""

    exit_code = ExitCode.USAGE

    def __init__(self, port: int, holder: tuple[int, str]) -> None:
        pid, name = holder
        super().__init__(_("port {port} is already held by another program (pid {pid}, "
                           "{name}): stop it first").format(port=port, pid=pid, name=name))


def port_holders(port: int, udp: bool = False) -> list[tuple[int, str]]:
    """(pid, command) of each process holding a listening TCP socket (or a UDP socket) on
    ``port`` in the thread's network namespace; pid 0 where the socket is seen but its
    holder is not (another user's process, without root)."""
    rows = _sockets(port, "udp") if udp else [r for r in _sockets(port, "tcp")
                                             if r[3] == TCP_LISTEN]
    inodes = {f"socket:[{r[9]}]" for r in rows if r[9] != "0"}
    if not inodes:
        return []
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            links = {os.readlink(f"/proc/{entry}/fd/{fd}") for fd in os.listdir(f"/proc/{entry}/fd")}
        except OSError:
            continue
        if links & inodes:
            found.append((int(entry), _command(entry)))
    return found or [(0, "?")]


def _command(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()[:80]
    except OSError:
        return "?"


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


def bound_addresses(port: int, proto: str = "udp") -> list[str]:
    """The local addresses of the sockets bound to ``port`` (IPv4, in the thread's network
    namespace): ``0.0.0.0`` for a socket bound to every address."""
    found = []
    for fields in _sockets(port, proto):
        address = fields[1].rsplit(":", 1)[0]
        if len(address) == 8:  # IPv4, in the kernel's byte order (little-endian here)
            found.append(".".join(str(b) for b in reversed(bytes.fromhex(address))))
    return found


def unread_bytes(local_port: int, remote_port: int) -> int | None:
    """Bytes waiting in the receive queue of the TCP socket ``local_port`` -> ``remote_port``
    (the thread's network namespace), not yet taken by the program's read(); None: no such
    socket."""
    for fields in _sockets(local_port, "tcp"):
        if int(fields[2].rsplit(":", 1)[1], 16) == remote_port:
            return int(fields[4].split(":")[1], 16)
    return None


def close_wait_count(port: int) -> int:
    return socket_states(port).count(TCP_CLOSE_WAIT)
