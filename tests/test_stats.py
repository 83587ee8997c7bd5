"""``sockcap stats`` against tshark's conversation tables and capinfos.

Per conversation, the frames each way equal ``tshark -q -z conv,tcp`` / ``conv,udp``
(tshark's "->" column is frames from its first address, "<-" frames to it); the packet
count and first/last times equal the corpus's ``capinfos`` file; the iRTT equals
``tcp.analysis.initial_rtt`` to the microsecond (test_analysis_oracle.py compares it per
packet). The end states and notes of the loopback scenarios are what each scenario made.
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
from pathlib import Path

import pytest
from conftest import CORPUS, first_run_only, needs_capture, needs_corpus, needs_tshark, sockcap
from loopback_scenarios import can_run, scenario_capture

needs_scenarios = pytest.mark.skipif(bool(can_run()), reason=can_run() or "ok")
CONV_LINE = re.compile(r"^(\S+)\s+<->\s+(\S+)\s+(\d+)\s+\d+ \w*bytes\s+(\d+)\s")


def tshark_conversations(path: Path) -> dict[str, dict[frozenset[str], tuple[str, int, int]]]:
    """{proto: {endpoints: (first address, frames from it, frames to it)}} for "tcp" and
    "udp": one tshark for both tables (``-z conv,tcp -z conv,udp``, each written under
    its own "TCP Conversations" / "UDP Conversations" heading), where a tshark a table
    paid tshark's start twice for every file of the corpus."""
    out = subprocess.run(["tshark", "-q", "-r", str(path), "-z", "conv,tcp", "-z", "conv,udp"],
                         capture_output=True, text=True, timeout=120).stdout
    tables: dict[str, dict[frozenset[str], tuple[str, int, int]]] = {}
    convs: dict[frozenset[str], tuple[str, int, int]] | None = None
    for line in out.splitlines():
        heading = re.fullmatch(r"(TCP|UDP) Conversations", line.strip())
        if heading:
            proto = heading.group(1).lower()
            assert proto not in tables, f"{path.name}: two {proto} tables"
            convs = tables[proto] = {}
            continue
        m = CONV_LINE.match(line)
        if m:
            assert convs is not None, f"{path.name}: a conversation before any table: {line}"
            a, b, to_a, from_a = m.group(1), m.group(2), int(m.group(3)), int(m.group(4))
            convs[frozenset((a, b))] = (a, from_a, to_a)
    assert sorted(tables) == ["tcp", "udp"], f"{path.name}: tshark wrote {sorted(tables)}"
    return tables


def stats_json(path: Path, env: dict[str, str | None] | None = None) -> dict:
    res = sockcap("stats", "--json", str(path), env=env)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def plain(endpoint: str) -> str:
    """``[::1]:53`` -> ``::1:53``, as tshark's table writes IPv6 endpoints."""
    return endpoint.replace("[", "").replace("]", "")


def conversations_agree(path: Path) -> tuple[int, list[str]]:
    """Frames each way per pair of endpoints: sockcap's conversations (summed where a
    5-tuple was reused: tshark's table has one row per pair) against tshark's table.

    Rows tshark has and sockcap does not are conversations carried inside a tunnel or
    quoted in an ICMP error (the timeline shows outer packets only): not compared."""
    report = stats_json(path)
    diffs, compared = [], 0
    theirs = tshark_conversations(path)
    for proto in ("tcp", "udp"):
        mine: dict[frozenset[str], dict[str, int]] = {}  # endpoints -> frames sent by each
        for c in report["conversations"]:
            if c["proto"] == proto.upper():
                client, server = plain(c["client"]), plain(c["server"])
                sent = mine.setdefault(frozenset((client, server)), {})
                sent[client] = sent.get(client, 0) + c["packets"]["client_to_server"]
                sent[server] = sent.get(server, 0) + c["packets"]["server_to_client"]
        for key, (first, from_first, to_first) in theirs[proto].items():
            sent = mine.get(key)
            if sent is None:
                continue  # inside a tunnel or an ICMP error: sockcap shows the outer packet
            compared += 1
            second = next(iter(key - {first}), first)
            got = (sent.get(first, 0), sent.get(second, 0))
            if got != (from_first, to_first):
                diffs.append(f"{path.name}: {proto} {sorted(key)} {got} != {(from_first, to_first)}")
    return compared, diffs


