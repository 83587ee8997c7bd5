"""The cgroup of a submission, and the limits it enforces.

``pids.max``, a memory limit for all the submission's processes together, and their CPU
time, watched; at the end the group is killed as a whole (v2's ``cgroup.kill``, or
freeze-and-kill in v1), so a ``setsid`` daemon or a fork bomb dies with it. Both the v2
hierarchy and the v1 controllers are used, whichever holds each controller. Where neither
can be used (no root and no delegated cgroup), :func:`cgroup_missing` says so in one line
and :mod:`sockcap.check.sandbox` sets the limits per process (``RLIMIT_*``).
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from sockcap.i18n import _

INIT_USER_NS = 0xEFFFFFFD  # the initial user namespace's inode (PROC_USER_INIT_INO, fixed)
CGROUP_ROOT = Path("/sys/fs/cgroup")
KILL_SECONDS = 2.0


@dataclass(frozen=True)
class Limits:
    memory_mb: int = 512  # all the submission's processes together (per process without a cgroup)
    cpu_seconds: int = 30  # CPU time of all its processes together (and of each)
    file_mb: int = 64  # largest file (or output) a program may write
    open_files: int = 256
    processes: int = 64  # processes and threads at once


def host_root() -> bool:
    """Root of the machine itself, not of a user namespace (sockcap's own, where uid 0 is
    the user, or a container's), where other uids cannot be given away and the host's
    network namespace cannot be entered again."""
    if os.geteuid() != 0:
        return False
    try:
        return os.stat("/proc/self/ns/user").st_ino == INIT_USER_NS
    except OSError:
        return False


class Cgroup:
    """One submission's cgroup, in whichever hierarchies hold the controllers.

    ``dirs`` maps a role (``"kill"``, ``"pids"``, ``"memory"``, ``"cpu"``, ``"freeze"``)
    to the folder that serves it: on a v2-only machine all are one folder; on a machine
    with v1 controllers beside a v2 hierarchy (``/sys/fs/cgroup/unified``) each is the
    controller's own hierarchy.
    """

    _serial = itertools.count()

    def __init__(self, dirs: dict[str, Path]) -> None:
        self.dirs = dirs

    @classmethod
    def create(cls, limits: Limits) -> tuple[Cgroup | None, str]:
        """The cgroup, or None and the one line saying what is missing."""
        name = f"sockcap-{os.getpid()}-{next(cls._serial)}"
        dirs: dict[str, Path] = {}
        made: list[Path] = []
        try:
            for role, parent in _cgroup_parents().items():
                folder = parent / name
                if folder not in made:
                    folder.mkdir()
                    made.append(folder)
                dirs[role] = folder
        except OSError:
            for folder in reversed(made):
                with contextlib.suppress(OSError):
                    folder.rmdir()
            dirs = {}
        missing = [r for r in ("kill", "pids", "memory", "cpu") if r not in dirs]
        if not dirs or missing:
            for folder in reversed(made):
                with contextlib.suppress(OSError):
                    folder.rmdir()
            return None, _("no cgroup for the submissions ({missing} cannot be used here: "
                           "that needs root or a delegated cgroup); memory, CPU time and "
                           "processes are limited per process only").format(
                               missing=", ".join(missing or ["cgroup v1 or v2"]))
        group = cls(dirs)
        try:
            group._limit(limits)
        except OSError as e:
            group.remove()
            return None, _("no cgroup for the submissions (cannot set its limits: {e}); "
                           "memory, CPU time and processes are limited per process only"
                           ).format(e=e.strerror or e)
        return group, ""

    def _limit(self, limits: Limits) -> None:
        mb = 1 << 20
        _write(self.dirs["pids"] / "pids.max", str(limits.processes))
        memory = self.dirs["memory"]
        if (memory / "memory.max").exists():
            _write(memory / "memory.max", str(limits.memory_mb * mb))
            with contextlib.suppress(OSError):
                _write(memory / "memory.swap.max", "0")
        else:
            _write(memory / "memory.limit_in_bytes", str(limits.memory_mb * mb))
            with contextlib.suppress(OSError):
                _write(memory / "memory.memsw.limit_in_bytes", str(limits.memory_mb * mb))

    def join(self) -> None:
        """Put the calling process in every folder (in the child, before exec)."""
        for folder in dict.fromkeys(self.dirs.values()):
            _write(folder / "cgroup.procs", "0")

    def pids(self) -> list[int]:
        try:
            text = (self.dirs["kill"] / "cgroup.procs").read_text()
        except OSError:
            return []
        return [int(p) for p in text.split()]

    def cpu_ns(self) -> int:
        folder = self.dirs["cpu"]
        try:
            if (folder / "cpuacct.usage").exists():
                return int((folder / "cpuacct.usage").read_text())
            for line in (folder / "cpu.stat").read_text().splitlines():
                if line.startswith("usage_usec "):
                    return int(line.split()[1]) * 1000
        except (OSError, ValueError):
            pass
        return 0

    def memory_killed(self) -> bool:
        """True when the kernel killed a process for the memory limit."""
        folder = self.dirs["memory"]
        for name, key in (("memory.events", "oom_kill"), ("memory.oom_control", "oom_kill")):
            try:
                for line in (folder / name).read_text().splitlines():
                    if line.startswith(key + " ") and int(line.split()[1]) > 0:
                        return True
            except (OSError, ValueError):
                continue
        return False

    def kill(self) -> None:
        """Kill every process in it, bounded in time."""
        kill_file = self.dirs["kill"] / "cgroup.kill"
        deadline = time.monotonic() + KILL_SECONDS
        while self.pids() and time.monotonic() < deadline:
            if kill_file.exists():
                with contextlib.suppress(OSError):
                    _write(kill_file, "1")
            else:
                self._freeze_and_kill()
            time.sleep(0.01)

    def _freeze_and_kill(self) -> None:
        freezer = self.dirs.get("freeze")
        state = freezer / "freezer.state" if freezer else None
        if state is not None:
            with contextlib.suppress(OSError):
                _write(state, "FROZEN")
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        if state is not None:
            with contextlib.suppress(OSError):
                _write(state, "THAWED")

    def remove(self) -> None:
        self.kill()
        for folder in dict.fromkeys(self.dirs.values()):
            deadline = time.monotonic() + KILL_SECONDS
            while folder.exists():
                try:
                    folder.rmdir()
                except OSError as e:
                    if e.errno != errno.EBUSY or time.monotonic() > deadline:
                        break
                    time.sleep(0.01)


def cgroup_missing(limits: Limits) -> str:
    """The one line saying why submissions get no cgroup here, or "" when they do."""
    if not host_root():
        return _("no cgroup for the submissions (that needs root or a delegated cgroup); "
                 "memory, CPU time and processes are limited per process only")
    group, missing = Cgroup.create(limits)
    if group is not None:
        group.remove()
    return missing


def _write(path: Path, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def _cgroup_parents() -> dict[str, Path]:
    """For each role, the folder of this process's own cgroup where it is served."""
    own = {}
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return {}
    for line in lines:
        _id, controllers, path = line.split(":", 2)
        own[controllers] = path.lstrip("/")
    found: dict[str, Path] = {}
    if (CGROUP_ROOT / "cgroup.controllers").exists():  # v2 only
        base = CGROUP_ROOT / own.get("", "")
        wanted = {"pids": "pids", "memory": "memory", "cpu": "cpu"}
        with contextlib.suppress(OSError):  # refused where this cgroup holds processes
            _write(base / "cgroup.subtree_control", " ".join(f"+{c}" for c in wanted.values()))
        try:
            enabled = (base / "cgroup.subtree_control").read_text().split()
        except OSError:
            enabled = []
        found = {role: base for role, c in wanted.items() if c in enabled}
        found["kill"] = found["freeze"] = base
        return found
    unified = CGROUP_ROOT / "unified"
    if (unified / "cgroup.procs").exists():
        found["kill"] = unified / own.get("", "")
    for role, controller in (("pids", "pids"), ("memory", "memory"), ("cpu", "cpuacct"),
                             ("freeze", "freezer")):
        key = next((k for k in own if controller in k.split(",")), None)
        folder = CGROUP_ROOT / controller
        if key is not None and (folder / "cgroup.procs").exists():
            found[role] = folder / own[key]
    if "kill" not in found and "freeze" in found:
        found["kill"] = found["freeze"]
    return found
