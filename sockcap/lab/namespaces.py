"""Private network namespaces that die with sockcap, for any user who may make them.

Why in-process ``unshare`` and no ``ip netns add``: a namespace made by ``unshare(2)``
lives as long as something holds it — here the sockcap process itself and the descriptors
it keeps of each namespace (``/proc/self/ns/net``). Nothing is bind-mounted under
``/run/netns``, so when sockcap exits for any reason (SIGKILL included) the kernel frees
the namespaces, and with them every interface, address and nftables rule made inside.
The host's own interfaces and ruleset are never touched: they are in a namespace
sockcap has left.

Without root, the process first makes a user namespace in which it is root (its uid and
gid mapped to 0, as ``unshare -Urn`` does), which gives it the capabilities it needs over
the network namespaces it makes from there: packet sockets, veth pairs, bridges,
nftables. Files it creates still belong to the user on disk. As real root only network
namespaces are made: a user namespace would cost root its rights over files owned by
others (the ``captures/`` folder of the user who ran sudo).

Python 3.11 has no ``os.unshare``/``os.setns``: they are called through libc. Both need a
single-threaded process for the user namespace, which ``sockcap lab`` and ``run`` are
when they call :func:`enter_private` (before any event loop or capture thread starts).

The network namespace of the calling thread decides where a socket is made (and where
``ip``, ``nft`` and ``tc`` started from it act); a socket stays in its namespace after the
thread moves on. :meth:`Namespaces.inside` switches the thread with ``setns(2)``.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import fcntl
import os
import socket
import struct
from collections.abc import Iterator
from pathlib import Path

from sockcap.errors import NamespaceError
from sockcap.i18n import _

CLONE_NEWNET = 0x40000000
CLONE_NEWUSER = 0x10000000
SIOCGIFFLAGS, SIOCSIFFLAGS = 0x8913, 0x8914
IFF_UP = 0x1

# The settings that forbid unprivileged user namespaces, with the value that does.
_RESTRICTIONS = (
    ("kernel.apparmor_restrict_unprivileged_userns", "1"),
    ("kernel.unprivileged_userns_clone", "0"),
    ("user.max_user_namespaces", "0"),
)


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _unshare(flags: int) -> None:
    if _libc().unshare(flags) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _setns(fd: int) -> None:
    if _libc().setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def forbidden_message(proc: Path = Path("/proc/sys")) -> str:
    """The one line said when the kernel refuses an unprivileged user namespace: which
    setting forbids it (or the candidates when none is seen), and the alternatives."""
    found = [f"{name}={value}" for name, value in _RESTRICTIONS
             if _sysctl(proc, name) == value]
    settings = ", ".join(found) if found else _("one of {names}").format(
        names=", ".join(name for name, _value in _RESTRICTIONS))
    return _("this kernel does not let users make their own network namespace ({settings}); "
             "ask the administrator to allow it, or run sockcap with sudo; to capture "
             "without a namespace: CAP_NET_RAW (setcap) or dumpcap's group "
             "(wireshark)").format(settings=settings)


def _sysctl(proc: Path, name: str) -> str | None:
    try:
        return (proc / name.replace(".", "/")).read_text().strip()
    except OSError:
        return None


def _map_self(uid: int, gid: int) -> None:
    """Map this user to root in the new user namespace (``unshare -Ur``)."""
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"0 {uid} 1\n")
    _write("/proc/self/gid_map", f"0 {gid} 1\n")


def enter_private() -> int:
    """Move this process into a new network namespace (and, without root, a new user
    namespace first); returns a descriptor of the new network namespace.

    Raises :class:`NamespaceError` (one line, exit 2) where the kernel forbids it.
    """
    uid, gid = os.geteuid(), os.getegid()
    try:
        if uid == 0:
            _unshare(CLONE_NEWNET)
        else:
            _unshare(CLONE_NEWUSER | CLONE_NEWNET)
            _map_self(uid, gid)
            for name in ("SUDO_UID", "SUDO_GID"):  # root in name only: give no file away
                os.environ.pop(name, None)
        return os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        if e.errno in (errno.EPERM, errno.EACCES, errno.ENOSPC, errno.EINVAL, errno.EUSERS):
            raise NamespaceError(forbidden_message()) from e
        raise


def new_netns() -> int:
    """A further network namespace (the thread moves into it); its descriptor."""
    try:
        _unshare(CLONE_NEWNET)
    except OSError as e:
        raise NamespaceError(forbidden_message()) from e
    return os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)


def bring_up(iface: str = "lo") -> None:
    """Set an interface up in the thread's network namespace (``ip link set lo up``)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("16sH22x", iface.encode(), 0)
        flags = struct.unpack_from("16sH", fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, req))[1]
        fcntl.ioctl(s.fileno(), SIOCSIFFLAGS, struct.pack("16sH22x", iface.encode(),
                                                           flags | IFF_UP))


class Namespaces:
    """Named network namespaces made by this process, and the thread's way between them.

    ``Namespaces(["link", "server", "client"])`` leaves the thread in the first; each is
    freed when the process exits (or :meth:`close` drops the descriptors and nothing else
    holds it).
    """

    def __init__(self, names: list[str]) -> None:
        self.fds: dict[str, int] = {}
        self.current = ""
        for i, name in enumerate(names):
            self.fds[name] = enter_private() if i == 0 else new_netns()
            self.current = name
        self.enter(names[0])

    def enter(self, name: str) -> None:
        if name != self.current:
            _setns(self.fds[name])
            self.current = name

    @contextlib.contextmanager
    def inside(self, name: str) -> Iterator[None]:
        """The thread in namespace ``name`` for the block, then back where it was."""
        before = self.current
        self.enter(name)
        try:
            yield
        finally:
            self.enter(before)

    def path(self, name: str) -> str:
        """A path naming the namespace for a child process (``ip ... netns PATH``)."""
        return f"/proc/{os.getpid()}/fd/{self.fds[name]}"

    def close(self) -> None:
        for fd in self.fds.values():
            os.close(fd)
        self.fds.clear()
