"""sockcap check against real C servers compiled here: the correct one passes, and each
planted bug is found, tied to packets that tshark confirms in the saved pcap."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sockcap.analysis.check.codes import Finding
from sockcap.analysis.check.streams import compare_echo
from sockcap.capture.calls import strace_path
from tests.conftest import (
    free_port,
    needs_capture,
    needs_tshark,
    never_engine,
    sockcap,
    tshark_fields,
)
from tests.programs import HAVE_GCC

pytestmark = never_engine()

needs_gcc = pytest.mark.skipif(not HAVE_GCC, reason="gcc is not installed")




def run_check(tmp_path: Path, server: Path, *extra: str) -> tuple[int, dict[str, Any], Path]:
    port = free_port()
    pcap = tmp_path / "check.pcap"
    r = sockcap("check", "--server", f"{server} {{port}}", "--port", str(port), "--json",
                "-w", str(pcap), *extra, timeout=60)
    assert r.returncode in (0, 1), r.stderr
    return r.returncode, json.loads(r.stdout), pcap


def findings(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for c in report["checks"] for f in c["findings"]]


def failed(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in findings(report) if not f["ok"]]


def packet_facts(pcap: Path) -> dict[int, dict[str, str]]:
    """tshark's view: per packet number, the ports, flags, payload and retransmission."""
    rows = tshark_fields(pcap, "frame.number", "tcp.srcport", "tcp.flags.syn", "tcp.flags.fin",
                         "tcp.flags.reset", "tcp.payload", "tcp.analysis.retransmission")
    keys = ("sport", "syn", "fin", "rst", "payload", "retransmission")
    return {int(r[0]): dict(zip(keys, r[1:], strict=False)) for r in rows}


def payload(facts: dict[str, str]) -> bytes:
    return bytes.fromhex(facts["payload"].replace(":", ""))


# -- the comparison itself (pure) ---------------------------------------------------------


def test_compare_echo_names_extra_leftover_missing_and_different() -> None:
    sent = b"hello world, longer\nhi\nbye\n"
    assert compare_echo(sent, sent) == []
    leftover = compare_echo(sent, b"hello world, longer\nhi\nllo world, longer\nbye\n")
    assert [d.finding for d in leftover] == [Finding.ECHO_LEFTOVER]
    assert leftover[0].got == b"llo world, longer\n" and leftover[0].sent_at == 23
    extra = compare_echo(b"abc", b"abcXYZ")
    assert [(d.finding, d.got) for d in extra] == [(Finding.ECHO_EXTRA, b"XYZ")]
    missing = compare_echo(b"hello world\nagain\n", b"hello again\n")
    assert [(d.finding, d.sent) for d in missing] == [(Finding.ECHO_MISSING, b"world\n")]
    different = compare_echo(b"hello", b"HELLO")
    assert [d.finding for d in different] == [Finding.ECHO_DIFFERENT]
    assert compare_echo(b"x" * 100_000, b"x" * 99_999)[0].finding is Finding.ECHO_MISSING


# -- real programs --------------------------------------------------------------------------


@needs_capture
@needs_gcc
def test_the_correct_server_passes_every_check(programs: dict[str, Path], tmp_path: Path) -> None:
    code, report, pcap = run_check(tmp_path, programs["server"])
    assert failed(report) == []
    assert code == 0
    assert {c["check"] for c in report["checks"]} == {
        "echo", "close", "partial", "large", "concurrent", "backlog"}
    exact = {f["check"]: f for f in findings(report) if f["finding"] == "echoed exactly"}
    assert exact["large"]["values"]["count"] == 100_000
    assert pcap.stat().st_size > 100_000


@needs_capture
@needs_gcc
@needs_tshark
def test_no_nul_handling_is_leftover_bytes_in_the_named_packets(programs: dict[str, Path],
                                                               tmp_path: Path) -> None:
    code, report, pcap = run_check(tmp_path, programs["server-BUG_NUL"], "--only", "echo")
    assert code == 1
    from_calls = [f for f in failed(report) if f["finding"] == "wrote more than it read"]
    bad = [f for f in failed(report) if f not in from_calls]
    assert bad and all(f["finding"] == "leftover bytes" and f["check"] == "echo" for f in bad)
    facts = packet_facts(pcap)
    if strace_path() is not None:  # the cause, from the server's own calls
        (call,) = from_calls
        assert call["check"] == "echo"
        assert call["values"]["sent"] == 40 and call["values"]["received"] == 3
        assert call["values"]["name"] == "write" and call["values"]["side"] == "server"
        assert call["packets"] == [bad[0]["values"]["server_packet"]]
        assert len(payload(facts[call["packets"][0]])) == 40  # tshark: the write's segment
        assert "strlen() on a buffer without a terminating NUL" in call["text"]
    else:
        assert from_calls == []
    first = bad[0]["values"]
    sent, got = payload(facts[first["client_packet"]]), payload(facts[first["server_packet"]])
    assert sent == b"hi\n"
    assert got.startswith(sent) and len(got) - len(sent) == first["count"] == 37
    assert got[len(sent):].hex(" ").startswith(first["got_hex"][:20])
    assert "left over from an earlier message" in bad[0]["text"]


