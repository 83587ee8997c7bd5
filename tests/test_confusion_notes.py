"""What confuses learners, as notes in the timeline (contract.CONFUSION_NOTES): port
numbers reused, window scale unknown, TIME_WAIT, partial checksum, larger than the MTU,
a segment that continues a message, a Nagle stall — on the packets where tshark (the
oracle) or the capture itself shows them, in the words of both languages, the same from
the compiled engine and its pure twin (``show`` of real captures on both paths), and on
the packets where ``--explain`` says them."""

from __future__ import annotations

import io
import json
import math
import re
from pathlib import Path

import pytest
from conftest import CORPUS, ROOT, needs_corpus, needs_tshark, sockcap
from test_explain_oracle import (
    explained,
    nagle_stalls,
    needs_scenarios,
    reused_ports_capture,
    scenario_capture,
    tshark_column,
)

from sockcap.analysis.offload import address_sum, partial_checksum, tcp_start
from sockcap.pcapfile.reader import open_capture
from sockcap.pipeline import Pipeline

GOLDEN = ROOT / "tests" / "golden"


def noted(path: Path, words: str, env: dict[str, str | None], *args: str) -> set[int]:
    """The numbers of the packets whose timeline line carries the note ``words``."""
    res = sockcap(*args, "show", str(path), env=env)
    assert res.returncode == 0, res.stderr
    out = set()
    for line in res.stdout.splitlines():
        head = line.split(maxsplit=1)
        if head and head[0].isdigit() and line.endswith(")") and \
                words in line.rsplit("  (", 1)[-1][:-1].split("; "):
            out.add(int(head[0]))
    return out


def notes_by_packet(path: Path, env: dict[str, str | None], *args: str) -> dict[int, list[str]]:
    """Each packet's notes as its timeline line gives them."""
    res = sockcap(*args, "show", str(path), env=env)
    assert res.returncode == 0, res.stderr
    out = {}
    for line in res.stdout.splitlines():
        head = line.split(maxsplit=1)
        if head and head[0].isdigit() and line.endswith(")"):
            out[int(head[0])] = line.rsplit("  (", 1)[-1][:-1].split("; ")
    return out


def json_notes(path: Path, env: dict[str, str | None]) -> dict[int, list[str]]:
    res = sockcap("show", "--json", str(path), env=env)
    assert res.returncode == 0, res.stderr
    return {r["no"]: r.get("notes", []) for r in map(json.loads, res.stdout.splitlines())
            if r.get("type", "packet") == "packet"}


def json_noted(path: Path, note: str, env: dict[str, str | None]) -> set[int]:
    res = sockcap("show", "--json", str(path), env=env)
    assert res.returncode == 0, res.stderr
    return {r["no"] for r in map(json.loads, res.stdout.splitlines())
            if r.get("type", "packet") == "packet" and note in r.get("notes", [])}


@needs_tshark
def test_port_numbers_reused_where_tshark_flags_them(
        tmp_path: Path, sockcap_path: dict[str, str | None]) -> None:
    path, first = reused_ports_capture(tmp_path)
    flagged = {no for no, (v,) in tshark_column(path, "tcp.analysis.reused_ports").items() if v}
    assert flagged == {first + 1}
    assert noted(path, "port numbers reused", sockcap_path) == flagged
    assert noted(path, "nomor port dipakai ulang", sockcap_path, "--lang", "id") == flagged
    assert json_noted(path, "port numbers reused", sockcap_path) == flagged


@needs_tshark
@needs_corpus
@pytest.mark.parametrize("name", ["public/tcp_rst_data.pcap", "public/gso-ipv4.pcap",
                                  "public/ssh.pcap", "public/kday4.pcap", "echo-tcp.pcap"])