TWINS_PROVEN = ("the pure twin's `stats --json` is the compiled engine's, byte for byte, on "
                "every corpus file (tests/test_speedups.py::test_corpus, first run)")


@needs_corpus
@needs_tshark
@first_run_only(TWINS_PROVEN)
def test_corpus_conversations_agree_with_tshark() -> None:
    """Frames each way of every conversation of the public corpus, against tshark's tables.

    Run once, on the compiled engine, by .ci/run: its first run also proves, file by file,
    that the pure twin's ``stats --json`` is the same bytes (test_speedups.py::test_corpus
    compares both paths' ``stats`` over every corpus file), so the second run (pure) would
    hold the same bytes to the same tables again."""
    compared, report = 0, []
    for path in sorted((CORPUS / "public").iterdir()):
        if path.suffix in (".pcap", ".pcapng") and ":" not in path.name:
            n, diffs = conversations_agree(path)
            compared += n
            report += diffs
    print(f"corpus: {compared - len(report)}/{compared} conversations agree")
    assert compared > 20
    assert not report, "\n".join(report[:30])


@needs_corpus
@first_run_only(TWINS_PROVEN)
def test_capture_facts_agree_with_capinfos() -> None:
    """The packet count of ``stats --json`` against the corpus's capinfos files. Run once
    by .ci/run, as test_corpus_conversations_agree_with_tshark (its docstring says why)."""
    checked = 0
    for info in sorted((CORPUS / "public").glob("*.capinfos.tsv")):
        path = info.with_name(info.name.removesuffix(".capinfos.tsv"))
        rows = list(csv.DictReader(info.read_text().splitlines()))
        if not rows or path.suffix != ".pcap" or not rows[0]["Number of packets"].isdigit():
            continue
        res = sockcap("stats", "--json", str(path))
        if res.returncode != 0:
            continue  # damaged files: test_only_decode_errors_escape covers them
        report = json.loads(res.stdout)
        assert report["format"] == "pcap"
        assert report["packets"] == int(rows[0]["Number of packets"]), path.name
        checked += 1
    assert checked > 20


@needs_scenarios
@needs_tshark
@pytest.mark.parametrize("name", ["refused", "reset", "half_close", "zero_window", "rto", "lossy"])
def test_scenario_stats(name: str) -> None:
    path = scenario_capture(name)
    compared, diffs = conversations_agree(path)
    assert compared == 1 and not diffs, diffs
    report = stats_json(path)
    (conv,) = report["conversations"]
    expected = {"refused": "refused", "reset": "reset"}.get(name, "FIN both ways")
    assert conv["ended"] == expected
    irtt = subprocess.run(["tshark", "-r", str(path), "-T", "fields", "-e",
                           "tcp.analysis.initial_rtt", "-c", "3"],
                          capture_output=True, text=True, timeout=60).stdout.split()
    assert irtt and round(float(irtt[0]) * 1e6) == round(conv["irtt"] * 1e6)
    assert report["linktypes"] == ["EN10MB"] and report["format"] == "pcap"
    assert report["notes"] == {k: v for k, v in report["notes"].items() if v > 0}


@needs_corpus
def test_no_handshake_time_without_an_answer_to_the_syn() -> None:
    """A SYN, then the client's own FIN 10 s later and no SYN-ACK: Wireshark's rule would
    give a 10 s "initial RTT"; the table gives none. The two full handshakes keep theirs."""
    convs = stats_json(CORPUS / "public" / "tfo-5c1fa7f9ae91.pcap")["conversations"]
    assert [c["irtt"] for c in convs] == [0.01128, 0.011078, None]


@needs_scenarios
def test_stats_text_table() -> None:
    res = sockcap("stats", str(scenario_capture("half_close")))
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert "capture: " in out and "pcap, link type EN10MB" in out
    assert re.search(r"tcp 0\s+127\.0\.0\.1:\d+\s+127\.0\.0\.1:\d+\s+10/8\s", out)
    assert "FIN both ways" in out and "1 half-close" in out


