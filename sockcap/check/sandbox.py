"""The sandbox every student program runs in: its build, its server, its client.

A student's program is hostile until proven otherwise. Each one runs with:

- **an unprivileged identity.** As root, sockcap gives each sandbox a fresh uid and gid
  of its own (:data:`UID_BASE` upwards, one nobody else uses), so on the host the program
  owns nothing but its own copied work folder, and ``RLIMIT_NPROC`` counts only its own
  processes. Without root, sockcap already lives in a user namespace of its own (the user
  mapped to 0 there, as ``run`` and ``lab`` do); the program's identity is then the user's
  own, which is why the mount namespace below matters most.
- **namespaces of its own** (bubblewrap: user, mount, PID, IPC, UTS, cgroup): it sees the
  system's programs and libraries read-only, its own folder at ``/submission``
  (read-write), a private ``/tmp``, and a ``/proc`` of its own PID namespace, where the
  grader, the other submissions and the host's processes do not exist (so there is no
  ``/proc/<ppid>/cmdline`` to read and no ``/proc/<pid>/ns/net`` to ``setns()`` into).
  It is ``nobody`` there, with no capabilities and ``no_new_privs``, in a clean
  environment (``PATH``, ``HOME`` = its folder, ``LANG``).
- **a network namespace with only lo**, made by sockcap for each scenario
  (:meth:`Sandbox.new_network`) and joined by the child between fork and exec. The
  grader's process never lives in it: one thread steps in only to make its capture and
  probe sockets (:meth:`Sandbox.inside`), which stay there. A fresh namespace per scenario
  also means no scenario inherits the previous one's TIME_WAIT sockets: a server without
  ``SO_REUSEADDR`` binds its fixed port every time.
- **a cgroup per submission** (:class:`~sockcap.check.cgroup.Cgroup`, in a module of its
  own): ``pids.max``, a memory limit for all its processes together, and its CPU time,
  watched; at the end it is killed as a whole (v2's
  ``cgroup.kill``, or freeze-and-kill in v1), so a ``setsid`` daemon or a fork bomb dies
  with it. Both the v2 hierarchy and the v1 controllers are used, whichever holds each
  controller. Where neither can be used (no root and no delegated cgroup), one line says so
  and the limits are per process (``RLIMIT_*``); the PID namespace still takes every
  process down when the program's first process ends.

Why bubblewrap and not our own ``clone()``: it is the field's usual tool for exactly this
(Flatpak's sandbox), a small audited C program that sets up the mount namespace, the PID
namespace's init (which reaps, and whose death kills everything in it), ``no_new_privs``
and the dropped capabilities in the right order; written again in Python between
``fork`` and ``exec`` it would be longer and easier to get wrong. What bubblewrap does not
do (the uid, the cgroup, the network namespace) happens in the child before it runs
bubblewrap.

Results, reports and pcaps are written by the grader after the sandbox is empty, into
folders the sandbox never mounts.

**The programs' socket calls** (:meth:`Sandbox.tracing`, :meth:`Sandbox.trace_folder`):
strace runs *inside* bubblewrap, as the program's parent, with the program's own
identity and nothing more (no capability, ``no_new_privs`` set by bubblewrap, which
strace's ``--seccomp-bpf`` needs anyway). Tracing one's own child needs no privilege:
``PTRACE_SEIZE`` of a child is allowed by the kernel's ptrace check for the same uid,
and Yama's ``ptrace_scope`` 1 ("only descendants") allows it too; scope 2 (only with
CAP_SYS_PTRACE) or 3 (never), and a container's seccomp filter without ``ptrace``, forbid
it: :meth:`Sandbox.tracing` starts ``strace true`` in the sandbox once and, where that
fails, gives the one line that says so, and the check goes on without calls. (This
machine's kernel has no Yama; bubblewrap installs no seccomp filter of its own.)
strace writes into a folder of its own for each program, bound read-write at
:data:`TRACE_MOUNT`: the folder holds nothing but that program's trace, and the other
submissions' folders are not in its mount namespace, so the program can reach nothing
through it. It can write there (it is strace's user), so the grader reads the trace as
untrusted (:func:`sockcap.capture.calls.read_calls`: no link followed, only a regular
file, a bounded size): a program that forges lines misleads only its own findings.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import pwd
import resource
import shutil
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from sockcap.check.cgroup import Cgroup, Limits, cgroup_missing, host_root
from sockcap.errors import ExitCode, NamespaceError, SockcapError
from sockcap.i18n import _

CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1
UID_BASE = 0x5C0C_0000  # sandbox uids: far above any distribution's range
UID_SPAN = 0x1_0000
INSIDE_UID = 65534  # what the program sees itself as (nobody)
MOUNT_POINT = "/submission"
CPU_WATCH_SECONDS = 0.1
SYSTEM_DIRS = ("/usr", "/etc", "/opt")  # read-only; what programs and compilers need
MERGED = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")  # symlinks or dirs
TRACE_MOUNT = "/run/sockcap-calls"  # where a traced program's strace writes (its own folder)
TRACE_FILE = "calls.strace"
TRACE_BYTES = 32 << 20  # the most a trace file grows (the program goes on beyond it)


class SandboxError(SockcapError):
    """The sandbox cannot be made here (exit 2): the one line names what is missing."""

    exit_code = ExitCode.USAGE


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _setns(fd: int) -> None:
    if _libc().setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def bwrap_path() -> str:
    found = shutil.which("bwrap") or next(
        (p for p in ("/usr/bin/bwrap", "/usr/local/bin/bwrap") if os.access(p, os.X_OK)), None)
    if found is None:
        raise SandboxError(_("students' programs run in a sandbox made with bubblewrap, "
                             "which is missing: sudo apt-get install bubblewrap"))
    return found


def enter_user_namespace() -> None:
    """Without root, move sockcap into a user and network namespace of its own (as ``run``
    does), where it may make the namespaces and captures a check needs. Call it before any
    thread starts. As the machine's root: nothing."""
    if not host_root():
        from sockcap.lab.namespaces import enter_private

        enter_private()


