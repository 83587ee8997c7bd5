"""The judging holes of ``sockcap check``, each shown by a real C server compiled here
(tests/c/judging_server.c) whose fault the judge used to miss or misname; tshark reads
the saved pcap as the oracle for the packets each finding names."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sockcap.analysis.check.codes import Check, Finding, Verdict
from sockcap.render.check import finding_text
from tests.conftest import (
    free_port,
    needs_capture,
    needs_tshark,
    never_engine,
    sockcap,
    tshark_fields,
)
from tests.programs import HAVE_GCC, build_judging_servers, build_programs

pytestmark = [*never_engine(), needs_capture, pytest.mark.skipif(not HAVE_GCC, reason="gcc is not installed")]


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("c")
    return {**build_judging_servers(folder), **build_programs(folder)}



def check(tmp_path: Path, server: Path, *extra: str) -> tuple[int, dict[str, Any], Path]:
    pcap = tmp_path / "check.pcap"
    r = sockcap("check", "--server", f"{server} {{port}}", "--port", str(free_port()), "--json",
                "-w", str(pcap), "--force", *extra, timeout=120)
    assert r.returncode in (0, 1), r.stderr
    return r.returncode, json.loads(r.stdout), pcap


def findings(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["finding"]: f for c in report["checks"] for f in c["findings"]}


def tcp_packets(pcap: Path) -> dict[int, dict[str, str]]:
    rows = tshark_fields(pcap, "frame.number", "tcp.srcport", "tcp.dstport", "tcp.flags.fin",
                         "tcp.payload")
    keys = ("sport", "dport", "fin", "payload")
    return {int(r[0]): dict(zip(keys, r[1:], strict=False)) for r in rows}


def is_set(flag: str) -> bool:
    return flag in ("1", "True")


# -- a server that closes first -----------------------------------------------------------


@needs_tshark
def test_a_server_that_closes_after_the_first_message_fails_echo_and_close(
        servers: dict[str, Path], tmp_path: Path) -> None:
    code, report, pcap = check(tmp_path, servers["closes-after-first"], "--only", "echo")
    assert code == 1
    found = findings(report)
    assert set(found) == {"closed before the last message", "closed before the client finished"}
    early = found["closed before the last message"]
    assert early["check"] == "echo" and not early["ok"]
    assert early["values"]["message"] == 1 and early["values"]["count"] == 2
    fin = early["values"]["packet"]
    assert early["text"].startswith(f"your server closed the connection (FIN, packet {fin}) ")
    assert early["text"].endswith("the client still had 2 messages to send")
    close = found["closed before the client finished"]
    assert close["check"] == "close" and not close["ok"]
    facts = tcp_packets(pcap)
    server_port = facts[2]["sport"]  # the SYN-ACK's
    server_fin = min(n for n, f in facts.items() if is_set(f["fin"]) and f["sport"] == server_port)
    client_fin = min(n for n, f in facts.items() if is_set(f["fin"]) and f["sport"] != server_port)
    assert fin == server_fin == close["values"]["packet"]
    assert close["values"]["fin"] == client_fin > server_fin  # the order of the pcap
    assert close["packets"] == [server_fin, client_fin]
    sent = b"".join(bytes.fromhex(f["payload"].replace(":", "")) for f in facts.values()
                    if f["payload"] and f["sport"] != server_port)
    assert sent == b"hello from sockcap, a longer first line\n"  # one message of three went out


@needs_tshark
def test_a_server_that_closes_first_once_everything_was_echoed_passes_in_pcap_order(
        servers: dict[str, Path], tmp_path: Path) -> None:
    code, report, pcap = check(tmp_path, servers["closes-after-third"], "--only", "echo")
    assert code == 0, report
    first = findings(report)["closed first"]
    facts = tcp_packets(pcap)
    server_port = facts[2]["sport"]
    assert facts[first["values"]["packet"]]["sport"] == server_port
    assert first["values"]["packet"] < first["values"]["fin"]
    assert facts[first["values"]["fin"]]["sport"] != server_port
    assert is_set(facts[first["values"]["fin"]]["fin"])


@needs_tshark
def test_a_server_that_closes_first_under_the_users_own_client(servers: dict[str, Path],
                                                             tmp_path: Path) -> None:
    """The user's client gets the messages as lines on stdin; the server closes after the
    first, so the client cannot send them all (whether the server's FIN or its RST, for
    the next line that came too soon, ends it)."""
    code, report, pcap = check(tmp_path, servers["closes-after-first"], "--only", "echo",
                               "--client", f"{servers['client']} 127.0.0.1 {{port}}")
    assert code == 1
    cut = findings(report)["closed before the client had sent everything"]
    assert cut["check"] == "echo" and not cut["ok"]
    assert cut["values"]["least"] == len("hello from sockcap, a longer first line" "hi" "bye")
    rows = tshark_fields(pcap, "frame.number", "tcp.srcport", "tcp.flags.fin", "tcp.flags.reset")
    by_no = {int(r[0]): r[1:] for r in rows}
    server_port = by_no[2][0]
    sport, fin, rst = by_no[cut["values"]["packet"]]
    assert sport == server_port and (is_set(fin) or is_set(rst))
    assert cut["values"]["flag"] == ("FIN" if is_set(fin) else "RST")
    assert "closed by FIN" not in findings(report) and "closed first" not in findings(report)


# -- what the server needed before it answered ------------------------------------------


@needs_tshark
def test_a_line_server_without_newlines_answers_only_after_the_fin(
        servers: dict[str, Path], tmp_path: Path) -> None:
    code, report, _ = check(tmp_path, servers["lines"], "--only", "echo")
    assert code == 0, report  # with newlines it is a correct echo server

    code, report, pcap = check(tmp_path, servers["lines"], "--only", "echo", "--no-newline")
    assert code == 1
    found = findings(report)
    assert set(found) == {"answered after the client closed", "closed by FIN"}
    late = found["answered after the client closed"]["values"]
    facts = tcp_packets(pcap)
    first = bytes.fromhex(facts[late["sent"]]["payload"].replace(":", ""))
    assert first == b"hello from sockcap, a longer first line"  # no newline went out
    assert is_set(facts[late["after"]]["fin"]) and facts[late["after"]]["dport"] == facts[1]["dport"]
    reply = bytes.fromhex(facts[late["packet"]]["payload"].replace(":", ""))
    assert reply.startswith(first) and late["packet"] > late["after"]
    assert "only after the client closed (FIN" in found["answered after the client closed"]["text"]


def test_one_byte_is_said_in_the_singular(servers: dict[str, Path], tmp_path: Path) -> None:
    code, report, _ = check(tmp_path, servers["server"], "--only", "echo", "-m", "a",
                            "--no-newline")
    assert code == 0
    assert findings(report)["echoed exactly"]["text"].startswith("all 1 byte came back ")


def test_counted_findings_read_in_the_singular_and_plural() -> None:
    def text(n: int) -> str:
        return finding_text(Verdict(Check.ECHO, Finding.ECHO_MISSING, False, (4,),
                                    {"count": n, "client_packet": 4, "sent_hex": "61"}))

    assert text(1) == "1 byte the client sent (packet 4) never came back: 61"
    assert text(2) == "2 bytes the client sent (packet 4) never came back: 61"


# -- the close check's time, and the FIN of a stopped server ----------------------------


@needs_tshark
def test_the_close_check_waits_as_long_as_it_is_told(servers: dict[str, Path],
                                                     tmp_path: Path) -> None:
    # the child closes 2 s after read() returns 0: never within 1 s, surely within 60 s
    code, report, _ = check(tmp_path, servers["slow-close"], "--only", "echo",
                            "--close-seconds", "1")
    assert code == 1
    no_fin = findings(report)["never closed"]
    assert "sent no FIN within 1 s" in no_fin["text"]
    code, report, _ = check(tmp_path, servers["slow-close"], "--only", "echo",
                            "--close-seconds", "60")
    assert code == 0
    assert findings(report)["closed by FIN"]["ok"]


@needs_tshark
def test_the_fin_of_a_stopped_server_is_not_its_close(servers: dict[str, Path],
                                                      tmp_path: Path) -> None:
    code, report, pcap = check(tmp_path, servers["idle-no-close"], "--only", "echo",
                               "--close-seconds", "1")
    assert code == 1
    never = findings(report)["never closed"]
    facts = tcp_packets(pcap)
    server_port = facts[2]["sport"]
    server_fins = [n for n, f in facts.items() if is_set(f["fin"]) and f["sport"] == server_port]
    assert server_fins and min(server_fins) > never["values"]["fin"]  # the kernel's, at the stop
    assert "closed by FIN" not in findings(report)


# -- UDP replies from or to the wrong address ---------------------------------------------


def udp_packets(pcap: Path) -> dict[int, tuple[str, str]]:
    rows = tshark_fields(pcap, "frame.number", "udp.srcport", "udp.dstport")
    return {int(r[0]): (r[1], r[2]) for r in rows if r[1]}


@needs_tshark
@pytest.mark.parametrize("server, finding", [
    ("udp-wrong-source", "reply from the wrong address"),
    ("udp-wrong-dest", "reply to the wrong address")])
def test_a_udp_reply_from_or_to_the_wrong_address_is_named(
        servers: dict[str, Path], tmp_path: Path, server: str, finding: str) -> None:
    code, report, pcap = check(tmp_path, servers[server], "--udp", "--only", "echo", "-m", "one",
                               "-m", "two")
    assert code == 1
    bad = [f for c in report["checks"] for f in c["findings"]]
    assert [f["finding"] for f in bad] == [finding, finding]
    assert not any("accepted the connection" in f["text"] for f in bad)
    ports = udp_packets(pcap)
    for f in bad:
        request, reply = ports[f["values"]["request"]], ports[f["values"]["packet"]]
        if server == "udp-wrong-source":
            assert reply[1] == request[0] and reply[0] != request[1]  # to the client, from elsewhere
            assert f["values"]["got"] == f"127.0.0.1:{reply[0]}"
        else:
            assert reply[0] == request[1] and reply[1] != request[0]  # from the server, elsewhere
            assert f["values"]["got"] == f"127.0.0.1:{reply[1]}"
            assert f["values"]["want"] == f"127.0.0.1:{request[0]}"


def test_a_correct_udp_echo_passes(servers: dict[str, Path], tmp_path: Path) -> None:
    code, report, _ = check(tmp_path, servers["udp-echo"], "--udp", "--only", "echo")
    assert code == 0, report
    assert list(findings(report)) == ["echoed exactly"]


# -- a reply compared with the packet that carried the request ------------------------------


@needs_tshark
def test_a_differing_byte_is_counted_in_the_reply_packet(servers: dict[str, Path],
                                                        tmp_path: Path) -> None:
    code, report, pcap = check(tmp_path, servers["case-second"], "--only", "echo")
    assert code == 1
    (bad,) = [f for f in findings(report).values() if not f["ok"]]
    assert bad["finding"] == "different bytes"
    v = bad["values"]
    facts = tcp_packets(pcap)
    request = bytes.fromhex(facts[v["client_packet"]]["payload"].replace(":", ""))
    reply = bytes.fromhex(facts[v["server_packet"]]["payload"].replace(":", ""))
    assert (request, reply) == (b"hi\n", b"hI\n")
    assert v["offset"] == 1  # the byte's place in the reply packet, not in the whole stream
    assert bad["text"].startswith(f"byte 1 of the reply (packet {v['server_packet']}) differs "
                                  f"from the request (packet {v['client_packet']})")
