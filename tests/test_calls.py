"""Socket calls tied to the packets: sockcap's own endpoints (``run --capture``), any
program under strace (``capture --calls -- CMD``, the course's C pair compiled here), and
the findings the calls prove (a read loop after EOF, the strlen() bug). tshark confirms
the packets the calls are tied to."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, needs_capture, needs_tshark, never_engine, sockcap, tshark_fields

from sockcap.analysis.calls import CallKind
from sockcap.capture.calls import read_calls, strace_path, traced_argv
from tests.conftest import free_port
from tests.programs import HAVE_GCC

pytestmark = never_engine()

needs_gcc = pytest.mark.skipif(not HAVE_GCC, reason="gcc is not installed")
needs_strace = pytest.mark.skipif(strace_path() is None, reason="strace is not installed")
DEADLINE = 60.0  # the longest any wait here may take, on a loaded machine




def records(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def of_type(rows: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [r for r in rows if r.get("type") == kind]


def wait_listening(port: int) -> None:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"nothing listened on {port} within {DEADLINE} s")


# --- the parser, on a real trace -----------------------------------------------------------

@needs_gcc
@needs_strace
def test_a_real_trace_becomes_calls_with_addresses_bytes_and_errors(
        programs: dict[str, Path], tmp_path: Path) -> None:
    """The C client under strace against a Python listener, then against a closed port."""
    port = free_port()
    listener = socket.create_server(("127.0.0.1", port))

    def echo_once() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.sendall(conn.recv(100))

    t = threading.Thread(target=echo_once, daemon=True)
    t.start()
    trace = str(tmp_path / "t.strace")
    done = subprocess.run(traced_argv([str(programs["client"]), "127.0.0.1", str(port)], trace),
                          input="hi there\n", capture_output=True, text=True, timeout=DEADLINE)
    t.join(DEADLINE)
    listener.close()
    assert done.returncode == 0 and "echo: hi there" in done.stdout
    calls = read_calls(trace)
    net = [c for c in calls if c.kind is not CallKind.OPTION]
    assert [c.syscall for c in net] == ["socket", "connect", "write", "read", "close"]
    connect, write, read = net[1], net[2], net[3]
    assert connect.remote == f"127.0.0.1:{port}" and not connect.error
    assert write.data == b"hi there\n" and write.nbytes == 9 and read.data == b"hi there\n"
    assert write.local == read.local and write.remote == f"127.0.0.1:{port}"
    assert all(c.side == "client" for c in net) and write.end_ns >= write.ts_ns
    # nothing listens now: connect() fails, with its errno
    refused = str(tmp_path / "r.strace")
    subprocess.run(traced_argv([str(programs["client"]), "127.0.0.1", str(port)], refused),
                   input="x\n", capture_output=True, text=True, timeout=DEADLINE)
    failed = [c for c in read_calls(refused) if c.kind is CallKind.CONNECT]
    assert [(c.error, c.result) for c in failed] == [("ECONNREFUSED", -1)]


# --- any program: capture --calls -- CMD ---------------------------------------------------

@pytest.fixture
def course_server(programs: dict[str, Path]) -> Any:
    """The course's (correct) server on a free port, stopped by its PID afterwards."""
    port = free_port()
    proc = subprocess.Popen([str(programs["server"]), str(port)], stdout=subprocess.DEVNULL)
    try:
        wait_listening(port)
        yield port
    finally:
        proc.terminate()
        proc.wait(DEADLINE)


@needs_capture
@needs_gcc
@needs_strace
def test_a_fin_is_explained_by_the_recorded_close(
        programs: dict[str, Path], course_server: int, tmp_path: Path) -> None:
    """``capture --calls --explain``: the course's client ends with close(), strace saw
    it, and the FIN it sent is explained by it (nothing more is read; data arriving now
    gets an RST) instead of what a shutdown() or a close() would each mean."""
    port = course_server
    res = sockcap("capture", "--calls", "--explain", "-w", str(tmp_path / "c.pcap"), "-f",
                  f"tcp port {port}", "--", str(programs["client"]), "127.0.0.1", str(port),
                  input="hello\n", timeout=DEADLINE)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    fin = next(i for i, line in enumerate(lines)
               if "[FIN, ACK]" in line and line.split()[2] == "client")
    assert lines[fin + 1].strip().startswith(
        "FIN: the client's program called close() (recorded): it sends and reads nothing "
        "more, and data that still arrives is answered with RST."), lines[fin:fin + 2]
    assert "After shutdown() the client can still receive" not in res.stdout


