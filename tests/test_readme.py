"""The README as a new user reads it: its tables whole, its examples runnable from a fresh
clone and as the tool prints them now, and every extra it needs named where it is used."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from conftest import ROOT, sockcap

README = (ROOT / "README.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    start = README.index(f"## {title}")
    end = README.find("\n## ", start + 1)
    return README[start:end]


def test_other_commands_table_is_one_table() -> None:
    lines = _section("The other commands").splitlines()
    rows = [n for n, line in enumerate(lines) if line.startswith("|")]
    assert rows == list(range(rows[0], rows[-1] + 1))  # no line of anything else between
    names = {m.group(1) for line in lines[rows[0]:] if (m := re.match(r"\| `sockcap (\w+)", line))}
    assert {"diagram", "report", "lab", "export", "query", "stats", "show"} <= names


def test_example_files_exist_in_a_clone() -> None:
    tracked = set(subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                                 check=True).stdout.split())
    for path in re.findall(r"^\$ sockcap (?:--lang \w+ )?(?:show|follow|stats|diagram) (\S+)",
                           README, re.M):
        assert path in tracked, path


def test_syn_examples_as_the_tool_prints_them() -> None:
    """No Ack= without the ACK flag (a SYN), and the flags column as wide as the tool's."""
    ours = sockcap("show", str(ROOT / "tests" / "golden" / "echo-tcp.pcap")).stdout
    width = {m.end() - m.start() for m in re.finditer(r"TCP \[[A-Z, ]+\] +(?=Seq=)", ours)}
    for line in README.splitlines():
        m = re.search(r"TCP (\[[A-Z, ]+\]) +(?=Seq=)", line)
        if m is None:
            continue
        assert "ACK" in m.group(1) or "Ack=" not in line, line
        assert {m.end() - m.start()} == width, line


def test_extras_that_setup_run_leaves_out_are_named_where_used() -> None:
    table = _section("The other commands")
    for command in ("export", "query"):
        row = next(line for line in table.splitlines() if line.startswith(f"| `sockcap {command}"))
        assert "export` extra" in row, row
    # pytest, for the sockcap_record fixture, is installed by setup.sh run: the README's example
    # is run after it by tests/test_pytest_plugin.py::test_readme_example_runs_after_setup_run


def test_run_help_does_not_ask_for_root() -> None:
    text = " ".join(sockcap("run", "--help").stdout.split())
    option = text[text.index("--capture Capture"):]
    option = option[:option.index(" --", 2)]
    assert "needs root" not in option and "namespace" in option, option


def test_docs_pictures_script_checks_before_it_writes(tmp_path: Path) -> None:
    """Without selenium the script says what it needs and leaves docs/ as it was."""
    before = {p.name: p.read_bytes() for p in (ROOT / "docs").iterdir() if p.is_file()}
    code = ("import sys, runpy; sys.modules['selenium'] = None; "
            f"runpy.run_path({str(ROOT / 'scripts' / 'make_docs_pictures.py')!r}, run_name='__main__')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("make_docs_pictures: needs") and "selenium" in done.stderr
    after = {p.name: p.read_bytes() for p in (ROOT / "docs").iterdir() if p.is_file()}
    assert after == before
