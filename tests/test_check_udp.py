"""UDP as it really is, over the lab's link: real C servers and clients (tests/c/udp_*.c)
on two hosts of network namespaces with an MTU of 1500 and a link that loses datagrams.
The correct ones pass; a server that answers only its first client, one that replies to
the first client's address, one whose buffer cuts a large datagram, a client with no
timeout, and a client that prints replies as they come when they came out of order are each found and tied to packets that tshark confirms in the saved pcap."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import needs_capture, needs_tshark, never_engine, sockcap, tshark_fields
from tests.programs import C_DIR, HAVE_GCC

pytestmark = [*never_engine(), needs_capture, pytest.mark.skipif(not HAVE_GCC, reason="gcc is not installed"),
              pytest.mark.skipif(not all(shutil.which(t) for t in ("ip", "nft", "bwrap")),
                                 reason="the lab's link needs ip and nft; the sandbox bwrap")]

SERVERS = {"server": "", "first-only": "BUG_FIRST_ONLY", "first-address": "BUG_FIRST_ADDRESS",
           "small-buffer": "BUG_SMALL_BUFFER"}
CLIENTS = {"client": "", "no-timeout": "BUG_NO_TIMEOUT", "any-reply": "BUG_ANY_REPLY",
           "in-order": "BUG_IN_ORDER", "matched": "BUG_IN_ORDER -DMATCH_REPLIES",
           "quiet": "BUG_IN_ORDER -DQUIET"}


@pytest.fixture(scope="module")
def programs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("c")
    out = {}
    for source, variants in (("udp_server.c", SERVERS), ("udp_client.c", CLIENTS)):
        for name, bug in variants.items():
            out[name] = folder / name
            subprocess.run(["gcc", "-O1", "-Wall", *(f"-D{bug}".split() if bug else []), "-o",
                            str(out[name]), str(C_DIR / source)], check=True, timeout=60)
    return out


def check(tmp_path: Path, *args: str) -> tuple[int, dict[str, Any], Path]:
    pcap = tmp_path / "check.pcap"
    r = sockcap("check", "--udp", *args, "--json", "-w", str(pcap), "--force", timeout=180)
    assert r.returncode in (0, 1), r.stderr
    return r.returncode, json.loads(r.stdout), pcap


def findings(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["finding"]: f for c in report["checks"] for f in c["findings"]}


def failed(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: f for k, f in findings(report).items() if not f["ok"]}


def udp(pcap: Path) -> dict[int, dict[str, str]]:
    rows = tshark_fields(pcap, "frame.number", "ip.src", "ip.dst", "udp.srcport", "udp.dstport",
                         "udp.length", "ip.flags.mf",
                         extra=("-o", "ip.defragment:FALSE"))  # first fragments alone are kept
    keys = ("src", "dst", "sport", "dport", "length", "mf")
    return {int(r[0]): dict(zip(keys, r[1:], strict=False)) for r in rows}


@needs_tshark
def test_the_correct_udp_server_passes_over_the_lab_link(programs: dict[str, Path],
                                                        tmp_path: Path) -> None:
    code, report, pcap = check(tmp_path, "--server", f"{programs['server']} {{port}}")
    assert failed(report) == {} and code == 0
    assert [c["check"] for c in report["checks"]] == ["echo", "udp_clients", "udp_large"]
    large = findings(report)["large datagram answered whole"]["values"]
    assert large["size"] == 4000 and large["fragments"] == 3
    facts = udp(pcap)
    request = facts[large["request"]]
    assert request["length"] == "4008" and request["mf"] in ("1", "True")  # a first fragment
    assert request["src"] == "10.0.0.2" and request["dst"] == "10.0.0.1"  # across the link


@needs_tshark
def test_a_server_that_answers_only_its_first_client(programs: dict[str, Path],
                                                     tmp_path: Path) -> None:
    code, report, pcap = check(tmp_path, "--server", f"{programs['first-only']} {{port}}",
                               "--only", "udp_clients")
    assert code == 1
    (bad,) = failed(report).values()
    assert bad["finding"] == "answered only the first client"
    assert "your server answered only the first client" in bad["text"]
    facts = udp(pcap)
    second = {(facts[n]["src"], facts[n]["sport"]) for n in bad["packets"]}
    assert len(second) == 1  # all from the second client ...
    (client,) = second
    assert not any((f["dst"], f["dport"]) == client for f in facts.values())  # ... never answered


@needs_tshark
def test_a_server_that_replies_to_the_first_clients_address(programs: dict[str, Path],
                                                            tmp_path: Path) -> None:
    code, report, pcap = check(tmp_path, "--server", f"{programs['first-address']} {{port}}",
                               "--only", "udp_clients")
    assert code == 1
    (bad,) = failed(report).values()
    assert bad["finding"] == "replied to the first client's address"
    facts = udp(pcap)
    request, reply = facts[bad["values"]["request"]], facts[bad["values"]["packet"]]
    first = next(f for f in facts.values() if f["dport"] == reply["sport"])  # the first request
    assert (reply["dst"], reply["dport"]) == (first["src"], first["sport"])
    assert (reply["dst"], reply["dport"]) != (request["src"], request["sport"])


@needs_tshark
def test_a_small_buffer_cuts_a_large_datagram(programs: dict[str, Path], tmp_path: Path) -> None:
    code, report, pcap = check(tmp_path, "--server", f"{programs['small-buffer']} {{port}}",
                               "--only", "udp_large")
    assert code == 1
    (bad,) = failed(report).values()
    assert bad["finding"] == "large datagram cut"
    facts = udp(pcap)
    assert facts[bad["values"]["packet"]]["length"] == str(1024 + 8)
    assert facts[bad["values"]["request"]]["length"] == str(4000 + 8)


@needs_tshark
def test_a_client_without_a_timeout_waits_for_ever_for_a_lost_reply(programs: dict[str, Path],
                                                                    tmp_path: Path) -> None:
    code, report, pcap = check(tmp_path, "--client", f"{programs['client']} {{host}} {{port}}")
    assert code == 0, failed(report)
    resent = findings(report)["client sent again after a loss"]["values"]
    assert resent["resent"] >= 1 and resent["lost"] >= 1

    code, report, pcap = check(tmp_path, "--client", f"{programs['no-timeout']} {{host}} {{port}}",
                               "--only", "client_timeout")
    assert code == 1
    (bad,) = failed(report).values()
    assert bad["finding"] == "client waits for ever for a lost reply"
    assert "use a timeout (SO_RCVTIMEO or select())" in bad["text"]
    facts = udp(pcap)
    lost = bad["values"]["packet"]
    assert facts[lost]["src"] == "10.0.0.2" and facts[lost]["dport"] == facts[1]["dport"]
    assert not any(n > lost and f["src"] == "10.0.0.1" for n, f in facts.items())  # no reply
    assert report["programs"][0]["stopped"]


def payload_of(pcap: Path) -> dict[int, str]:
    rows = tshark_fields(pcap, "frame.number", "udp.payload")
    return {int(r[0]): r[1] for r in rows if len(r) > 1}


@needs_tshark
def test_a_client_that_takes_a_late_duplicate_for_its_reply(programs: dict[str, Path],
                                                            tmp_path: Path) -> None:
    code, report, _ = check(tmp_path, "--client", f"{programs['client']} {{host}} {{port}}",
                            "--only", "client_duplicates")
    assert code == 0, failed(report)  # it checks what it got, and sends again
    code, report, pcap = check(tmp_path, "--client",
                               f"{programs['any-reply']} {{host}} {{port}}",
                               "--only", "client_duplicates")
    assert code == 1
    (bad,) = failed(report).values()
    assert bad["finding"] == "client took a duplicate for its reply"
    values, facts, data = bad["values"], udp(pcap), payload_of(pcap)
    sent, duplicate, following = values["packet"], values["duplicate"], values["next"]
    assert sent < duplicate < following
    assert facts[duplicate]["src"] == "10.0.0.1" and facts[following]["src"] == "10.0.0.2"
    assert data[duplicate] != data[sent]  # the reply to an earlier message ...
    assert data[duplicate] in (data[n] for n in facts if n < sent)  # ... sent before
    assert not any(sent < n < following and data.get(n) == data[sent] and f["src"] == "10.0.0.1"
                   for n, f in facts.items())  # its own reply had not come


@needs_tshark
def test_a_client_that_takes_replies_to_come_in_order(programs: dict[str, Path],
                                                      tmp_path: Path) -> None:
    code, report, pcap = check(tmp_path, "--client", f"{programs['client']} {{host}} {{port}}",
                               "--only", "client_reorder")
    assert code == 0, failed(report)  # one message in flight at a time: nothing overtakes
    (good,) = findings(report).values()
    assert good["finding"] == "client had one message in flight at a time"
    assert good["check"] == "client_reorder" and good["values"]["count"] == 3

    code, report, pcap = check(tmp_path, "--client",
                               f"{programs['in-order']} {{host}} {{port}}",
                               "--only", "client_reorder")
    assert code == 1
    (bad,) = failed(report).values()
    assert bad["finding"] == "client printed the replies in the order they arrived"
    assert "UDP keeps no order" in bad["text"]
    values, facts, data = bad["values"], udp(pcap), payload_of(pcap)
    first, second = values["packet"], values["other"]
    assert first < second  # the reply to the later message came first on the client's wire
    assert facts[first]["src"] == facts[second]["src"] == "10.0.0.1"
    assert facts[first]["dst"] == facts[second]["dst"] == "10.0.0.2"
    requests = [data[n] for n, f in sorted(facts.items()) if f["src"] == "10.0.0.2"]
    assert requests.index(data[first]) + 1 == values["later"] > values["earlier"]
    assert requests.index(data[second]) + 1 == values["earlier"]
    assert values["printed"] == "2 1 3"  # every second reply overtook the one before it
    assert report["programs"][0]["status"] == 0  # it got every reply: only the order is wrong


@needs_tshark
def test_a_client_that_sends_ahead_and_matches_each_reply_to_its_line(programs: dict[str, Path],
                                                                      tmp_path: Path) -> None:
    code, report, _ = check(tmp_path, "--client", f"{programs['matched']} {{host}} {{port}}",
                            "--only", "client_reorder")
    assert code == 0, failed(report)
    (good,) = findings(report).values()
    assert good["finding"] == "client printed the replies in its messages' order"
    assert (good["values"]["later"], good["values"]["earlier"]) == (2, 1)
    assert "still printed the replies in the order of its messages" in good["text"]

    code, report, pcap = check(tmp_path, "--client", f"{programs['quiet']} {{host}} {{port}}",
                               "--only", "client_reorder")
    assert code == 1
    (bad,) = failed(report).values()
    assert bad["finding"] == "client did not print a reply"
    reply = udp(pcap)[bad["values"]["reply"]]
    assert reply["src"] == "10.0.0.1" and bad["values"]["message"] == 1


UDP_SPEC = """
[build]
command = "gcc -o server udp_server.c && gcc -o client udp_client.c"

