"""What the lab's link does to frames: its settings (:class:`LinkOptions`, one
:class:`Shape` each way) and the decisions of the delay line (:class:`DelayLine`), pure:
a frame and the time in, when each copy leaves out. The program that reads and writes
the frames is :mod:`sockcap.lab.forwarder`; why the lab has its own delay line and no
netem is said there.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field

ETH_HEADER = 14
HOLD_NS = 50_000_000  # a frame held for reordering goes alone after this long
QUEUE_FRAMES = 1000
DIRECTIONS = ("to-server", "to-client")  # named by the port a frame leaves by


@dataclass(frozen=True, slots=True)
class Shape:
    """What the link does to frames going one way."""

    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    rate_bps: int = 0  # bits per second; 0: as fast as the frames come
    queue: int = 1000  # frames waiting at most (pfifo's default, txqueuelen)
    loss: float = 0.0  # percent
    drop_every: int = 0  # every Nth TCP and every Nth UDP frame (0: none)
    reorder: float = 0.0  # percent
    duplicate: float = 0.0  # percent
    corrupt: float = 0.0  # percent
    reorder_every: int = 0  # every Nth TCP and every Nth UDP frame overtakes (0: none)


@dataclass(slots=True)
class Counts:
    """What happened to the frames going one way (reported by the forwarder)."""

    frames: int = 0
    lost: int = 0  # at random (--loss)
    dropped_every: int = 0  # --drop-every
    queue_full: int = 0  # tail drops: the queue held --queue frames already
    reordered: int = 0
    duplicated: int = 0
    corrupted: int = 0


def impaired(frame: bytes) -> int:
    """The IP protocol of an IPv4 TCP or UDP frame (fragments too), else 0."""
    if len(frame) < ETH_HEADER + 20 or frame[12:14] != b"\x08\x00":
        return 0
    proto = frame[ETH_HEADER + 9]
    return proto if proto in (6, 17) else 0


@dataclass
class DelayLine:
    """One direction's decisions: :meth:`arrive` says when each copy of a frame leaves."""

    shape: Shape
    rng: random.Random
    counts: Counts = field(default_factory=Counts)
    free_ns: int = 0  # when the line has finished sending the frames before
    waiting: list[int] = field(default_factory=list)  # heap: departure of each frame queued
    nth: dict[int, int] = field(default_factory=dict)  # frames seen, by protocol
    nth_reorder: dict[int, int] = field(default_factory=dict)  # ... not dropped, by protocol
    held: tuple[int, bytes] | None = None  # a frame to go after the next one (reorder)

    def arrive(self, frame: bytes, now: int) -> list[tuple[int, bytes]]:
        """The copies of ``frame`` to send and when (none: dropped)."""
        s, c = self.shape, self.counts
        c.frames += 1
        proto = impaired(frame)
        if proto and self._dropped(proto):
            return []
        while self.waiting and self.waiting[0] <= now:
            heapq.heappop(self.waiting)
        if len(self.waiting) >= s.queue:
            c.queue_full += 1
            return []
        start = max(now, self.free_ns)
        self.free_ns = start + (len(frame) * 8 * 1_000_000_000 // s.rate_bps
                                if s.rate_bps else 0)
        heapq.heappush(self.waiting, self.free_ns)
        if proto and self._chance(s.corrupt):
            c.corrupted += 1
            frame = self._flip(frame)
        due = self.free_ns + self._delay()
        out = [(due, frame)]
        if proto and self._chance(s.duplicate):
            c.duplicated += 1
            out.append((due, frame))
        if proto and (self._chance(s.reorder) or self._nth_reordered(proto)):
            c.reordered += 1
            if s.delay_ms > 0:
                return [(self.free_ns, f) for _due, f in out]
            return self._hold(out, now)
        return self._release(out)

    def _dropped(self, proto: int) -> bool:
        s, c = self.shape, self.counts
        if s.drop_every:
            self.nth[proto] = self.nth.get(proto, 0) + 1
            if self.nth[proto] % s.drop_every == 0:
                c.dropped_every += 1
                return True
        if self._chance(s.loss):
            c.lost += 1
            return True
        return False

    def _nth_reordered(self, proto: int) -> bool:
        """Every ``reorder_every``-th frame of a protocol (of those not dropped) overtakes:
        deterministic, as ``drop_every`` is, for a check whose outcome must not rest on
        chance."""
        n = self.shape.reorder_every
        if not n:
            return False
        self.nth_reorder[proto] = self.nth_reorder.get(proto, 0) + 1
        return self.nth_reorder[proto] % n == 0

    def _chance(self, percent: float) -> bool:
        return percent > 0 and self.rng.random() * 100 < percent

    def _delay(self) -> int:
        s = self.shape
        ms = s.delay_ms + (self.rng.uniform(-s.jitter_ms, s.jitter_ms) if s.jitter_ms else 0)
        return int(max(0.0, ms) * 1_000_000)

    def _flip(self, frame: bytes) -> bytes:
        """One bit of the IP payload flipped (the IP header stays readable)."""
        start = ETH_HEADER + (frame[ETH_HEADER] & 0x0F) * 4
        if start >= len(frame):
            return frame
        at = self.rng.randrange(start, len(frame))
        return frame[:at] + bytes([frame[at] ^ (1 << self.rng.randrange(8))]) + frame[at + 1:]

    def _hold(self, out: list[tuple[int, bytes]], now: int) -> list[tuple[int, bytes]]:
        sent = self._release([])
        self.held = (now + HOLD_NS, out[0][1])
        return sent + out[1:]

    def _release(self, out: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
        """``out``, then the frame held back for reordering, just after it."""
        if self.held is None:
            return out
        frame = self.held[1]
        self.held = None
        last = max((due for due, _f in out), default=0)
        return [*out, (last + 1, frame)]

    def overdue(self, now: int) -> list[tuple[int, bytes]]:
        """The held frame, once no other came to overtake it in time."""
        if self.held is not None and self.held[0] <= now:
            frame = self.held[1]
            self.held = None
            self.counts.reordered -= 1  # nothing overtook it
            return [(now, frame)]
        return []



@dataclass(frozen=True, slots=True)
class LinkOptions:
    loss: float = 0.0  # percent of frames lost, at random
    drop_every: int = 0  # drop every Nth TCP and every Nth UDP frame (0: none)
    delay_ms: float = 0.0  # added to each frame
    jitter_ms: float = 0.0  # the delay varies by up to this much either way
    rate_bps: int = 0  # bits per second (0: no limit)
    queue: int = QUEUE_FRAMES  # frames waiting for the rate at most
    reorder: float = 0.0  # percent
    duplicate: float = 0.0  # percent
    corrupt: float = 0.0  # percent
    direction: str = "both"  # "both", "to-server" or "to-client": which way it applies
    seed: int | None = None  # the same random choices each run
    reorder_every: int = 0  # every Nth TCP and every Nth UDP frame overtakes (0: none)

    @property
    def shaped(self) -> bool:
        """Whether the link needs the delay line (:mod:`sockcap.lab.forwarder`): anything
        beyond loss and drop-every both ways, which the bridge and nftables do."""
        return bool(self.delay_ms or self.jitter_ms or self.rate_bps or self.reorder
                    or self.reorder_every
                    or self.duplicate or self.corrupt or self.queue != QUEUE_FRAMES
                    or self.direction != "both" or self.seed is not None)

    def shapes(self) -> dict[str, Shape]:
        """The :class:`Shape` of each direction (named by the port a frame leaves by)."""
        shape = Shape(delay_ms=self.delay_ms, jitter_ms=self.jitter_ms,
                      rate_bps=self.rate_bps, queue=self.queue, loss=self.loss,
                      drop_every=self.drop_every, reorder=self.reorder,
                      duplicate=self.duplicate, corrupt=self.corrupt,
                      reorder_every=self.reorder_every)
        return {d: shape if self.direction in ("both", d) else Shape() for d in DIRECTIONS}
