"""UDP as it really is: the check's UDP scenarios over the lab's network.

The lab's two hosts and the link between them (:func:`sockcap.lab.wire.build`: network
namespaces, ``eth0`` with an MTU of 1500 on each host, a bridge in the middle that can
drop every Nth datagram each way, deterministically) are made for one scenario and gone
after it. The student's program runs in its sandbox on one host (the sandbox joins that
host's namespace, :meth:`~sockcap.check.sandbox.Sandbox.use_network`); sockcap's side
is on the other; the capture is on the student's host's ``eth0``, where the program's
datagrams leave and arrive (so a datagram lost on the link is seen as sent and never
answered). Loopback cannot show any of this: its MTU is 64 KiB (no fragments) and it
loses nothing.

- :attr:`Scenario.UDP_CLIENTS`: two clients on the client host take turns; each reply
  must go to the client that asked (a server that keeps the first address, or answers
  only its first client, is named).
- :attr:`Scenario.UDP_LARGE`: one datagram of :data:`LARGE_DATAGRAM` bytes, three IP
  fragments on the wire; the reply must be as long (a ``recvfrom`` buffer that is too
  small cuts it).
- :attr:`Scenario.UDP_CLIENT_LOSS`: the student's client, fed its messages on stdin,
  against sockcap's echo server, over a link that drops every :data:`DROP_EVERY`-th
  datagram each way: a client with no timeout waits for ever.
- :attr:`Scenario.UDP_CLIENT_DUPLICATES`: sockcap's server answers each message after
  the first with a late duplicate of the previous reply first (what a link that duplicates
  and delays delivers), and holds the real reply until the client sends again (or
  :data:`HOLD_SECONDS` pass). A client that checks what it got times out and sends the
  message again, and then gets its reply; a client that takes any datagram for its reply
  sends the next message before its reply came. Why sockcap's server and not the lab's
  delay line (whose duplicate follows the original within microseconds): so the outcome
  rests on what the client does with the data, never on how fast it runs.
- :attr:`Scenario.UDP_CLIENT_REORDER`: the student's client against sockcap's echo server
  over the lab's delay line (:mod:`sockcap.lab.forwarder`), which holds each reply to the
  client for :data:`REORDER_DELAY_MS` and lets every second one go at once: when two
  replies are in flight, the second overtakes the first. Deterministic (every second
  reply, not a percentage), and generous: the second reply needs only to reach the link
  within half a second of the first, which a client that sends its messages one after
  the other without waiting does by far. A client that waits for each reply before it
  sends the next has one in flight at a time, and nothing overtakes. Why only the
  client: an echo server answers each datagram on its own, whatever order they come in,
  so reordering the requests shows nothing of it that the other scenarios do not.

The thread that makes the network returns to its own namespace at once; it steps into a
host only to make sockets or read ``/proc``, as the check does with its sandbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import os
import select
import socket
import threading
import time
from collections.abc import Iterator

from sockcap.analysis.check.codes import Scenario
from sockcap.analysis.shape import LinkOptions
from sockcap.endpoints.udp_client import udp_echoes
from sockcap.lab.namespaces import Namespaces
from sockcap.lab.wire import HOST_IFACE, NAMESPACES, SERVER_ADDRESS, Wire, build

CLONE_NEWNET = 0x40000000
DROP_EVERY = 3  # the link drops every third datagram each way in the client's scenario
LARGE_DATAGRAM = 4000  # bytes: more than an MTU of 1500, so three fragments
REPLY_SECONDS = 1.0  # how long sockcap's clients wait for each reply
ROUNDS = 3  # datagrams each of the two clients sends
Peer = tuple[str, int]
HOLD_SECONDS = 2.0  # the late-duplicate server holds a reply until the client sends again
# The link of each scenario: lossless (the bridge), every third datagram dropped each way
# (the bridge's nftables counters), or every second reply overtaking the one before it (the
# delay line): deterministic, so the findings do not depend on chance.
REORDER_DELAY_MS = 500.0  # how long a reply that does not overtake is held on the link
LINKS = {Scenario.UDP_CLIENT_LOSS: LinkOptions(drop_every=DROP_EVERY),
         Scenario.UDP_CLIENT_REORDER: LinkOptions(delay_ms=REORDER_DELAY_MS, reorder_every=2,
                                                  direction="to-client")}


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


@contextlib.contextmanager
def inside(fd: int) -> Iterator[None]:
    """The calling thread in network namespace ``fd`` for the block, then back."""
    here = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        _setns(fd)
        try:
            yield
        finally:
            _setns(here)
    finally:
        os.close(here)


@contextlib.contextmanager
def lab_hosts(link: LinkOptions) -> Iterator[Namespaces]:
    """The lab's hosts and link, made now; the thread stays where it was. Gone after the
    block: the delay line (if the link needs one) stopped by its PID, the namespaces' last
    descriptors closed (nothing else holds them)."""
    here = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    ns: Namespaces | None = None
    wire: Wire | None = None
    try:
        ns = Namespaces(list(NAMESPACES))
        wire = build(ns, link)
    except BaseException:
        if ns is not None:
            ns.close()
        raise
    finally:
        _setns(here)
        os.close(here)
    try:
        yield ns
    finally:
        wire.stop()
        ns.close()


def two_clients(ns: Namespaces, port: int) -> None:
    """Two clients on the client host take turns, ROUNDS datagrams each, each waiting
    (bounded) for a reply on either socket, so a reply sent to the wrong one is read too."""
    with inside(ns.fds["client"]):
        socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2)]
        for s in socks:
            s.bind(("0.0.0.0", 0))
    try:
        for n in range(ROUNDS):
            for k, s in enumerate(socks):
                s.sendto(f"client {k + 1}, datagram {n + 1}\n".encode(), (SERVER_ADDRESS, port))
                _read_replies(socks, REPLY_SECONDS)
    finally:
        for s in socks:
            s.close()


def large_datagram(ns: Namespaces, port: int) -> None:
    """One datagram of :data:`LARGE_DATAGRAM` bytes from the client host, by sockcap's
    UDP echo client (unconnected: a reply from anywhere is read), its reply awaited."""
    with inside(ns.fds["client"]):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    data = bytes(48 + (i % 64) for i in range(LARGE_DATAGRAM - 1)) + b"\n"
    asyncio.run(udp_echoes(SERVER_ADDRESS, port, [data], timeout=2 * REPLY_SECONDS, sock=s,
                           connect=False))


def _read_replies(socks: list[socket.socket], seconds: float) -> int:
    """Read what arrives on any socket until one datagram came (or the time is up)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        readable, _, _ = select.select(socks, [], [], max(0.0, deadline - time.monotonic()))
        for s in readable:
            s.recv(1 << 16)
        if readable:
            return len(readable)
    return 0