def test_window_scale_unknown_on_the_first_packet_where_tshark_says_so(
        name: str, sockcap_path: dict[str, str | None]) -> None:
    """On the first packet of each connection whose window scale tshark gives as -1 (no
    handshake in the file), and on no other packet."""
    path = GOLDEN / name if "/" not in name else CORPUS / name
    factor = tshark_column(path, "tcp.window_size_scalefactor", "tcp.stream")
    first: dict[str, int] = {}
    for no, (_f, stream) in factor.items():
        if stream:
            first.setdefault(stream, no)
    unknown = {no for no in first.values() if factor[no][0] == "-1"}
    assert noted(path, "window scale unknown", sockcap_path) == unknown
    assert json_noted(path, "window scale unknown", sockcap_path) == unknown
    if name == "echo-tcp.pcap":
        assert not unknown  # the handshake is there


def test_time_wait_where_the_first_closer_acks_the_last_fin(
        sockcap_path: dict[str, str | None]) -> None:
    """scenario time-wait (a real loopback capture): the client closes first; its ACK of
    the server's FIN, the last packet, is where it enters TIME_WAIT; the server's ACK of
    the client's FIN is not."""
    path = GOLDEN / "scenario-time-wait.pcap"
    res = sockcap("show", str(path), env=sockcap_path)
    last = int(res.stdout.splitlines()[-1].split()[0])
    assert noted(path, "enters TIME_WAIT", sockcap_path) == {last}
    assert noted(path, "masuk TIME_WAIT", sockcap_path, "--lang", "id") == {last}
    assert json_noted(path, "TIME_WAIT", sockcap_path) == {last}
    # the half-close scenario: the client shuts down first too, the server closes later
    half = GOLDEN / "scenario-half-close.pcap"
    said = noted(half, "enters TIME_WAIT", sockcap_path)
    assert len(said) == 1


def test_the_notes_are_counted_and_explained() -> None:
    """``--explain`` says what each note means, in the notes' list after the packets."""
    res = sockcap("show", "--explain", str(GOLDEN / "scenario-time-wait.pcap"))
    assert res.returncode == 0, res.stderr
    assert "now stays in TIME_WAIT (60 s on Linux)" in res.stdout


def capture(name: str) -> Path:
    path = GOLDEN / name if "/" not in name else CORPUS / name
    if not path.exists():
        pytest.skip(f"{path} not present")
    return path


@needs_tshark
@pytest.mark.parametrize("name", ["echo-tcp.pcap", "scenario-coalesce.pcap",
                                  "diagram-rto.pcap", "public/print-flags.pcap",
                                  "public/ssh.pcap", "public/whois.pcap"])
def test_partial_checksum_once_per_connection_where_tshark_finds_it_bad(
        name: str, sockcap_path: dict[str, str | None]) -> None:
    """On each connection's first packet whose checksum field holds the pseudo-header's
    sum; tshark 4.0 calls it bad and computes the real checksum sockcap computes
    (Wireshark 4.2: "[correct] (matches partial checksum, not 0x..., likely caused by
    "TCP checksum offload")"). On loopback that is every connection's SYN; a capture
    from a real wire has it only where the sending host captured its own packets."""
    path = capture(name)
    rows = tshark_column(path, "tcp.stream", "tcp.checksum", "tcp.checksum.status",
                         "_ws.expert.message", prefs=("tcp.check_checksum:TRUE",))
    found: dict[int, tuple[int, int]] = {}
    for a in Pipeline().packets(open_capture(io.BytesIO(path.read_bytes()))):
        checked = partial_checksum(a.packet, tcp_start(a.packet), address_sum(a.packet))
        if checked is not None:
            found[a.no] = checked
    first: dict[str, int] = {}
    for no in sorted(found):
        first.setdefault(rows[no][0], no)
    expected = set(first.values())
    assert noted(path, "partial checksum: offload, once per connection", sockcap_path) \
        == expected
    assert noted(path, "checksum parsial: offload, sekali per koneksi", sockcap_path,
                 "--lang", "id") == expected
    assert json_noted(path, "partial checksum", sockcap_path) == expected
    for no, (field, real) in found.items():
        _stream, checksum, status, message = rows[no]
        assert status == "0" and int(checksum, 16) == field, (no, rows[no])
        assert f"should be 0x{real:04x}" in message, (no, message)
    if "/" not in name:  # a loopback capture: every connection, from its SYN
        streams = {r[0] for r in rows.values() if r[0]}
        assert len(expected) == len(streams) >= 1
        assert set(found) == {no for no, r in rows.items() if r[2] == "0"}  # every bad one


