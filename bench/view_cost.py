"""Where the time of a view handed each packet goes: the engine alone, the hand-over, the
plain line in Python, the explainer's sentences (``show --explain``, issue 23).

Usage::

    python bench/view_cost.py FILE [--rounds 3]

(sockcap as installed, or another tree's with ``PYTHONPATH=TREE``).

Runs :class:`~sockcap.pipeline.engine.EngineRun` (the loop of ``sockcap show``) over FILE
with the engine ``sockcap.speedups.engine_class()`` chooses (``SOCKCAP_PURE=1``: the pure
twin) and, in turn, these views, each round through them all (interleaved), and prints
the median CPU time (``time.process_time``, this process only) of each and the step from
the one before, per packet:

- ``engine``: no view, the engine's own plain text (``sockcap show``);
- ``hand-over``: a view that writes nothing: the engine makes each packet's records (the
  Packet, the Annotated tuple, the conversation's view, the notes) and calls it;
- ``line``: the plain Wireshark-style line written by the Python view (PacketView.text);
- ``sentences``: the explainer's sentence of each packet, nothing else written
  (PacketExplainer.sentence: the TCP sentences, the confusions, Zeek's state);
- ``explain``: the view ``show --explain`` hands over (the line and the sentence).

The text goes nowhere (it is made and dropped), so no I/O is measured.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sockcap.pcapfile.reader import open_capture
from sockcap.pipeline import Pipeline
from sockcap.pipeline.engine import EngineRun
from sockcap.render.explain import PacketExplainer
from sockcap.render.packets import PacketView
from sockcap.speedups import engine_class

# each view's step is measured from this one (the sentences beside the line, not on it)
STEP_FROM = {"hand-over": "engine", "line": "hand-over", "sentences": "hand-over",
             "explain": "hand-over"}


def views(pipeline: Pipeline) -> dict[str, Callable[[Any], str | None] | None]:
    explainer = PacketExplainer()
    return {
        "engine": None,
        "hand-over": lambda a: None,
        "line": PacketView(pipeline).text,
        "sentences": lambda a: explainer.sentence(a) and None,
        "explain": PacketView(pipeline, explainer=PacketExplainer()).text,
    }


def one(path: Path, name: str) -> tuple[float, int]:
    pipeline = Pipeline(keep=False)
    view = views(pipeline)[name]
    run = EngineRun(engine_class(), pipeline, hex_=False, view=view,
                    clock=pipeline if view is not None else None)
    gc.disable()
    with path.open("rb") as f:
        reader = open_capture(f)
        start = time.process_time()
        run.run(reader, lambda _b: None, reader=reader)
        spent = time.process_time() - start
    gc.enable()
    return spent, reader.packets


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("file", type=Path)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    names = list(views(Pipeline(keep=False)))
    times: dict[str, list[float]] = {n: [] for n in names}
    packets = 0
    for _round in range(args.rounds):
        for name in names:
            spent, packets = one(args.file, name)
            times[name].append(spent)
    print(f"{args.file.name}: {packets} packets, {engine_class().__name__}, median CPU of "
          f"{args.rounds} interleaved rounds\n")
    print("| view | CPU s | µs a packet | step, µs a packet |")
    print("| --- | ---: | ---: | ---: |")
    per = {name: statistics.median(times[name]) / packets * 1e6 for name in names}
    for name in names:
        base = STEP_FROM.get(name)
        step = "" if base is None else f"{per[name] - per[base]:+.2f} from {base}"
        print(f"| {name} | {statistics.median(times[name]):.2f} | {per[name]:.2f} | {step} |")

if __name__ == "__main__":
    main()