@needs_scenarios
def test_show_explain_prints_each_note_kind_once() -> None:
    res = sockcap("show", "--explain", str(scenario_capture("rto")))
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    tail = lines[lines.index("notes:"):]
    assert tail[1].startswith("  retransmission (")
    assert "the sentence under each packet says why" in tail[1]
    assert sum(line.startswith("  retransmission (") for line in lines) == 1
    # a loopback capture: its partial checksums are read as offload, after the notes
    assert tail[-1].startswith("  read closely: ") and "partial checksum" in tail[-1]


@needs_capture
def test_run_capture_summary_says_how_it_ended(tmp_path: Path) -> None:
    res = sockcap("run", "--capture", "--follow", "--explain", "-m", "hi", "-m", "quit",
                  "--out", str(tmp_path / "run.pcap"))
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert "ended: FIN both ways" in lines[-1]
    assert "> hi" in lines and "< hi" in lines
    # nothing went wrong: the one note is the first closer entering TIME_WAIT
    notes = lines[lines.index("notes:") + 1]
    assert notes.startswith("  enters TIME_WAIT (1): "), notes


def _tshark_frames_from_server(path: Path, stream: int) -> tuple[int, int]:
    """(SYNs from the client, frames from the server) of tcp stream ``stream``, as tshark
    counts them (the server: the SYN's destination)."""
    rows = subprocess.run(["tshark", "-r", str(path), "-Y", f"tcp.stream == {stream}", "-T",
                           "fields", "-e", "tcp.flags.syn", "-e", "tcp.flags.ack", "-e",
                           "tcp.dstport", "-e", "tcp.srcport"],
                          capture_output=True, text=True, timeout=60).stdout.split("\n")
    fields = [r.split("\t") for r in rows if r]
    server = next(dst for syn, ack, dst, _src in fields if syn == "1" and ack == "0")
    syns = sum(1 for syn, ack, _dst, src in fields if syn == "1" and ack == "0" and src != server)
    return syns, sum(1 for _syn, _ack, _dst, src in fields if src == server)


def _unanswered_cases() -> list[Path]:
    golden = Path(__file__).parent / "golden"
    cases = [golden / "scenario-timeout.pcap"]  # a full accept queue: SYN, SYN, SYN, SYN
    tfo = CORPUS / "public" / "tfo-5c1fa7f9ae91.pcap"  # a SYN, then the client's own FIN
    return [*cases, tfo] if tfo.is_file() else cases


@needs_tshark
@pytest.mark.parametrize("path", _unanswered_cases(), ids=lambda p: p.name)
def test_a_syn_nobody_answered_has_its_own_outcome(path: Path,
                                                   sockcap_path: dict[str, str | None]) -> None:
    """``ended`` is "SYN unanswered" (not "still open", nothing was opened; not
    "half-closed" when the client gave up with a FIN) exactly where tshark sees the
    client's SYN and not one frame from the server; the table says it in words. The
    same on both engines."""
    res = sockcap("stats", "--json", str(path), env=sockcap_path)
    assert res.returncode == 0, res.stderr
    convs = json.loads(res.stdout)["conversations"]
    assert any(c["ended"] == "SYN unanswered" for c in convs)
    for c in convs:
        syns, answers = _tshark_frames_from_server(path, c["stream"])
        assert (c["ended"] == "SYN unanswered") == (syns > 0 and answers == 0), c
    table = sockcap("stats", str(path), env=sockcap_path).stdout
    assert "SYN never answered" in table and "still open" not in table


@needs_scenarios
@needs_tshark
def test_a_dropped_syn_captured_now_is_unanswered(sockcap_path: dict[str, str | None]) -> None:
    """nftables drops the SYN (a real capture made now): one conversation, SYN unanswered."""
    path = scenario_capture("no_answer")
    (conv,) = stats_json(path, sockcap_path)["conversations"]
    assert conv["ended"] == "SYN unanswered" and conv["irtt"] is None
    assert _tshark_frames_from_server(path, 0)[1] == 0