@needs_tshark
@needs_corpus
@pytest.mark.parametrize("name", ["gso-ipv4.pcap", "gso-ipv6.pcap", "bigtcp-ipv4.pcap",
                                  "ipv4_tcp_http_xml_tso.pcap", "ssh.pcap", "whois.pcap"])
def test_larger_than_the_mtu_on_the_packets_explain_names(
        name: str, sockcap_path: dict[str, str | None]) -> None:
    """GSO/TSO/BIG TCP super-segments (tshark's frame.len over an Ethernet MTU's 1514
    bytes, with TCP data) get the note, on the packets whose sentence in --explain says
    how many segments a wire would carry; no other packet does."""
    path = CORPUS / "public" / name
    sizes = tshark_column(path, "frame.len", "tcp.len")
    expected = {no for no, (frame_len, tcp_len) in sizes.items()
                if tcp_len and int(tcp_len) > 0 and int(frame_len) > 1514}
    said = {a.no: s for a, _w, s in explained(path) if "is larger than the MTU" in s}
    assert set(said) == expected
    counts = {}
    for no, sentence in said.items():  # the note's number: the segments a wire carries
        m = re.search(r"as (\d+) segments of", sentence)
        assert m is not None
        counts[no] = int(m.group(1))
    english = notes_by_packet(path, sockcap_path)
    indonesian = notes_by_packet(path, sockcap_path, "--lang", "id")
    as_json = json_notes(path, sockcap_path)
    for no, count in counts.items():
        assert f"larger than the MTU: {count} segments on a wire, TSO/GSO" in english[no]
        assert f"lebih besar dari MTU: {count} segmen di kabel, TSO/GSO" in indonesian[no]
        assert f"larger than the MTU: {count} segments" in as_json[no]
    assert {no for no, notes in english.items()
            if any(n.startswith("larger than the MTU") for n in notes)} == expected
    if name.startswith("gso"):
        assert expected


def continued_messages(path: Path) -> set[int]:
    """From tshark's raw fields: the data segments that start where the same side's
    previous data segment, sent without PSH (or FIN), ended."""
    rows = tshark_column(path, "tcp.stream", "tcp.srcport", "tcp.seq_raw", "tcp.len",
                         "tcp.flags")
    open_end: dict[tuple[str, str], int] = {}
    out = set()
    for no, (stream, port, seq, length, flags) in sorted(rows.items()):
        if not length or int(length) == 0 or int(flags, 16) & 0x06:  # SYN, RST
            continue
        side = (stream, port)
        if open_end.get(side) == int(seq):
            out.add(no)
        if int(flags, 16) & 0x09:  # PSH or FIN: the message ends here
            open_end.pop(side, None)
        else:
            open_end[side] = (int(seq) + int(length)) % (1 << 32)
    return out


@needs_tshark
@pytest.mark.parametrize("name", ["lab-reorder.pcap", "public/ssh.pcap",
                                  "public/tcp_rst_data.pcap"])
def test_continues_a_message_after_a_segment_without_psh(
        name: str, sockcap_path: dict[str, str | None]) -> None:
    """On the segment that goes on where a segment without PSH stopped (tshark's raw
    sequence numbers and flags), in both languages and --json; --explain says its own
    sentence ("No PSH") on the segment before it."""
    path = capture(name)
    expected = continued_messages(path)
    words = "continues the previous segment's message: no PSH there"
    assert noted(path, words, sockcap_path) == expected
    assert noted(path, "melanjutkan pesan segmen sebelumnya: di sana tanpa PSH", sockcap_path,
                 "--lang", "id") == expected
    assert json_noted(path, "continues a message", sockcap_path) == expected
    if name != "public/tcp_rst_data.pcap":
        assert expected
    no_psh = {a.no for a, _w, s in explained(path) if "No PSH" in s}
    for a, _w, _s in explained(path):
        if a.no in expected:  # the sentence is on a segment of the same side before it
            assert any(n < a.no for n in no_psh)


