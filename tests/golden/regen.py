"""Rewrite every expected output of tests/golden/TESTLIST from the current code.

Run on purpose when the timeline format changes, then review ``git diff tests/golden``:
    python tests/golden/regen.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import test_diagram
from test_golden import cases, render

if __name__ == "__main__":
    for case in cases():
        if case.capture is None:
            print(f"skip {case.name}: corpus not present")
            continue
        (Path(__file__).parent / case.expected).write_text(render(case), encoding="utf-8")
        print(f"wrote {case.expected}")
    for diagram in test_diagram.CASES:
        (Path(__file__).parent / diagram.name).write_text(test_diagram.render(diagram),
                                                          encoding="utf-8")
        print(f"wrote {diagram.name}")
