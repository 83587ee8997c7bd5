"""``sockcap run --capture --scenario NAME``: every scenario runs for real on loopback;
the packets it promises are in the capture (tshark agrees), and the socket call it
promises returns what it says (the error, the byte count)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conftest import needs_capture, needs_tshark, never_engine, sockcap, tshark_fields

from sockcap.codes import CAPTURE_NOTES
from sockcap.endpoints.scenarios import SCENARIOS

pytestmark = never_engine()


def run(name: str, tmp_path: Path, *options: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]], Path]:
    out = tmp_path / f"{name}.pcap"
    res = sockcap("run", "--capture", "--scenario", name, "--json", "--out", str(out), *options)
    assert res.returncode == 0, res.stderr
    records = [json.loads(line) for line in res.stdout.splitlines()]
    calls = [r for r in records if r["type"] == "call"]
    packets = [r for r in records if r["type"] == "packet"]
    return packets, calls, out


def errors(calls: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(c["side"], c["call"], c["error"]) for c in calls if c["error"]]


def data(packets: list[dict[str, Any]], side: str) -> list[dict[str, Any]]:
    return [p for p in packets if p["from"] == side and p["len"] > 0]


def notes(packets: list[dict[str, Any]]) -> list[str]:
    """The packets' notes about the exchange (not the loopback SYN's partial checksum, a
    note about how the capture was taken: codes.CAPTURE_NOTES)."""
    return [n for p in packets for n in p["notes"] if n not in CAPTURE_NOTES]


def test_list_names_every_scenario_in_a_line() -> None:
    res = sockcap("run", "--scenario", "list")
    assert res.returncode == 0
    lines = res.stdout.splitlines()
    assert [line.split()[0] for line in lines] == list(SCENARIOS)
    indonesian = sockcap("--lang", "id", "run", "--scenario", "list").stdout
    assert indonesian != res.stdout and "klien" in indonesian.lower()


def test_an_unknown_scenario_is_a_usage_error() -> None:
    res = sockcap("run", "--capture", "--scenario", "nope")
    assert res.returncode == 2 and "no scenario 'nope'" in res.stderr
    res = sockcap("run", "--scenario", "reset")
    assert res.returncode == 2 and "--scenario needs --capture" in res.stderr


@needs_capture
@needs_tshark
def test_refused(tmp_path: Path) -> None:
    packets, calls, out = run("refused", tmp_path)
    assert errors(calls) == [("client", "connect()", "ECONNREFUSED")]
    assert [p["flags"] for p in packets] == [["SYN"], ["RST", "ACK"]]
    assert [c["caused_by"] for c in calls if c["error"]] == [[2]]  # the RST
    assert notes(packets) == ["connection refused"]
    assert len(tshark_fields(out, "frame.number")) == 2


@needs_capture
def test_reset(tmp_path: Path) -> None:
    packets, calls, _ = run("reset", tmp_path)
    assert errors(calls) == [("server", "recv()", "ECONNRESET")]
    rst = [p for p in packets if "RST" in p["flags"]]
    assert len(rst) == 1 and rst[0]["from"] == "client"
    assert [c["caused_by"] for c in calls if c["error"]] == [[rst[0]["no"]]]


@needs_capture
def test_half_close(tmp_path: Path) -> None:
    packets, calls, _ = run("half-close", tmp_path)
    assert ("client", "shutdown(SHUT_WR)") in [(c["side"], c["call"]) for c in calls]
    fin = next(p["no"] for p in packets if "FIN" in p["flags"] and p["from"] == "client")
    assert [p for p in data(packets, "server") if p["no"] > fin]
    assert "half-close" in notes(packets)


@needs_capture
def test_timeout(tmp_path: Path) -> None:
    packets, calls, _ = run("timeout", tmp_path)
    assert ("client", "connect()", "ETIMEDOUT") in errors(calls)
    assert notes(packets).count("SYN retransmitted") >= 1
    cause = next(c["caused_by"] for c in calls if c["error"] == "ETIMEDOUT")
    syns = [p["no"] for p in packets if p["flags"] == ["SYN"]]
    assert len(cause) >= 2 and set(cause) <= set(syns)  # the SYN and its retransmissions


@needs_capture
def test_backlog(tmp_path: Path) -> None:
    packets, calls, _ = run("backlog", tmp_path)
    assert errors(calls) == []
    assert [c["call"] for c in calls].count("connect()") == 2
    assert notes(packets).count("SYN retransmitted") >= 1


@needs_capture
def test_coalesce_and_nodelay(tmp_path: Path) -> None:
    packets, calls, _ = run("coalesce", tmp_path)
    sends = [c for c in calls if c["call"].startswith("send(")]
    assert len(sends) == 5
    assert len(data(packets, "client")) < len(sends)  # Nagle: fewer segments than sends
    recvs = [c["bytes"] for c in calls if c["side"] == "server" and c["call"] == "recv()"]
    assert recvs[0] == sum(c["bytes"] for c in sends)  # one recv() got every send
    packets, calls, _ = run("nodelay", tmp_path)
    assert [p["len"] for p in data(packets, "client")] == [4, 4, 6, 5, 4]


@needs_capture
@needs_tshark
def test_large(tmp_path: Path) -> None:
    packets, calls, out = run("large", tmp_path)
    segments = data(packets, "client")
    # the bytes the segments cover, each once: under load a segment may be sent again
    covered: set[int] = set()
    for p in segments:
        covered.update(range(p["seq"], p["seq"] + p["len"]))
    assert covered == set(range(1, 100_001))
    assert len(segments) >= 2
    assert [c["bytes"] for c in calls if c["call"].startswith("send(")] == [100_000]
    lens = [int(row[0]) for row in tshark_fields(out, "tcp.len") if row[0] != "0"]
    assert lens == [p["len"] for p in packets if p["len"] > 0]


@needs_capture
def test_zero_window(tmp_path: Path) -> None:
    packets, _, _ = run("zero-window", tmp_path)
    assert "zero window" in notes(packets)
    assert any(p["win"] == 0 and p["from"] == "server" for p in packets)


@needs_capture
def test_time_wait(tmp_path: Path) -> None:
    packets, calls, _ = run("time-wait", tmp_path)
    assert [e[2] for e in errors(calls)] == ["EADDRINUSE"]
    fins = [p for p in packets if "FIN" in p["flags"]]
    assert [p["from"] for p in fins] == ["client", "server"]  # the client closed first
    assert [c["caused_by"] for c in calls if c["error"]] == [[fins[0]["no"]]]


@needs_capture
def test_explained_in_indonesian(tmp_path: Path) -> None:
    res = sockcap("--lang", "id", "run", "--capture", "--explain", "--scenario", "refused",
                  "--out", str(tmp_path / "r.pcap"))
    assert res.returncode == 0, res.stderr
    assert "skenario refused" in res.stdout
    assert "klien: connect() …" in res.stdout  # where it began: before its SYN
    assert "klien: … connect() → ECONNREFUSED" in res.stdout  # where it returned
    assert "← paket 2: RST yang menjawab SYN" in res.stdout
    assert "REJ: Koneksi ditolak" in res.stdout


@needs_capture
def test_echo_calls_and_segments(tmp_path: Path) -> None:
    packets, calls, _ = run("echo", tmp_path)
    sends = [(c["side"], c["bytes"]) for c in calls if c["call"].startswith("send(")]
    segments = [(p["from"], p["len"]) for p in packets if p["len"] > 0]
    assert sends == segments == [("client", 5), ("server", 5), ("client", 5), ("server", 5),
                                 ("client", 4), ("server", 4)]
    # the first send() began before the segment it put on the wire
    first_send = next(c["time"] for c in calls if c["call"] == "send(b'hello')")
    first_data = next(p["time"] for p in packets if p["len"] > 0)
    assert first_send <= first_data
