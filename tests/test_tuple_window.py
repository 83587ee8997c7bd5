"""The port-reuse sentence's window: a 4-tuple is remembered for the next TUPLE_WINDOW
SYNs after its last SYN (``sockcap/render/confusions.py``, the reference; the same rule in
``sockcap/_speedups_explain.h``), so ``show --explain`` holds at most that many 4-tuples
whatever the file.

Every packet with SYN that reaches the confusions (SYN or SYN-ACK) is numbered n = 1,
2, ...; a SYN without ACK on the 4-tuple of SYN m (its last) names m's stream while
n - m < window. A small window (``PacketExplainer(tuple_window=)``, the engine's
``explain={..., "tuple_window": N}``, ``SOCKCAP_TUPLE_WINDOW`` for ``show``) puts both
edges on small captures: a reuse just inside and just outside, a 4-tuple kept by a later
SYN on it, SYN-ACKs counting; the two twins byte for byte, and both held to a plain
count over every SYN (no window bookkeeping). Memory by structure and tracemalloc, never
by time.
"""

from __future__ import annotations

import io
import random
import re
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT
from test_show_memory import ETH_IP
from test_speedups import _ip, _tcp
from test_stats_memory import held

from sockcap.pcapfile.reader import open_capture
from sockcap.pipeline import Pipeline
from sockcap.pipeline.engine import EngineRun
from sockcap.render.confusions import TUPLE_WINDOW, ConfusionFinder
from sockcap.render.explain import EngineExplanations, PacketExplainer
from sockcap.render.explain_words import explain_words
from sockcap.render.packets import PacketView
from sockcap.speedups import compiled_class

SERVER, SERVER_PORT = 1, 80
T0 = 1_700_000_000 * 10**9
REUSE = "same addresses and ports as stream"
PACKET_LINE = re.compile(r"^\s*(\d+)\s+\d+\.\d{6}\s")  # a packet's line, not its sentence


class Capture:
    """A classic pcap built a TCP packet at a time (Ethernet, IPv4 10.0.0.x), 1 ms apart;
    ``syns`` counts the packets with SYN, so a test says which number each one gets."""

    def __init__(self) -> None:
        self.records: list[bytes] = []
        self.syns = 0
        self.ts = T0

    def packet(self, client: int, port: int, flags: int, *, to_server: bool = True,
               seq: int = 100, ack: int = 0) -> int:
        """Adds one packet; its number in the file (1-based)."""
        src, dst, sp, dp = ((client, SERVER, port, SERVER_PORT) if to_server
                            else (SERVER, client, SERVER_PORT, port))
        data = ETH_IP + _ip(False, src, dst, 6, _tcp(sp, dp, seq, ack, flags, 512, b"", b""))
        self.ts += 1_000_000
        self.records.append(struct.pack("<IIII", self.ts // 10**9, self.ts // 1000 % 10**6,
                                        len(data), len(data)) + data)
        self.syns += bool(flags & 0x02)
        return len(self.records)

    def lone_syn(self, client: int, port: int, seq: int = 100) -> int:
        """A SYN nothing answers (one SYN)."""
        return self.packet(client, port, 0x002, seq=seq)

    def connection(self, client: int, port: int, seq: int = 100) -> int:
        """Handshake and both FINs (two SYNs: the SYN and the SYN-ACK); its SYN's number
        in the file."""
        first = self.packet(client, port, 0x002, seq=seq)
        self.packet(client, port, 0x012, to_server=False, seq=7000, ack=seq + 1)
        self.packet(client, port, 0x010, seq=seq + 1, ack=7001)
        self.packet(client, port, 0x011, seq=seq + 1, ack=7001)
        self.packet(client, port, 0x011, to_server=False, seq=7001, ack=seq + 2)
        self.packet(client, port, 0x010, seq=seq + 2, ack=7002)
        return first

    def data(self) -> bytes:
        return (struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
                + b"".join(self.records))


def reference(data: bytes, window: int) -> str:
    """The pure twin's --explain (the Python view and its tail)."""
    pipeline = Pipeline(keep=False)
    explainer = PacketExplainer(tuple_window=window)
    view = PacketView(pipeline, explainer=explainer)
    text = "".join(t + "\n" for t in pipeline.map(open_capture(io.BytesIO(data)), view.text))
    return text + "".join(f"{line}\n" for line, _s in (*explainer.summary(),
                                                       *explainer.readings()))


