"""The echo server and client on real sockets (127.0.0.1 only), and against the C pair.

Every wait is bounded: coroutines run under :func:`run` (a 30 s cap), subprocesses
have timeouts, and every process a test starts is stopped by its PID.
"""

from __future__ import annotations

import asyncio
import errno
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from conftest import never_engine, sockcap

from sockcap.endpoints.address import is_wildcard, preview, printable
from sockcap.endpoints.client import (
    Exchange,
    run_client,
    tcp_exchange,
    udp_exchange,
)
from sockcap.endpoints.server import EchoServer
from sockcap.errors import EndpointError
from tests.conftest import free_port

pytestmark = never_engine()

ROOT = Path(__file__).resolve().parents[1]
C_DIR = ROOT / "bench" / "c"
T = TypeVar("T")

needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is not installed")


def run(coro: Awaitable[T], limit: float = 30.0) -> T:
    """Run a coroutine in a fresh event loop, failing if it takes over ``limit`` s."""

    async def bounded() -> T:
        return await asyncio.wait_for(coro, limit)

    return asyncio.run(bounded())



def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a process this test started, by its PID."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(5)
    if proc.stdout is not None:
        proc.stdout.close()


def read_line(proc: subprocess.Popen[bytes], limit: float = 10.0) -> str:
    """The first line a subprocess prints, within ``limit`` seconds."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], limit)
    assert ready, "the process printed nothing"
    return proc.stdout.readline().decode()


# -- TCP ------------------------------------------------------------------------------


def test_tcp_round_trip_logs_and_waits_idle() -> None:
    lines: list[str] = []

    async def scenario() -> tuple[list[Exchange], bool]:
        async with EchoServer(port=0, log=lines.append) as server:
            result = await tcp_exchange("127.0.0.1", server.port, ["hello", "world", "quit"])
            idle = await server.wait_idle(2)
            assert server.stats.connections == 1
            assert server.stats.active == 0
            assert server.stats.bytes == len("helloworldquit")
            return result, idle

    result, idle = run(scenario())
    assert result == [("hello", b"hello"), ("world", b"world"), ("quit", b"quit")]
    assert idle
    text = "\n".join(lines)
    assert re.search(r"^\d\d:\d\d:\d\d\.\d{3} 127\.0\.0\.1:\d+ connected", text, re.M)
    assert 'echo 5 bytes "hello"' in text
    assert "closed by client after 3 messages, 14 bytes" in text


def test_quit_ends_the_exchange() -> None:
    async def scenario() -> list[Exchange]:
        async with EchoServer(port=0) as server:
            return await tcp_exchange("127.0.0.1", server.port, ["a", "quit", "never sent"])

    assert run(scenario()) == [("a", b"a"), ("quit", b"quit")]


def test_an_empty_message_is_refused_over_tcp_and_sent_over_udp() -> None:
    for command in (["run"], ["client", "--port", "1"]):
        res = sockcap(*command, "-m", "", "-m", "hi")
        assert res.returncode == 2 and "empty message sends nothing over TCP" in res.stderr
    res = sockcap("run", "--udp", "-m", "", "-m", "hi")
    assert res.returncode == 0 and res.stdout.splitlines()[:2] == ["> ", "< "]


def test_large_message_comes_back_whole() -> None:
    message = "0123456789" * 30_000  # 300 kB: many reads on both sides

    async def scenario() -> list[Exchange]:
        async with EchoServer(port=0, max_message=4096) as server:
            return await tcp_exchange("127.0.0.1", server.port, [message, "é€ unicode"])

    result = run(scenario())
    assert result[0].reply == message.encode()
    assert result[1].reply == "é€ unicode".encode()


def test_ipv6_loopback() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")

    async def scenario() -> list[Exchange]:
        async with EchoServer("::1", 0) as server:
            assert server.address == f"[::1]:{server.port}"
            return await tcp_exchange("::1", server.port, ["six"])

    try:
        assert run(scenario()) == [("six", b"six")]
    except EndpointError as err:
        pytest.skip(f"::1 not usable here: {err}")


def test_hundred_concurrent_clients() -> None:
    async def scenario() -> tuple[list[list[Exchange]], int]:
        async with EchoServer(port=0) as server:
            results = await asyncio.gather(
                *(
                    tcp_exchange("127.0.0.1", server.port, [f"client {i}", f"again {i}"])
                    for i in range(100)
                )
            )
            await server.wait_idle(5)
            return list(results), server.stats.connections

    results, served = run(scenario())
    for i, result in enumerate(results):
        assert result == [(f"client {i}", f"client {i}".encode()), (f"again {i}", f"again {i}".encode())]
    assert served == 100


def test_wait_idle_waits_for_open_connections() -> None:
    async def scenario() -> tuple[bool, bool]:
        async with EchoServer(port=0) as server:
            _, writer = await asyncio.open_connection("127.0.0.1", server.port)
            await asyncio.sleep(0.05)
            while_open = await server.wait_idle(0.2)
            writer.close()
            await writer.wait_closed()
            return while_open, await server.wait_idle(2)

    assert run(scenario()) == (False, True)


def test_max_clients_refuses_the_next_one() -> None:
    lines: list[str] = []

    async def scenario() -> tuple[bytes, list[Exchange]]:
        async with EchoServer(port=0, max_clients=2, log=lines.append) as server:
            held = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(2)]
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            refused = await reader.read(10)  # EOF at once
            writer.close()
            for _, w in held[:1]:
                w.close()
            await asyncio.sleep(0.1)
            after = await tcp_exchange("127.0.0.1", server.port, ["room again"])
            for _, w in held[1:]:
                w.close()
            assert server.stats.refused == 1
            return refused, after

    refused, after = run(scenario())
    assert refused == b""
    assert after == [("room again", b"room again")]
    assert any("refused: 2 connections already open" in line for line in lines)


def test_idle_connection_is_closed() -> None:
    lines: list[str] = []

    async def scenario() -> tuple[bytes, float]:
        async with EchoServer(port=0, idle_timeout=0.3, log=lines.append) as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            start = time.monotonic()  # before the last activity the server's timer counts from
            writer.write(b"hi")
            data = await reader.read(100)
            data += await asyncio.wait_for(reader.read(100), 60)  # EOF after the timeout
            writer.close()
            return data, time.monotonic() - start

    data, elapsed = run(scenario())
    assert data == b"hi"
    assert elapsed >= 0.3  # not before the timeout; how long after is the machine's load
    assert any("silent for 0.3 s: closing" in line for line in lines)


def test_udp_round_trip_with_empty_and_binary_datagrams() -> None:
    messages = ["hello", "", "\x00\x01\xff bytes", "quit"]

    async def scenario() -> list[Exchange]:
        async with EchoServer(port=0, udp=True) as server:
            assert server.protocol == "UDP"
            result = await udp_exchange("127.0.0.1", server.port, messages, timeout=30)
            assert server.stats.messages == 4
            return result

    assert run(scenario()) == [(m, m.encode()) for m in messages]


def test_udp_records_no_reply() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        result = run(udp_exchange("127.0.0.1", port, ["anyone?"], timeout=0.3))
    assert result == [("anyone?", None)]


def test_udp_nothing_listening_is_an_error() -> None:
    port = free_port(socket.SOCK_DGRAM)
    with pytest.raises(EndpointError, match=r"nothing is listening on UDP 127\.0\.0\.1:\d+"):
        run(udp_exchange("127.0.0.1", port, ["a", "b"], timeout=1))


def test_udp_oversized_datagram_is_dropped() -> None:
    async def scenario() -> list[Exchange]:
        async with EchoServer(port=0, udp=True, max_message=10) as server:
            return await udp_exchange("127.0.0.1", server.port, ["x" * 11, "ok"], timeout=0.3)

    assert run(scenario()) == [("x" * 11, None), ("ok", b"ok")]


# -- errors ---------------------------------------------------------------------------


def test_connection_refused() -> None:
    port = free_port()
    expected = (
        f"connection refused: nothing is listening on 127.0.0.1:{port} "
        "(start 'sockcap server' first)"
    )
    with pytest.raises(EndpointError) as err:
        run(tcp_exchange("127.0.0.1", port, ["hello"]))
    assert str(err.value) == expected
    assert err.value.exit_code == 1
    with pytest.raises(EndpointError, match="connection refused"):
        run_client("127.0.0.1", port, messages=["hello"], out=lambda line: None)


def test_port_in_use() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(EndpointError) as err:
            run(EchoServer("127.0.0.1", port).start())
    assert str(err.value) == (
        f"port {port} is in use on 127.0.0.1 "
        "(pick another with --port, or stop the program holding it)"
    )


def test_udp_port_in_use() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
        with pytest.raises(EndpointError, match=f"port {port} is in use"):
            run(EchoServer("127.0.0.1", port, udp=True).start())


@pytest.mark.parametrize("host", ["foo", "example.com", "300.1.1.1", ""])
def test_bad_host(host: str) -> None:
    message = f"{host!r} is not an IP address (use a numeric address such as 127.0.0.1 or ::1)"
    with pytest.raises(EndpointError) as err:
        run(EchoServer(host, 0).start())
    assert str(err.value) == message
    with pytest.raises(EndpointError, match="is not an IP address"):
        run(tcp_exchange(host, 5001, ["x"]))
    with pytest.raises(EndpointError, match="is not an IP address"):
        run_client(host, 5001, messages=["x"], out=lambda line: None)


@pytest.mark.parametrize("port", [0, -1, 65536, 70000])
def test_client_port_out_of_range(port: int) -> None:
    with pytest.raises(EndpointError, match=rf"port {port} is out of range \(1-65535\)"):
        run_client("127.0.0.1", port, messages=["x"], out=lambda line: None)


@pytest.mark.parametrize("port", [-1, 65536])
def test_server_port_out_of_range(port: int) -> None:
    with pytest.raises(EndpointError, match=rf"port {port} is out of range \(0-65535\)"):
        run(EchoServer("127.0.0.1", port).start())


def test_address_not_on_this_machine() -> None:
    with pytest.raises(EndpointError, match="no network interface on this machine"):
        run(EchoServer("192.0.2.1", 0).start())  # TEST-NET-1, never assigned


@pytest.mark.skipif(os.geteuid() == 0, reason="root may listen on ports below 1024")
def test_privileged_port() -> None:
    with pytest.raises(EndpointError, match="ports below 1024 need root"):
        run(EchoServer("127.0.0.1", 80).start())


async def _misbehaving_server(echoes: int, then: str) -> tuple[asyncio.Server, int]:
    """A server that echoes ``echoes`` reads, then closes, resets or goes silent."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            for _ in range(echoes):
                writer.write(await reader.read(100))
            await reader.read(100)
            if then == "silent":
                await asyncio.sleep(5)
            elif then == "reset":
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
                writer.transport.abort()
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


