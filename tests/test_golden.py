"""Golden files in tcpdump's TESTLIST style: a capture, options, and the expected output.

Each case runs the real CLI (``sockcap show``) and compares stdout, stderr's last line and
the exit code, exactly, with ``tests/golden/<expected>``. ``python tests/golden/regen.py``
rewrites them when the format changes on purpose; the diff is then reviewed.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import NamedTuple

import pytest
from conftest import CORPUS, sockcap

GOLDEN = Path(__file__).resolve().parent / "golden"


class Case(NamedTuple):
    name: str
    capture: Path | None  # None: in the corpus, which is not present
    expected: str
    options: list[str]


def cases() -> list[Case]:
    out = []
    for line in (GOLDEN / "TESTLIST").read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, capture, expected, *options = shlex.split(line)
        if capture.startswith("corpus:"):
            path: Path | None = CORPUS / capture.removeprefix("corpus:")
            path = path if path and path.exists() else None
        else:
            path = GOLDEN / capture
        out.append(Case(name, path, expected, options))
    return out


def render(case: Case, env: dict[str, str | None] | None = None) -> str:
    assert case.capture is not None
    res = sockcap("show", str(case.capture), *case.options, env=env)
    text = res.stdout
    if res.returncode or res.stderr:
        text += f"--- exit {res.returncode}\n" + res.stderr
    return text


@pytest.mark.parametrize("case", cases(), ids=lambda c: c.name)
def test_golden(case: Case, sockcap_path: dict[str, str | None]) -> None:
    """Each case on both paths: the compiled one (when built) and the pure one."""
    if case.capture is None:
        pytest.skip(f"corpus not present at {CORPUS}")
    expected = (GOLDEN / case.expected).read_text(encoding="utf-8")
    assert render(case, sockcap_path) == expected
