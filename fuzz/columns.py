"""The export's columns (``Engine.columns()``/``batch()``, ``conversation_batch()``;
sockcap/_speedups_columns.h, sockcap/_speedups_convcols.h) on
mutated captures: run by ``bash fuzz/sanitize.sh SECONDS columns`` against the build with
AddressSanitizer and UndefinedBehaviorSanitizer, where a sanitizer report is the finding;
``--compare`` also runs the pure twin and requires the same batches and conversations.

    python fuzz/columns.py --inputs 20000 --seed 1 [--corpus] [--compare]

Each input goes through the export's own loop (:func:`sockcap.export.job._run_columns`)
with batches of 7 rows or 600 payload bytes, 3 conversations (many batches, cut
mid-buffer), into sinks that
keep what they are given; the Python side turns nothing into Arrow (the C buffers are the
thing checked).
"""

from __future__ import annotations

import argparse
import io
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import differential  # noqa: F401  (loads the sanitized build it is given)
from mutators import make_input
from seeds import CORPUS, load_seeds

from sockcap.errors import SockcapError

TABLES = ("packets", "conversations")


class Keep:
    def __init__(self) -> None:
        self.got: list[Any] = []

    def add_batch(self, rows: int, columns: Any) -> None:
        self.got.append((rows, columns))

    def add(self, row: dict[str, Any], size: int = 0) -> None:
        self.got.append(row)


def export(engine_class: Any, data: bytes) -> tuple[Any, ...]:
    from sockcap.export.job import ExportJob, _run_columns
    from sockcap.pcapfile.reader import open_capture

    sinks = {t: Keep() for t in TABLES}
    try:
        reader = open_capture(io.BytesIO(data))
        failure = _run_columns(ExportJob("-", "cap", "", TABLES, "parquet"), reader,
                               sinks, None, engine_class)  # type: ignore[arg-type]
    except SockcapError as e:
        failure = e
    return sinks["packets"].got, sinks["conversations"].got, str(failure or "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--time-limit", type=float, default=0, help="seconds (0: none)")
    parser.add_argument("--corpus", action="store_true", help="also the corpus files as they are")
    parser.add_argument("--compare", action="store_true", help="and the pure twin: same output")
    a = parser.parse_args()
    from sockcap.export import sinks
    from sockcap.pipeline.engine import PureEngine
    from sockcap.speedups import compiled_class

    compiled = compiled_class()
    if compiled is None:
        sys.exit("columns: the compiled extension is not available")
    sinks.GROUP_ROWS["packets"], sinks.GROUP_BYTES, sinks.GROUP_ROWS["conversations"] = 7, 600, 3
    seeds = load_seeds()
    started = time.monotonic()
    done = findings = rows = 0

    def one(name: str, data: bytes) -> None:
        nonlocal done, findings, rows
        got = export(compiled, data)
        done += 1
        rows += sum(n for n, _columns in got[0]) + sum(n for n, _columns in got[1])
        if a.compare and export(PureEngine, data) != got:
            findings += 1
            print(f"{name}: the twins differ", flush=True)

    if a.corpus:
        for path in sorted(CORPUS.rglob("*.pcap*")):
            one(f"corpus {path.name}", path.read_bytes())
    for i in range(a.start, a.start + a.inputs):
        if a.time_limit and time.monotonic() - started > a.time_limit:
            break
        description, data = make_input(seeds, random.Random((a.seed << 32) | i))
        one(f"input {i} ({description})", data)
        if done % 10000 == 0:
            print(f"{done} inputs, {time.monotonic() - started:.0f} s", flush=True)
    module = sys.modules.get("sockcap._speedups")
    print(f"columns: {done} inputs ({rows} rows) in {time.monotonic() - started:.0f} s, "
          f"{findings if a.compare else 'no'} differences"
          f"{'' if a.compare else ' looked for'} (extension: {getattr(module, '__file__', '?')})",
          flush=True)
    sys.exit(1 if findings else 0)


if __name__ == "__main__":
    main()