@needs_capture
@needs_tshark
@needs_gcc
@needs_strace
def test_the_students_client_calls_are_tied_to_its_packets(
        programs: dict[str, Path], course_server: int, tmp_path: Path) -> None:
    port, pcap = course_server, tmp_path / "c.pcap"
    res = sockcap("capture", "--calls", "--json", "-w", str(pcap), "-f", f"tcp port {port}",
                  "--", str(programs["client"]), "127.0.0.1", str(port),
                  input="hello\nworld\n", timeout=DEADLINE)
    assert res.returncode == 0, res.stderr
    rows = records(res.stdout)
    calls, packets = of_type(rows, "call"), of_type(rows, "packet")
    by_no = {p["no"]: p for p in packets}
    writes = [c for c in calls if c["syscall"] == "write" and c["conversation"] == 0]
    reads = [c for c in calls if c["syscall"] == "read" and c["conversation"] == 0]
    assert [c["bytes"] for c in writes] == [6, 6] and [c["bytes"] for c in reads] == [6, 6]
    payload = dict(tshark_fields(pcap, "frame.number", "tcp.payload"))
    for call, text in zip(writes, (b"hello\n", b"world\n"), strict=True):
        assert call["side"] == "client" and call["packets"], call
        for no in call["packets"]:  # the segments that carried the write's bytes
            assert by_no[no]["from"] == "client"
            assert bytes.fromhex(payload[str(no)].replace(":", "")) == text
    for call in reads:  # the server's echo is what the read returned
        assert all(by_no[no]["from"] == "server" for no in call["packets"])
    connect = next(c for c in calls if c["syscall"] == "connect")
    assert by_no[connect["packets"][0]]["flags"] == ["SYN"]
    assert connect["args"] == {"address": f"127.0.0.1:{port}"} and connect["pid"] > 0
    close = next(c for c in calls if c["syscall"] == "close" and c["conversation"] == 0)
    assert "FIN" in by_no[close["packets"][0]]["flags"]
    # in the timeline each call comes before the packets it caused
    order = [(r.get("type"), r.get("no"), r.get("syscall")) for r in rows]
    assert order.index(("call", None, "connect")) < order.index(("packet", 1, None))
    first_write = order.index(("call", None, "write"))
    assert first_write < order.index(("packet", writes[0]["packets"][0], None))


def traced_server(server: Path, port: int, tmp_path: Path, lines: str) -> list[dict[str, Any]]:
    """The server under ``capture --calls``, one client exchange, then Ctrl-C."""
    cmd = [sys.executable, "-m", "sockcap", "capture", "--calls", "--json", "-f",
           f"tcp port {port}", "--", str(server), str(port)]
    env = dict(os.environ, NO_COLOR="1")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT, env=env)
    try:
        wait_listening(port)
        with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE) as c:
            for line in lines.splitlines(keepends=True):
                c.sendall(line.encode())
                c.recv(4096)
        time.sleep(0.5)  # the server's calls after the client closed (not a condition: more is fine)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=DEADLINE)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    return records(out)


@needs_capture
@needs_gcc
@needs_strace
def test_a_read_loop_after_eof_is_counted(programs: dict[str, Path], tmp_path: Path) -> None:
    rows = traced_server(programs["server-BUG_NO_EOF"], free_port(), tmp_path, "hello\n")
    found = of_type(rows, "finding")  # each connection's child spins: the probe's too
    assert found and {f["finding"] for f in found} == {"read-after-eof"}
    assert all(f["side"] == "server" and f["count"] >= 2 for f in found)
    eof = [c for c in of_type(rows, "call") if c["syscall"] == "read" and c["bytes"] == 0]
    counted = {(c["pid"], c["fd"]): c["repeat"] for c in eof}
    assert sorted(counted[(f["pid"], f["fd"])] for f in found) == sorted(
        f["count"] + 1 for f in found)  # one call line each, counted


