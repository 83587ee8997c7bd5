"""Rows kept on disk past a budget (``sockcap/_speedups_spill.h``, issue 23).

The compiled engine holds at most ``rows_in_memory`` rows of a table (``stats``' rows of
one protocol, ``show --explain``'s connections) in memory; older chunks go to an unlinked
temporary file, and a row made later for a chunk already there (a conversation that
outlived many later ones, or one still held at the end) is written to its place in the
file. ``SOCKCAP_ROWS_IN_MEMORY`` (``Engine(rows_in_memory=)``) sets a small budget, so
these tests write rows on small captures and hold the result to the pure twin's (the
reference, which keeps its rows in memory): the same rows, the same bytes. That the
spilling happened is seen from outside: the engine holds an open file in ``$TMPDIR`` that
has no name there. Memory is counted by the allocator's tally (tracemalloc sees the
engine's PyMem blocks), never by time.
"""

from __future__ import annotations

import gc
import io
import os
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_explain_engine import engine_run, reference
from test_show_memory import ETH_IP, conversation, segment
from test_stats_memory import held

from sockcap.decode.records import LINKTYPE_ETHERNET, RawFrame
from sockcap.errors import CaptureFileError, SpillError
from sockcap.pcapfile.reader import open_capture
from sockcap.pcapfile.writer import write_pcap
from sockcap.pipeline import Pipeline
from sockcap.pipeline.engine import EngineRun, PureEngine, stats_run
from sockcap.render.explain import EngineExplanations
from sockcap.render.explain_words import explain_words
from sockcap.speedups import compiled_class

T0 = 1_700_000_000_000_000_000


def _compiled() -> Any:
    cls = compiled_class()
    if cls is None:
        pytest.skip("the compiled extension is not built (or SOCKCAP_PURE is set)")
    return cls


def _udp(sport: int, dport: int, payload: bytes) -> bytes:
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0,
                     b"\x7f\x00\x00\x01", b"\x7f\x00\x00\x01")
    return ETH_IP + ip + udp


