"""`sockcap show`: stdin, filters, damage and the optional Wireshark dissection."""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CORPUS, ROOT, needs_corpus, needs_tshark, sockcap
from loopback_scenarios import can_run, scenario_capture

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


@needs_corpus
@needs_tshark
def test_port_filter_keeps_numbers_times_and_streams_like_a_display_filter() -> None:
    """``--port`` hides packets as ``tshark -Y 'tcp.port == P'`` does: what is shown keeps
    its frame number, its time since the file's first packet and its stream number."""
    path = CORPUS / "public" / "tfo-5c1fa7f9ae91.pcap"
    out = subprocess.run(["tshark", "-r", str(path), "-Y", "tcp.port == 13048", "-T", "fields",
                          "-e", "frame.number", "-e", "frame.time_relative", "-e", "tcp.stream"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    expected = [(int(n), round(float(t), 6), int(s))
                for n, t, s in (line.split("\t") for line in out.splitlines())]
    for extra in ([], ["-c", "5"]):
        res = sockcap("show", "--json", "--port", "13048", *extra, str(path))
        rows = [json.loads(line) for line in res.stdout.splitlines()]
        assert [(r["no"], round(r["time"], 6), r["stream"]) for r in rows] == expected
    text = sockcap("show", "--port", "13048", str(path)).stdout.splitlines()
    assert [line.split()[:2] for line in text] == [["13", "0.118374"], ["14", "10.123548"]]


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
    path = GOLDEN / "echo-tcp.pcap"
    res = sockcap("show", "--dissect", "4", str(path))
    assert res.returncode == 0, res.stderr
    tshark = subprocess.run(["tshark", "-V", "-r", str(path), "-Y", "frame.number==4"],
                            capture_output=True, text=True, timeout=60, check=True,
                            env=dict(os.environ, TZ="UTC"))
    assert res.stdout == tshark.stdout  # complete, as tshark prints it
    lines = res.stdout.splitlines()
    assert lines[0] == "Frame 4: 71 bytes on wire (568 bits), 71 bytes captured (568 bits)"
    assert "Data (5 bytes)" in lines and "    [Length: 5]" in lines  # the payload "hello"
    assert "Transmission Control Protocol" in res.stdout
    assert res.stderr == ""
    res = sockcap("show", "--dissect", "99", str(GOLDEN / "echo-tcp.pcap"))
    assert res.returncode == 2 and "no packet 99 (it has 14)" in res.stderr


def damaged_inputs(tmp_path: Path) -> dict[str, tuple[Path, int]]:
    """Files plain show refuses or stops on, with its exit code for each."""
    cut, empty = tmp_path / "cut.pcap", tmp_path / "empty.pcap"
    cut.write_bytes((GOLDEN / "echo-tcp.pcap").read_bytes()[:1000])
    empty.write_bytes(b"")
    return {"cut": (cut, 4), "not a capture": (ROOT / "README.md", 3), "empty": (empty, 3)}


@pytest.mark.parametrize("kind", ["cut", "not a capture", "empty"])
def test_dissect_of_a_bad_file_says_what_show_says(tmp_path: Path, kind: str) -> None:
    path, code = damaged_inputs(tmp_path)[kind]
    shown = sockcap("show", str(path))
    dissected = sockcap("show", str(path), "--dissect", "1")
    assert shown.returncode == dissected.returncode == code
    assert dissected.stderr.splitlines() == shown.stderr.splitlines()[-1:]
    assert dissected.stdout == ""


def pcapng_with_a_packet_on_a_missing_interface() -> bytes:
    """Three packets, the second on interface 3 of a section with one: tshark stops on
    it, sockcap's reader skips it with a warning."""
    def block(btype: int, body: bytes) -> bytes:
        return struct.pack("<II", btype, len(body) + 12) + body + struct.pack("<I", len(body) + 12)

    def epb(iface: int) -> bytes:
        return block(6, struct.pack("<IIIII", iface, 0, 1, 60, 60) + bytes(60))

    shb = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    return shb + block(1, struct.pack("<HHI", 1, 0, 0)) + epb(0) + epb(3) + epb(0)


@needs_tshark
def test_dissect_says_in_one_line_when_tshark_fails(tmp_path: Path) -> None:
    path = tmp_path / "odd.pcapng"
    path.write_bytes(pcapng_with_a_packet_on_a_missing_interface())
    assert sockcap("show", str(path)).returncode == 0
    res = sockcap("show", str(path), "--dissect", "1")
    assert res.returncode == 1
    assert res.stderr.splitlines() == [
        f"sockcap: tshark could not dissect {path}: "
        "pcapng: interface index 3 is not less than section interface count 1"]


@pytest.mark.parametrize("args, words", [
    (["show", "{missing}"], "no such file: "),
    (["show", "{missing}", "--dissect", "1"], "no such file: "),
    (["show", "-", "--dissect", "1"], "--dissect needs a file, not stdin"),
    (["show", "{pcap}", "--dissect", "15"], "has no packet 15 (it has 14)"),
    (["follow", "{pcap}", "--stream", "7"], "no tcp stream 7 in "),
    (["stats", "{missing}"], "no such file: "),
])
def test_bad_input_exits_2_in_one_line(tmp_path: Path, args: list[str], words: str) -> None:
    names = {"missing": str(tmp_path / "nope.pcap"), "pcap": str(GOLDEN / "echo-tcp.pcap")}
    res = sockcap(*(a.format(**names) for a in args), input="")
    assert res.returncode == 2, res.stderr
    assert len(res.stderr.splitlines()) == 1 and words in res.stderr


@pytest.mark.skipif(bool(can_run()), reason=can_run() or "ok")
@pytest.mark.parametrize("name", ["refused", "reset", "half_close", "zero_window", "rto",
                                  "lossy", "port_reuse"])
def test_tcpdump_style_prints_what_tcpdump_prints(name: str) -> None:
    """``--style tcpdump`` against ``tcpdump -nn -r`` on captures made on loopback: the
    same lines, to the character, once sockcap's expert notes (a trailing "  (...)") are
    taken off. Relative numbers follow tcpdump's own rule, SACK edges included; the clock
    is local time, in two time zones (POSIX TZ strings: no tz database needed)."""
    path = scenario_capture(name)
    for tz in ("UTC", "IST-5:30") if name == "half_close" else ("UTC",):
        env = {"TZ": tz, "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin")}
        theirs = subprocess.run(["tcpdump", "-nn", "-r", str(path)], capture_output=True,
                                text=True, timeout=60, env=env, check=True).stdout.splitlines()
        res = sockcap("show", "--style", "tcpdump", str(path), env={"TZ": tz})
        mine = [re.sub(r"  \([^)]*\)$", "", line) for line in res.stdout.splitlines()]
        assert theirs and mine == theirs, tz