@pytest.mark.parametrize(
    ("then", "message"),
    [
        ("close", "the server closed the connection after 2 of 3 messages"),
        ("reset", "the server reset the connection after 2 of 3 messages"),
        ("silent", r"no echo from 127\.0\.0\.1:\d+ within 0\.3 s \(message 3 of 3\)"),
    ],
)
def test_server_misbehaves(then: str, message: str) -> None:
    async def scenario() -> None:
        server, port = await _misbehaving_server(2, then)
        async with server:
            await tcp_exchange("127.0.0.1", port, ["one", "two", "three"], timeout=0.3)

    with pytest.raises(EndpointError, match=message):
        run(scenario())


# -- the blocking commands ------------------------------------------------------------


def test_run_client_prints_each_reply() -> None:
    out: list[str] = []

    async def scenario() -> int:
        async with EchoServer(port=0) as server:
            return await asyncio.to_thread(
                run_client, "127.0.0.1", server.port, messages=["hello", "quit", "x"], out=out.append
            )

    assert run(scenario()) == 0
    assert re.fullmatch(r"connected to 127\.0\.0\.1:\d+ from 127\.0\.0\.1:\d+", out[0])
    assert out[1:] == ["> hello", "< hello", "> quit", "< quit", "closed"]


def test_run_client_reads_lines_until_quit() -> None:
    out: list[str] = []
    typed = iter(["hi there\n", "\n", "tab\there\r\n", "quit\n", "after quit\n"])

    async def scenario() -> int:
        async with EchoServer(port=0) as server:
            return await asyncio.to_thread(
                run_client,
                "127.0.0.1",
                server.port,
                messages=None,
                out=out.append,
                input_lines=typed,
            )

    assert run(scenario()) == 0
    assert out[1:] == [
        "> hi there", "< hi there", "> tab\there", "< tab\\there", "> quit", "< quit", "closed"
    ]
    assert next(typed) == "after quit\n"  # not read: quit ended the exchange


