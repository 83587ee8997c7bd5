"""``--explain``: every sentence's numbers are the packet's, and each connection's Zeek
``conn_state`` is the one its packets call for (golden outputs are in tests/golden)."""

from __future__ import annotations

import re
from contextlib import ExitStack
from pathlib import Path

import pytest

from sockcap.analysis.zeek import ConnState
from sockcap.pcapfile.reader import open_capture
from sockcap.pcapfile.source import open_input
from sockcap.pipeline import Pipeline
from sockcap.render.explain import PacketExplainer
from tests.conftest import never_engine

pytestmark = never_engine()

GOLDEN = Path(__file__).resolve().parent / "golden"
SF, REJ, RSTO, S0 = ConnState.SF, ConnState.REJ, ConnState.RSTO, ConnState.S0
CAPTURES = {"echo-tcp.pcap": {0: SF}, "diagram-refused.pcap": {0: REJ},
            "diagram-reset.pcap": {0: RSTO}, "diagram-rto.pcap": {0: SF},
            # made by sockcap run --capture --scenario NAME
            "scenario-half-close.pcap": {0: SF}, "scenario-coalesce.pcap": {0: SF},
            "scenario-time-wait.pcap": {0: SF}, "scenario-timeout.pcap": {0: RSTO, 1: S0},
            "scenario-backlog.pcap": {0: SF, 1: SF}}

ARITHMETIC = re.compile(r"Ack (\d+) = Seq (\d+) \+ (\d+)((?: \+ 1)?)")
SENDS = re.compile(r"sends (\d+) bytes(?: again from Seq (\d+)| \(.*?\) at Seq (\d+))")
NEXT = re.compile(r"Seq (\d+) = (\d+) \+ (\d+)")
ISN = re.compile(r"\(shown as 0\) is (\d+)")


def explained(name: str) -> tuple[list[tuple[object, str | None]], PacketExplainer]:
    pipeline = Pipeline()
    explainer = PacketExplainer()
    with ExitStack() as stack:
        reader = open_capture(open_input(str(GOLDEN / name), stack))
        pairs = [(a, explainer.sentence(a)) for a in pipeline.packets(reader)]
    return pairs, explainer


@pytest.mark.parametrize("name", sorted(CAPTURES))
def test_sentence_numbers_are_the_packets(name: str) -> None:
    pairs, _ = explained(name)
    checked = 0
    for a, sentence in pairs:
        assert sentence, a
        p = a.packet  # type: ignore[attr-defined]
        for ack, start, count, fin in ARITHMETIC.findall(sentence):
            # "+ 1": the peer's FIN, which takes a sequence number and carries no byte
            assert int(ack) == a.ack == int(start) + int(count) + (1 if fin else 0)  # type: ignore[attr-defined]
            checked += 1
        for length, again, seq in SENDS.findall(sentence):
            assert int(length) == p.payload_len
            assert int(again or seq) == a.seq  # type: ignore[attr-defined]
            checked += 1
        for nxt, seq, length in NEXT.findall(sentence):
            assert int(nxt) == int(seq) + int(length) == a.seq + p.payload_len  # type: ignore[attr-defined]
        for isn in ISN.findall(sentence):
            assert int(isn) == p.seq
            checked += 1
    assert checked >= 1


@pytest.mark.parametrize("name", sorted(CAPTURES))
def test_zeek_conn_state(name: str) -> None:
    _, explainer = explained(name)
    assert explainer.states() == CAPTURES[name]


def test_every_conn_state_has_a_sentence() -> None:
    from sockcap.render.explain import CONN_STATE_WORDS

    assert set(CONN_STATE_WORDS) == set(ConnState)