def compiled(data: bytes, window: int, rows_in_memory: int = 0) -> tuple[str, Any]:
    cls = compiled_class()
    if cls is None:
        pytest.skip("the compiled extension is not built (or SOCKCAP_PURE is set)")
    pipeline = Pipeline(keep=False)
    out: list[bytes] = []
    run = EngineRun(cls, pipeline, hex_=False, clock=pipeline,
                    explain={**explain_words(), "tuple_window": window},
                    rows_in_memory=rows_in_memory)
    run.run(open_capture(io.BytesIO(data)), lambda chunk: out.append(bytes(chunk)), lent=True)
    explained = EngineExplanations(run.engine)
    tail = "".join(f"{line}\n" for line, _s in (*explained.summary(), *explained.readings()))
    return b"".join(out).decode() + tail, run


def reuses(text: str) -> dict[int, int]:
    """{packet number: the stream its sentence names} of the port-reuse sentences."""
    out, number = {}, None
    for line in text.splitlines():
        packet = PACKET_LINE.match(line)
        if packet:
            number = int(packet.group(1))
        elif REUSE in line:
            assert number is not None
            out[number] = int(line.split(REUSE, 1)[1].split()[0].rstrip(",:;."))
    return out


def plain_count(data: bytes, window: int) -> dict[int, int]:
    """What the rule says, counted over every SYN with no window bookkeeping: each
    4-tuple's last (stream, SYN number), never forgotten; a SYN without ACK names the
    stream when its SYN number is within ``window`` of the last one's."""
    last: dict[tuple[object, ...], tuple[int, int]] = {}
    out, n = {}, 0
    for a in Pipeline(keep=False).packets(open_capture(io.BytesIO(data))):
        p = a.packet
        if a.conv is None or not p.flags & 0x02:
            continue
        n += 1
        key = (p.src, p.sport, p.dst, p.dport)
        if not p.flags & 0x10 and key in last:
            stream, m = last[key]
            if n - m < window and stream != a.conv.stream:
                out[a.no] = stream
        last[key] = (a.conv.stream, n)
    return out


def both(data: bytes, window: int) -> dict[int, int]:
    """The twins' --explain, the same bytes; the port-reuse sentences said."""
    want = reference(data, window)
    if compiled_class() is not None:  # SOCKCAP_PURE: the reference against the count alone
        assert compiled(data, window)[0] == want
    said = reuses(want)
    assert said == plain_count(data, window)
    return said


@pytest.mark.parametrize("window", [3, 4, 8])
def test_a_reuse_just_inside_and_just_outside_the_window(window: int) -> None:
    """One connection (SYN number 1, its SYN-ACK 2), then lone SYNs on other ports, then
    its ports again: the SYN numbered ``window`` after the first is outside, one fewer is
    inside. The SYN-ACK counts: one lone SYN fewer than SYN numbers apart. (Windows of
    1 and 2 SYNs: test_churn_on_both_twins.)"""
    for apart, said in ((window - 1, True), (window, False)):
        c = Capture()
        c.connection(2, 5000)
        while c.syns + 1 < 1 + apart:  # the next SYN is number 1 + apart
            c.lone_syn(3, 6000 + c.syns)
        again = c.lone_syn(2, 5000, seq=9000)
        assert c.syns == 1 + apart
        assert both(c.data(), window) == ({again: 0} if said else {}), (apart, said)


def test_syn_acks_count_in_the_window() -> None:
    """Connections in between (two SYNs each) push a 4-tuple out twice as fast as lone
    SYNs: with a window of 9, 3 connections leave it named (SYN 8 after SYN 1), 4 do not
    (SYN 10)."""
    for between, said in ((3, True), (4, False)):
        c = Capture()
        c.connection(2, 5000)
        for i in range(between):
            c.connection(3, 6000 + i)
        again = c.lone_syn(2, 5000, seq=9000)
        assert both(c.data(), 9) == ({again: 0} if said else {})


