"""The record of one socket call a program made: who, when it began and returned, what,
and what it returned. Written by the edges (sockcap's own endpoints record theirs; any
other program's come from strace through :mod:`sockcap.decode.strace`), read by the
views (pure).

A call is tied to the wire by :func:`sockcap.analysis.calltie.tie_calls`, which fills
``stream`` and ``packets``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

Arg = tuple[str, "str | int"]


class CallKind(enum.Enum):
    """What a call does to the connection, which decides where the timeline shows it and
    which packets it is tied to (the value is the stable JSON string)."""

    OPEN = "open"  # socket()
    BIND = "bind"
    LISTEN = "listen"
    ACCEPT = "accept"  # accept(), accept4(): waits for a finished handshake
    CONNECT = "connect"  # puts a SYN on the wire, waits for the SYN-ACK
    SEND = "send"  # write, send, sendto, sendmsg, writev, sendmmsg
    RECV = "recv"  # read, recv, recvfrom, recvmsg, readv, recvmmsg
    SHUTDOWN = "shutdown"
    CLOSE = "close"
    WAIT = "wait"  # poll, select, epoll_wait: waiting for a socket to be ready
    OPTION = "option"  # setsockopt, getsockopt


WAITING_KINDS = frozenset((CallKind.ACCEPT, CallKind.CONNECT, CallKind.RECV, CallKind.WAIT))
"""Kinds that wait for the peer: shown as begun … returned when packets came meanwhile."""


@dataclass(frozen=True, slots=True)
class Call:
    """One socket call: who made it, when (ns), what, and what it returned."""

    ts_ns: int  # when it began; monotonic in a log, the capture's wall clock in a view
    side: str  # "client" or "server" (or the label of a traced program)
    call: str  # what the timeline writes: "send(b'hello')", "connect(127.0.0.1:5001)"
    nbytes: int = -1  # the byte count it returned (-1: none)
    error: str = ""  # the errno it failed with ("ECONNREFUSED"; "": it succeeded)
    end_ns: int = -1  # when it returned (-1: not known, or no time to speak of)
    kind: CallKind | None = None  # None: a call named only by its text (a scenario's note)
    syscall: str = ""  # the system call's name as strace writes it ("recvfrom")
    pid: int = 0  # the process (thread) that made it; 0: sockcap's own
    fd: int = -1  # the socket's descriptor (-1: not known)
    result: int | None = None  # the return value as the kernel gave it (None: not known)
    args: tuple[Arg, ...] = ()  # a few arguments by name: ("port", 5001), ("how", "SHUT_WR")
    local: str = ""  # the socket's own address "127.0.0.1:40000" ("": not known)
    remote: str = ""  # its peer's address ("": not known, or not connected)
    proto: str = ""  # "TCP" or "UDP" ("": not known)
    data: bytes = b""  # the bytes a send or recv carried (as many as were recorded)
    stream: int = -1  # the conversation it belongs to (tie_calls; -1: none found)
    packets: tuple[int, ...] = ()  # the packets it caused or that caused it (tie_calls)
    repeat: int = 1  # the same call, same result, made this many times in a row

    @property
    def returned_ns(self) -> int:
        """When it returned: ``end_ns``, else when it began."""
        return self.end_ns if self.end_ns >= 0 else self.ts_ns
