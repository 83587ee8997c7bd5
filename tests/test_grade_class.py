"""A teacher's class workflow: servers and clients graded together, two at a time (-j 2),
the gradebook's grades.csv equal to the JSON, one student re-graded with --student,
Gradescope's visibility per test, files a student can read. Real C programs, real
sandbox."""

from __future__ import annotations

import csv
import json
import shutil
import stat
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import needs_capture, never_engine, sockcap
from tests.programs import C_DIR, HAVE_GCC
from tests.test_grade import validate_gradescope

pytestmark = [*never_engine(), needs_capture, pytest.mark.skipif(not HAVE_GCC, reason="gcc is not installed"),
              pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")]

SPEC = """
[build]
command = "gcc -o server echo_server.c && gcc -o client echo_client.c"

[programs]
server = "./server {port}"
client = "./client 127.0.0.1 {port}"

[[checks]]
name = "build"
points = 1

[[checks]]
name = "echo"
points = 3

[[checks]]
name = "client_echo"
points = 2

[[checks]]
name = "client_close"
points = 1
visibility = "after_due_date"

[[checks]]
name = "client_refused"
points = 1
visibility = "hidden"
"""
FULL = 8.0


def submission(folder: Path, server_bug: str = "", client_bug: str = "") -> None:
    folder.mkdir(parents=True)
    for name, bug in (("echo_server.c", server_bug), ("echo_client.c", client_bug)):
        source = (C_DIR / name).read_text()
        (folder / name).write_text(f"#define {bug} 1\n{source}" if bug else source)


@pytest.fixture
def classroom(tmp_path: Path) -> Path:
    subs = tmp_path / "submissions"
    submission(subs / "alice")
    submission(subs / "bob", server_bug="BUG_NUL")
    submission(subs / "carol", client_bug="BUG_ONE_READ")
    submission(subs / "dave", client_bug="BUG_SILENT")
    (subs / "erin").mkdir()
    (subs / "erin" / "echo_server.c").write_text("int main( {\n")
    (tmp_path / "spec.toml").write_text(SPEC)
    return tmp_path


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def by_test(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in result["tests"]}


def test_a_class_of_servers_and_clients_in_parallel_with_its_gradebook(classroom: Path) -> None:
    r = sockcap("grade", "spec.toml", "--submissions", "submissions", "--out", "grades",
                "-j", "2", "--format", "json", cwd=classroom, timeout=300)
    assert r.returncode == 0, r.stderr
    printed = {g["student"]: g for g in json.loads(r.stdout)}
    scores = {name: g["score"] for name, g in printed.items()}
    assert scores == {"alice": FULL, "bob": FULL - 3, "carol": FULL - 3, "dave": FULL - 1,
                      "erin": 0}
    assert by_test(printed["carol"])["client_echo"]["status"] == "failed"
    assert by_test(printed["dave"])["client_refused"]["status"] == "failed"
    assert printed["erin"]["status"] == "build failed"

    grades = classroom / "grades"
    rows = read_csv(grades / "grades.csv")
    assert list(rows[0]) == ["student", "build", "echo", "client_echo", "client_close",
                             "client_refused", "total", "max_score", "status"]
    assert [row["student"] for row in rows] == sorted(printed)
    for row in rows:  # the gradebook says what the JSON says, test by test
        report = json.loads((grades / row["student"] / "report.json").read_text())
        assert float(row["total"]) == report["score"] == printed[row["student"]]["score"]
        assert float(row["max_score"]) == report["max_score"] == FULL
        assert row["status"] == report["status"]
        for test in report["tests"]:
            assert float(row[test["name"]]) == test["score"]

    for student in printed:
        results = json.loads((grades / student / "results.json").read_text())
        validate_gradescope(results)
        visibility = {t["name"]: t["visibility"] for t in results["tests"]}
        assert visibility == {"build": "visible", "echo": "visible", "client_echo": "visible",
                              "client_close": "after_due_date", "client_refused": "hidden"}
    for path in (grades / "carol").iterdir():  # Gradescope's user reads what the grader wrote
        assert path.stat().st_mode & stat.S_IROTH, path
    carol = by_test(json.loads((grades / "carol" / "results.json").read_text()))
    assert "your client closed the connection" in carol["client_echo"]["output"]
    assert "of check.pcap]" in carol["client_echo"]["output"]


def test_one_student_regraded_leaves_the_others_rows(classroom: Path) -> None:
    subs = classroom / "submissions"
    for name in ("alice", "dave", "erin"):  # a smaller class: bob and carol
        shutil.rmtree(subs / name)
    r = sockcap("grade", "spec.toml", "--submissions", "submissions", "--out", "grades",
                cwd=classroom, timeout=300)
    assert r.returncode == 0, r.stderr
    before = {row["student"]: row for row in read_csv(classroom / "grades" / "grades.csv")}
    assert before["carol"]["total"] == f"{FULL - 3:g}"
    shutil.rmtree(subs / "carol")
    submission(subs / "carol")  # carol hands in a corrected client
    r = sockcap("grade", "spec.toml", "--submissions", "submissions", "--out", "grades",
                "--student", "carol", cwd=classroom, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "grading bob" not in r.stderr
    after = {row["student"]: row for row in read_csv(classroom / "grades" / "grades.csv")}
    assert after["carol"]["total"] == f"{FULL:g}"
    assert after["bob"] == before["bob"]


def test_an_unknown_student_is_one_line(classroom: Path) -> None:
    r = sockcap("grade", "spec.toml", "--submissions", "submissions", "--student", "zoe",
                cwd=classroom, timeout=60)
    assert r.returncode == 2
    assert r.stderr.strip() == "sockcap: no submission named zoe in submissions"


@pytest.mark.parametrize("text, error", [
    ('[programs]\nserver = "./s"\n[[checks]]\nname = "client_echo"\n',
     "spec.toml:4: the 'client_echo' check needs a client command in [programs]"),
    ('[programs]\nserver = "./s"\n[[checks]]\nname = "echo"\nvisibility = "secret"\n',
     "spec.toml:5: 'visibility' in [[checks]] must be one of visible, hidden, after_due_date, "
     "after_published, not \"secret\""),
    ('[programs]\nclient = "./c"\n[[checks]]\nname = "echo"\n',
     "spec.toml:1: [programs] needs a server command"),
])
def test_a_spec_error_about_clients_and_visibility(tmp_path: Path, text: str, error: str) -> None:
    (tmp_path / "spec.toml").write_text(text)
    (tmp_path / "subs" / "a").mkdir(parents=True)
    r = sockcap("grade", "spec.toml", "--submissions", "subs", cwd=tmp_path, timeout=30)
    assert r.returncode == 2
    assert r.stderr.strip() == f"sockcap: {error}"
