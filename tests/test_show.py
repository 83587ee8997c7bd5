"""`sockcap show`: stdin, filters, damage and the optional Wireshark dissection."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, needs_tshark, sockcap

GOLDEN = ROOT / "tests" / "golden"


def test_reads_stdin_like_a_file() -> None:
    data = (GOLDEN / "echo-tcp.pcap").read_bytes()
    piped = subprocess.run([sys.executable, "-m", "sockcap", "show", "-"], input=data,
                           capture_output=True, timeout=60)
    direct = sockcap("show", str(GOLDEN / "echo-tcp.pcap"))
    assert piped.returncode == 0 and piped.stdout.decode() == direct.stdout


def test_count_and_port_filter() -> None:
    res = sockcap("show", "-c", "3", "--json", str(GOLDEN / "echo-tcp.pcap"))
    rows = [json.loads(line) for line in res.stdout.splitlines()]
    assert [r["no"] for r in rows] == [1, 2, 3]
    server_port = rows[0]["dport"]
    res = sockcap("show", "--port", "1", str(GOLDEN / "echo-tcp.pcap"))
    assert res.returncode == 0 and res.stdout == ""
    res = sockcap("show", "--port", str(server_port), str(GOLDEN / "echo-tcp.pcap"))
    assert len(res.stdout.splitlines()) == 14


def test_missing_file_and_directory_are_one_line(tmp_path: Path) -> None:
    for target, words in ((tmp_path / "nope.pcap", "no such file"), (tmp_path, "directory")):
        res = sockcap("show", str(target))
        assert res.returncode == 2 and words in res.stderr
        assert len(res.stderr.splitlines()) == 1


def test_cut_file_shows_good_packets_then_says_where(tmp_path: Path) -> None:
    data = (GOLDEN / "echo-tcp.pcap").read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[:-30])
    res = sockcap("show", str(cut))
    assert res.returncode == 4
    assert len(res.stdout.splitlines()) == 13
    assert res.stderr.strip().startswith("sockcap: file cut short after packet 13")


@needs_tshark
def test_dissect_shows_wiresharks_view() -> None:
    res = sockcap("show", "--dissect", "4", str(GOLDEN / "echo-tcp.pcap"))
    assert res.returncode == 0, res.stderr
    assert "Layer TCP" in res.stdout and "Layer IP" in res.stdout
    res = sockcap("show", "--dissect", "99", str(GOLDEN / "echo-tcp.pcap"))
    assert res.returncode == 1 and "no packet 99" in res.stderr


@pytest.mark.parametrize("args, words", [
    (["show", "{missing}"], "no such file: "),
    (["follow", "{pcap}", "--stream", "7"], "no tcp stream 7 in "),
    (["stats", "{missing}"], "no such file: "),
])
def test_bad_input_exits_2_in_one_line(tmp_path: Path, args: list[str], words: str) -> None:
    names = {"missing": str(tmp_path / "nope.pcap"), "pcap": str(GOLDEN / "echo-tcp.pcap")}
    res = sockcap(*(a.format(**names) for a in args), input="")
    assert res.returncode == 2, res.stderr
    assert len(res.stderr.splitlines()) == 1 and words in res.stderr