# -- identities --------------------------------------------------------------------------


def _free_uid() -> int:
    """A uid (and gid) that no account and no process uses."""
    used = {p.pw_uid for p in pwd.getpwall()}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                used.add(os.stat(f"/proc/{entry}").st_uid)
    # Where the search starts depends on the process: submissions graded at once (``-j``)
    # are in processes of their own, whose PIDs differ by less than UID_SPAN, so their
    # searches start apart and none takes the uid another chose before using it.
    start = UID_BASE + os.getpid() % UID_SPAN
    for n in range(UID_SPAN):
        uid = UID_BASE + (start - UID_BASE + n) % UID_SPAN
        if uid not in used:
            return uid
    raise SandboxError(_("no free uid for the sandbox"))


def _chown_tree(folder: Path, uid: int) -> None:
    os.chown(folder, uid, uid, follow_symlinks=False)
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            os.chown(os.path.join(root, name), uid, uid, follow_symlinks=False)


# -- the sandbox -------------------------------------------------------------------------


class Sandbox:
    """One submission's sandbox: its folder, identity, cgroup and network namespace.

    ``with Sandbox(folder, limits) as box:`` — programs start with :meth:`launch`
    (what :class:`~sockcap.check.programs.Program` needs), sockets are made in its
    network with ``with box.inside():``; leaving the block kills every process it holds
    and removes its cgroup and namespaces. ``folder`` is the work folder, mounted
    read-write at :data:`MOUNT_POINT`; ``own_folder=False`` leaves its ownership alone
    (``check`` on the user's own folder, which the sandbox may only read as root).
    """

    def __init__(self, folder: Path, limits: Limits | None = None, *,
                 own_folder: bool = True, readable: Sequence[tuple[Path, str]] = (),
                 at: str = MOUNT_POINT, network: bool = True,
                 note: Callable[[str], None] = lambda _t: None) -> None:
        self.folder = folder.resolve()
        self.at = at  # where the program sees the folder
        self.limits = limits or Limits()
        self.bwrap = bwrap_path()
        self.root = host_root()
        self.uid = _free_uid() if self.root else None
        if self.uid is not None and own_folder:
            _chown_tree(self.folder, self.uid)
        self.mounts = [(self.folder, at, True)]  # (folder, where it is seen, writable)
        self.mounts += [(source.resolve(), target, False) for source, target in readable]
        for source, _target, _w in self.mounts:
            if self.uid is not None and own_folder:
                _chown_tree(source, self.uid)
                os.chmod(source, 0o700)  # its user's alone
            _open_path(source)
        self.cgroup, missing = Cgroup.create(self.limits) if self.root else (None, "")
        missing = "" if self.cgroup is not None else missing or cgroup_missing(self.limits)
        self.netns = -1
        self._trace_root: Path | None = None
        self._tracing: str | None = None  # "" traced; a sentence: why not; None: not tried
        self.cpu_exceeded = threading.Event()
        self._watch_stop = threading.Event()
        self._watch: threading.Thread | None = None
        if self.cgroup is not None:
            self._watch = threading.Thread(target=self._watch_cpu, daemon=True,
                                           name="sockcap-sandbox-cpu")
            self._watch.start()
        try:
            if network:
                self.new_network()
            self._probe()
        except BaseException:
            self.close()  # nothing made so far is left behind
            raise
        if missing:
            note(missing)

    def _probe(self) -> None:
        """Start ``true`` in the sandbox once: where the kernel refuses bubblewrap its
        namespaces, the one line says so before any student's program is blamed."""
        import subprocess

        try:
            done = subprocess.run(self.argv(["true"]), preexec_fn=self.preexec(self.limits),
                                  cwd="/", env={"PATH": "/usr/bin:/bin"}, capture_output=True,
                                  timeout=30, check=False)
        except (OSError, subprocess.SubprocessError) as e:
            raise SandboxError(_("cannot start bubblewrap: {e}").format(e=e)) from None
        if done.returncode != 0:
            from sockcap.lab.namespaces import forbidden_message

            said = done.stderr.decode("utf-8", "replace").strip().splitlines()
            raise SandboxError(_("the sandbox cannot be made here ({said}); {why}").format(
                said=said[-1] if said else done.returncode, why=forbidden_message()))

    # network

    def new_network(self) -> None:
        """A fresh network namespace with only ``lo`` (up) for what starts from now on."""
        from sockcap.lab.namespaces import bring_up

        here = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            if _libc().unshare(CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise NamespaceError(_("cannot make a network namespace for the sandbox: "
                                       "{e}").format(e=os.strerror(err)))
            fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            bring_up("lo")
        finally:
            _setns(here)
            os.close(here)
        if self.netns >= 0:
            os.close(self.netns)
        self.netns = fd

    def use_network(self, fd: int) -> None:
        """The network namespace ``fd`` (a host of the lab's network, for UDP over a real
        link) for what starts from now on; the sandbox keeps a copy of the descriptor."""
        if self.netns >= 0:
            os.close(self.netns)
        self.netns = os.dup(fd)

    @contextlib.contextmanager
    def inside(self) -> Iterator[None]:
        """This thread in the sandbox's network for the block (sockets made here stay)."""
        if self.netns < 0:  # network=False: the host's
            yield
            return
        here = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        _setns(self.netns)
        try:
            yield
        finally:
            _setns(here)
            os.close(here)

    # programs

    def argv(self, argv: Sequence[str], cwd: str | None = None,
             binds: Sequence[tuple[Path, str]] = ()) -> list[str]:
        """bubblewrap's command line around ``argv``, started in ``cwd`` (a path as the
        program sees it; the folder by default); ``binds``: more folders, read-write, for
        this program alone (its trace folder)."""
        args = [self.bwrap, "--unshare-user", "--uid", str(INSIDE_UID), "--gid", str(INSIDE_UID),
                "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
                "--die-with-parent", "--new-session", "--hostname", "sandbox"]
        for d in SYSTEM_DIRS:
            if os.path.isdir(d):
                args += ["--ro-bind", d, d]
        for d in MERGED:
            if os.path.islink(d):
                args += ["--symlink", os.readlink(d), d]
            elif os.path.isdir(d):
                args += ["--ro-bind", d, d]
        args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--tmpfs", "/run"]
        for source, target, writable in self.mounts:
            args += ["--bind" if writable else "--ro-bind", str(source), target]
        for source, target in binds:
            args += ["--bind", str(source), target]
        args += ["--chdir", cwd or self.at,
                 "--clearenv", "--setenv", "PATH", "/usr/local/bin:/usr/bin:/bin",
                 "--setenv", "HOME", self.at, "--setenv", "LANG", "C.UTF-8",
                 "--setenv", "USER", "nobody", "--"]
        return args + list(argv)

    def preexec(self, limits: Limits) -> Callable[[], None]:
        """What the child does between fork and exec: join the network and the cgroup, set
        per-process limits, become the sandbox's user, die with sockcap."""
        prctl = _libc().prctl
        parent = os.getpid()
        netns, cgroup, uid = self.netns, self.cgroup, self.uid
        mb = 1 << 20
        settings = [(resource.RLIMIT_CPU, limits.cpu_seconds),
                    (resource.RLIMIT_FSIZE, limits.file_mb * mb),
                    (resource.RLIMIT_NOFILE, limits.open_files),
                    (resource.RLIMIT_CORE, 0)]
        if cgroup is None:  # without a cgroup, the memory limit is per process
            settings.append((resource.RLIMIT_AS, limits.memory_mb * mb))
        if uid is not None:  # its own uid: the process count is its own
            settings.append((resource.RLIMIT_NPROC, limits.processes))
        libc_setns = _libc().setns

        def preexec() -> None:
            if netns >= 0 and libc_setns(netns, CLONE_NEWNET) != 0:
                os._exit(126)
            if cgroup is not None:
                cgroup.join()
            for which, value in settings:
                resource.setrlimit(which, (value, value))
            if uid is not None:
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)
            prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # after setuid, which clears it
            if os.getppid() != parent:
                os._exit(1)

        return preexec

    # the programs' calls

    def tracing(self) -> str:
        """"" when programs' calls can be traced in this sandbox; else the one line that
        says why not (strace missing, or ptrace refused here). Tried once."""
        if self._tracing is None:
            self._tracing = self._try_tracing()
        return self._tracing

    def _try_tracing(self) -> str:
        import subprocess

        from sockcap.capture.calls import strace_path, traced_argv

        strace = strace_path()
        if strace is None:
            return _("strace is not installed (sudo apt-get install strace): the check goes "
                     "on without the programs' socket calls")
        folder = self.trace_folder()
        argv = traced_argv(["true"], f"{TRACE_MOUNT}/{TRACE_FILE}", strace)  # ptrace alone
        try:
            done = subprocess.run(self.argv(argv, binds=[(folder, TRACE_MOUNT)]),
                                  preexec_fn=self.preexec(self.limits), cwd="/",
                                  env={"PATH": "/usr/bin:/bin"}, capture_output=True,
                                  timeout=30, check=False)
        except (OSError, subprocess.SubprocessError) as e:
            done = None
            said = str(e)
        if done is not None and done.returncode == 0:
            return ""
        if done is not None:
            lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
            said = lines[-1] if lines else str(done.returncode)
        return _("strace cannot trace the programs in the sandbox ({said}): ptrace is not "
                 "allowed here (Yama's ptrace_scope above 1, or a seccomp filter); the check "
                 "goes on without their socket calls").format(said=said)

    def trace_folder(self) -> Path:
        """A new folder for one program's trace, its user's alone (bound at
        :data:`TRACE_MOUNT` for that program); removed with the sandbox."""
        if self._trace_root is None:
            self._trace_root = Path(tempfile.mkdtemp(prefix="sockcap-calls-",
                                                     dir=staging_dir()))
            os.chmod(self._trace_root, 0o711)  # the sandbox's user passes, does not list
        folder = Path(tempfile.mkdtemp(dir=self._trace_root))
        if self.uid is not None:
            os.chown(folder, self.uid, self.uid)
        return folder

    def kill(self) -> None:
        """Kill every process of the submission (the cgroup as a whole, where there is one)."""
        if self.cgroup is not None:
            self.cgroup.kill()

    def memory_killed(self) -> bool:
        return self.cgroup is not None and self.cgroup.memory_killed()

    def _watch_cpu(self) -> None:
        assert self.cgroup is not None
        limit = self.limits.cpu_seconds * 1_000_000_000
        while not self._watch_stop.wait(CPU_WATCH_SECONDS):
            if self.cgroup.cpu_ns() > limit:
                self.cpu_exceeded.set()
                self.cgroup.kill()

    def close(self) -> None:
        """Kill what is left, remove the cgroup, let the network go (idempotent)."""
        self._watch_stop.set()
        if self._watch is not None:
            self._watch.join(5.0)
        if self.cgroup is not None:
            self.cgroup.remove()
            self.cgroup = None
        if self.netns >= 0:
            os.close(self.netns)
            self.netns = -1
        if self._trace_root is not None:
            shutil.rmtree(self._trace_root, ignore_errors=True)
            self._trace_root = None

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _open_path(folder: Path) -> None:
    """Let the sandbox's user pass through the folder that holds ``folder`` when sockcap
    made it (a 0700 temporary folder): traverse, not list. bubblewrap runs as that user
    and finds the folder by its path."""
    parent = folder.parent
    with contextlib.suppress(OSError):
        st = parent.stat()
        if st.st_uid == os.geteuid() and parent.name.startswith("sockcap-"):
            os.chmod(parent, (st.st_mode & 0o7777) | 0o111)


def staging_dir() -> str:
    """Where sandboxes' folders are staged: the temporary folder (``TMPDIR``) when the
    sandbox's user can pass through every folder above it, else ``/tmp`` (bubblewrap,
    running as that user, finds a folder by its path)."""
    temp = Path(tempfile.gettempdir()).resolve()
    if host_root() and not all(p.stat().st_mode & 0o001 for p in (temp, *temp.parents)):
        return "/tmp"
    return str(temp)
