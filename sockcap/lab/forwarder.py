"""The lab's link as a program: a delay line between the link's two ports.

Why not ``tc netem``: many kernels (WSL's, this project's CI machines, cloud images) are
built without ``sch_netem``, and the lab is the one place where delay and rate must work
for every student. ``tbf`` alone gives a rate but no delay, and nftables can drop but not
hold a packet. So the link namespace runs its own delay line: two ``AF_PACKET`` sockets,
one on each of the link's ports (``to-server``, ``to-client``), with no bridge between
them; a frame read on one port is written to the other when its time comes. The lab's
rates are small (a few thousand frames a second at most), well within what one process
reads and writes, and this one program gives the same link on every kernel — with netem
where it exists the results would change with the kernel, and netem cannot say which of
the packets it dropped overflowed its queue, which the verdict names.

What a frame meets, in order, each direction on its own (:class:`Shape`): the drops
(``drop_every``, ``loss``), the queue (``queue`` frames at most wait in it: tail drop, as
``pfifo``), the rate (each frame leaves when the one before it has been sent at ``rate``
bits per second, as a serial line or ``tbf``), then the delay (``delay`` ± ``jitter``
milliseconds: with jitter two frames can swap, as with netem), ``reorder`` (a chosen
frame skips the delay and overtakes the frames in flight; with no delay it waits for the
next frame and goes after it), ``duplicate`` (sent twice) and ``corrupt`` (one bit of the
IP payload flipped, so the receiver's checksum fails and it drops the frame). Only IPv4
TCP and UDP frames (fragments included) are dropped, reordered, duplicated or corrupted:
ARP keeps working. Delay and rate apply to every frame.

How true: a frame never leaves early; it leaves late by what the scheduler adds before the
process wakes (on an idle machine a tenth of a millisecond; the round trip is the delay
asked within 1.3 % at 20 and 100 ms, ``bench/lab_bench.py``). As root the process raises
its priority a little (``nice -5``) so that a loaded machine stretches the delay less.

The decisions (:class:`sockcap.analysis.shape.DelayLine`) are pure: a frame and the time
in, the frames to send and when out; the edge (:func:`start`) forks the process that reads, waits and writes. It
stops when the lab closes the control pipe, and reports its counts as one JSON line; it
also dies with sockcap (``PR_SET_PDEATHSIG``) and is killed by PID after a time limit.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import heapq
import json
import os
import random
import select
import signal
import socket
import time
from dataclasses import asdict

from sockcap.analysis.shape import DIRECTIONS, Counts, DelayLine, Shape

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
PACKET_IGNORE_OUTGOING = 23  # Linux 4.20
SOL_PACKET = 263
PR_SET_PDEATHSIG = 1
FRAME_BYTES = 65536
STOP_SECONDS = 5.0
NICE = -5  # the delay line's priority where allowed (root; not in a user namespace)


class Forwarder:
    """The running delay line (a child process); :meth:`stop` ends it and returns the
    counts of each direction."""

    def __init__(self, pid: int, control: int, report: int) -> None:
        self.pid, self.control, self.report = pid, control, report

    def stop(self) -> dict[str, Counts]:
        os.close(self.control)  # end of file: the forwarder writes its counts and exits
        text = b""
        deadline = time.monotonic() + STOP_SECONDS
        while time.monotonic() < deadline:
            ready, _w, _x = select.select([self.report], [], [], 0.1)
            if ready:
                chunk = os.read(self.report, 65536)
                if not chunk:
                    break
                text += chunk
        os.close(self.report)
        _reap(self.pid)
        try:
            record = json.loads(text or b"{}")
        except ValueError:
            record = {}
        return {d: Counts(**record.get(d, {})) for d in DIRECTIONS}


def _reap(pid: int) -> None:
    deadline = time.monotonic() + STOP_SECONDS
    while time.monotonic() < deadline:
        done, _status = os.waitpid(pid, os.WNOHANG)
        if done:
            return
        time.sleep(0.02)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


def open_port(iface: str) -> socket.socket:
    """A packet socket on ``iface`` that reads only the frames coming in."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    with contextlib.suppress(OSError):
        sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind((iface, ETH_P_ALL))
    sock.setblocking(False)
    return sock


def start(ports: dict[str, socket.socket], shapes: dict[str, Shape],
          seed: int | None) -> Forwarder:
    """Fork the delay line over ``ports`` (by direction: the port a frame leaves by)."""
    control_r, control_w = os.pipe()
    report_r, report_w = os.pipe()
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # the forwarder: never returns
        code = 1
        try:
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # the lab stops it, not Ctrl-C
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            with contextlib.suppress(OSError):  # as root: a loaded machine delays it less
                os.nice(NICE)
            if os.getppid() == parent:
                os.close(control_w)
                os.close(report_r)
                counts = _forward(ports, shapes, random.Random(seed), control_r)
                os.write(report_w, json.dumps({d: asdict(c) for d, c in counts.items()})
                         .encode())
                code = 0
        finally:
            os._exit(code)
    os.close(control_r)
    os.close(report_w)
    return Forwarder(pid, control_w, report_r)


def _forward(ports: dict[str, socket.socket], shapes: dict[str, Shape], rng: random.Random,
             control: int) -> dict[str, Counts]:
    """Read each port, send each frame out of the other when it is due, until ``control``
    reaches its end."""
    other = {DIRECTIONS[0]: DIRECTIONS[1], DIRECTIONS[1]: DIRECTIONS[0]}
    lines = {d: DelayLine(shapes[d], rng) for d in DIRECTIONS}
    by_fd = {ports[d].fileno(): other[d] for d in DIRECTIONS}  # read on a port: going the other way
    due: list[tuple[int, int, str, bytes]] = []
    order = 0
    while True:
        now = time.monotonic_ns()
        for d in DIRECTIONS:
            for when, frame in lines[d].overdue(now):
                heapq.heappush(due, (when, order, d, frame))
                order += 1
        while due and due[0][0] <= now:
            _when, _n, d, frame = heapq.heappop(due)
            with contextlib.suppress(OSError):  # a full device queue: the frame is lost
                ports[d].send(frame)
        wake = [due[0][0]] if due else []
        wake += [line.held[0] for line in lines.values() if line.held is not None]
        wait = max(0.0, (min(wake) - time.monotonic_ns()) / 1e9) if wake else 1.0
        ready, _w, _x = select.select([control, *by_fd], [], [], wait)
        if control in ready:
            return {d: line.counts for d, line in lines.items()}
        for fd in ready:
            d = by_fd[fd]
            for frame in _read_all(ports[other[d]]):
                for when, copy in lines[d].arrive(frame, time.monotonic_ns()):
                    heapq.heappush(due, (when, order, d, copy))
                    order += 1


def _read_all(sock: socket.socket) -> list[bytes]:
    frames: list[bytes] = []
    while len(frames) < 64:
        try:
            data, address = sock.recvfrom(FRAME_BYTES)
        except BlockingIOError:
            break
        if address[2] != PACKET_OUTGOING:
            frames.append(data)
    return frames
