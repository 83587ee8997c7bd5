"""`sockcap stats` keeps a compact row per finished conversation, not the conversation.

The tracker forgets a finished conversation as `show`'s does; what stays is its stats row,
packed (a struct in the compiled engine, 92 bytes of a bytearray in the pure one). These
tests count what is held, by structure and by the allocator's own tally (tracemalloc sees
the C engine's PyMem allocations too), never by time; the peak RSS figures are
bench/memory_bench.py's (bench/RESULTS.md).
"""

from __future__ import annotations

import gc
import io
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from conftest import first_run_only
from test_show_memory import make_capture

from sockcap.analysis.conversation import RETIRE_MAX, Conversation
from sockcap.analysis.stats import _ROW
from sockcap.pcapfile.reader import open_capture
from sockcap.pipeline import Pipeline
from sockcap.pipeline.engine import stats_run

ROW_BYTES = 200  # the most a finished conversation may cost `stats` (issue 27)


def _stats(engine_class: Any, data: bytes) -> Any:
    """The stats loop over ``data``; its EngineRun (rows not read yet)."""
    run = stats_run(engine_class, Pipeline())
    run.run(open_capture(io.BytesIO(data)), lambda chunk: None)
    return run


def _capture(tmp_path: Path, conversations: int, gap_ns: int = 1_000_000) -> bytes:
    path = tmp_path / f"finished-{conversations}-{gap_ns}.pcap"
    make_capture(path, conversations, gap_ns)  # 8 packets each, one every gap_ns
    return path.read_bytes()


# Both files of the per-row test are made once and read by both engines. A conversation
# every 3 ms: 4,096 later ones (RETIRE_AFTER) are 12.3 s of capture time, more than
# RETIRE_IDLE_NS, so the tracker forgets every finished conversation as soon as 4,096 wait
# behind it and holds 4,096 from the 4,097th on, in both files: the plateau. Sizes in whole
# chunks of the compiled engine's rows (4,096 rows a chunk): the difference is two whole
# chunks, so the cost per row is not flattered by a chunk counted in one file and not the
# other. What is proven is the bound per finished conversation, not a size of file: the
# difference of 8,192 rows is 1.2 MB of rows in the compiled engine (0.75 MB in the pure
# one), where the allocator's tally counts exactly what is held.
PER_ROW_SIZES = (2 * 4096, 4 * 4096)
PER_ROW_GAP_NS = 3_000_000


@pytest.fixture(scope="module")
def per_row_captures(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes]:
    folder = tmp_path_factory.mktemp("finished")
    small, big = (_capture(folder, n, PER_ROW_GAP_NS) for n in PER_ROW_SIZES)
    return small, big


def held(fn: Any) -> tuple[int, Any]:
    """What the allocator holds once ``fn()`` has run (its objects collected but what it
    returns): (bytes, what it returned). tests/test_rows_spill.py and
    tests/test_tuple_window.py measure with it too."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = fn()
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before, kept
    finally:
        tracemalloc.stop()


def _held_bytes(engine_class: Any, data: bytes) -> tuple[int, Any]:
    """What the allocator holds for the engine once the file is read: (bytes, run)."""
    return held(lambda: _stats(engine_class, data))


@pytest.mark.slow
def test_stats_keeps_a_compact_row_per_finished_conversation(
        engine_twin: Any, per_row_captures: tuple[bytes, bytes]) -> None:
    """What the allocator holds for a file of 16,384 finished conversations less what it
    holds for 8,192, both past the plateau of conversations held (PER_ROW_SIZES says why
    these sizes): at most ROW_BYTES a conversation, and every row there. Once per twin
    (engine_twin: skipped by .ci/run's second run, which would repeat it)."""
    small, big = PER_ROW_SIZES
    held_small, run = _held_bytes(engine_twin, per_row_captures[0])
    del run
    held_big, run = _held_bytes(engine_twin, per_row_captures[1])
    per_row = (held_big - held_small) / (big - small)
    assert 0 < per_row <= ROW_BYTES, f"{per_row:.0f} bytes per finished conversation"
    rows = run.conversation_rows()
    assert len(rows) == big
    assert [r.stream for r in rows] == list(range(big))  # every stream has its row, in order
    last = rows[big - 1]
    assert (last.packets, last.payload, last.ended.name) == ((5, 3), (5, 5), "CLOSED")


@first_run_only("it picks the pure engine itself")
def test_the_pure_tracker_holds_a_bounded_number_of_conversations(tmp_path: Path) -> None:
    """The pure engine's live Conversation objects are bounded by the tracker's queues
    (each at most RETIRE_MAX + 1), whatever the number finished; the rest are rows.
    It names PureEngine itself, so SOCKCAP_PURE changes nothing in it: .ci/run's second
    run would repeat the first's."""
    from sockcap.pipeline.engine import PureEngine

    n = 2 * RETIRE_MAX + 4096
    run = _stats(PureEngine, _capture(tmp_path, n))
    gc.collect()
    live = sum(isinstance(o, Conversation) for o in gc.get_objects())
    assert 0 < live <= 2 * (RETIRE_MAX + 1) < n
    assert len(run.conversation_rows()) == n  # the held ones' rows added at the end
    assert len(run.engine.rows._packed[0]) == n * _ROW.size <= n * ROW_BYTES  # packed


def test_both_engines_give_the_same_rows_after_forgetting(tmp_path: Path) -> None:
    """Rows of conversations forgotten mid-file and of those still held at the end are
    the same on both engines (TCP then UDP, each by stream)."""
    from sockcap.pipeline.engine import PureEngine
    from sockcap.speedups import compiled_class

    compiled = compiled_class()
    if compiled is None:
        pytest.skip("the compiled extension is not built (or SOCKCAP_PURE is set)")
    data = _capture(tmp_path, RETIRE_MAX + 3000)
    assert list(_stats(compiled, data).conversation_rows()) == \
        list(_stats(PureEngine, data).conversation_rows())
