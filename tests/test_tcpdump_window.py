"""``show --style tcpdump``'s table of sequence bases holds at most TCPDUMP_WINDOW
connections, the least recently used forgotten (``sockcap/render/timeline.py``, the
reference; the same rule in ``sockcap/_speedups_tcpdump.h``), so its memory stays flat
whatever the file, where tcpdump's own table grows with every connection.

A connection's bases are used by each of its segments with ACK; a connection new to a
full table takes the place of the one used longest ago, whose next segment is then
printed as tcpdump prints a connection's first: absolute numbers, new bases. A small
window (``Timeline(tcpdump_window=)``, ``Engine(tcpdump_window=)``,
``SOCKCAP_TCPDUMP_WINDOW`` for ``show``) puts the edge on small captures: the twins byte
for byte, and both held to a plain model of the rule (a list, no hashing, no links).
Memory by tracemalloc, never by time.
"""

from __future__ import annotations

import io
import random
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from test_stats_memory import held
from test_tuple_window import Capture, _connections, refused
from test_tuple_window import _sockcap as sockcap_cli

from sockcap.pcapfile.reader import open_capture
from sockcap.pipeline import Pipeline
from sockcap.pipeline.contract import Style
from sockcap.pipeline.engine import EngineRun
from sockcap.render.packets import PacketView
from sockcap.render.timeline import TCPDUMP_WINDOW
from sockcap.speedups import compiled_class

MOD32 = 1 << 32
NUMBERS = re.compile(r"Flags \[[^\]]*\](?:, seq (\d+)(?::\d+)?)?(?:, ack (\d+))?")


def reference(data: bytes, window: int) -> str:
    """The pure twin: the Python view's tcpdump notation."""
    pipeline = Pipeline(keep=False)
    view = PacketView(pipeline, style="tcpdump", tcpdump_window=window)
    return "".join(t + "\n" for t in pipeline.map(open_capture(io.BytesIO(data)), view.text))


def compiled(data: bytes, window: int) -> tuple[str, Any]:
    cls = compiled_class()
    if cls is None:
        pytest.skip("the compiled extension is not built (or SOCKCAP_PURE is set)")
    pipeline = Pipeline(keep=False)
    out: list[bytes] = []
    run = EngineRun(cls, pipeline, hex_=False, clock=pipeline, style=Style.TCPDUMP,
                    tcpdump_window=window)
    run.run(open_capture(io.BytesIO(data)), lambda chunk: out.append(bytes(chunk)), lent=True)
    return b"".join(out).decode(), run


def model(data: bytes, window: int) -> list[tuple[int, int | None]]:
    """The rule, told plainly: (seq, ack) each packet should show. A list of
    [key, bases] by last use, searched from the start; no window bookkeeping beyond it."""
    table: list[list[Any]] = []
    out: list[tuple[int, int | None]] = []
    for a in Pipeline(keep=False).packets(open_capture(io.BytesIO(data))):
        p = a.packet
        if not p.flags & 0x10:
            out.append((p.seq, None))
            continue
        forward = (p.src, p.sport) <= (p.dst, p.dport)
        key = (p.src, p.sport, p.dst, p.dport) if forward else (p.dst, p.dport, p.src, p.sport)
        found = next((row for row in table if row[0] == key), None)
        if found is not None:
            table.remove(found)
        elif len(table) == window:
            table.pop(0)
        if found is None or p.flags & 0x02:
            mine, other = p.seq, (p.ack - 1) % MOD32
            table.append([key, (mine, other) if forward else (other, mine)])
            out.append((p.seq, p.ack))
            continue
        table.append(found)
        mine, other = found[1] if forward else found[1][::-1]
        out.append(((p.seq - mine) % MOD32, (p.ack - other) % MOD32))
    return out


def shown(text: str) -> list[tuple[int | None, int | None]]:
    """(seq, ack) of each line, None for a number the line has not (tcpdump shows no seq
    for an empty segment without SYN, FIN or RST, no ack without ACK)."""
    out = []
    for line in text.splitlines():
        if line.startswith(" "):
            continue  # a guessed-roles line, not a packet's
        m = NUMBERS.search(line)
        assert m, line
        out.append(tuple(int(g) if g else None for g in m.groups()))
    return out  # type: ignore[return-value]


def both(data: bytes, window: int) -> list[tuple[int, int | None]]:
    """The twins' text the same bytes; the numbers as the model says."""
    want = reference(data, window)
    if compiled_class() is not None:  # SOCKCAP_PURE: the reference against the model alone
        assert compiled(data, window)[0] == want
    numbers = shown(want)
    told = model(data, window)
    for got, rule in zip(numbers, told, strict=True):
        assert got == (rule[0] if got[0] is not None else None, rule[1]), (got, rule)
    assert any(seq is not None for seq, _ack in numbers)
    return told


def _late_segment(others: int) -> tuple[bytes, int]:
    """Connection 0 (handshake, data), ``others`` connections after it, then a late ACK of
    connection 0: its number in the file (0-based)."""
    c = Capture()
    c.packet(2, 5000, 0x002, seq=100)
    c.packet(2, 5000, 0x012, to_server=False, seq=7000, ack=101)
    c.packet(2, 5000, 0x010, seq=101, ack=7001)
    for i in range(others):
        c.connection(3, 6000 + i, seq=1000 * (i + 1))
    late = c.packet(2, 5000, 0x011, seq=151, ack=7001) - 1
    return c.data(), late


@pytest.mark.parametrize("window", [1, 2, 5])
def test_a_connection_is_forgotten_when_the_window_starts_after_it(window: int) -> None:
    """``window - 1`` connections after connection 0's last use: its late segment is
    relative to its bases (seq 51, ack 1); ``window`` of them: printed as a first segment
    (absolute numbers)."""
    for others, forgotten in ((window - 1, False), (window, True)):
        data, late = _late_segment(others)
        numbers = both(data, window)
        assert numbers[late] == ((151, 7001) if forgotten else (51, 1)), (others, numbers[late])


