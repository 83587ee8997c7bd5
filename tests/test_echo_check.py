"""What the built-in client says about a server that is not quite an echo server: replies
that differ from what was sent, a server that never closes, and a UDP server that is silent.
Real C servers compiled here (tests/c/echo_server.c and its planted bugs), real sockets."""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sockcap.endpoints.client import echo_difference, echo_problems
from tests.conftest import free_port, never_engine, sockcap
from tests.programs import HAVE_GCC, build_programs

pytestmark = never_engine()

needs_gcc = pytest.mark.skipif(not HAVE_GCC, reason="gcc is not installed")


@pytest.fixture(scope="module")
def programs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if not HAVE_GCC:
        pytest.skip("gcc is not installed")
    return build_programs(tmp_path_factory.mktemp("c"))



def wait_listening(proc: subprocess.Popen[bytes], limit: float = 10.0) -> None:
    """Until the server says it listens (a probe connection would be one more client)."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], limit)
    assert ready and proc.stdout.readline().startswith(b"listening on port")


def close_wait_sockets(port: int) -> list[str]:
    """``ss``'s lines for TCP sockets on ``port`` in CLOSE_WAIT."""
    out = subprocess.run(["ss", "-Htn", "state", "close-wait", f"( sport = :{port} )"],
                         capture_output=True, text=True, timeout=10, check=True).stdout
    return [line for line in out.splitlines() if line.strip()]


@pytest.fixture
def c_server(programs: dict[str, Path]) -> Iterator[Callable[[str], int]]:
    """Start a C server variant on a free port; its whole process group is stopped after
    (BUG_NO_EOF's forked child spins after the client's FIN and must not outlive the test)."""
    started: list[subprocess.Popen[bytes]] = []

    def start(name: str) -> int:
        port = free_port()
        proc = subprocess.Popen([str(programs[name]), str(port)], stdout=subprocess.PIPE,
                                start_new_session=True)
        started.append(proc)
        wait_listening(proc)
        return port

    yield start
    for proc in started:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the group this test's server leads
        except ProcessLookupError:
            pass
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


# -- the comparison itself ------------------------------------------------------------------


def test_echo_difference_names_extra_missing_and_different_bytes() -> None:
    assert echo_difference(b"hi", b"hi") == ""
    assert echo_difference(b"hi", b"hi\xcfU\x05") == "3 extra bytes after the echo: cf 55 05"
    assert echo_difference(b"hello", b"hel") == "2 bytes missing at the end: 6c 6f"
    assert echo_difference(b"hello", b"HELLO") == (
        "differs from byte 0 on: sent 68 65 6c 6c 6f, got 48 45 4c 4c 4f (5 bytes for 5 sent)")
    assert echo_difference(b"x" * 40, b"x" * 20 + b"y" * 20).endswith(
        "79 79 79 79 79 79 79 79 79 79 79 79 79 79 79 79 ... (40 bytes for 40 sent)")
    assert echo_problems([("a", b"a"), ("b", None), ("hi", b"hillo")]) == [
        "reply 3 is not an echo of 'hi': 3 extra bytes after the echo: 6c 6c 6f"]


# -- against the C servers --------------------------------------------------------------------


@needs_gcc
def test_a_correct_echo_server_passes(c_server: Callable[[str], int]) -> None:
    port = c_server("server")
    r = sockcap("client", "--port", str(port), "-m", "hello", "-m", "hi", "--timeout", "3")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[1:] == ["> hello", "< hello", "> hi", "< hi", "closed"]
    assert r.stderr == ""


@needs_gcc
def test_an_echo_with_bytes_of_an_earlier_message_is_said_and_fails(
        c_server: Callable[[str], int]) -> None:
    port = c_server("server-BUG_NUL")
    r = sockcap("client", "--port", str(port), "-m", "hello", "-m", "hi", "--timeout", "3")
    assert r.returncode == 1, r.stderr
    assert r.stdout.splitlines()[1:] == [
        "> hello", "< hello", "> hi", "< hillo",
        "! not an echo: 3 extra bytes after the echo: 6c 6c 6f", "closed"]
    assert r.stderr.splitlines() == [
        "sockcap: reply 2 is not an echo of 'hi': 3 extra bytes after the echo: 6c 6c 6f",
        "sockcap: 1 of 2 replies were not an echo of what was sent (for a server that is not "
        "an echo server, add --no-echo-check)"]
    unchecked = sockcap("client", "--port", str(port), "-m", "hello", "-m", "hi",
                        "--timeout", "3", "--no-echo-check")
    assert unchecked.returncode == 0, unchecked.stderr
    assert "< hillo" in unchecked.stdout and "not an echo" not in unchecked.stdout


@needs_gcc
def test_a_server_that_never_closes_is_said_and_left_in_close_wait(
        c_server: Callable[[str], int]) -> None:
    port = c_server("server-BUG_NO_EOF")
    r = sockcap("client", "--port", str(port), "-m", "hi", "--timeout", "0.5")
    assert r.returncode == 1, r.stderr
    assert r.stdout.splitlines()[1:] == ["> hi", "< hi"]
    assert r.stderr.splitlines() == [
        "sockcap: the server did not close its side within 0.5 s after our FIN (its "
        "connection is left in CLOSE_WAIT)"]
    assert len(close_wait_sockets(port)) == 1  # what the sentence says, as ss sees it


# -- UDP silence ----------------------------------------------------------------------------------


def test_a_silent_udp_server_is_not_blamed_on_loss() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        r = sockcap("client", "--udp", "--port", str(port), "-m", "hi", "--timeout", "0.3")
        assert silent.recv(100) == b"hi"  # it was delivered: loss is not the reason
    assert r.returncode == 1, r.stderr
    assert r.stdout.splitlines()[2] == (
        "< (sent; no reply within 0.3 s and no 'port unreachable': a program has the port open "
        "and did not answer; on loopback the datagram was not lost on the way)")
    assert "can be lost" not in r.stdout


def test_run_checks_the_echo_and_passes_against_its_own_server() -> None:
    r = sockcap("run", "-m", "hello", "-m", "quit", "--timeout", "3")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["> hello", "< hello", "> quit", "< quit"]