@needs_capture
@needs_gcc
@needs_strace
def test_the_nul_bug_is_named_from_the_calls(programs: dict[str, Path], tmp_path: Path) -> None:
    rows = traced_server(programs["server-BUG_NUL"], free_port(), tmp_path,
                         "hello world\nbye\n")
    found = [f for f in of_type(rows, "finding") if f["finding"] == "wrote-more-than-read"]
    assert [(f["received"], f["sent"]) for f in found] == [(4, 12)]  # "bye\n" + "o world\n"


@needs_capture
@needs_gcc
def test_calls_without_strace_is_one_line_and_the_capture_goes_on(
        programs: dict[str, Path], course_server: int, tmp_path: Path) -> None:
    import shutil

    port = course_server
    for tool in ("tcpdump",):  # what the capture filter needs; strace is left out
        found = shutil.which(tool)
        if found:
            (tmp_path / tool).symlink_to(found)
    res = sockcap("capture", "--calls", "-f", f"tcp port {port}", "--",
                  str(programs["client"]), "127.0.0.1", str(port), input="hi\n",
                  env={"PATH": str(tmp_path)}, timeout=DEADLINE)  # no strace on this PATH
    assert res.returncode == 0, res.stderr
    said = [line for line in res.stderr.splitlines() if "strace" in line]
    assert len(said) == 1 and "--calls needs strace" in said[0]
    assert "[SYN]" in res.stdout and "▸" not in res.stdout


# --- sockcap's own endpoints ---------------------------------------------------------------

@needs_capture
def test_run_capture_shows_both_endpoints_calls(tmp_path: Path) -> None:
    res = sockcap("run", "--capture", "--json", "-m", "hello", "-m", "quit", "--out",
                  str(tmp_path / "r.pcap"))
    assert res.returncode == 0, res.stderr
    rows = records(res.stdout)
    calls = of_type(rows, "call")
    by_no = {p["no"]: p for p in of_type(rows, "packet")}
    sides = {(c["side"], c["kind"]) for c in calls}
    assert {("server", "listen"), ("server", "accept"), ("client", "connect"),
            ("client", "send"), ("server", "recv"), ("server", "send"), ("client", "recv"),
            ("client", "shutdown"), ("client", "close"), ("server", "close")} <= sides
    hello = next(c for c in calls if c["side"] == "client" and c["kind"] == "send")
    assert [bytes.fromhex(by_no[n]["payload_hex"]) for n in hello["packets"]] == [b"hello"]
    eof = [c for c in calls if c["side"] == "server" and c["kind"] == "recv" and c["bytes"] == 0]
    assert eof and "FIN" in by_no[eof[0]["packets"][0]]["flags"]  # recv() → 0: the FIN
    for call in calls:  # the schema of a call record
        assert {"side", "pid", "fd", "syscall", "args", "result", "errno", "begin", "end",
                "conversation", "packets"} <= set(call)
        assert call["begin"] <= call["end"]
    text = sockcap("run", "--capture", "-m", "hi", "--out", str(tmp_path / "t.pcap")).stdout
    lines = text.splitlines()
    connect_begun = next(i for i, x in enumerate(lines) if "client: connect(" in x)
    syn = next(i for i, x in enumerate(lines) if "[SYN]" in x)
    assert connect_begun < syn  # the call is shown where it began, before its SYN


@needs_capture
def test_a_blocking_connect_across_syn_retries_is_begun_then_returned(tmp_path: Path) -> None:
    res = sockcap("run", "--capture", "--scenario", "backlog", "--out", str(tmp_path / "b.pcap"),
                  timeout=DEADLINE)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    begun = [i for i, x in enumerate(lines) if "client: connect() …" in x]
    returned = [i for i, x in enumerate(lines) if "client: … connect() → ok" in x]
    retries = [i for i, x in enumerate(lines) if "[SYN]" in x and "SYN retransmitted" in x]
    assert retries and len(begun) == 2 and len(returned) == 2
    assert begun[1] < retries[0] and retries[-1] < returned[1]
