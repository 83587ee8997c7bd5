"""The kernel's view of the connections (``--kernel``): a private tracefs instance with the
TCP tracepoints on, read when the run ends (the edge; the lines are parsed by
:func:`sockcap.decode.ftrace.parse_trace`).

The API, for any runner (``run``, ``capture``, ``lab``, a sandbox)::

    with KernelTrace.open(ports=[5001], note=note) as trace:   # None: not permitted, said
        ...run the programs...
    events = trace.events          # KernelEvent records on the wall clock

Design, and why:

* A private *instance* (``/sys/kernel/tracing/instances/sockcap-PID``): its own buffer,
  events and filters, so nothing another tracer (or another sockcap) set is touched, and
  two runs never see each other's events. It is removed on every exit (``close``, also
  from ``__exit__`` on an exception or a signal turned into one); one left by a sockcap
  killed with SIGKILL is removed by the next start, which finds its PID gone.
* Filters in the kernel: the TCP events are kept only for the watched ports
  (``sport==P || dport==P``); ``kfree_skb`` has no ports, so it keeps IPv4/IPv6 drops
  whose reason is worth telling (not ``NOT_SPECIFIED``, the ordinary free of a packet
  after use, nor the purges of a closing socket). The reasons' numbers change between
  kernels; they are read from the event's ``format`` file.
* The instance's clock is ``mono`` (CLOCK_MONOTONIC). The packets carry the wall clock
  (CLOCK_REALTIME) the kernel stamped them with, so each event's time is moved by the
  offset between the two clocks, read when the trace starts as the pair of readings
  taken closest together (of a few). The error is that pair's gap plus the clocks'
  drift during the run (NTP slews the wall clock by at most 0.5 ms/s): measured on
  loopback, a state change and the packet that caused it lie 5-40 µs apart (README).
* The buffer is read once, from ``trace`` (not ``trace_pipe``, which would hold the
  instance busy and make removing it fail while a reader is stuck). It is
  ``BUFFER_KB`` per CPU; a transfer long enough to overrun it keeps the newest events.
* A SYN that a full accept queue turns away is dropped without a ``kfree_skb`` event
  (Linux "consumes" it), so the namespace's ListenOverflows counter is read before and
  after: :func:`sockcap.analysis.kernel.tie_kernel` names TCP_LISTEN_OVERFLOW for the
  unanswered SYNs when it grew, marked as inferred from the counter.
* Without root (or CAP_SYS_ADMIN) or without tracefs, :meth:`KernelTrace.open` says so in
  one line and returns None: the rest of the run goes on. An event this kernel lacks is
  named in one line, and the others are traced.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterable
from types import TracebackType

from sockcap.decode.ftrace import (
    EVENT_GROUPS,
    KernelEvent,
    KernelEventKind,
    drop_reasons,
    parse_trace,
)
from sockcap.i18n import _

TRACEFS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")
PREFIX = "sockcap-"
BUFFER_KB = 8192
QUIET_DROPS = ("NOT_SPECIFIED", "QUEUE_PURGE", "SOCKET_CLOSE")  # not worth telling
ETH_P_IP, ETH_P_IPV6 = 0x0800, 0x86DD
PORTED = (KernelEventKind.STATE, KernelEventKind.RECEIVE_RESET, KernelEventKind.RETRANSMIT,
          KernelEventKind.PROBE, KernelEventKind.CONG_STATE)  # events with sport/dport fields


def tracefs_root() -> str | None:
    """Where tracefs is mounted; mounted at /sys/kernel/tracing first when it is not and
    this process may (root), as systemd mounts it at boot on most systems."""
    for root in TRACEFS:
        if os.path.isdir(os.path.join(root, "instances")):
            return root
    if os.geteuid() == 0 and os.path.isdir(TRACEFS[0]):
        done = subprocess.run(["mount", "-t", "tracefs", "nodev", TRACEFS[0]],
                              capture_output=True, timeout=10, check=False)
        if done.returncode == 0 and os.path.isdir(os.path.join(TRACEFS[0], "instances")):
            return TRACEFS[0]
    return None


def remove_stale(root: str) -> list[str]:
    """Remove instances left by a sockcap that is gone (killed with SIGKILL); their names."""
    removed = []
    base = os.path.join(root, "instances")
    for name in os.listdir(base):
        pid = name.removeprefix(PREFIX)
        if name.startswith(PREFIX) and pid.isdigit() and not _alive(int(pid)):
            try:
                os.rmdir(os.path.join(base, name))
                removed.append(name)
            except OSError:
                pass
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def listen_overflows(path: str = "/proc/net/netstat") -> int:
    """The network namespace's count of SYNs dropped at a full accept queue (TcpExt
    ListenOverflows). Linux drops such a SYN without a ``kfree_skb`` event (it is
    "consumed"), so this counter is the kernel's only word on it."""
    try:
        with open(path, encoding="ascii") as f:
            rows = [line.split() for line in f if line.startswith("TcpExt:")]
    except OSError:
        return 0
    if len(rows) < 2 or "ListenOverflows" not in rows[0]:
        return 0
    return int(rows[1][rows[0].index("ListenOverflows")])


