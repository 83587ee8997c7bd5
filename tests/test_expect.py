"""The expectations' judging (sockcap.analysis.expect) on exchanges built with scapy (an
independent encoder): what a real stack on loopback never does (a segment larger than the
MSS its peer announced) and the cases a spec can get wrong (an event that never starts)."""

from __future__ import annotations

from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from sockcap.analysis.check.codes import Finding, Scenario, ScenarioRun
from sockcap.analysis.expect import Expectation, judge_expectation, read_expectation
from sockcap.decode.records import LINKTYPE_ETHERNET, RawFrame
from sockcap.pipeline import Pipeline
from sockcap.render.check import finding_text
from tests.conftest import never_engine

pytestmark = never_engine()

PORT = 5001
CLIENT, SERVER = ("10.0.0.2", 40000), ("10.0.0.1", PORT)


def segment(from_client: bool, flags: str, seq: int, ack: int, data: bytes = b"",
            mss: int = 0) -> bytes:
    (src, sport), (dst, dport) = (CLIENT, SERVER) if from_client else (SERVER, CLIENT)
    options = [("MSS", mss)] if mss else []
    return bytes(Ether() / IP(src=src, dst=dst) / TCP(sport=sport, dport=dport, flags=flags,
                                                     seq=seq, ack=ack, options=options) / data)


def exchange(size: int) -> tuple[list, ScenarioRun]:  # type: ignore[type-arg]
    """Handshake (the server announces an MSS of 536), one request of ``size`` bytes, its
    echo in two segments, then the client's FIN 3 s before the server's."""
    wire = [segment(True, "S", 100, 0, mss=1460), segment(False, "SA", 500, 101, mss=536),
            segment(True, "A", 101, 501), segment(True, "PA", 101, 501, b"x" * size),
            segment(False, "PA", 501, 101 + size, b"x" * 10),
            segment(False, "PA", 511, 101 + size, b"x" * (size - 10)),
            segment(True, "FA", 101 + size, 501 + size),
            segment(False, "FA", 501 + size, 102 + size)]
    second = 1_000_000_000
    times = [0, 1, 2, 3, 4, 5, 10, 13]  # tenths of a second
    frames = [RawFrame(1_700_000_000 * second + t * second // 10, LINKTYPE_ETHERNET, f, len(f))
              for t, f in zip(times, wire, strict=True)]
    packets = list(Pipeline().packets(frames))
    return packets, ScenarioRun(Scenario.ECHO, frames[0].ts_ns, frames[-1].ts_ns, port=PORT)


def expect(want: str, after: str = "", within: str = "") -> Expectation:
    exp = read_expectation(want, after, within)
    assert isinstance(exp, Expectation)
    return exp


def test_a_segment_larger_than_the_mss_its_receiver_announced() -> None:
    packets, run = exchange(1000)
    v = judge_expectation(packets, run, expect("no segment larger than MSS"))
    assert v.finding is Finding.EXPECT_MSS_EXCEEDED and not v.ok
    assert v.values["packet"] == 4 and v.values["size"] == 1000 and v.values["mss"] == 536
    assert v.packets == (2, 4)  # the SYN-ACK that announced it, the segment
    assert finding_text(v).startswith("no segment larger than the MSS: no, packet 4 carried 1000")
    packets, run = exchange(500)
    assert judge_expectation(packets, run, expect("no segment larger than MSS")).ok


def test_late_missing_and_never_started() -> None:
    packets, run = exchange(100)
    late = judge_expectation(packets, run, expect("server FIN", "client FIN", "200ms"))
    assert late.finding is Finding.EXPECT_LATE and late.packets == (7, 8)
    assert late.values["seconds"] == "0.300"
    met = judge_expectation(packets, run, expect("server FIN", "client FIN", "1s"))
    assert met.ok and met.finding is Finding.EXPECT_MET
    assert finding_text(met) == ("server FIN within 1 s after client FIN: yes, packet 8, "
                                 "0.300 s after packet 7")
    never = judge_expectation(packets, run, expect("server RST", "client RST", "1s"))
    assert never.finding is Finding.EXPECT_NO_TRIGGER and not never.ok
    split = judge_expectation(packets, run, expect("reply in one segment"))
    assert split.finding is Finding.EXPECT_SPLIT and split.packets == (4, 5, 6)
    absent = judge_expectation(packets, run, expect("no RST"))
    assert absent.ok and absent.finding is Finding.EXPECT_ABSENT
