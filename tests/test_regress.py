"""Crash reproducers found by fuzzing, kept forever (tcpdump's habit).

Each file in tests/regress/ is an input that once made sockcap raise something other
than a DecodeError, loop, or blow up in memory. Each must now give a timeline or a
DecodeError through the reader, the decoder and every view (fuzz/fuzz_reader.py's
``check_input``), and ``sockcap show`` must exit with a one-line message, no traceback.
A reproducer whose fix has not landed yet is listed in KNOWN with the reason; its test is
an expected failure (strict: it fails loudly once fixed, so the entry gets removed).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from conftest import ROOT, sockcap

sys.path.insert(0, str(ROOT / "fuzz"))

from fuzz_reader import check_input

REGRESS = Path(__file__).resolve().parent / "regress"
FILES = sorted(p for p in REGRESS.iterdir() if p.suffix in (".pcap", ".pcapng"))

# file name -> why it still fails (remove the entry when the fix lands)
KNOWN: dict[str, str] = {
}


def _param(path: Path) -> object:
    reason = KNOWN.get(path.name)
    marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
    return pytest.param(path, id=path.name, marks=marks)


@pytest.mark.parametrize("path", [_param(p) for p in FILES])
def test_reproducer_gives_a_timeline_or_a_decode_error(path: Path) -> None:
    check_input(path.read_bytes())


@pytest.mark.parametrize("path", [_param(p) for p in FILES])
def test_show_exits_with_one_line(path: Path) -> None:
    for extra in ((), ("--hex",), ("--json",), ("--explain",), ("--style", "tcpdump")):
        done = sockcap("show", *extra, str(path))
        assert "Traceback" not in done.stderr, done.stderr
        assert done.returncode in (0, 3, 4), done.stderr
