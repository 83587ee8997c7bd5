"""sockcap check --client: a student's echo client (tests/c/echo_client.c) against
sockcap's own server. The correct client passes; each planted bug (no close, RST on close,
one read() per reply, a client that waits for ever when the server closes, one that exits
0 saying nothing) is found and tied to packets that tshark confirms in the saved pcap."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from sockcap.capture.calls import strace_path
from tests.conftest import (
    free_port,
    needs_capture,
    needs_tshark,
    never_engine,
    sockcap,
    tshark_fields,
)
from tests.programs import HAVE_GCC, build_clients

pytestmark = [*never_engine(), needs_capture, pytest.mark.skipif(not HAVE_GCC, reason="gcc is not installed")]
TRACED = strace_path() is not None  # the client's calls are recorded in the sandbox


@pytest.fixture(scope="module")
def clients(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_clients(tmp_path_factory.mktemp("c"))



def check(tmp_path: Path, client: Path, *extra: str) -> tuple[int, dict[str, Any], Path]:
    pcap = tmp_path / "check.pcap"
    r = sockcap("check", "--client", f"{client} 127.0.0.1 {{port}}", "--port", str(free_port()),
                "--json", "-w", str(pcap), "--force", *extra, timeout=120)
    assert r.returncode in (0, 1), r.stderr
    return r.returncode, json.loads(r.stdout), pcap


def findings(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["finding"]: f for c in report["checks"] for f in c["findings"]}


def failed(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: f for k, f in findings(report).items() if not f["ok"]}


def packets(pcap: Path) -> dict[int, dict[str, str]]:
    rows = tshark_fields(pcap, "frame.number", "tcp.srcport", "tcp.dstport", "tcp.flags.syn",
                         "tcp.flags.fin", "tcp.flags.reset", "tcp.len")
    keys = ("sport", "dport", "syn", "fin", "rst", "len")
    return {int(r[0]): dict(zip(keys, r[1:], strict=False)) for r in rows}


def is_set(flag: str) -> bool:
    return flag in ("1", "True")


@needs_tshark
def test_the_correct_client_passes_every_check(clients: dict[str, Path], tmp_path: Path) -> None:
    code, report, pcap = check(tmp_path, clients["client"])
    assert failed(report) == {}
    assert code == 0
    assert [c["check"] for c in report["checks"]] == [
        "client_echo", "client_close", "client_server_closes", "client_refused"]
    found = findings(report)
    read = found["client read the whole echo"]["values"]
    assert read["count"] == 47 and read["segments"] >= 5  # the echo came in pieces
    facts = packets(pcap)
    fin = facts[found["client closed by FIN"]["values"]["packet"]]
    assert is_set(fin["fin"]) and fin["dport"] == facts[1]["dport"]  # from the client
    refused = facts[found["client stopped when refused"]["values"]["packet"]]
    assert is_set(refused["rst"]) and refused["sport"] == facts[1]["dport"]


@needs_tshark
def test_one_read_per_reply_closes_while_the_echo_is_still_coming(clients: dict[str, Path],
                                                                  tmp_path: Path) -> None:
    code, report, pcap = check(tmp_path, clients["client-BUG_ONE_READ"], "--only", "client_echo")
    assert code == 1
    bad = failed(report)
    assert set(bad) == {"client closed before the whole echo", "client reset"}
    early = bad["client closed before the whole echo"]["values"]
    facts = packets(pcap)
    server_port = facts[1]["dport"]
    closed = facts[early["packet"]]
    assert closed["sport"] != server_port and (is_set(closed["fin"]) or is_set(closed["rst"]))
    later = facts[early["first"]]  # the server's piece that came after the client closed
    assert later["sport"] == server_port and int(later["len"]) > 0
    assert early["first"] > early["packet"]
    assert early["got"] < early["count"]


@needs_tshark
def test_linger_zero_is_a_reset_instead_of_a_close(clients: dict[str, Path],
                                                   tmp_path: Path) -> None:
    code, report, pcap = check(tmp_path, clients["client-BUG_RST_CLOSE"], "--only", "client_echo")
    assert code == 1
    (bad,) = failed(report).values()
    assert bad["finding"] == "client reset" and bad["check"] == "client_close"
    rst = packets(pcap)[bad["values"]["packet"]]
    assert is_set(rst["rst"]) and rst["sport"] != packets(pcap)[1]["dport"]
    if TRACED:  # the client's own calls behind the RST: SO_LINGER set, then close()
        calls = bad["calls"]
        assert [(c["syscall"], c["args"]) for c in calls] == [
            ("setsockopt", {"option": "SO_LINGER"}), ("close", {})]
        assert all(c["side"] == "client" and c["type"] == "call" for c in calls)
        assert calls[1]["packets"] == [bad["values"]["packet"]]
    else:
        assert bad["calls"] == []


def test_a_client_that_never_closes_is_found_and_stopped(clients: dict[str, Path],
                                                         tmp_path: Path) -> None:
    code, report, _ = check(tmp_path, clients["client-BUG_NO_CLOSE"], "--only", "client_echo")
    assert code == 1
    (bad,) = failed(report).values()
    assert bad["finding"] == "client never closed"
    assert "close the socket when stdin ends" in bad["text"]
    assert report["programs"][0]["stopped"]  # sockcap stopped it, by its PID


def test_a_client_that_waits_for_ever_after_the_server_closed(clients: dict[str, Path],
                                                              tmp_path: Path) -> None:
    code, report, pcap = check(tmp_path, clients["client-BUG_IGNORE_CLOSE"], "--only",
                               "client_server_closes")
    assert code == 1
    bad = failed(report)
    assert set(bad) == {"client kept waiting after the server closed"} | (
        {"read after EOF"} if TRACED else set())
    waiting = bad["client kept waiting after the server closed"]
    assert "read() returning 0 means the server closed" in waiting["text"]
    if TRACED and shutil.which("tshark"):  # the loop, from the client's calls, at the FIN
        loop = bad["read after EOF"]
        assert loop["check"] == "client_server_closes" and loop["values"]["side"] == "client"
        assert loop["packets"] == [waiting["values"]["packet"]]
        fin = packets(pcap)[loop["packets"][0]]
        assert is_set(fin["fin"]) and fin["sport"] == packets(pcap)[1]["dport"]  # the server's
        assert loop["values"]["count"] >= 2 and "more times on that socket" in loop["text"]
        (read,) = loop["calls"]
        assert read["syscall"] == "read" and read["bytes"] == 0 and read["repeat"] > 2


@needs_tshark
def test_a_client_that_exits_0_saying_nothing(clients: dict[str, Path], tmp_path: Path) -> None:
    code, report, pcap = check(tmp_path, clients["client-BUG_SILENT"], "--only",
                               "client_server_closes", "--only", "client_refused")
    assert code == 1
    bad = failed(report)
    assert set(bad) == {"client exited 0 after the server closed", "client exited 0 when refused"}
    facts = packets(pcap)
    server_fin = facts[bad["client exited 0 after the server closed"]["values"]["packet"]]
    assert is_set(server_fin["fin"]) and server_fin["sport"] == facts[1]["dport"]


def test_a_client_check_needs_a_client() -> None:
    r = sockcap("check", "--server", "./server", "--only", "client_echo", timeout=30)
    assert r.returncode == 2
    assert "client_echo: that checks a client, and there is no --client" in r.stderr


def check_text(tmp_path: Path, client: Path, *extra: str) -> str:
    """The same check as text (the words a student reads), English."""
    r = sockcap("check", "--client", f"{client} 127.0.0.1 {{port}}", "--port", str(free_port()),
                "-w", str(tmp_path / "text.pcap"), "--force", *extra, timeout=120,
                env={"LANG": "C", "LANGUAGE": None, "LC_ALL": None})
    assert r.returncode in (0, 1), r.stderr
    return r.stdout


STDIN = b"hello from sockcap, a longer first line\nhi\nbye\n"  # check's default messages


@needs_tshark
def test_a_client_that_drops_the_newlines_is_told_so_and_passes(clients: dict[str, Path],
                                                                tmp_path: Path) -> None:
    code, report, pcap = check(tmp_path, clients["client-BUG_NO_NEWLINE"], "--only", "client_echo")
    assert failed(report) == {} and code == 0
    found = findings(report)["client sent its stdin without newlines"]
    assert found["ok"] and found["check"] == "client_echo"
    values = found["values"]
    assert values["count"] == len(STDIN.replace(b"\n", b""))
    facts = packets(pcap)
    server_port = facts[1]["dport"]
    sent = [n for n, f in facts.items() if f["dport"] == server_port and int(f["len"] or 0)]
    assert (values["first"], values["last"]) == (sent[0], sent[-1])
    assert sum(int(facts[n]["len"]) for n in sent) == values["count"]
    text = check_text(tmp_path, clients["client-BUG_NO_NEWLINE"], "--only", "client_echo")
    assert (f"your client sent what it read from stdin without the newlines "
            f"({values['count']} bytes, packets") in text


@needs_tshark
def test_a_client_that_sends_only_its_first_line(clients: dict[str, Path],
                                                 tmp_path: Path) -> None:
    code, report, pcap = check(tmp_path, clients["client-BUG_FIRST_LINE"], "--only", "client_echo")
    assert code == 1
    bad = failed(report)
    assert set(bad) == {"client sent part of its stdin"}
    values = bad["client sent part of its stdin"]["values"]
    first = STDIN.split(b"\n")[0] + b"\n"
    assert (values["count"], values["total"]) == (len(first), len(STDIN))
    assert values["missing_hex"].startswith("68 69 0a")  # "hi\n", the line never sent
    last = packets(pcap)[values["packet"]]  # the client's last data segment
    assert last["dport"] == packets(pcap)[1]["dport"] and int(last["len"]) == len(first)
    text = check_text(tmp_path, clients["client-BUG_FIRST_LINE"], "--only", "client_echo")
    assert (f"your client sent only {len(first)} bytes of the {len(STDIN)} it read from stdin "
            f"(the last in packet") in text
    assert "never sent: 68 69 0a" in text


@needs_tshark
def test_a_client_that_sends_the_terminating_nul(clients: dict[str, Path],
                                                 tmp_path: Path) -> None:
    code, report, pcap = check(tmp_path, clients["client-BUG_SEND_NUL"], "--only", "client_echo")
    assert code == 1
    bad = failed(report)
    assert "client sent other bytes" in bad
    values = bad["client sent other bytes"]["values"]
    first = STDIN.split(b"\n")[0] + b"\n"
    assert values["offset"] == len(first)  # the NUL after the first line
    assert values["sent_hex"].startswith("00 68 69 0a 00")
    assert values["stdin_hex"].startswith("68 69 0a")
    carrying = packets(pcap)[values["packet"]]  # the segment with the NUL in it
    assert carrying["dport"] == packets(pcap)[1]["dport"] and int(carrying["len"]) == len(first) + 1
    text = check_text(tmp_path, clients["client-BUG_SEND_NUL"], "--only", "client_echo")
    assert (f"byte {len(first)} of what your client sent (packet {values['packet']}) is not what "
            "it read from stdin: sent 00 68 69 0a 00") in text
