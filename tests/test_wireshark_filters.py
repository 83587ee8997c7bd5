"""``--filters``: the display filter printed for each packet finds that packet in
Wireshark (tshark -Y as the oracle), and the summary names Wireshark's menus."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import CORPUS, ROOT, needs_corpus, needs_tshark, sockcap

GOLDEN = ROOT / "tests" / "golden"


def _matches(path: Path, display_filter: str) -> list[int]:
    out = subprocess.run(["tshark", "-r", str(path), "-Y", display_filter, "-T", "fields",
                          "-e", "frame.number"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return [int(n) for n in out.stdout.split()]


def _records(path: Path) -> list[dict[str, object]]:
    res = sockcap("show", "--json", "--filters", str(path))
    assert res.returncode == 0, res.stderr
    return [json.loads(line) for line in res.stdout.splitlines()]


@needs_tshark
@pytest.mark.parametrize("path, alone", [
    (GOLDEN / "echo-tcp.pcap", True), (GOLDEN / "echo-udp.pcap", False),
    (GOLDEN / "diagram-refused.pcap", True), (GOLDEN / "diagram-rto.pcap", False),
    pytest.param(CORPUS / "public" / "dns_tcp.pcap", True, marks=needs_corpus),
    pytest.param(CORPUS / "public" / "tfo-5c1fa7f9ae91.pcap", True, marks=needs_corpus),
])
def test_each_filter_finds_its_packet_in_tshark(path: Path, alone: bool) -> None:
    """Every packet is among what its filter finds; where nothing is sent twice (no
    retransmission, no repeated datagram), it is the only one."""
    records = _records(path)
    assert records
    for rec in records:
        found = _matches(path, str(rec["filter"]))
        assert rec["no"] in found, (rec["filter"], found)
        if alone:
            assert found == [rec["no"]], (rec["filter"], found)


def test_text_lines_and_the_menus() -> None:
    res = sockcap("show", "--filters", str(GOLDEN / "echo-tcp.pcap"))
    lines = res.stdout.splitlines()
    assert lines[1] == ("      filter: tcp.stream eq 0 && tcp.srcport == 35558 && "
                        "tcp.flags == 0x002 && tcp.seq == 0 && tcp.len == 0")
    assert lines[-1] == ("tcp stream 0 in Wireshark: display filter tcp.stream eq 0; "
                         "Analyze > Follow > TCP Stream; Statistics > Flow Graph "
                         "(Limit to display filter, Flow type: TCP Flows)")
    plain = sockcap("show", str(GOLDEN / "echo-tcp.pcap")).stdout
    assert "filter:" not in plain and "Wireshark" not in plain
    json_run = sockcap("show", "--json", "--filters", str(GOLDEN / "echo-udp.pcap"))
    assert all(line.startswith("{") for line in json_run.stdout.splitlines())
    assert "Analyze > Follow > UDP Stream" in json_run.stderr