def test_each_segment_with_ack_keeps_its_connection() -> None:
    """A connection used between the others is the most recently used again: with a
    window of 3, connection 0 used after every second other connection is never
    forgotten, however many pass."""
    c = Capture()
    c.packet(2, 5000, 0x002, seq=100)
    c.packet(2, 5000, 0x012, to_server=False, seq=7000, ack=101)
    used = []
    for i in range(12):
        c.connection(3, 6000 + i, seq=1000 * (i + 1))
        if i % 2:
            used.append(c.packet(2, 5000, 0x011, seq=101 + i, ack=7001) - 1)
    numbers = both(c.data(), 3)
    assert [numbers[n] for n in used] == [(1 + i, 1) for i in range(1, 12, 2)]


def _churn(seed: int, connections: int, ports: int) -> bytes:
    """Segments of ``ports`` connections at random, new ones (SYN, SYN-ACK) among them,
    so connections are used, forgotten and set again many times."""
    rng = random.Random(seed)
    c = Capture()
    for _ in range(connections):
        port = 10000 + rng.randrange(ports)
        seq = rng.randrange(MOD32)
        kind = rng.random()
        if kind < 0.3:
            c.connection(2, port, seq=seq)
        elif kind < 0.5:
            c.packet(2, port, 0x012, to_server=False, seq=seq, ack=rng.randrange(MOD32))
        else:  # a segment with ACK, either way
            c.packet(2, port, rng.choice((0x010, 0x018, 0x011)), to_server=rng.random() < 0.5,
                     seq=seq, ack=rng.randrange(MOD32))
    return c.data()


@pytest.mark.parametrize("window,connections,ports", [(1, 300, 4), (2, 400, 6), (3, 600, 9),
                                                     (17, 1500, 40), (700, 6000, 1600)])
def test_churn_on_both_twins(window: int, connections: int, ports: int) -> None:
    """The twins the same bytes, both the model's numbers. The last case fills the
    compiled index's first size (512 of 1,024 slots) and grows it while full tables
    delete and file entries."""
    data = _churn(window, connections, ports)
    numbers = both(data, window)
    assert numbers != model(data, 10**9)  # some segments were past the window


def test_the_python_twin_holds_the_window_at_most() -> None:
    pipeline = Pipeline(keep=False)
    view = PacketView(pipeline, style="tcpdump", tcpdump_window=50)
    most = 0
    for a in pipeline.packets(open_capture(io.BytesIO(_connections(400)))):
        view.text(a)
        most = max(most, len(view.timeline._tcpdump_seq))
    assert most == 50
    assert PacketView(pipeline, style="tcpdump").timeline.tcpdump_window == TCPDUMP_WINDOW


@pytest.mark.slow
def test_the_compiled_table_is_flat_past_the_window() -> None:
    """tracemalloc (it sees the engine's PyMem blocks): with a window of 2,048 connections
    the engine holds the same for 12,000 connections as for 6,000; with a window past both
    files it holds an entry of each (64 bytes and its index), so the measure sees them."""
    small_data, big_data = _connections(6000), _connections(12000)

    def run(data: bytes, window: int) -> Any:
        return compiled(data, window)[1]

    small = held(lambda: run(small_data, 10**9 * 2))[0]
    big = held(lambda: run(big_data, 10**9 * 2))[0]
    assert (big - small) / 6000 >= 64
    small = held(lambda: run(small_data, 2048))[0]
    big = held(lambda: run(big_data, 2048))[0]
    assert (big - small) / 6000 <= 4, f"{(big - small) / 6000:.1f} bytes per connection"


def _sockcap(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return sockcap_cli(*args, env={**env, "TZ": "UTC"})


@pytest.mark.parametrize("pure", [False, True], ids=["compiled", "pure"])
def test_show_takes_the_window_from_the_environment(tmp_path: Path, pure: bool) -> None:
    path = tmp_path / "window.pcap"
    data, late = _late_segment(3)
    path.write_bytes(data)
    env = {"SOCKCAP_PURE": "1"} if pure else {}
    small = _sockcap("show", "--style", "tcpdump", str(path),
                     env={**env, "SOCKCAP_TCPDUMP_WINDOW": "3"})
    assert small.returncode == 0, small.stderr
    assert shown(small.stdout)[late] == (151, 7001)
    wide = _sockcap("show", "--style", "tcpdump", str(path),
                    env={**env, "SOCKCAP_TCPDUMP_WINDOW": "4"})
    assert shown(wide.stdout)[late] == (51, 1)
    assert _sockcap("show", "--style", "tcpdump", str(path), env=env).stdout == wide.stdout
    other = _sockcap("show", "--style", "tcpdump", str(path),
                     env={"SOCKCAP_PURE": "" if pure else "1", "SOCKCAP_TCPDUMP_WINDOW": "3"})
    assert other.stdout == small.stdout  # the other twin: the same bytes
    refused(_sockcap, ["show", "--style", "tcpdump", str(path)], "SOCKCAP_TCPDUMP_WINDOW",
            ("0", "many", "-3", str(1 << 31)), env)


def test_the_engine_refuses_a_window_out_of_range() -> None:
    cls = compiled_class()
    if cls is None:
        pytest.skip("the compiled extension is not built (or SOCKCAP_PURE is set)")
    for bad in (-1, 1 << 31):
        with pytest.raises(ValueError, match="tcpdump_window"):
            EngineRun(cls, Pipeline(keep=False), hex_=False, style=Style.TCPDUMP,
                      tcpdump_window=bad)
