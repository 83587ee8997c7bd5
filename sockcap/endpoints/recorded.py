"""sockcap's own endpoints record their socket calls (``run --capture``): a socket class
that notes each call when it begins and when it returns, with its result or errno.

Why a socket subclass rather than strace on ourselves: it needs no strace and no ptrace
permission, it costs nothing when not used (the endpoints make plain sockets then), and
asyncio calls the socket's own methods (``recv_into``, ``send``, ``shutdown``, ``close``,
``accept``), so the calls recorded are the system calls the event loop really made, each
one, not the coroutines around them. A non-blocking call asyncio retries after
``EAGAIN`` is not recorded (the retry is); an asyncio ``connect()`` is one call from the
``connect`` that began it (``EINPROGRESS``) to the moment the loop found it done
(:meth:`RecordedSocket.connected`), as a blocking connect would be.

Times are the wall clock (``time.time_ns``), the clock the packets are stamped with.
"""

from __future__ import annotations

import errno as errnos
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from sockcap.analysis.calls import Arg, Call, CallKind
from sockcap.decode.strace import short_bytes

T = TypeVar("T")


class CallRecorder:
    """The calls of one run, in the order they returned (appended from any thread)."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._lock = threading.Lock()

    def add(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)


def _address(addr: Any) -> str:
    if isinstance(addr, tuple) and len(addr) >= 2:
        host = str(addr[0])
        return f"[{host}]:{addr[1]}" if ":" in host else f"{host}:{addr[1]}"
    return ""


def _errno_name(e: OSError) -> str:
    if isinstance(e, TimeoutError) and not e.errno:
        return "ETIMEDOUT"
    return errnos.errorcode.get(e.errno or 0, type(e).__name__)


class RecordedSocket(socket.socket):
    """A socket whose calls go to ``recorder`` with ``side`` ("client", "server")."""

    recorder: CallRecorder
    side: str

    @classmethod
    def wrap(cls, sock: socket.socket, recorder: CallRecorder, side: str) -> RecordedSocket:
        """The same kernel socket, now recorded (``sock`` is detached from it)."""
        new = cls(sock.family, sock.type, sock.proto, fileno=sock.detach())
        new.recorder, new.side = recorder, side
        new._connect_began = 0
        return new

    @classmethod
    def create(cls, recorder: CallRecorder, side: str, family: int = socket.AF_INET,
               type_: int = socket.SOCK_STREAM) -> RecordedSocket:
        """A new socket, its ``socket()`` call recorded."""
        began = time.time_ns()
        sock = cls(family, type_)
        sock.recorder, sock.side = recorder, side
        sock._connect_began = 0
        sock._note("socket", CallKind.OPEN, began, result=sock.fileno())
        return sock

    # -- the record --------------------------------------------------------------------

    def _ends(self) -> tuple[str, str]:
        try:
            local = _address(self.getsockname())
        except OSError:
            local = ""
        try:
            remote = _address(self.getpeername())
        except OSError:
            remote = ""
        return (local if not local.endswith(":0") else ""), remote

    def _note(self, name: str, kind: CallKind, began: int, *, result: int | None = 0,
              nbytes: int = -1, error: str = "", data: bytes = b"", text: str = "",
              args: tuple[Arg, ...] = (), remote: str = "", fd: int = -1) -> None:
        local, peer = self._ends() if self.fileno() >= 0 else ("", "")
        proto = "UDP" if self.type == socket.SOCK_DGRAM else "TCP"
        self.recorder.add(Call(began, self.side, text or f"{name}()", nbytes, error,
                               time.time_ns(), kind, name, 0, fd if fd >= 0 else self.fileno(),
                               result, args, local, remote or peer, proto, data))

    def _call(self, name: str, kind: CallKind, run: Callable[[], T],
              text: str = "", args: tuple[Arg, ...] = ()) -> T:
        began = time.time_ns()
        try:
            value = run()
        except BlockingIOError:
            raise  # asyncio waits and calls again: the call that succeeds is recorded
        except OSError as e:
            self._note(name, kind, began, result=-1, error=_errno_name(e), text=text, args=args)
            raise
        result = value if isinstance(value, int) else 0
        self._note(name, kind, began, result=result, text=text, args=args)
        return value

    # -- the calls ---------------------------------------------------------------------

    def bind(self, address: Any) -> None:
        where = _address(address)
        self._call("bind", CallKind.BIND, lambda: super(RecordedSocket, self).bind(address),
                   f"bind({where})", (("address", where),))

    def listen(self, backlog: int = socket.SOMAXCONN) -> None:
        self._call("listen", CallKind.LISTEN, lambda: super(RecordedSocket, self).listen(backlog),
                   f"listen({backlog})", (("backlog", backlog),))

    def accept(self) -> tuple[socket.socket, Any]:
        began = time.time_ns()
        try:
            fd, addr = self._accept()  # type: ignore[attr-defined]
        except BlockingIOError:
            raise
        except OSError as e:
            self._note("accept", CallKind.ACCEPT, began, result=-1, error=_errno_name(e))
            raise
        conn = RecordedSocket(self.family, self.type, self.proto, fileno=fd)
        conn.recorder, conn.side, conn._connect_began = self.recorder, self.side, 0
        if socket.getdefaulttimeout() is None and self.gettimeout():
            conn.setblocking(True)
        conn._note("accept", CallKind.ACCEPT, began, result=fd)
        return conn, addr

    def connect(self, address: Any) -> None:
        where = _address(address)
        began = time.time_ns()
        try:
            super().connect(address)
        except BlockingIOError:
            self._connect_began = began  # asyncio: done when connected() is called
            self._connect_to = where
            raise
        except OSError as e:
            self._note("connect", CallKind.CONNECT, began, result=-1, error=_errno_name(e),
                       text=f"connect({where})", args=(("address", where),), remote=where)
            raise
        self._note("connect", CallKind.CONNECT, began, text=f"connect({where})",
                   args=(("address", where),), remote=where)

    def connected(self, error: OSError | None = None) -> None:
        """An asyncio connect is over (``error``: how it failed): record it whole."""
        if not self._connect_began:
            return
        where = self._connect_to
        self._note("connect", CallKind.CONNECT, self._connect_began,
                   result=-1 if error else 0, error=_errno_name(error) if error else "",
                   text=f"connect({where})", args=(("address", where),), remote=where)
        self._connect_began = 0

    def send(self, data: Any, flags: int = 0) -> int:
        chunk = bytes(data)
        began = time.time_ns()
        try:
            n = super().send(data, flags)
        except BlockingIOError:
            raise
        except OSError as e:
            self._note("send", CallKind.SEND, began, result=-1, error=_errno_name(e),
                       text=f"send({short_bytes(chunk)})")
            raise
        self._note("send", CallKind.SEND, began, result=n, nbytes=n, data=chunk[:n],
                   text=f"send({short_bytes(chunk)})")
        return n

    def sendall(self, data: Any, flags: int = 0) -> None:
        chunk = bytes(data)
        began = time.time_ns()
        try:
            super().sendall(data, flags)
        except OSError as e:
            self._note("sendall", CallKind.SEND, began, result=-1, error=_errno_name(e),
                       text=f"sendall({short_bytes(chunk)})")
            raise
        self._note("sendall", CallKind.SEND, began, result=len(chunk), nbytes=len(chunk),
                   data=chunk, text=f"sendall({short_bytes(chunk)})")

    def sendto(self, data: Any, *rest: Any) -> int:
        chunk = bytes(data)
        began = time.time_ns()
        try:
            n: int = super().sendto(data, *rest)
        except BlockingIOError:
            raise
        except OSError as e:
            self._note("sendto", CallKind.SEND, began, result=-1, error=_errno_name(e),
                       text=f"sendto({short_bytes(chunk)})")
            raise
        peer = _address(rest[-1]) if rest else ""
        self._note("sendto", CallKind.SEND, began, result=n, nbytes=n, data=chunk[:n],
                   text=f"sendto({short_bytes(chunk)})", remote=peer)
        return n

    def recv(self, size: int, flags: int = 0) -> bytes:
        began = time.time_ns()
        try:
            data = super().recv(size, flags)
        except BlockingIOError:
            raise
        except OSError as e:
            self._note("recv", CallKind.RECV, began, result=-1, error=_errno_name(e),
                       text="recv()")
            raise
        self._note("recv", CallKind.RECV, began, result=len(data), nbytes=len(data),
                   data=data, text="recv()")
        return data

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        began = time.time_ns()
        try:
            n = super().recv_into(buffer, nbytes, flags)
        except BlockingIOError:
            raise
        except OSError as e:
            self._note("recv_into", CallKind.RECV, began, result=-1, error=_errno_name(e),
                       text="recv_into()")
            raise
        self._note("recv_into", CallKind.RECV, began, result=n, nbytes=n,
                   data=bytes(memoryview(buffer)[:n]), text="recv_into()")
        return n

    def recvfrom(self, size: int, flags: int = 0) -> tuple[bytes, Any]:
        began = time.time_ns()
        try:
            data, addr = super().recvfrom(size, flags)
        except BlockingIOError:
            raise
        except OSError as e:
            self._note("recvfrom", CallKind.RECV, began, result=-1, error=_errno_name(e),
                       text="recvfrom()")
            raise
        self._note("recvfrom", CallKind.RECV, began, result=len(data), nbytes=len(data),
                   data=data, text="recvfrom()", remote=_address(addr))
        return data, addr

    def shutdown(self, how: int) -> None:
        name = {socket.SHUT_RD: "SHUT_RD", socket.SHUT_WR: "SHUT_WR"}.get(how, "SHUT_RDWR")
        self._call("shutdown", CallKind.SHUTDOWN, lambda: super(RecordedSocket, self).shutdown(how),
                   f"shutdown({name})", (("how", name),))

    def close(self) -> None:
        fd = self.fileno()
        if fd < 0 or getattr(self, "_io_refs", 0) > 0 or not hasattr(self, "recorder"):
            super().close()
            return
        began = time.time_ns()
        local, remote = self._ends()
        super().close()
        proto = "UDP" if self.type == socket.SOCK_DGRAM else "TCP"
        self.recorder.add(Call(began, self.side, "close()", -1, "", time.time_ns(),
                               CallKind.CLOSE, "close", 0, fd, 0, (), local, remote, proto))
