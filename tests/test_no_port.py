"""A TCP header cut before its destination port has no port (-1 in the decoder): on both
paths it is a conversation of its own, never the one of port 65535, and every command that
takes a stream number handles it."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import sockcap
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from sockcap.decode.records import RawFrame
from sockcap.pcapfile import write_pcap


def _eth(sport: int, dport: int, flags: str, seq: int, ack: int, data: bytes = b"") -> bytes:
    return bytes(Ether(src="00:00:00:00:00:00", dst="00:00:00:00:00:00")
                 / IP(src="127.0.0.1", dst="127.0.0.1")
                 / TCP(sport=sport, dport=dport, flags=flags, seq=seq, ack=ack) / data)


@pytest.fixture(scope="module")
def cut_before_dport(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SYN 1234 -> 65535 captured only up to its source port, then data on 1234 <-> 65535."""
    path = tmp_path_factory.mktemp("noport") / "cut.pcap"
    syn = _eth(1234, 65535, "S", 1000, 0)
    frames = [RawFrame(0, 1, syn[:14 + 20 + 2], len(syn), 0)]
    for n, (sport, dport, seq, ack) in enumerate([(1234, 65535, 1001, 5005),
                                                  (65535, 1234, 5005, 1006)], 1):
        data = _eth(sport, dport, "PA", seq, ack, b"hello")
        frames.append(RawFrame(n * 1000, 1, data, len(data), 0))
    write_pcap(path, frames, 1)
    return path


def test_no_port_is_not_port_65535(cut_before_dport: Path,
                                   sockcap_path: dict[str, str | None]) -> None:
    lines = sockcap("show", str(cut_before_dport), env=sockcap_path).stdout.splitlines()
    packets = [line for line in lines if "TCP [" in line]
    assert len(packets) == 3
    assert "127.0.0.1:1234 → server 127.0.0.1:-1" in packets[0]
    assert "127.0.0.1:65535" in packets[1] and "Seq=1 Ack=1 " in packets[1]
    assert "127.0.0.1:65535" in packets[2] and "Seq=1 Ack=6 " in packets[2]
    assert sum("(tcp stream" in line for line in lines) == 2


@pytest.mark.parametrize("command", ["show", "stats", "follow", "diagram"])
def test_both_paths_agree(cut_before_dport: Path, command: str) -> None:
    args = [command, str(cut_before_dport)]
    if command in ("follow", "diagram"):
        args += ["--stream", "1"]
    compiled = sockcap(*args, env={"SOCKCAP_PURE": None})
    pure = sockcap(*args, env={"SOCKCAP_PURE": "1"})
    assert compiled.returncode == pure.returncode == 0, compiled.stderr + pure.stderr
    assert compiled.stdout == pure.stdout


@pytest.mark.parametrize("command", ["follow", "diagram"])
def test_a_stream_that_begins_without_a_port(cut_before_dport: Path, command: str,
                                            sockcap_path: dict[str, str | None]) -> None:
    res = sockcap(command, "--stream", "0", str(cut_before_dport), env=sockcap_path)
    assert res.returncode == 0 and res.stderr == "", res.stderr
    assert "Traceback" not in res.stdout


def test_port_pairs_of_a_cut_header() -> None:
    from sockcap.pipeline import port_pairs

    assert port_pairs(1234, 80) == (b"\x04\xd2\x00\x50", b"\x00\x50\x04\xd2")
    assert port_pairs(1234, -1) == (b"\x04\xd2",)
    assert port_pairs(-1, -1) == ()