def _frames(n: int, gap_ns: int) -> Iterator[RawFrame]:
    """``n`` finished TCP conversations, one every ``gap_ns``; beside them a TCP
    connection and a UDP flow that stay open from the first to the last (a packet each
    every 50 conversations: they outlive every chunk written), a connection that ends
    half-way (its row made long after its chunk went to disk), and three left open at the
    end (rows made when the rows are first read)."""
    def frame(i: int, j: int, data: bytes) -> RawFrame:
        return RawFrame(T0 + i * gap_ns + j * 1000, LINKTYPE_ETHERNET, data, len(data))

    long_seq = 5000
    yield frame(0, 0, segment(7000, 6000, 4999, 0, 0x02))
    yield frame(0, 1, segment(6000, 7000, 100, 5000, 0x12))
    yield frame(0, 2, segment(7100, 6100, 1, 0, 0x02))  # ends half-way
    yield frame(0, 3, segment(6100, 7100, 50, 2, 0x12))
    for i in range(n):
        for j, data in enumerate(conversation(i)):
            yield frame(i, 10 + j, data)
        if i % 50 == 0:
            yield frame(i, 30, segment(7000, 6000, long_seq, 101, 0x18, b"tick"))
            long_seq += 4
            yield frame(i, 31, _udp(7200, 53, b"q%d" % i))
            yield frame(i, 32, _udp(8000 + i // 50 % 1000, 53, b"one"))  # a flow each
        if i == n // 2:
            yield frame(i, 33, segment(7100, 6100, 2, 51, 0x14))  # reset
    for k in range(3):  # open at the end
        yield frame(n, 40 + k, segment(7300 + k, 6300, 1, 0, 0x02))


def _capture(tmp_path: Path, n: int, gap_ns: int = 3_000_000) -> bytes:
    path = tmp_path / f"spill-{n}-{gap_ns}.pcap"
    write_pcap(str(path), _frames(n, gap_ns), LINKTYPE_ETHERNET)
    return path.read_bytes()


def _unnamed_files_in(directory: Path) -> int:
    """Files this process holds open in ``directory`` that have no name there (the
    engine's rows: O_TMPFILE, or unlinked at once)."""
    found = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(f"{directory}/") and target.endswith(" (deleted)"):
            found += 1
    return found


@pytest.fixture
def spill_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """$TMPDIR for the engine's file: empty, and empty again after (nothing named)."""
    folder = tmp_path / "rows"
    folder.mkdir()
    monkeypatch.setenv("TMPDIR", str(folder))
    yield folder
    assert list(folder.iterdir()) == []


def _stats_rows(cls: Any, data: bytes, budget: int = 0) -> tuple[list[Any], Any]:
    """stats' rows as the command reads them (damage stops the reading, the rows stay),
    twice (the column widths' pass, then the rows'), and the run."""
    run = stats_run(cls, Pipeline(), budget)
    try:
        run.run(open_capture(io.BytesIO(data)), lambda chunk: None)
    except CaptureFileError:
        pass
    rows = run.conversation_rows()
    first = list(rows)
    assert list(rows) == first
    assert [rows[i] for i in range(len(rows) - 1, -1, -1)] == first[::-1]  # any order
    return first, run


# Budgets in rows: 1 (a chunk of one row, one in memory), 3 (chunks of one, three held),
# 6 (chunks of two), 64 (chunks of 32): all far below the captures' conversations.
BUDGETS = (1, 3, 6, 64)


@pytest.fixture(scope="module")
def mid_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, list[Any]]:
    """The capture of 6,000 conversations and the pure twin's rows of it."""
    data = _capture(tmp_path_factory.mktemp("mid-file"), 6000)
    return data, _stats_rows(PureEngine, data)[0]


@pytest.mark.parametrize("budget", BUDGETS)
def test_stats_rows_on_disk_are_the_pure_twins(mid_file: tuple[bytes, list[Any]],
                                                spill_dir: Path, budget: int) -> None:
    """6,000 conversations, each forgotten mid-file after 4,096 later ones (3 ms apart):
    the rows of chunks written early, the long-lived connection's and flow's rows made
    long after their chunks went to disk, and the rows of those held at the end: all
    equal to the pure twin's, read twice and in any order."""
    cls = _compiled()
    data, want = mid_file
    got, run = _stats_rows(cls, data, budget)
    assert _unnamed_files_in(spill_dir) == 3  # a file each of TCP's, UDP's rows, notes
    assert got == want
    assert len(got) == 6000 + 6 + 120
    del run
    gc.collect()
    assert _unnamed_files_in(spill_dir) == 0  # closed with the engine


def test_stats_rows_after_damage(tmp_path: Path, spill_dir: Path) -> None:
    """A file cut in the middle of a record: the rows of what was read are the pure
    twin's (stats prints them after the damage line)."""
    cls = _compiled()
    data = _capture(tmp_path, 700, gap_ns=1_000_000)
    data = data[: len(data) * 2 // 3 + 5]
    want, _ = _stats_rows(PureEngine, data)
    got, _run = _stats_rows(cls, data, 4)
    assert _unnamed_files_in(spill_dir) >= 1
    assert got == want and len(got) > 400


def test_the_default_budget_writes_nothing_for_a_small_capture(tmp_path: Path,
                                                               spill_dir: Path) -> None:
    """Below the budget (65,536 rows a table) no file is made."""
    cls = _compiled()
    data = _capture(tmp_path, 700)
    got, _run = _stats_rows(cls, data)
    assert _unnamed_files_in(spill_dir) == 0
    assert got == _stats_rows(PureEngine, data)[0]


def _explained(cls: Any, data: bytes, budget: int) -> tuple[str, Any]:
    """``show --explain`` on the compiled twin with ``budget`` rows in memory."""
    return engine_run(cls, data, rows_in_memory=budget)


@pytest.mark.parametrize("budget", [1, 6, 64])
def test_explain_connections_on_disk_are_the_reference(tmp_path: Path, spill_dir: Path,
                                                       budget: int) -> None:
    """``show --explain``'s connections list at the end, its rows written to disk past
    the budget (the long-lived connection's made at the end, the half-way one's long
    after its chunk went): byte for byte the pure path's text; a damaged file too."""
    cls = _compiled()
    data = _capture(tmp_path, 1500, gap_ns=1_000_000)
    want = reference(data)
    got, run = _explained(cls, data, budget)
    assert _unnamed_files_in(spill_dir) == 1
    assert got == want
    summary = list(EngineExplanations(run.engine).summary())  # read again: the same
    assert len(summary) == 1500 + 5 + 1  # the heading, a line per connection
    assert "".join(f"{line}\n" for line, _style in summary) in want
    cut = data[: len(data) // 2 + 3]
    assert _explained(cls, cut, budget)[0] == reference(cut)


def _sockcap(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sockcap", *args], capture_output=True,
                          text=True, timeout=600, env={**os.environ, **env})


def test_commands_with_a_small_budget(tmp_path: Path, spill_dir: Path) -> None:
    """``stats``, ``stats --json`` and ``show --explain`` with SOCKCAP_ROWS_IN_MEMORY=5
    print what the pure twin prints; nothing is left in $TMPDIR (checked by the fixture)."""
    _compiled()
    path = tmp_path / "c.pcap"
    path.write_bytes(_capture(tmp_path, 800, gap_ns=1_000_000))
    for args in (["stats"], ["stats", "--json"], ["show", "--explain"]):
        small = _sockcap(*args, str(path), env={"SOCKCAP_ROWS_IN_MEMORY": "5"})
        pure = _sockcap(*args, str(path), env={"SOCKCAP_PURE": "1"})
        assert (small.returncode, small.stdout) == (0, pure.stdout), args


def test_no_temporary_directory_is_one_line(tmp_path: Path) -> None:
    """No $TMPDIR to write the rows to: one line and exit code 1, no traceback."""
    _compiled()
    path = tmp_path / "c.pcap"
    path.write_bytes(_capture(tmp_path, 300, gap_ns=1_000_000))
    missing = tmp_path / "missing"
    for args in (["stats"], ["show", "--explain"]):
        done = _sockcap(*args, str(path), env={"SOCKCAP_ROWS_IN_MEMORY": "2",
                                               "TMPDIR": str(missing)})
        assert done.returncode == 1, args
        assert done.stderr.strip().splitlines() == [f"sockcap: {SpillError(2, str(missing))}"]
        assert "Traceback" not in done.stderr


def test_a_bad_budget_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "c.pcap"
    path.write_bytes(_capture(tmp_path, 10))
    done = _sockcap("stats", str(path), env={"SOCKCAP_ROWS_IN_MEMORY": "lots"})
    assert done.returncode == 2 and "SOCKCAP_ROWS_IN_MEMORY" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


# The memory proof: two files past the tracker's plateau (a conversation every 3 ms,
# see tests/test_stats_memory.py), 4 and 8 chunks of rows, with a budget of 2 chunks:
# what the allocator holds for the larger file less the smaller's, per conversation more.
# Kept in memory, a stats row is 144 bytes; on disk what stays per row is the table's
# chunk pointer and on-disk flag (9 bytes a 4,096-row chunk).
SIZES = (4 * 4096, 8 * 4096)
PER_ROW_LIMIT = 4  # bytes; in memory it would be 144 (stats), 44 (--explain)


@pytest.fixture(scope="module")
def size_captures(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes]:
    folder = tmp_path_factory.mktemp("spill-sizes")
    return _capture(folder, SIZES[0]), _capture(folder, SIZES[1])


@pytest.mark.slow
def test_stats_memory_past_the_budget_is_flat(size_captures: tuple[bytes, bytes],
                                              spill_dir: Path) -> None:
    cls = _compiled()

    def run(data: bytes, budget: int = 2 * 4096) -> Any:
        r = stats_run(cls, Pipeline(), budget)
        r.run(open_capture(io.BytesIO(data)), lambda chunk: None)
        return r

    # the measure sees rows held in memory (a budget past both files: 144 bytes a row)
    small = held(lambda: run(size_captures[0], 10**9))[0]
    big = held(lambda: run(size_captures[1], 10**9))[0]
    assert (big - small) / (SIZES[1] - SIZES[0]) >= 144
    small = held(lambda: run(size_captures[0]))[0]
    big, kept = held(lambda: run(size_captures[1]))
    per_row = (big - small) / (SIZES[1] - SIZES[0])
    assert per_row <= PER_ROW_LIMIT, f"{per_row:.1f} bytes per finished conversation"
    assert _unnamed_files_in(spill_dir) == 2  # TCP's rows, the notes (no UDP over 2 chunks)
    rows = kept.conversation_rows()
    assert [r.stream for r in rows][: SIZES[1] + 1] == list(range(SIZES[1] + 1))


@pytest.mark.slow
def test_explain_memory_past_the_budget_is_flat(tmp_path_factory: pytest.TempPathFactory,
                                                spill_dir: Path) -> None:
    """The connections' rows only: the client ports repeat (5,000 of them, one every
    15 s of capture time: each time a new connection, the last one on them forgotten), so
    the SYNs' 4-tuples (the port-reuse sentence's table, its window of 65,536 SYNs past
    both files: tests/test_tuple_window.py) are the same 10,000 in both files."""
    cls = _compiled()
    folder = tmp_path_factory.mktemp("explain-sizes")

    def capture(n: int) -> bytes:
        def frames() -> Iterator[RawFrame]:
            for i in range(n):
                for j, data in enumerate(conversation(i % 5000)):
                    yield RawFrame(T0 + i * 3_000_000 + j * 1000, LINKTYPE_ETHERNET, data,
                                   len(data))
        path = folder / f"e{n}.pcap"
        write_pcap(str(path), frames(), LINKTYPE_ETHERNET)
        return path.read_bytes()

    def run(data: bytes, budget: int = 2 * 4096) -> Any:
        pipeline = Pipeline(keep=False)
        r = EngineRun(cls, pipeline, hex_=False, explain=explain_words(), clock=pipeline,
                      rows_in_memory=budget)
        r.run(open_capture(io.BytesIO(data)), lambda chunk: None)
        return r

    files = capture(SIZES[0]), capture(SIZES[1])
    # the measure sees rows held in memory (a budget past both files: 44 bytes a row)
    small = held(lambda: run(files[0], 10**9))[0]
    big = held(lambda: run(files[1], 10**9))[0]
    assert (big - small) / (SIZES[1] - SIZES[0]) >= 30
    small = held(lambda: run(files[0]))[0]
    big, kept = held(lambda: run(files[1]))
    per_row = (big - small) / (SIZES[1] - SIZES[0])
    assert per_row <= PER_ROW_LIMIT, f"{per_row:.1f} bytes per connection"
    assert _unnamed_files_in(spill_dir) == 1
    lines = sum(1 for _ in EngineExplanations(kept.engine).summary())
    assert lines == SIZES[1] + 1  # the heading and a line per connection