def _kept(lone: int) -> tuple[bytes, int, int]:
    """Stream 0 a connection (SYNs 1, 2), a lone SYN (3), then its ports reused (SYN 4,
    stream 2, naming 0), three lone SYNs (5-7), stream 2's SYN sent again 300 ms later
    (8: the same stream, so not named, but the 4-tuple's last SYN now), ``lone`` lone
    SYNs, 20 s of silence (stream 2, never answered, forgotten by the tracker), and the
    ports again (SYN 9 + lone: a new stream). The capture, the two reuses' numbers."""
    c = Capture()
    c.connection(2, 5000)
    c.lone_syn(3, 6000)
    second = c.lone_syn(2, 5000, seq=9000)
    for port in (6001, 6002, 6003):
        c.lone_syn(3, port)
    c.ts += 300_000_000  # a retransmission, not a copy (segment_cases.COPY_WITHIN_NS)
    c.lone_syn(2, 5000, seq=9000)
    for port in range(6004, 6004 + lone):
        c.lone_syn(3, port)
    c.ts += 20 * 10**9
    third = c.lone_syn(2, 5000, seq=20000)
    assert c.syns == 9 + lone
    return c.data(), second, third


def test_a_later_syn_on_the_4_tuple_keeps_it() -> None:
    """The window runs from the 4-tuple's last SYN: with a window of 6, the reuse at SYN
    14 is 13 after the first filing (SYN 1) but 6 after the last (SYN 8): unsaid; at SYN
    13, 5 after it, it names stream 2, the last stream on the 4-tuple."""
    data, second, third = _kept(5)
    assert both(data, 6) == {second: 0}
    assert both(data, 7) == {second: 0, third: 2}  # one wider: named
    assert both(data, 3) == {}  # narrower: the first reuse (3 after) not named either
    data, second, third = _kept(4)
    assert both(data, 6) == {second: 0, third: 2}


def _churn(seed: int, syns: int, ports: int) -> bytes:
    """``syns`` SYNs, SYN-ACKs and closed connections at random over ``ports`` client
    ports of 3 clients: 4-tuples filed, kept, forgotten and filed again many times."""
    rng = random.Random(seed)
    c = Capture()
    seq = 1000
    while c.syns < syns:
        client, port = rng.randrange(2, 5), 10000 + rng.randrange(ports)
        seq += 1000
        kind = rng.random()
        if kind < 0.4:
            c.lone_syn(client, port, seq=seq)
        elif kind < 0.7:
            c.connection(client, port, seq=seq)
        else:  # a SYN-ACK alone (its 4-tuple is the server's side)
            c.packet(client, port, 0x012, to_server=False, seq=seq, ack=seq)
        if rng.random() < 0.05:
            c.ts += 11 * 10**9  # the tracker forgets the unanswered ones: new streams
    return c.data()


@pytest.mark.parametrize("window,syns,ports", [(1, 300, 5), (3, 600, 8), (17, 1500, 40),
                                               (1500, 8000, 900)])
def test_churn_on_both_twins(window: int, syns: int, ports: int) -> None:
    """Many 4-tuples coming back at random: the twins the same bytes, both the plain
    count. The last case keeps more 4-tuples than the compiled table's first size holds
    at 3/4 (768 of 1,024 slots): it grows while 4-tuples are deleted and filed."""
    data = _churn(window, syns, ports)
    said = both(data, window)
    assert bool(said) == (window > 1)  # reuses were said (a window of 1 SYN: never) ...
    assert len(said) < len(plain_count(data, 10**9))  # ... and some were past the window


