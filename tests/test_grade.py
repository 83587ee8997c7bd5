"""sockcap grade on a folder of three submissions (correct, no NUL handling, does not
build): scores, per-student files, and Gradescope's results.json checked against the
keys and types Gradescope documents."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import needs_capture, never_engine, sockcap
from tests.programs import C_DIR, HAVE_GCC

pytestmark = [*never_engine(), needs_capture, pytest.mark.skipif(not HAVE_GCC, reason="gcc is not installed")]

SPEC = """
[build]
command = "gcc -o server echo_server.c"
timeout = 30

[programs]
server = "./server {port}"

[limits]
memory_mb = 256

[[checks]]
name = "build"
points = 1

[[checks]]
name = "echo"
points = 3
message = "Echo exactly the bytes read() returned."

[[checks]]
name = "close"
points = 2
"""

# Gradescope autograder results format (gradescope-autograders docs, "Output format")
TOP_KEYS = {"score": (int, float), "execution_time": (int, float), "output": str,
            "output_format": str, "test_output_format": str, "test_name_format": str,
            "visibility": str, "stdout_visibility": str, "extra_data": dict, "tests": list,
            "leaderboard": list}
TEST_KEYS = {"score": (int, float), "max_score": (int, float), "status": str, "name": str,
             "name_format": str, "number": str, "output": str, "output_format": str,
             "tags": list, "visibility": str, "extra_data": dict}
VISIBILITY = {"hidden", "after_due_date", "after_published", "visible"}


def validate_gradescope(data: dict[str, Any]) -> None:
    assert set(data) <= set(TOP_KEYS), set(data) - set(TOP_KEYS)
    for key, value in data.items():
        assert isinstance(value, TOP_KEYS[key]), key
    assert "score" in data or all("score" in t for t in data["tests"])
    for key in ("visibility", "stdout_visibility"):
        assert data.get(key, "visible") in VISIBILITY
    for test in data["tests"]:
        assert set(test) <= set(TEST_KEYS), set(test) - set(TEST_KEYS)
        for key, value in test.items():
            assert isinstance(value, TEST_KEYS[key]), key
        assert test.get("status", "passed") in {"passed", "failed"}
        assert test.get("visibility", "visible") in VISIBILITY
        assert 0 <= test["score"] <= test["max_score"]


@pytest.fixture
def classroom(tmp_path: Path) -> Path:
    subs = tmp_path / "submissions"
    for student in ("alice", "bob", "carol"):
        (subs / student).mkdir(parents=True)
    shutil.copy(C_DIR / "echo_server.c", subs / "alice")
    source = (C_DIR / "echo_server.c").read_text()
    (subs / "bob" / "echo_server.c").write_text("#define BUG_NUL 1\n" + source)
    (subs / "carol" / "echo_server.c").write_text("int main( {\n")
    (tmp_path / "spec.toml").write_text(SPEC)
    return tmp_path


def test_three_submissions_scored_with_results_json(classroom: Path) -> None:
    r = sockcap("grade", "spec.toml", "--submissions", "submissions", "--out", "grades",
                "--format", "json", cwd=classroom, timeout=120)
    assert r.returncode == 0, r.stderr
    scores = {g["student"]: (g["score"], g["max_score"]) for g in json.loads(r.stdout)}
    assert scores == {"alice": (6, 6), "bob": (3, 6), "carol": (0, 6)}
    for student in ("alice", "bob", "carol"):
        results = json.loads((classroom / "grades" / student / "results.json").read_text())
        validate_gradescope(results)
        assert results["score"] == scores[student][0]
    bob = json.loads((classroom / "grades" / "bob" / "results.json").read_text())
    echo = next(t for t in bob["tests"] if t["name"] == "echo")
    assert echo["status"] == "failed" and echo["score"] == 0
    assert echo["output"].startswith("Echo exactly the bytes read() returned.")
    assert "left over from an earlier message" in echo["output"]
    assert "of check.pcap]" in echo["output"]  # the packets are named
    if shutil.which("strace"):  # the cause, from bob's server's own calls in the sandbox
        assert "server: write() sent 40 bytes at " in echo["output"]
        assert "strlen() on a buffer without a terminating NUL" in echo["output"]
        report = json.loads((classroom / "grades" / "bob" / "report.json").read_text())
        (found,) = [f for c in report["report"]["checks"] for f in c["findings"]
                    if f["finding"] == "wrote more than it read"]
        assert [(c["syscall"], c["bytes"]) for c in found["calls"]] == [("write", 40)]
        assert "▸" in (classroom / "grades" / "bob" / "report.txt").read_text()
    assert (classroom / "grades" / "bob" / "check.pcap").stat().st_size > 0
    carol = json.loads((classroom / "grades" / "carol" / "results.json").read_text())
    assert all("the build failed" in t["output"] for t in carol["tests"])
    assert not list(Path("/tmp").glob("sockcap-grade-*/echo_server.c"))  # temp folders gone


def test_single_submission_for_gradescope(classroom: Path) -> None:
    out = classroom / "results"
    r = sockcap("grade", "spec.toml", "--submissions", "submissions/alice", "--single",
                "--out", str(out), "--format", "gradescope", cwd=classroom, timeout=60)
    assert r.returncode == 0, r.stderr
    printed = json.loads(r.stdout)
    validate_gradescope(printed)
    assert printed["score"] == 6
    assert json.loads((out / "results.json").read_text())["score"] == 6


def test_a_bad_spec_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "spec.toml").write_text('[programs]\nserver = "./s"\n[[checks]]\nname = "speed"\n')
    (tmp_path / "subs" / "a").mkdir(parents=True)
    r = sockcap("grade", "spec.toml", "--submissions", "subs", cwd=tmp_path, timeout=30)
    assert r.returncode == 2
    assert r.stderr.strip() == ("sockcap: spec.toml:4: unknown check 'speed' (one of: build, "
                                "listen, echo, close, partial, large, concurrent, backlog, "
                                "client_echo, client_close, client_server_closes, "
                                "client_refused, udp_clients, udp_large, client_timeout, "
                                "client_duplicates, client_reorder)")


COURSE_SPEC = """
[build]
command = "gcc -o server server.c"