def clock_offset(samples: int = 100) -> int:
    """Wall clock minus monotonic clock in ns, from the pair read closest together."""
    best = (1 << 62, 0)
    for _sample in range(samples):
        a = time.monotonic_ns()
        wall = time.time_ns()
        b = time.monotonic_ns()
        best = min(best, (b - a, wall - (a + b) // 2))
    return best[1]


class KernelTrace:
    """A private tracefs instance with the TCP events on (see the module docstring)."""

    def __init__(self, root: str, ports: Iterable[int], note: Callable[[str], None]) -> None:
        self.root = root
        self.path = os.path.join(root, "instances", f"{PREFIX}{os.getpid()}")
        self.ports = sorted(set(ports))
        self.note = note
        self.offset = 0
        self.missing: list[str] = []
        self.events: list[KernelEvent] = []
        self.overflows = 0  # SYNs the listening sockets dropped, full accept queue
        self._counters = 0
        self._open = False

    @classmethod
    def open(cls, ports: Iterable[int] = (), note: Callable[[str], None] = lambda _t: None,
             ) -> KernelTrace | None:
        """Make the instance and start tracing; None (said in one line) when not permitted."""
        root = tracefs_root()
        if root is None or not os.access(os.path.join(root, "instances"), os.W_OK):
            note(_("--kernel needs root (or CAP_SYS_ADMIN) and tracefs: the kernel's events "
                   "are left out; the rest goes on (try: sudo sockcap ... --kernel)"))
            return None
        trace = cls(root, ports, note)
        try:
            trace.start()
        except OSError as e:
            trace.close()
            note(_("--kernel: cannot set up the kernel's trace ({error}): the kernel's events "
                   "are left out").format(error=e.strerror or e))
            return None
        return trace

    def start(self) -> None:
        remove_stale(self.root)
        if os.path.isdir(self.path):
            os.rmdir(self.path)
        os.mkdir(self.path)
        self._open = True
        self._write("trace_clock", "mono")
        self._write("buffer_size_kb", str(BUFFER_KB))
        for kind in KernelEventKind:
            self._enable(kind)
        if self.missing:
            self.note(_("--kernel: this kernel has no {events}; the other events are "
                        "traced").format(events=", ".join(self.missing)))
        self.offset = clock_offset()
        self._counters = listen_overflows()
        self._write("tracing_on", "1")

    def _enable(self, kind: KernelEventKind) -> None:
        event = os.path.join(self.path, "events", EVENT_GROUPS.get(kind, "tcp"), kind.value)
        if not os.path.isdir(event):
            self.missing.append(kind.value)
            return
        condition = self._filter(kind, event)
        if condition:
            self._write(os.path.join(event, "filter"), condition)
        self._write(os.path.join(event, "enable"), "1")

    def _filter(self, kind: KernelEventKind, event: str) -> str:
        if kind in PORTED and self.ports:
            return " || ".join(f"sport=={p} || dport=={p}" for p in self.ports)
        if kind is KernelEventKind.DROP:
            with open(os.path.join(event, "format"), encoding="utf-8") as f:
                numbers = drop_reasons(f.read())
            quiet = [f"reason!={numbers[name]}" for name in QUIET_DROPS if name in numbers]
            return " && ".join([f"(protocol=={ETH_P_IP} || protocol=={ETH_P_IPV6})", *quiet])
        return ""

    def _write(self, name: str, value: str) -> None:
        with open(os.path.join(self.path, name), "w", encoding="ascii") as f:
            f.write(value)

    def stop(self) -> list[KernelEvent]:
        """Stop tracing, read the events (on the wall clock), remove the instance."""
        if not self._open:
            return self.events
        try:
            self._write("tracing_on", "0")
            self.overflows = max(0, listen_overflows() - self._counters)
            with open(os.path.join(self.path, "trace"), encoding="utf-8", errors="replace") as f:
                events = list(parse_trace(f))
            self.events = [_shifted(e, self.offset) for e in events]
        finally:
            self.close()
        return self.events

    def close(self) -> None:
        """Remove the instance (its events off first); safe to call twice."""
        if not self._open:
            return
        self._open = False
        try:
            self._write("events/enable", "0")
        except OSError:
            pass
        try:
            os.rmdir(self.path)
        except OSError as e:
            self.note(_("--kernel: could not remove {path} ({error}); the next run removes "
                        "it").format(path=self.path, error=e.strerror))

    def __enter__(self) -> KernelTrace:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.stop()
        else:
            self.close()


def _shifted(event: KernelEvent, offset: int) -> KernelEvent:
    from dataclasses import replace

    return replace(event, ts_ns=event.ts_ns + offset)
