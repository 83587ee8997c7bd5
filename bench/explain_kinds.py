"""Which sentences ``show --explain`` says, and how often (issue 23): the count of each
case (:class:`~sockcap.render.explain.Why`) and of each confusion over FILE, to see
which cases the compiled engine must word itself and which are rare.

Usage::

    python bench/explain_kinds.py FILE [FILE ...]

Runs the reference explainer (:class:`~sockcap.render.explain.PacketExplainer`) over each
packet as ``show --explain`` hands them to it, and prints a table per file: each case's
count and share of the packets, then the confusions' counts.
"""

from __future__ import annotations

import argparse
import gc
from pathlib import Path

from sockcap.pcapfile.reader import open_capture
from sockcap.pipeline import Pipeline
from sockcap.pipeline.engine import EngineRun
from sockcap.render.explain import PacketExplainer
from sockcap.speedups import engine_class


def kinds(path: Path) -> tuple[int, PacketExplainer, int]:
    pipeline = Pipeline(keep=False)
    explainer = PacketExplainer()
    none = 0

    def view(a: object) -> None:
        nonlocal none
        if explainer.explain(a) is None:  # type: ignore[arg-type]
            none += 1

    run = EngineRun(engine_class(), pipeline, hex_=False, view=view, clock=pipeline)
    gc.disable()
    with path.open("rb") as f:
        reader = open_capture(f)
        run.run(reader, lambda _b: None, reader=reader)
    gc.enable()
    return reader.packets, explainer, none


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("files", type=Path, nargs="+")
    args = ap.parse_args()
    for path in args.files:
        packets, explainer, none = kinds(path)
        print(f"\n{path.name}: {packets} packets ({none} without a sentence)\n")
        print("| case (Why) | packets | share |")
        print("| --- | ---: | ---: |")
        for why, count in sorted(explainer.counts.items(), key=lambda kv: -kv[1]):
            print(f"| {why.value} | {count} | {count / max(packets, 1):.4%} |")
        for kind, count in sorted(explainer.confusions.counts.items(), key=lambda kv: -kv[1]):
            print(f"| confusion: {kind.value} | {count} | {count / max(packets, 1):.4%} |")


if __name__ == "__main__":
    main()