[programs]
server = "./server"      # the course's server listens on 5001, always
port = 5001
newline = false          # the course's client sends what was typed, without a newline

[limits]
close_seconds = 30

[[checks]]
name = "echo"
points = 3

[[checks]]
name = "close"
points = 2
"""


def test_a_course_server_on_a_fixed_port_and_messages_without_newline(tmp_path: Path) -> None:
    subs = tmp_path / "submissions"
    for student in ("alice", "bob"):
        (subs / student).mkdir(parents=True)
    shutil.copy(C_DIR / "echo_server.c", subs / "alice" / "server.c")
    lines = "#define LINES 1\n" + (C_DIR / "judging_server.c").read_text()
    (subs / "bob" / "server.c").write_text(lines)  # answers whole lines only
    (tmp_path / "spec.toml").write_text(COURSE_SPEC)
    r = sockcap("grade", "spec.toml", "--submissions", "submissions", "--out", "grades",
                "--format", "json", cwd=tmp_path, timeout=180)
    assert r.returncode == 0, r.stderr
    scores = {g["student"]: g["score"] for g in json.loads(r.stdout)}
    assert scores == {"alice": 5, "bob": 2}
    report = json.loads((tmp_path / "grades" / "alice" / "report.json").read_text())
    assert report["report"]["programs"][0]["stdout"].startswith("listening on port 5001")
    bob = json.loads((tmp_path / "grades" / "bob" / "results.json").read_text())
    echo = next(t for t in bob["tests"] if t["name"] == "echo")
    assert "only after the client closed (FIN" in echo["output"]


BAD_SPECS = [
    ('[programs]\nserver = "./s"\n\n[[checks]]\nname = "echo"\npoint = 3\n',
     "spec.toml:6: unknown key 'point' in [[checks]] (one of: name, points, message, messages, clients, "
     "visibility)"),
    ('[programs]\nserver = "./s"\n[limits]\nmemory = 64\n[[checks]]\nname = "echo"\n',
     "spec.toml:4: unknown key 'memory' in [limits] (one of: memory_mb, cpu_seconds, file_mb, "
     "processes, close_seconds)"),
    ('[programs]\nserver = "./s"\n[limits]\nmemory_mb = "64"\n[[checks]]\nname = "echo"\n',
     "spec.toml:4: 'memory_mb' in [limits] must be a whole number above 0, not \"64\""),
    ('[programs]\nserver = "./s"\nport = 70000\n[[checks]]\nname = "echo"\n',
     "spec.toml:3: 'port' in [programs] must be a port number (1-65535), not 70000"),
    ('[programs]\nserver = "./s"\nudp = true\n[[checks]]\nname = "echo"\n[[checks]]\n'
     'name = "close"\n',
     "spec.toml:7: the 'close' check is about TCP, and [programs] says udp = true "
     "(a UDP spec can have: build, listen, echo, udp_clients, udp_large, client_timeout, "
     "client_duplicates, client_reorder)"),
    ('[programs]\nserver = "./s"\n[limit]\nmemory_mb = 64\n[[checks]]\nname = "echo"\n',
     "spec.toml:3: unknown table or key 'limit' (the spec has: [build], [programs], [limits], "
     "[[checks]], [[expect]])"),
    ('[programs]\nserver = "./s"\n[[checks]]\nname = "echo"\n[[checks]]\nname = "close"\n'
     'clients = 4\n',
     "spec.toml:7: 'clients' belongs to the 'backlog' check, not 'close'"),
]


@pytest.mark.parametrize("text, error", BAD_SPECS)
def test_a_spec_error_names_the_key_and_its_line_before_anything_runs(
        tmp_path: Path, text: str, error: str) -> None:
    (tmp_path / "spec.toml").write_text(text)
    (tmp_path / "subs" / "a").mkdir(parents=True)
    r = sockcap("grade", "spec.toml", "--submissions", "subs", cwd=tmp_path, timeout=30)
    assert r.returncode == 2
    assert r.stderr.strip() == f"sockcap: {error}"
    assert not (tmp_path / "grades").exists()  # nothing ran, nothing was written
