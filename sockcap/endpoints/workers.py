"""The worker processes of ``sockcap server --workers N`` (``run_server(workers=N)``), as
nginx runs them: one event loop uses one CPU, so on a machine with several, N processes
each run the same :class:`~sockcap.endpoints.echo.EchoServer` on the same port. This
module is the supervisor; it knows of the server only the function each worker runs
(given its socket and its log label, serve until stopped). How they share the port, and
why:

* The parent binds N listening sockets with ``SO_REUSEPORT`` *before* forking, then
  each worker keeps one and the parent closes its copies. The kernel hashes each new
  connection (each UDP client address, for UDP) to one of the N sockets, so clients are
  spread evenly and each stays with its worker. The simpler alternative, one listening
  socket inherited by every worker, spreads badly under asyncio: every worker's epoll
  wakes for each new connection and asyncio then accepts in a loop until the queue is
  empty, so whichever worker wakes first takes most of a burst (measured, 100
  connections made at once on two workers: 91/9 to 72/28 with one shared socket,
  58/42 to 49/51 with SO_REUSEPORT).
* Before binding the N sockets the parent binds one probe socket *without*
  ``SO_REUSEPORT`` (and closes it): that fails, with the same one-line errors as a
  single server, when anything already holds the port, including another sockcap
  server with workers (``SO_REUSEPORT`` sockets of the same user would otherwise
  silently join its group and take half of its clients).
* Binding everything in the parent means a worker never fails to bind, no worker
  races another, ``--port 0`` works, and the port is ready when the parent says so.
* Workers die with the parent (``PR_SET_PDEATHSIG``, Linux), even when it is killed
  with SIGKILL; on Ctrl-C or SIGTERM the parent sends SIGTERM to each worker by its
  PID, waits for them (SIGKILL after 10 s) and returns. A worker that dies on its own
  is logged; its socket closes with it, so the kernel sends new clients to the rest.
* ``max_clients`` applies to each worker. Every log line says which worker (PID)
  wrote it, and workers write whole lines (line-buffered stdout) so their lines never
  cut into each other.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import os
import signal
import socket
import sys
import time
from collections.abc import Callable

from sockcap.endpoints.address import bind_error, bound, format_address, udp_socket
from sockcap.endpoints.echo import BACKLOG, Log, stamped
from sockcap.errors import EndpointError, SockcapError
from sockcap.i18n import _

Serve = Callable[[socket.socket, str], int]  # (socket, log label) -> the signal that stopped it

WORKER_GRACE = 10.0  # seconds the parent waits for stopped workers before SIGKILL
PR_SET_PDEATHSIG = 1  # prctl(2) option: signal this process when its parent dies


def listen_shared(host: str, port: int, udp: bool, count: int) -> list[socket.socket]:
    """``count`` sockets on ``host:port`` in one SO_REUSEPORT group, TCP ones listening.

    A probe bound without SO_REUSEPORT first makes "port in use" an error even when the
    holder uses SO_REUSEPORT itself. Raises EndpointError with bind_error's one line.
    """
    socks: list[socket.socket] = []
    try:
        bound(_socket(host, udp, reuseport=False), host, port).close()
        for _ in range(count):
            socks.append(bound(_socket(host, udp, reuseport=True), host, port))
            port = socks[0].getsockname()[1]  # port 0: the rest join the first one's
            if not udp:
                socks[-1].listen(BACKLOG)
    except OSError as err:
        for sock in socks:
            sock.close()
        raise bind_error(err, host, port) from None
    return socks


def _socket(host: str, udp: bool, *, reuseport: bool) -> socket.socket:
    """A socket set up as asyncio sets up a server's (SO_REUSEADDR and IPV6_V6ONLY for
    TCP), plus SO_REUSEPORT when asked."""
    if udp:
        sock = udp_socket(host)
    else:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    if reuseport:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    return sock


STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}
PARENT_SIGNALS = {*STOP_SIGNALS, signal.SIGCHLD}


def run_workers(serve: Serve, socks: list[socket.socket], log: Log | None) -> int:
    """Fork one worker per socket, wait until Ctrl-C or SIGTERM, stop them all, return
    the signal's number.

    The parent blocks its signals and takes them one at a time with sigwaitinfo rather
    than from handlers: a handler could interrupt it between reaping a worker and
    noting it, and it might then signal a PID the system has already reused.
    """
    workers = _Workers(log)
    address = format_address(*socks[0].getsockname()[:2])
    kind = "UDP" if socks[0].type == socket.SOCK_DGRAM else "TCP"
    workers.say(_("listening on {address} ({kind}) with {socks} workers").format(address=address, kind=kind, socks=len(socks)))
    signal.pthread_sigmask(signal.SIG_BLOCK, PARENT_SIGNALS)
    try:
        for sock in socks:
            workers.fork(serve, sock, socks)
        for sock in socks:
            sock.close()  # a worker's socket must close when the worker dies
        workers.say(_("workers {alive}; Ctrl-C stops").format(alive=', '.join(map(str, workers.alive))))
        return workers.wait_for_stop()
    finally:
        for sock in socks:
            sock.close()
        workers.stop()
        while signal.sigtimedwait(PARENT_SIGNALS, 0) is not None:
            pass  # a second Ctrl-C during the stop was already answered
        signal.pthread_sigmask(signal.SIG_UNBLOCK, PARENT_SIGNALS)


class _Workers:
    """The worker processes, seen from the parent (which blocks PARENT_SIGNALS)."""

    def __init__(self, log: Log | None) -> None:
        self.log = log
        self.alive: list[int] = []

    def say(self, line: str) -> None:
        if self.log is not None:
            self.log(stamped(line))

    def fork(self, serve: Serve, sock: socket.socket, socks: list[socket.socket]) -> None:
        """Start a worker serving on ``sock``, one of ``socks`` (the others it closes)."""
        sys.stdout.flush()  # or the child would print the parent's buffered lines again
        sys.stderr.flush()
        parent = os.getpid()
        pid = os.fork()
        if pid:
            self.alive.append(pid)
            return
        _worker_main(serve, sock, socks, parent)

    def wait_for_stop(self) -> int:
        """Return the signal's number on Ctrl-C or SIGTERM; reap workers that exit
        meanwhile, and raise EndpointError if none is left."""
        count = len(self.alive)
        while (signum := signal.sigwaitinfo(PARENT_SIGNALS).si_signo) == signal.SIGCHLD:
            self.reap(log=True)
            if not self.alive:
                raise EndpointError(_("all {count} workers exited").format(count=count))
        return signum

    def reap(self, *, log: bool) -> None:
        """Forget the workers that have exited (without waiting for the others)."""
        for pid in list(self.alive):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done == pid:
                self.alive.remove(pid)
                if log:
                    code = os.waitstatus_to_exitcode(status)
                    self.say(_("worker {pid} exited ({code}); {alive} left").format(pid=pid, code=_exit_words(code), alive=len(self.alive)))

    def stop(self) -> None:
        """SIGTERM every live worker, reap them all (SIGKILL after WORKER_GRACE s)."""
        if not self.alive:
            return
        self.say(_("stopping workers {alive}").format(alive=', '.join(map(str, self.alive))))
        for pid in self.alive:
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + WORKER_GRACE
        while self.alive:
            signal.sigtimedwait({signal.SIGCHLD}, 0.1)
            self.reap(log=False)
            if self.alive and time.monotonic() > deadline:
                for pid in self.alive:
                    os.kill(pid, signal.SIGKILL)
                deadline = float("inf")
        self.say("stopped")


def _exit_words(code: int) -> str:
    return f"killed by signal {-code}" if code < 0 else f"exit code {code}"


def _worker_main(
    serve: Serve, sock: socket.socket, socks: list[socket.socket], parent: int
) -> None:
    """The whole life of a forked worker: it ends with os._exit, never returns."""
    code = 1
    try:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, PARENT_SIGNALS)
        _die_with_parent(parent)
        if isinstance(sys.stdout, io.TextIOWrapper):
            sys.stdout.reconfigure(line_buffering=True)  # one write per line
        for other in socks:
            if other is not sock:
                other.close()
        serve(sock, f"worker {os.getpid()}: ")
        code = 0
    except SockcapError as err:
        sys.stderr.write(f"sockcap: worker {os.getpid()}: {err}\n")
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _die_with_parent(parent: int) -> None:
    """Ask Linux to send SIGTERM when the parent dies; exit now if it already has."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(0)