def test_the_python_twin_holds_the_window_at_most() -> None:
    """Structure: the reference's table and its queue never hold more than the window,
    however many 4-tuples the SYNs use."""
    pipeline = Pipeline(keep=False)
    explainer = PacketExplainer(tuple_window=50)
    finder = explainer.confusions
    most = 0
    c = Capture()
    for i in range(400):
        c.connection(2 + i // 200, 10000 + i)
    for a in pipeline.packets(open_capture(io.BytesIO(c.data()))):
        explainer.explain(a)
        most = max(most, len(finder._ended), len(finder._order))
    assert most == 50 and finder._syns == 800
    with pytest.raises(ValueError):
        ConfusionFinder(window=0)
    assert ConfusionFinder()._window == TUPLE_WINDOW == 65_536


def _connections(n: int) -> bytes:
    """``n`` finished connections, each on its own 4-tuple (two SYNs each), 3 ms apart:
    past the tracker's plateau (tests/test_rows_spill.py), so only the 4-tuples differ."""
    c = Capture()
    for i in range(n):
        c.connection(2 + i // 50000, 1024 + i % 50000)
        c.ts += 2_000_000
    return c.data()


@pytest.mark.slow
def test_the_compiled_table_is_flat_past_the_window() -> None:
    """tracemalloc (it sees the engine's PyMem blocks): with a window of 2,048 SYNs the
    engine holds the same for 12,000 connections as for 6,000; with a window past both
    files it holds a 4-tuple of each SYN (64 bytes a slot, the table at most 3/4 full),
    so the measure would see them. The connections' rows go to disk past a budget of 64."""
    small_data, big_data = _connections(6000), _connections(12000)

    def run(data: bytes, window: int) -> Any:
        return compiled(data, window, rows_in_memory=64)[1]

    small = held(lambda: run(small_data, 10**9))[0]
    big = held(lambda: run(big_data, 10**9))[0]
    assert (big - small) / 6000 >= 2 * 64  # two 4-tuples a connection, kept
    small = held(lambda: run(small_data, 2048))[0]
    big = held(lambda: run(big_data, 2048))[0]
    assert (big - small) / 6000 <= 4, f"{(big - small) / 6000:.1f} bytes per connection"


def _sockcap(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    import os

    full = {k: v for k, v in os.environ.items() if k != "SOCKCAP_PURE"}
    full.update(env)
    return subprocess.run([sys.executable, "-m", "sockcap", *args], capture_output=True,
                          text=True, env=full, cwd=ROOT, timeout=300)


def _window_capture(path: Path) -> tuple[int, int]:
    """A reuse 3 SYNs after (inside a window of 4) and one 4 after (outside)."""
    c = Capture()
    c.connection(2, 5000)  # 1, 2
    c.lone_syn(3, 6000)  # 3
    inside = c.lone_syn(2, 5000, seq=9000)  # 4: 3 after SYN 1
    for port in (6001, 6002, 6003):
        c.lone_syn(3, port)  # 5, 6, 7
    c.ts += 20 * 10**9
    outside = c.lone_syn(2, 5000, seq=20000)  # 8: 4 after SYN 4
    path.write_bytes(c.data())
    return inside, outside


@pytest.mark.parametrize("pure", [False, True], ids=["compiled", "pure"])
def test_show_explain_takes_the_window_from_the_environment(tmp_path: Path, pure: bool) -> None:
    path = tmp_path / "window.pcap"
    inside, outside = _window_capture(path)
    env = {"SOCKCAP_PURE": "1"} if pure else {}
    small = _sockcap("show", "--explain", str(path), env={**env, "SOCKCAP_TUPLE_WINDOW": "4"})
    assert small.returncode == 0, small.stderr
    assert reuses(small.stdout) == {inside: 0}
    wide = _sockcap("show", "--explain", str(path), env={**env, "SOCKCAP_TUPLE_WINDOW": "5"})
    assert reuses(wide.stdout) == {inside: 0, outside: 2}
    default = _sockcap("show", "--explain", str(path), env=env)
    assert default.stdout == wide.stdout
    other = _sockcap("show", "--explain", str(path), env={"SOCKCAP_PURE": "" if pure else "1",
                                                          "SOCKCAP_TUPLE_WINDOW": "4"})
    assert other.stdout == small.stdout  # the other twin: the same bytes
    refused(_sockcap, ["show", "--explain", str(path)], "SOCKCAP_TUPLE_WINDOW",
            ("0", "many", "-3"), env)


def refused(run: Any, args: list[str], name: str, bads: tuple[str, ...],
            env: dict[str, str]) -> None:
    """Each bad value of the variable ``name``: one line naming it, exit 2, no output
    (tests/test_tcpdump_window.py checks its own variable with it too)."""
    for bad in bads:
        done = run(*args, env={**env, name: bad})
        assert done.returncode == 2 and name in done.stderr, (bad, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1 and not done.stdout


def test_the_engine_refuses_a_window_below_one() -> None:
    cls = compiled_class()
    if cls is None:
        pytest.skip("the compiled extension is not built (or SOCKCAP_PURE is set)")
    for bad in (0, -1):
        with pytest.raises(ValueError, match="tuple_window"):
            EngineRun(cls, Pipeline(keep=False), hex_=False,
                      explain={**explain_words(), "tuple_window": bad})