@needs_tshark
@needs_scenarios
def test_nagle_stall_on_the_released_segment() -> None:
    """scenario nagle (write, write, read on loopback, captured for real): the note is on
    the data segments tshark's own numbers show waiting for a delayed ACK, where --explain
    says the stall, on both engines."""
    path = scenario_capture("nagle")
    expected = nagle_stalls(path)
    assert expected
    said = stalls_said(path)
    assert set(said) == expected
    for pure in ("", "1"):
        env = {"SOCKCAP_PURE": pure or None}
        assert_stall_notes(path, env, said)


def stalls_said(path: Path) -> dict[int, float]:
    """The packets --explain says a Nagle stall on, with its milliseconds (one decimal)."""
    out = {}
    for a, _w, s in explained(path):
        m = re.search(r"only now, ([\d.]+) ms after its previous ones: Nagle's algorithm", s)
        if m is not None:
            out[a.no] = float(m.group(1))
    return out


def assert_stall_notes(path: Path, env: dict[str, str | None], said: dict[int, float]) -> None:
    """The note with its milliseconds on exactly those packets, in both languages and
    --json (the note rounds to whole milliseconds; the sentence says one decimal)."""
    english = notes_by_packet(path, env)
    indonesian = notes_by_packet(path, env, "--lang", "id")
    as_json = json_notes(path, env)
    noted = {no for no, notes in english.items() if any("by Nagle" in n for n in notes)}
    assert noted == set(said)
    for no, ms in said.items():
        near = {math.floor(ms), math.ceil(ms)}  # 12.5 in the sentence: 12 or 13 when rounded
        assert any(f"held back {n} ms by Nagle until a delayed ACK" in english[no] for n in near)
        assert any(f"ditahan Nagle {n} ms sampai ACK yang ditunda datang" in indonesian[no]
                   for n in near)
        assert any(f"Nagle stall: {n} ms" in as_json[no] for n in near)


@needs_tshark
@needs_corpus
def test_nagle_stall_in_a_capture_from_a_real_wire(sockcap_path: dict[str, str | None]) -> None:
    """ssh.pcap (one connection, from a wire): the stalls tshark's numbers show."""
    path = CORPUS / "public" / "ssh.pcap"
    expected = nagle_stalls(path)
    said = stalls_said(path)
    assert set(said) == expected and expected
    assert_stall_notes(path, sockcap_path, said)


def test_the_new_notes_are_explained_in_both_languages() -> None:
    """--explain's list of notes says what each means (in Indonesian too); a note whose
    meaning the sentence under its packet already gave points there instead of saying it
    twice (with --json, where no sentence is shown, it says it all)."""
    path = CORPUS / "public" / "ssh.pcap"
    if not path.exists():
        pytest.skip("corpus not present")
    res = sockcap("show", "--explain", str(path))
    assert res.returncode == 0, res.stderr
    assert re.search(r"held back by Nagle until a delayed ACK \(\d+\): said in the sentence "
                     r"under each packet that has it\.", res.stdout)
    assert re.search(r"continues the previous segment's message: no PSH there \(\d+\): "
                     r"The same side's previous segment had no PSH", res.stdout)
    res = sockcap("show", "--explain", "--json", str(path))
    assert res.returncode == 0, res.stderr
    assert re.search(r"held back by Nagle until a delayed ACK \(\d+\): These bytes were held",
                     res.stderr)
    res = sockcap("--lang", "id", "show", "--explain", str(path))
    assert res.returncode == 0, res.stderr
    assert "ditahan Nagle sampai ACK yang ditunda datang (" in res.stdout
    assert "Segmen sebelumnya dari sisi yang sama tidak ber-PSH" in res.stdout


def test_time_wait_is_not_explained_twice() -> None:
    """scenario time-wait: the packet's sentence says what TIME_WAIT means; the list of
    notes after the packets names the note and points there."""
    res = sockcap("show", "--explain", str(GOLDEN / "scenario-time-wait.pcap"))
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("TIME_WAIT (60 s on Linux)") == 1
    assert "enters TIME_WAIT (1): said in the sentence under each packet that has it." \
        in res.stdout