class UdpEchoServer:
    """sockcap's UDP echo server on the server host (the client's scenarios): every
    datagram answered to its sender, until :meth:`close`; with ``late_duplicates``, as
    described for :attr:`Scenario.UDP_CLIENT_DUPLICATES`."""

    def __init__(self, ns: Namespaces, port: int, late_duplicates: bool = False) -> None:
        with inside(ns.fds["server"]):
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind(("0.0.0.0", port))
        self.late_duplicates = late_duplicates
        self._last: tuple[bytes, Peer] | None = None  # the last request answered or held
        self._held: tuple[bytes, Peer, float] | None = None  # a reply, its peer, until when
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True,
                                        name="sockcap-check-udp-server")
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            readable, _, _ = select.select([self.sock], [], [], 0.05)
            with contextlib.suppress(OSError):
                if readable:
                    data, peer = self.sock.recvfrom(1 << 16)
                    self._answer(data, peer)
                elif self._held is not None and time.monotonic() >= self._held[2]:
                    self._release()

    def _answer(self, data: bytes, peer: Peer) -> None:
        if not self.late_duplicates:
            self.sock.sendto(data, peer)
            return
        if self._held is not None:  # the client sent again: the reply it waits for
            self._release()
            if self._last is not None and data == self._last[0]:
                return
        elif self._last is not None and data == self._last[0]:  # sent again: answered again
            self.sock.sendto(data, peer)
            return
        previous, self._last = self._last, (data, peer)
        if previous is None:
            self.sock.sendto(data, peer)
            return
        self.sock.sendto(previous[0], peer)  # a late duplicate of the previous reply
        self._held = (data, peer, time.monotonic() + HOLD_SECONDS)

    def _release(self) -> None:
        assert self._held is not None
        data, peer, _until = self._held
        self._held = None
        self.sock.sendto(data, peer)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5.0)
        self.sock.close()


__all__ = ["HOST_IFACE", "LINKS", "SERVER_ADDRESS", "LinkOptions", "UdpEchoServer", "inside", "lab_hosts",
           "large_datagram", "two_clients"]
