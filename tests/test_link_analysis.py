"""The pure half of the lab: two ends' captures merged by bytes, the verdict and its words
(frames built byte by byte and decoded by sockcap's real decoder)."""

from __future__ import annotations

import struct

from sockcap.analysis.link import (
    IPPROTO_UDP,
    NOT_RECEIVED,
    datagrams,
    merge_ends,
    of_proto,
    udp_verdict,
)
from sockcap.decode.records import LINKTYPE_ETHERNET, RawFrame
from sockcap.pipeline import Pipeline
from sockcap.render.lab import seconds_text, udp_sentence, verdict_line, verdict_record
from tests.conftest import never_engine

pytestmark = never_engine()

A, B = "10.0.0.1", "10.0.0.2"


def udp_frame(ts: int, src: str, dst: str, payload: bytes, ip_id: int = 1,
              frag: tuple[int, bool] | None = None) -> RawFrame:
    """A UDP datagram in one frame, or (``frag``: offset in bytes, more fragments) one IP
    fragment of one, ``payload`` being that fragment's part of the UDP bytes."""
    sport, dport = (4000, 5000) if src == B else (5000, 4000)
    if frag is None:
        udp, field = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload, 0
    else:
        udp, field = payload, frag[0] // 8 | (0x2000 if frag[1] else 0)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), ip_id, field, 64, 17, 0,
                     bytes(map(int, src.split("."))), bytes(map(int, dst.split("."))))
    data = b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + ip + udp
    return RawFrame(ts, LINKTYPE_ETHERNET, data, len(data))


def test_a_frame_sent_and_never_received_is_lost_and_the_rest_are_paired() -> None:
    one, two, three = (udp_frame(t, B, A, p, i) for t, p, i in
                       ((100, b"one", 1), (200, b"two", 2), (300, b"three", 3)))
    echo = udp_frame(150, A, B, b"one", 9)
    at_client = [one, two, three, udp_frame(160, A, B, b"one", 9)]  # sent 3, got the echo
    at_server = [udp_frame(110, B, A, b"one", 1), echo, udp_frame(310, B, A, b"three", 3)]
    hops = merge_ends([(A, at_server), (B, at_client)])
    assert [h.frame.ts_ns for h in hops] == [100, 150, 200, 300]  # in the order sent
    assert [h.received_ns for h in hops] == [110, 160, NOT_RECEIVED, 310]
    assert [h.sender for h in hops] == [B, A, B, B]
    assert [h.lost for h in hops] == [False, False, True, False]


def test_identical_frames_are_paired_in_order() -> None:
    sent = [udp_frame(t, B, A, b"same") for t in (10, 20, 30)]
    received = [udp_frame(t, B, A, b"same") for t in (15, 25)]
    hops = merge_ends([(B, sent), (A, received)])
    assert [h.received_ns for h in hops] == [15, 25, NOT_RECEIVED]


def test_udp_verdict_numbers_the_lost_datagrams() -> None:
    sent = [udp_frame(10 * n, B, A, f"m{n}".encode(), n) for n in range(1, 7)]
    received = [udp_frame(10 * n + 1, B, A, f"m{n}".encode(), n) for n in (1, 2, 4, 5)]
    echoes = [udp_frame(10 * n + 2, A, B, f"m{n}".encode(), 50 + n) for n in (1, 2, 4, 5)]
    back = [udp_frame(10 * n + 3, A, B, f"m{n}".encode(), 50 + n) for n in (1, 4, 5)]
    hops = merge_ends([(A, [*received, *echoes]), (B, [*sent, *back])])
    annotated = list(Pipeline().packets(h.frame for h in hops))
    verdict = udp_verdict(of_proto(hops, annotated, IPPROTO_UDP), B, messages=6)
    assert (verdict.sent, verdict.delivered, verdict.lost_numbers) == (6, 4, (3, 6))
    assert (verdict.echoes_sent, verdict.echoes_delivered, verdict.resent) == (4, 3, 0)
    assert verdict.seconds == (53 - 10) / 1e9  # first sent to the last payload delivered
    assert udp_sentence(verdict) == ("UDP: 4 of 6 datagrams delivered in 0.000000 s, 2 lost "
                                     "(#3 #6), 1 of 4 echoes lost, nothing resent")
    assert verdict_line(None, verdict) == udp_sentence(verdict)
    assert verdict_record(None, verdict)["udp"] == {
        "sent": 6, "delivered": 4, "lost": 2, "lost_numbers": [3, 6], "echoes_sent": 4,
        "echoes_delivered": 3, "resent": 0, "seconds": 0.0, "finished": True,
        "goodput_bps": round(8 * verdict.delivered_bytes / verdict.to_server), "fragments": 0,
        "lost_by_a_fragment": []}
    assert verdict.delivered_bytes == len(b"m1m2m4m5")
    assert verdict.to_server == (51 - 10) / 1e9  # to the last datagram the server got


def test_seconds_are_readable_both_slow_and_quick() -> None:
    assert seconds_text(3.4149) == "3.41"
    assert seconds_text(0.84) == "0.84"
    assert seconds_text(0.000431) == "0.00043"
    assert seconds_text(0.000043) == "0.000043"


def fragments(ts: int, src: str, dst: str, ip_id: int, size: int) -> list[RawFrame]:
    """A ``size``-byte UDP datagram cut at 1480 bytes as Linux cuts it for MTU 1500."""
    sport, dport = (4000, 5000) if src == B else (5000, 4000)
    udp = struct.pack("!HHHH", sport, dport, 8 + size, 0) + bytes(size)
    cuts = range(0, len(udp), 1480)
    return [udp_frame(ts + i, src, dst, udp[off:off + 1480], ip_id, (off, off + 1480 < len(udp)))
            for i, off in enumerate(cuts)]


def test_one_lost_fragment_loses_the_whole_datagram() -> None:
    sent = [f for n in (1, 2, 3) for f in fragments(100 * n, B, A, 70 + n, 4000)]
    assert len(sent) == 9
    received = [RawFrame(f.ts_ns + 5, f.linktype, f.data, f.wirelen) for i, f in enumerate(sent)
                if i != 4]  # the second fragment of datagram 2
    hops = merge_ends([(B, sent), (A, received)])
    annotated = list(Pipeline().packets(h.frame for h in hops))
    pairs = of_proto(hops, annotated, IPPROTO_UDP)
    assert [len(g) for g in datagrams(pairs)] == [3, 3, 3]
    verdict = udp_verdict(pairs, B, messages=3)
    assert (verdict.sent, verdict.delivered, verdict.lost_numbers) == (3, 2, (2,))
    assert verdict.fragments == 9 and verdict.by_a_fragment == (2,)
    assert verdict.delivered_bytes == 8000


def test_copies_and_late_arrivals_are_named() -> None:
    one, two, three = (udp_frame(t, B, A, p, i) for t, p, i in
                       ((100, b"one", 1), (200, b"two", 2), (300, b"three", 3)))
    at_server = [udp_frame(t, B, A, p, i) for t, p, i in
                 ((110, b"one", 1), (305, b"three", 3), (310, b"two", 2), (311, b"two", 2))]
    hops = merge_ends([(A, at_server), (B, [one, two, three])])
    assert [h.received_ns for h in hops] == [110, 310, 305]
    assert [h.late for h in hops] == [False, True, False]  # two arrived after three
    assert [h.copies for h in hops] == [0, 1, 0]  # and twice