def test_run_client_udp_says_when_no_reply_came() -> None:
    out: list[str] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        code = run_client("127.0.0.1", port, udp=True, messages=["ping", "again"],
                          out=out.append, timeout=0.3)
    assert code == 1  # as over TCP, where a missing echo is an error
    assert re.fullmatch(rf"sending to 127\.0\.0\.1:{port} from 127\.0\.0\.1:\d+", out[0])
    no_reply = ("< (sent; no reply within 0.3 s and no 'port unreachable': a program has the "
                "port open and did not answer; on loopback the datagram was not lost on the way)")
    assert out[1:] == ["> ping", no_reply, "> again", no_reply, "closed"]


def test_udp_client_command_exits_0_with_every_reply_and_1_without_one() -> None:
    async def scenario() -> tuple[subprocess.CompletedProcess[str], ...]:
        async with EchoServer(port=0, udp=True) as server:
            answered = await asyncio.to_thread(
                sockcap, "client", "--udp", "--port", str(server.port), "-m", "a", "-m", "b")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
            silent.bind(("127.0.0.1", 0))
            unanswered = await asyncio.to_thread(
                sockcap, "client", "--udp", "--port", str(silent.getsockname()[1]),
                "--timeout", "0.2", "-m", "a")
        return answered, unanswered

    answered, unanswered = run(scenario())
    assert answered.returncode == 0, answered.stderr
    assert answered.stdout.splitlines()[0].startswith("sending to 127.0.0.1:")
    assert answered.stdout.splitlines()[1:] == ["> a", "< a", "> b", "< b", "closed"]
    assert unanswered.returncode == 1 and unanswered.stderr == ""
    assert unanswered.stdout.splitlines()[1:] == [
        "> a", "< (sent; no reply within 0.2 s and no 'port unreachable': a program has the "
        "port open and did not answer; on loopback the datagram was not lost on the way)",
        "closed"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_run_server_stops_cleanly_on_signal(sig: int, tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    code = (
        "import sys; from sockcap.endpoints.server import run_server; "
        "sys.exit(run_server('127.0.0.1', 0, log=lambda line: print(line, flush=True)))"
    )
    with log.open("wb") as sink:
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=sink, stderr=subprocess.STDOUT)
    try:
        port = _wait_for_port(log, proc)
        assert run(tcp_exchange("127.0.0.1", port, ["before the signal"])) == [
            ("before the signal", b"before the signal")
        ]
        os.kill(proc.pid, sig)
        assert proc.wait(10) == 128 + sig  # returned, after the clean stop below
    finally:
        stop(proc)
    text = log.read_text()
    assert f"listening on 127.0.0.1:{port} (TCP)" in text
    assert "stopped: 1 connections, 1 messages, 17 bytes echoed" in text
    assert "Traceback" not in text


def _wait_for_port(log: Path, proc: subprocess.Popen[bytes]) -> int:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = re.search(r"listening on 127\.0\.0\.1:(\d+)", log.read_text())
        if found:
            return int(found.group(1))
        assert proc.poll() is None, log.read_text()
        time.sleep(0.02)
    raise AssertionError("the server never said it was listening")


def test_wildcard_addresses_are_recognised() -> None:
    assert is_wildcard("0.0.0.0") and is_wildcard("::")
    assert not is_wildcard("127.0.0.1")


def test_preview_is_printable_and_short() -> None:
    assert preview(b"hello") == '"hello"'
    assert preview(b'say "hi"\n') == '"say \\"hi\\"\\n"'
    assert preview(b"\x00\xff\x1b[2J") == '"\\x00\\xff\\x1b[2J"'
    assert preview(b"x" * 100) == '"' + "x" * 40 + '"...'
    assert printable("é€".encode()) == "é€"


# -- the classic C pair ---------------------------------------------------------------


@pytest.fixture(scope="module")
def c_programs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    out = tmp_path_factory.mktemp("c")
    built = {}
    for name in ("echo_server", "echo_client"):
        built[name] = out / name
        subprocess.run(
            ["gcc", "-O2", "-Wall", "-o", str(built[name]), str(C_DIR / f"{name}.c")],
            check=True,
            timeout=60,
        )
    yield built


@needs_gcc
def test_sockcap_client_against_the_c_server(c_programs: dict[str, Path]) -> None:
    proc = subprocess.Popen([str(c_programs["echo_server"]), "0"], stdout=subprocess.PIPE)
    try:
        port = int(read_line(proc).split()[-1])
        long_word = "w" * 1000  # the C server echoes it 256 bytes at a time
        result = run(tcp_exchange("127.0.0.1", port, ["hello", long_word, "quit"], timeout=30))
        assert result == [("hello", b"hello"), (long_word, long_word.encode()), ("quit", b"quit")]
        out: list[str] = []
        assert run_client("127.0.0.1", port, messages=["again"], out=out.append) == 0
        assert out[1:] == ["> again", "< again", "closed"]
    finally:
        stop(proc)


@needs_gcc
def test_c_client_against_the_sockcap_server(c_programs: dict[str, Path]) -> None:
    lines: list[str] = []

    async def scenario() -> tuple[bytes, int, bool]:
        async with EchoServer(port=0, log=lines.append) as server:
            client = await asyncio.create_subprocess_exec(
                str(c_programs["echo_client"]),
                "127.0.0.1",
                str(server.port),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
            stdout, _ = await asyncio.wait_for(
                client.communicate(b"hello sockcap world\nquit\nnever\n"), 10
            )
            return stdout, await client.wait(), await server.wait_idle(3)

    stdout, code, idle = run(scenario())
    assert code == 0
    assert stdout == b"hello\nsockcap\nworld\nquit\n"
    assert idle
    assert any("closed by client after 4 messages, 21 bytes" in line for line in lines)


def test_errno_of_refused_is_what_the_client_maps() -> None:
    # The refused message relies on connect() failing with ECONNREFUSED on loopback.
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", free_port())) == errno.ECONNREFUSED


def test_run_client_ctrl_c_while_waiting_for_input(tmp_path: Path) -> None:
    log = tmp_path / "client.log"
    with socket.socket() as listener:  # the kernel completes the handshake; no accept needed
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        code = (
            # Ctrl-C as a terminal delivers it, also when this suite itself was started
            # as a background job (whose children inherit SIGINT ignored)
            "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
            "from sockcap.endpoints.client import run_client; "
            f"sys.exit(run_client('127.0.0.1', {port}, messages=None, "
            "out=lambda line: print(line, flush=True), input_lines=sys.stdin))"
        )
        with log.open("wb") as sink:
            proc = subprocess.Popen(
                [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=sink,
                stderr=subprocess.STDOUT,
            )
        try:
            deadline = time.monotonic() + 10
            while "connected to" not in log.read_text() and time.monotonic() < deadline:
                time.sleep(0.02)
            os.kill(proc.pid, signal.SIGINT)
            assert proc.wait(10) == 130
        finally:
            assert proc.stdin is not None
            proc.stdin.close()
            stop(proc)
    assert log.read_text().splitlines()[-1] == "interrupted"


# -- worker processes (sockcap server --workers N) -------------------------------------


def start_workers(tmp_path: Path, *args: str) -> tuple[subprocess.Popen[bytes], Path, list[int]]:
    """``sockcap server --workers 2 ARGS`` in a subprocess; its log and its workers' PIDs."""
    log = tmp_path / "server.log"
    env = dict(os.environ, NO_COLOR="1")
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sockcap", "server", "--workers", "2", *args],
            stdout=sink, stderr=subprocess.STDOUT, cwd=ROOT, env=env,
        )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        text = log.read_text()
        found = re.search(r"workers (\d+), (\d+); Ctrl-C stops", text)
        if found and text.count(": listening on") == 2:  # both workers are serving
            return proc, log, [int(found.group(1)), int(found.group(2))]
        assert proc.poll() is None, text
        time.sleep(0.02)
    stop(proc)
    raise AssertionError(f"the workers never started: {log.read_text()}")


def parent_of(pid: int) -> int | None:
    """The parent PID of a live process, from /proc; None once it is gone (or a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    state, ppid = stat.rsplit(")", 1)[1].split()[:2]
    return None if state == "Z" else int(ppid)


def wait_gone(pids: list[int], limit: float = 10.0) -> bool:
    deadline = time.monotonic() + limit
    while any(parent_of(pid) is not None for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_workers_serve_a_hundred_clients_and_stop_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    proc, log, workers = start_workers(tmp_path, "--port", str(port))
    try:
        assert [parent_of(pid) for pid in workers] == [proc.pid, proc.pid]

        async def clients() -> list[list[Exchange]]:
            return list(await asyncio.gather(*(
                tcp_exchange("127.0.0.1", port, [f"client {i}", f"again {i}"]) for i in range(100)
            )))

        for i, result in enumerate(run(clients())):
            assert result == [(f"client {i}", f"client {i}".encode()),
                              (f"again {i}", f"again {i}".encode())]
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(15) == 143
    finally:
        stop(proc)
    assert wait_gone(workers, 0)  # reaped by the parent before it exited
    text = log.read_text()
    served = [len(re.findall(rf"worker {pid}: 127\.0\.0\.1:\d+ connected", text)) for pid in workers]
    assert sum(served) == 100 and min(served) > 0, served  # the kernel spread them
    assert "Traceback" not in text
    assert text.splitlines()[-1].endswith(" stopped")


def test_workers_die_with_a_killed_parent(tmp_path: Path) -> None:
    proc, _, workers = start_workers(tmp_path, "--port", str(free_port()))
    try:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(5)
        assert wait_gone(workers), "a worker outlived its parent"
    finally:
        for pid in workers:  # only if the test failed: they are ours, stop them by PID
            if parent_of(pid) is not None:
                os.kill(pid, signal.SIGKILL)
        stop(proc)


def test_workers_serve_udp(tmp_path: Path) -> None:
    port = free_port(socket.SOCK_DGRAM)
    proc, _, _ = start_workers(tmp_path, "--udp", "--port", str(port))
    try:
        for i in range(10):  # ten client ports: the kernel spreads them by address
            assert run(udp_exchange("127.0.0.1", port, [f"datagram {i}"])) == [
                (f"datagram {i}", f"datagram {i}".encode())
            ]
        os.kill(proc.pid, signal.SIGINT)
        assert proc.wait(15) == 130
    finally:
        stop(proc)


@pytest.mark.parametrize("reuseport", [False, True])
def test_workers_port_in_use(reuseport: bool) -> None:
    """One line, also when the holder uses SO_REUSEPORT (the workers must not join it)."""
    with socket.socket() as holder:
        if reuseport:
            holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = sockcap("server", "--workers", "2", "--port", str(port), timeout=20)
    assert result.returncode == 1
    assert result.stderr == (
        f"sockcap: port {port} is in use on 127.0.0.1 "
        "(pick another with --port, or stop the program holding it)\n"
    )


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
@pytest.mark.parametrize("workers", [1, 3])
def test_server_command_exit_code_says_which_signal_stopped_it(
        tmp_path: Path, workers: int, sig: int, code: int) -> None:
    log = tmp_path / "server.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sockcap", "server", "--port", str(free_port()),
             "--workers", str(workers)],
            stdout=sink, stderr=subprocess.STDOUT, cwd=ROOT, env=dict(os.environ, NO_COLOR="1"))
    try:
        deadline = time.monotonic() + 10
        while log.read_text().count("listening on") < (workers + 1 if workers > 1 else 1):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.02)
        worker_pids = [int(p) for p in re.findall(r"worker (\d+): listening", log.read_text())]
        os.kill(proc.pid, sig)
        assert proc.wait(15) == code
    finally:
        stop(proc)
    assert wait_gone(worker_pids, 0)  # every worker stopped and reaped before the exit
    text = log.read_text()
    assert "Traceback" not in text and text.count("stopped: 0 connections") == workers


def test_server_log_tells_whose_fin_came_first() -> None:
    """The client closes first: the log line at its FIN names the client's FIN, the echo
    of what came before it arrives, then the server's FIN (EOF), as a capture shows them."""
    lines: list[str] = []

    async def scenario() -> tuple[bytes, bytes, str]:
        async with EchoServer(port=0, log=lines.append) as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"last words")
            writer.write_eof()  # the client's FIN
            echo = await asyncio.wait_for(reader.readexactly(10), 60)
            rest = await asyncio.wait_for(reader.read(), 60)  # b"": the server's FIN
            host, port = writer.get_extra_info("sockname")[:2]
            local = f"{host}:{port}"
            writer.close()
            for _ in range(600):  # the server logs the close once it has seen it
                if any("closed by client" in line for line in lines):
                    break
                await asyncio.sleep(0.1)
            return echo, rest, local

    echo, rest, peer = run(scenario())
    assert (echo, rest) == (b"last words", b"")
    said = [line[line.index(peer):] for line in lines if peer in line]
    assert said[-2:] == [
        f"{peer} FIN received: the client is done sending; the server's FIN follows its last echo",
        f"{peer} closed by client after 1 messages, 10 bytes",
    ]
