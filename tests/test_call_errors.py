"""A program's failed calls tied to what caused them: EPIPE to the peer's RST (timeline,
JSON, --explain in both languages), and, with --kernel, each error to the kernel's event
(tcp_receive_reset for EPIPE and ECONNREFUSED) and each event to the calls it made fail.
Real C programs compiled here under strace; tshark confirms the packets."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from sockcap.capture.calls import strace_path
from sockcap.capture.kernel import tracefs_root
from tests.conftest import needs_capture, needs_tshark, sockcap, tshark_fields
from tests.programs import C_DIR, HAVE_GCC

pytestmark = [needs_capture,
              pytest.mark.skipif(not HAVE_GCC, reason="gcc is not installed"),
              pytest.mark.skipif(strace_path() is None, reason="strace is not installed")]
needs_tracefs = pytest.mark.skipif(os.geteuid() != 0 or tracefs_root() is None,
                                   reason="--kernel needs root and tracefs")
DEADLINE = 60.0


@pytest.fixture(scope="module")
def epipe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("c") / "epipe_client"
    subprocess.run(["gcc", "-O1", "-Wall", "-o", str(target), str(C_DIR / "epipe_client.c")],
                   check=True, timeout=60)
    return target


class ClosingServer:
    """Accepts one connection and closes it at once (its FIN; the client's late bytes are
    then answered with RST)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        self.sock.settimeout(DEADLINE)
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        conn.close()

    def close(self) -> None:
        self.thread.join(DEADLINE)
        self.sock.close()


def capture(program: Path, port: int, *extra: str, pcap: Path | None = None,
            env: dict[str, str | None] | None = None) -> subprocess.CompletedProcess[str]:
    out = ["-w", str(pcap)] if pcap is not None else []
    res = sockcap("capture", "--calls", *extra, *out, "-f", f"tcp port {port}", "--",
                  str(program), "127.0.0.1", str(port), timeout=DEADLINE, env=env)
    assert res.returncode == 0, res.stderr
    return res


def rows(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@needs_tshark
def test_epipe_is_tied_to_the_peers_rst(epipe: Path, tmp_path: Path,
                                        sockcap_path: dict[str, str | None]) -> None:
    server = ClosingServer()
    pcap = tmp_path / "epipe.pcap"
    try:
        res = capture(epipe, server.port, "--json", pcap=pcap, env=sockcap_path)
    finally:
        server.close()
    records = rows(res.stdout)
    writes = [r for r in records if r.get("type") == "call" and r["syscall"] == "write"]
    assert [(w["bytes"], w["errno"]) for w in writes] == [(5, None), (None, "EPIPE")]
    (rst,) = writes[1]["caused_by"]
    flags = {int(r[0]): r[1:] for r in tshark_fields(pcap, "frame.number", "tcp.flags.reset",
                                                       "tcp.srcport")}
    assert flags[rst][0] in ("1", "True") and int(flags[rst][1]) == server.port  # the server's
    assert writes[0]["packets"] and writes[0]["packets"][0] < rst  # the write it answered
    assert writes[1]["kernel"] == []  # no --kernel: no event named


@pytest.mark.parametrize("lang, words", [
    ("en", "write() failed with EPIPE: the peer reset the connection"),
    ("id", "write() gagal dengan EPIPE"),
])
def test_epipe_explained_in_both_languages(epipe: Path, lang: str, words: str) -> None:
    server = ClosingServer()
    try:
        res = capture(epipe, server.port, "--explain", env={"LANGUAGE": lang})
    finally:
        server.close()
    lines = res.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if "→ EPIPE" in line)
    cause, why = lines[at + 1], lines[at + 2]
    assert "←" in cause and "RST" in cause
    assert words in why, why


@needs_tracefs
def test_each_error_names_its_kernel_event_and_the_event_its_call(
        epipe: Path, tmp_path: Path) -> None:
    """EPIPE and ECONNREFUSED, each from tcp_receive_reset on the client's socket."""
    server = ClosingServer()
    try:
        res = capture(epipe, server.port, "--json", "--kernel")
    finally:
        server.close()
    records = rows(res.stdout)
    failed = next(r for r in records if r.get("type") == "call" and r["errno"] == "EPIPE")
    (event,) = failed["kernel"]
    assert event["event"] == "tcp_receive_reset" and event["side"] == "client"
    assert event["time"] <= failed["end"]
    resets = [r for r in records if r.get("type") == "kernel" and r["event"] == "tcp_receive_reset"]
    assert [c["errno"] for r in resets for c in r["calls"]] == ["EPIPE"]
    assert resets[0]["calls"][0]["syscall"] == "write"

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        closed = int(s.getsockname()[1])
    res = sockcap("capture", "--calls", "--kernel", "--json", "-f", f"tcp port {closed}",
                  "--", str(epipe), "127.0.0.1", str(closed), timeout=DEADLINE)
    assert res.returncode != 0 and "Connection refused" in res.stderr
    records = rows(res.stdout)
    connect = next(r for r in records if r.get("type") == "call" and r["syscall"] == "connect")
    assert connect["errno"] == "ECONNREFUSED"
    assert [k["event"] for k in connect["kernel"]] == ["tcp_receive_reset"]
    reset = next(r for r in records if r.get("type") == "kernel" and r["event"] == "tcp_receive_reset")
    assert [(c["syscall"], c["errno"]) for c in reset["calls"]] == [("connect", "ECONNREFUSED")]

    text = sockcap("capture", "--calls", "--kernel", "-f", f"tcp port {closed}", "--",
                   str(epipe), "127.0.0.1", str(closed), timeout=DEADLINE).stdout
    assert "→ client: connect() fails with ECONNREFUSED" in text
    assert "[the kernel: tcp_receive_reset at " in text
