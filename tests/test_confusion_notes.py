"""What confuses learners, as notes in the timeline (contract.CONFUSION_NOTES): port
numbers reused, window scale unknown, TIME_WAIT — on the packets where tshark (the
oracle) or the capture itself shows them, in the words of both languages, the same from
the compiled engine and its pure twin (``show`` of real captures on both paths)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import CORPUS, ROOT, needs_corpus, needs_tshark, sockcap
from test_explain_oracle import reused_ports_capture, tshark_column

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