@needs_capture
@needs_gcc
@needs_tshark
def test_no_read_zero_handling_is_close_wait_and_a_busy_loop(programs: dict[str, Path],
                                                            tmp_path: Path) -> None:
    code, report, pcap = run_check(tmp_path, programs["server-BUG_NO_EOF"], "--only", "echo")
    assert code == 1
    by_finding = {f["finding"]: f for f in failed(report)}
    traced = strace_path() is not None
    assert set(by_finding) == {"never closed", "busy loop"} | ({"read after EOF"} if traced else set())
    fin = by_finding["never closed"]["values"]["fin"]
    facts = packet_facts(pcap)
    server_port = facts[2]["sport"]  # the SYN-ACK's
    assert facts[fin]["fin"] in ("1", "True") and facts[fin]["sport"] != server_port
    assert by_finding["never closed"]["values"]["close_wait"] >= 1
    assert float(by_finding["busy loop"]["values"]["cpu"]) > 0.1
    if traced:  # the loop itself, from the server's calls: read() = 0 at the client's FIN
        loop = by_finding["read after EOF"]
        assert loop["check"] == "close" and loop["packets"] == [fin]
        assert loop["values"]["name"] == "read" and loop["values"]["count"] >= 2
        assert f"called read() {loop['values']['count']:,} more times" in loop["text"]


@needs_capture
@needs_gcc
@needs_tshark
def test_linger_zero_is_a_reset_instead_of_a_close(programs: dict[str, Path], tmp_path: Path) -> None:
    code, report, pcap = run_check(tmp_path, programs["server-BUG_RST"], "--only", "echo")
    assert code == 1
    (bad,) = failed(report)
    assert bad["finding"] == "reset instead of close"
    facts = packet_facts(pcap)
    rst = facts[bad["values"]["packet"]]
    assert rst["rst"] in ("1", "True") and rst["sport"] == facts[2]["sport"]  # from the server


@needs_capture
@needs_gcc
@needs_tshark
def test_a_single_client_server_starves_the_second_client(programs: dict[str, Path],
                                                         tmp_path: Path) -> None:
    code, report, pcap = run_check(tmp_path, programs["server-BUG_SINGLE"], "--only", "concurrent")
    assert code == 1
    (bad,) = failed(report)
    assert bad["finding"] == "second client starved"
    facts = packet_facts(pcap)
    values = bad["values"]
    assert facts[values["syn"]]["syn"] in ("1", "True")
    assert payload(facts[values["packet"]]) == b"second client\n"
    assert not values["reply"] or values["reply"] > values["fin"]


@needs_capture
@needs_gcc
@needs_tshark
def test_a_tiny_backlog_overflows_under_a_burst(programs: dict[str, Path], tmp_path: Path) -> None:
    code, report, pcap = run_check(tmp_path, programs["server-BUG_BACKLOG"], "--only", "backlog")
    assert code == 1
    (bad,) = failed(report)
    assert bad["finding"] == "backlog overflow" and bad["values"]["again"] >= 1
    facts = packet_facts(pcap)
    for no in bad["packets"]:
        assert facts[no]["syn"] in ("1", "True")
        assert facts[no]["retransmission"]  # tshark agrees: the SYN was sent again


@needs_capture
@needs_gcc
def test_the_users_own_client_and_the_text_report(programs: dict[str, Path], tmp_path: Path) -> None:
    port = free_port()
    r = sockcap("check", "--server", f"{programs['server-BUG_NUL']} {{port}}",
                "--client", f"{programs['client']} 127.0.0.1 {{port}}", "--port", str(port),
                "--only", "echo", "-w", str(tmp_path / "c.pcap"), timeout=60)
    assert r.returncode == 1, r.stderr
    assert "FAIL  echo" in r.stdout and "left over from an earlier message" in r.stdout
    assert "client (" in r.stdout  # the client's output is kept in the report
    assert "echo: hello from sockcap" in r.stdout


@needs_capture
def test_a_server_that_does_not_start_is_said_in_one_finding(tmp_path: Path) -> None:
    """Every scenario asked for, yet one finding: what the program did instead (it is not
    started again for each scenario)."""
    code, report, _ = run_check(tmp_path, Path("/bin/false"))
    assert code == 1
    assert [f["finding"] for f in failed(report)] == ["exited before listening"]
    assert "exited with status 1 before it listened" in failed(report)[0]["text"]
    assert [p["status"] for p in report["programs"]] == [1]


def test_a_missing_program_is_one_line(tmp_path: Path) -> None:
    r = sockcap("check", "--server", "/nonexistent/server {port}", "--port", str(free_port()),
                "-w", str(tmp_path / "x.pcap"), timeout=30)
    if "capturing on lo needs" in r.stderr:
        pytest.skip("capture not permitted")
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1] == "sockcap: program not found: /nonexistent/server"
