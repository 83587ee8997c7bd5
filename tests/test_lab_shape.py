"""The lab link's decisions (the pure delay line) and the pure half of the lab's new words:
frames built byte by byte, times given, no clock and no network."""

from __future__ import annotations

import random
import struct

import pytest

from sockcap.analysis.link import give_up_seconds
from sockcap.analysis.shape import HOLD_NS, DelayLine, LinkOptions, Shape
from sockcap.commands.lab import _rate
from tests.conftest import never_engine

pytestmark = never_engine()

MS = 1_000_000


def frame(proto: int = 6, size: int = 100, ip_id: int = 1) -> bytes:
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, size - 14, ip_id, 0, 64, proto, 0,
                     b"\x0a\x00\x00\x02", b"\x0a\x00\x00\x01")
    return b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + ip + bytes(size - 34)


ARP = b"\xff" * 6 + b"\x04" * 6 + b"\x08\x06" + bytes(28)


def line(seed: int = 1, **shape: float) -> DelayLine:
    return DelayLine(Shape(**shape), random.Random(seed))  # type: ignore[arg-type]


def test_delay_holds_each_frame_that_long() -> None:
    d = line(delay_ms=20)
    assert d.arrive(frame(), 1000) == [(1000 + 20 * MS, frame())]
    assert d.arrive(ARP, 2000) == [(2000 + 20 * MS, ARP)]  # delay applies to every frame


def test_rate_spaces_frames_by_their_size() -> None:
    d = line(rate_bps=1_000_000)  # a 1000-byte frame takes 8 ms at 1 Mbit/s
    outs = [d.arrive(frame(size=1000), 0)[0][0] for _ in range(3)]
    assert outs == [8 * MS, 16 * MS, 24 * MS]
    assert d.arrive(frame(size=1000), 100 * MS)[0][0] == 108 * MS  # the line was idle


def test_a_full_queue_drops_at_the_tail() -> None:
    d = line(rate_bps=1_000_000, queue=2)
    sent = [d.arrive(frame(size=1000), 0) for _ in range(4)]
    assert [len(s) for s in sent] == [1, 1, 0, 0]
    assert d.counts.queue_full == 2
    assert len(d.arrive(frame(size=1000), 16 * MS)) == 1  # both have left: room again


def test_drop_every_counts_tcp_and_udp_apart_and_spares_arp() -> None:
    d = line(drop_every=2)
    kept = [bool(d.arrive(f, 0)) for f in (frame(6), frame(17), ARP, frame(6), ARP,
                                           frame(17), frame(6))]
    assert kept == [True, True, True, False, True, False, True]
    assert d.counts.dropped_every == 2 and d.counts.frames == 7


def test_loss_is_the_percentage_asked() -> None:
    d = line(loss=30, seed=7)
    kept = sum(bool(d.arrive(frame(), n)) for n in range(10_000))
    assert 6700 < kept < 7300 and d.counts.lost == 10_000 - kept


def test_duplicate_sends_two_copies() -> None:
    d = line(duplicate=100)
    assert d.arrive(frame(), 0) == [(0, frame()), (0, frame())]
    assert d.counts.duplicated == 1
    assert line(duplicate=100).arrive(ARP, 0) == [(0, ARP)]


def test_corrupt_flips_one_bit_after_the_ip_header() -> None:
    d = line(corrupt=100)
    original = frame()
    (_when, out), = d.arrive(original, 0)
    diff = [i for i, (a, b) in enumerate(zip(original, out, strict=True)) if a != b]
    assert len(diff) == 1 and diff[0] >= 34 and bin(original[diff[0]] ^ out[diff[0]]).count("1") == 1


def test_reorder_with_delay_lets_the_chosen_frame_overtake() -> None:
    d = line(delay_ms=50, reorder=100)
    assert d.arrive(frame(), 0) == [(0, frame())]  # skips the delay
    assert d.counts.reordered == 1


def test_reorder_every_second_udp_frame_overtakes_the_one_before_and_spares_arp() -> None:
    d = line(delay_ms=500, reorder_every=2)
    sent = [d.arrive(f, t * MS) for t, f in enumerate((frame(17, ip_id=1), ARP, frame(17, ip_id=2),
                                                       frame(6), frame(17, ip_id=3)))]
    assert [s[0][0] for s in sent] == [500 * MS, 501 * MS, 2 * MS, 503 * MS, 504 * MS]
    assert d.counts.reordered == 1  # the second UDP frame, ahead of the first; TCP counts apart
    assert d.arrive(frame(6), 10 * MS) == [(10 * MS, frame(6))]  # the second TCP frame


def test_reorder_without_delay_sends_the_held_frame_after_the_next() -> None:
    d = DelayLine(Shape(reorder=100), random.Random(1))
    first, second = frame(ip_id=1), frame(ip_id=2)
    assert d.arrive(first, 0) == []  # held
    d.shape = Shape()  # the next one is not chosen
    assert d.arrive(second, 5) == [(5, second), (6, first)]
    assert d.counts.reordered == 1


def test_a_held_frame_goes_alone_when_none_follows() -> None:
    d = line(reorder=100)
    assert d.arrive(frame(), 0) == []
    assert d.overdue(HOLD_NS - 1) == []
    assert d.overdue(HOLD_NS) == [(HOLD_NS, frame())]
    assert d.counts.reordered == 0  # nothing overtook it


def test_jitter_stays_within_its_bounds() -> None:
    d = line(delay_ms=20, jitter_ms=5, seed=3)
    dues = [d.arrive(frame(), 0)[0][0] for _ in range(1000)]
    assert 15 * MS <= min(dues) < 16 * MS and 24 * MS < max(dues) <= 25 * MS


def test_options_shape_each_direction() -> None:
    o = LinkOptions(delay_ms=10, direction="to-server")
    assert o.shaped
    assert o.shapes()["to-server"].delay_ms == 10 and o.shapes()["to-client"] == Shape()
    assert not LinkOptions(loss=5, drop_every=3).shaped  # the bridge and nftables do these


@pytest.mark.parametrize(("text", "bps"), [("1mbit", 1_000_000), ("100kbit", 100_000),
                                            ("500kbps", 4_000_000), ("2.5Mbit", 2_500_000),
                                            ("64000", 64_000)])
def test_rates_read_as_tc_writes_them(text: str, bps: int) -> None:
    assert _rate(None, None, text) == bps  # type: ignore[arg-type]


def test_the_kernel_gives_up_after_its_own_estimate() -> None:
    assert give_up_seconds(15) == pytest.approx(924.6)  # Documentation/networking/ip-sysctl
    assert give_up_seconds(3) == pytest.approx(0.2 + 0.4 + 0.8 + 1.6)