[programs]
server = "./server {port}"
client = "./client {host} {port}"
udp = true

[[checks]]
name = "echo"
points = 2

[[checks]]
name = "udp_clients"
points = 2

[[checks]]
name = "client_timeout"
points = 2

[[checks]]
name = "client_reorder"
points = 1
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="graded as root here (without root: test_sandbox)")
def test_a_class_of_udp_servers_and_clients(tmp_path: Path) -> None:
    subs = tmp_path / "submissions"
    for student, (server_bug, client_bug) in {"alice": ("", ""), "bob": ("BUG_FIRST_ADDRESS", ""),
                                              "carol": ("", "BUG_NO_TIMEOUT"),
                                              "dave": ("", "BUG_IN_ORDER")}.items():
        (subs / student).mkdir(parents=True)
        for name, bug in (("udp_server.c", server_bug), ("udp_client.c", client_bug)):
            source = (C_DIR / name).read_text()
            (subs / student / name).write_text(f"#define {bug} 1\n{source}" if bug else source)
    (tmp_path / "spec.toml").write_text(UDP_SPEC)
    r = sockcap("grade", "spec.toml", "--submissions", "submissions", "--out", "grades",
                "-j", "2", "--format", "json", cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr
    scores = {g["student"]: g["score"] for g in json.loads(r.stdout)}
    assert scores == {"alice": 7, "bob": 5, "carol": 5, "dave": 6}
    dave = json.loads((tmp_path / "grades" / "dave" / "results.json").read_text())
    assert [t["name"] for t in dave["tests"] if t["score"] < t["max_score"]] == ["client_reorder"]


def test_a_server_bound_to_loopback_is_said_once_per_check(tmp_path: Path) -> None:
    server = tmp_path / "udp-loopback"
    subprocess.run(["gcc", "-O1", "-Wall", "-DUDP_ECHO", "-o", str(server),
                    str(C_DIR / "judging_server.c")], check=True, timeout=60)
    code, report, _ = check(tmp_path, "--server", f"{server} {{port}}")
    assert code == 1
    assert findings(report)["echoed exactly"]["ok"]  # on its own loopback it answers
    bad = [f for c in report["checks"] for f in c["findings"] if not f["ok"]]
    assert [(f["check"], f["finding"]) for f in bad] == [
        ("udp_clients", "bound to loopback only"), ("udp_large", "bound to loopback only")]
    assert "bound to 127.0.0.1:" in bad[0]["text"] and "INADDR_ANY" in bad[0]["text"]
