"""A teacher's own packet-level expectations ([[expect]] in the spec), each a test of its
own in results.json named by its words: met by a correct server, and each violated by a
real C server that breaks it (a reset, a late close, replies cut in two); tshark confirms
the packets each finding names. Errors in an expectation name its line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from sockcap.analysis.expect import ExpectKind, read_expectation
from tests.conftest import needs_capture, needs_tshark, never_engine, sockcap, tshark_fields
from tests.programs import C_DIR, HAVE_GCC

pytestmark = never_engine()

SPEC = """
[build]
command = "gcc -O1 -o server server.c"

[programs]
server = "./server {port}"

[[checks]]
name = "echo"
points = 2

[[expect]]
after = "client FIN"
want = "server FIN"
within = "1s"
points = 1

[[expect]]
want = "no RST"
points = 1

[[expect]]
want = "reply in one segment"
points = 1
visibility = "after_due_date"

[[expect]]
want = "no segment larger than MSS"
scenario = "large"
points = 1
"""
NAMES = ["echo", "server FIN within 1 s after client FIN", "no RST", "each reply in one segment",
         "no segment larger than the MSS"]


def test_expectations_are_read_with_their_words() -> None:
    exp = read_expectation("server FIN", "client FIN", "2s")
    assert not isinstance(exp, tuple)
    assert exp.kind is ExpectKind.AFTER and exp.within_ns == 2_000_000_000
    assert exp.text == "server FIN within 2s after client FIN"
    assert read_expectation("server FIN", "client FIN", "500ms").within_ns == 500_000_000  # type: ignore[union-attr]
    assert read_expectation("no server RST").text == "no server RST"  # type: ignore[union-attr]
    assert read_expectation("server FYN") == ("want", "server FYN")
    assert read_expectation("server FIN", "client", "") == ("after", "client")
    assert read_expectation("server FIN", "client FIN", "soon") == ("within", "soon")


@pytest.mark.parametrize("text, error", [
    ('[programs]\nserver = "./s"\n[[expect]]\nafter = "client FIN"\nwant = "server FYN"\n',
     'spec.toml:5: cannot read want = "server FYN" in [[expect]]; an event is a side and a packet'),
    ('[programs]\nserver = "./s"\n\n[[expect]]\nwant = "server FIN"\nwithin = "soon"\n',
     'spec.toml:6: cannot read within = "soon" in [[expect]]'),
    ('[programs]\nserver = "./s"\n[[expect]]\nwant = "no RST"\npoint = 1\n',
     "spec.toml:5: unknown key 'point' in [[expect]]"),
    ('[programs]\nserver = "./s"\n[[expect]]\nwant = "no RST"\nscenario = "fast"\n',
     "spec.toml:5: 'scenario' in [[expect]] must be the name of a check whose exchange"),
    ('[programs]\nserver = "./s"\n[[checks]]\nname = "echo"\n[[expect]]\nafter = "client FIN"\n',
     "spec.toml:5: [[expect]] needs want = ..."),
])
def test_an_expectation_error_names_its_line(tmp_path: Path, text: str, error: str) -> None:
    (tmp_path / "spec.toml").write_text(text)
    (tmp_path / "subs" / "a").mkdir(parents=True)
    r = sockcap("grade", "spec.toml", "--submissions", "subs", cwd=tmp_path, timeout=30)
    assert r.returncode == 2
    assert r.stderr.strip().startswith(f"sockcap: {error}"), r.stderr


def packets(pcap: Path) -> dict[int, dict[str, str]]:
    rows = tshark_fields(pcap, "frame.number", "tcp.srcport", "tcp.dstport", "tcp.flags.fin",
                         "tcp.flags.reset", "tcp.len", "frame.time_epoch")
    keys = ("sport", "dport", "fin", "rst", "len", "time")
    return {int(r[0]): dict(zip(keys, r[1:], strict=False)) for r in rows}


def is_set(flag: str) -> bool:
    return flag in ("1", "True")


def named_tests(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in results["tests"]}


def expect_findings(report: dict[str, Any]) -> list[dict[str, Any]]:
    return next(c["findings"] for c in report["report"]["checks"] if c["check"] == "expect")


@needs_capture
@needs_tshark
@pytest.mark.skipif(not HAVE_GCC, reason="gcc is not installed")
@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")
def test_three_expectations_met_and_three_violated_on_real_servers(tmp_path: Path) -> None:
    subs = tmp_path / "submissions"
    judging = (C_DIR / "judging_server.c").read_text()
    sources = {"alice": (C_DIR / "echo_server.c").read_text(),
               "bob": "#define BUG_RST 1\n" + (C_DIR / "echo_server.c").read_text(),
               "carol": "#define SLOW_CLOSE 2\n" + judging,
               "dave": "#define SPLIT_REPLY 1\n" + judging}
    for student, source in sources.items():
        (subs / student).mkdir(parents=True)
        (subs / student / "server.c").write_text(source)
    (tmp_path / "spec.toml").write_text(SPEC)
    r = sockcap("grade", "spec.toml", "--submissions", "submissions", "--out", "grades",
                "-j", "2", "--format", "json", cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr
    failed = {g["student"]: sorted(t["name"] for t in g["tests"] if t["status"] == "failed")
              for g in json.loads(r.stdout)}
    assert failed == {"alice": [],  # a reset is no FIN: both of bob's fail
                      "bob": ["no RST", "server FIN within 1 s after client FIN"],
                      "carol": ["server FIN within 1 s after client FIN"],
                      "dave": ["each reply in one segment"]}
    grades = tmp_path / "grades"
    for student in sources:
        results = json.loads((grades / student / "results.json").read_text())
        assert [t["name"] for t in results["tests"]] == NAMES
        assert named_tests(results)["each reply in one segment"]["visibility"] == "after_due_date"

    report = json.loads((grades / "carol" / "report.json").read_text())
    late = next(f for f in expect_findings(report) if not f["ok"])
    assert late["finding"] == "expected event late"
    facts = packets(grades / "carol" / "check.pcap")
    client_fin, server_fin = facts[late["values"]["after"]], facts[late["values"]["packet"]]
    assert is_set(client_fin["fin"]) and is_set(server_fin["fin"])
    assert client_fin["sport"] == server_fin["dport"]  # the client's FIN, then the server's
    assert float(server_fin["time"]) - float(client_fin["time"]) > 1.0

    report = json.loads((grades / "bob" / "report.json").read_text())
    reset = next(f for f in expect_findings(report) if f["finding"] == "unwanted event present")
    assert is_set(packets(grades / "bob" / "check.pcap")[reset["values"]["packet"]]["rst"])

    report = json.loads((grades / "dave" / "report.json").read_text())
    split = next(f for f in expect_findings(report) if not f["ok"])
    assert split["finding"] == "reply in several segments"
    facts = packets(grades / "dave" / "check.pcap")
    request, *reply = split["packets"]
    assert int(facts[request]["len"]) > 0 and len(reply) == 2
    assert all(facts[n]["sport"] == facts[request]["dport"] and int(facts[n]["len"]) > 0
               for n in reply)
    assert sum(int(facts[n]["len"]) for n in reply) == int(facts[request]["len"])

    alice = named_tests(json.loads((grades / "alice" / "results.json").read_text()))
    assert alice["no segment larger than the MSS"]["status"] == "passed"
    assert "the largest segment carried" in alice["no segment larger than the MSS"]["output"]


@needs_capture
@pytest.mark.skipif(not HAVE_GCC, reason="gcc is not installed")
@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")
def test_an_expectation_in_indonesian(tmp_path: Path) -> None:
    (tmp_path / "subs" / "alice").mkdir(parents=True)
    shutil.copy(C_DIR / "echo_server.c", tmp_path / "subs" / "alice" / "server.c")
    (tmp_path / "spec.toml").write_text(SPEC)
    r = sockcap("--lang", "id", "grade", "spec.toml", "--submissions", "subs", "--out", "g",
                "--format", "json", cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr
    (alice,) = json.loads(r.stdout)
    names = [t["name"] for t in alice["tests"]]
    assert names[0] == "echo" and len(names) == 5
    assert names[1:] == ["FIN server dalam 1 s setelah FIN klien", "tidak ada RST",
                         "setiap balasan dalam satu segmen",
                         "tidak ada segmen yang lebih besar dari MSS"]
    assert "ya, " in alice["tests"][2]["output"]  # the findings' words too
