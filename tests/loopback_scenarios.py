"""TCP exchanges on loopback made to contain what the expert notes name, and a way to
capture them with tcpdump.

Each scenario is a plain function of the port; ``capture_scenario`` runs it in a child
process (inside a network namespace when asked, so that nftables rules can drop packets
without touching the machine's own firewall) while tcpdump writes what crosses ``lo``.
Every loop is bounded in bytes and in time.

Run as a script: ``python tests/loopback_scenarios.py NAME PORT``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sockcap.endpoints import scenarios as product

HOST = "127.0.0.1"
DEADLINE = 10.0  # no scenario runs longer than this


def _listener(port: int, rcvbuf: int = 0) -> socket.socket:
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if rcvbuf:
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # inherited by accept
    srv.bind((HOST, port))
    srv.listen(1)
    srv.settimeout(DEADLINE)
    return srv


def _read_all(conn: socket.socket, limit: int = 64 << 20) -> bytes:
    conn.settimeout(DEADLINE)
    parts, got = [], 0
    while got < limit:
        chunk = conn.recv(65536)
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def _serve(port: int, handle: Callable[[socket.socket], None], rcvbuf: int = 0) -> threading.Thread:
    srv = _listener(port, rcvbuf)

    def run() -> None:
        with srv:
            conn, _ = srv.accept()
            with conn:
                handle(conn)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def refused(port: int) -> None:
    """SYN to a port nothing listens on: the kernel answers RST, ACK (the product's
    ``sockcap run --scenario refused``)."""
    log = product.CallLog()
    product.refused(port, log)
    if [c.error for c in log.calls] != ["ECONNREFUSED"]:
        raise SystemExit("connection was not refused")


def reset(port: int) -> None:
    """The client sends, then closes with SO_LINGER 0: an RST instead of a FIN (the
    product's ``sockcap run --scenario reset``)."""
    product.reset(port, product.CallLog())


def server_reset(port: int) -> None:
    """The server reads the request, then closes with SO_LINGER 0: the responder resets."""

    def handle(conn: socket.socket) -> None:
        conn.settimeout(DEADLINE)
        conn.recv(100)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    t = _serve(port, handle)
    with socket.create_connection((HOST, port), timeout=DEADLINE) as c:
        c.sendall(b"hello, then a reset from the server")
        try:
            c.recv(100)
        except ConnectionResetError:
            pass
    t.join(DEADLINE)


def no_answer(port: int) -> None:
    """nftables drops every SYN to the port (in a namespace of its own): the client's SYN
    and its retransmission go unanswered until connect gives up after 1.5 s."""
    _nft(f"add rule inet sockcap input tcp dport {port} tcp flags & syn == syn drop")
    with socket.socket() as s:
        s.settimeout(1.5)
        try:
            s.connect((HOST, port))
        except (TimeoutError, OSError):
            return
    raise SystemExit("the SYN was answered")


def half_close(port: int) -> None:
    """The client sends a request and shuts down writing; the server answers after EOF."""

    def handle(conn: socket.socket) -> None:
        request = _read_all(conn)
        for i in range(5):
            conn.sendall(b"response %d to %d bytes\n" % (i, len(request)))
            time.sleep(0.01)

    t = _serve(port, handle)
    with socket.create_connection((HOST, port), timeout=DEADLINE) as c:
        c.sendall(b"GET / HTTP/1.0\r\n\r\n")
        c.shutdown(socket.SHUT_WR)
        _read_all(c)
    t.join(DEADLINE)


def zero_window(port: int) -> None:
    """A receiver with a tiny buffer stops reading while the sender floods (1 MiB, 1 s)."""
    release = threading.Event()
    total = 1 << 20

    def handle(conn: socket.socket) -> None:
        release.wait(DEADLINE)
        _read_all(conn, total)

    t = _serve(port, handle, rcvbuf=4096)
    with socket.create_connection((HOST, port), timeout=DEADLINE) as c:
        c.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
        c.setblocking(False)
        block = bytes(range(256)) * 64
        sent, start = 0, time.monotonic()
        while sent < total and time.monotonic() - start < 1.0:
            try:
                sent += c.send(block[: total - sent])
            except BlockingIOError:
                time.sleep(0.01)
        time.sleep(0.3)
        release.set()
        c.setblocking(True)
        c.settimeout(DEADLINE)
        c.sendall(block[: min(len(block), total - sent)])
    t.join(DEADLINE)


def rto(port: int) -> None:
    """Data to the server is dropped by nftables for 0.6 s: the client retransmits.

    Runs inside a network namespace of its own (see ``capture_scenario``); the rule sits
    on the input hook, so tcpdump on ``lo`` sees the dropped originals and the copies."""

    def handle(conn: socket.socket) -> None:
        conn.settimeout(DEADLINE)
        conn.sendall(conn.recv(1000))

    t = _serve(port, handle)
    with socket.create_connection((HOST, port), timeout=DEADLINE) as c:
        _nft(f"add rule inet sockcap input tcp dport {port} tcp flags & psh == psh drop")
        c.sendall(b"hello, dropped at first")
        time.sleep(0.6)
        _nft("flush chain inet sockcap input")
        c.recv(1000)
    t.join(DEADLINE)


def lossy(port: int) -> None:
    """1 MiB with every 7th packet to the server dropped on input: duplicate ACKs, SACK,
    fast and timeout retransmissions (segments on lo are up to 64 KiB: GSO)."""
    total = 1 << 20
    _nft(f"add rule inet sockcap input tcp dport {port} numgen inc mod 7 == 4 drop")

    def handle(conn: socket.socket) -> None:
        data = _read_all(conn, total)
        conn.sendall(b"got %d bytes" % len(data))

    t = _serve(port, handle)
    with socket.create_connection((HOST, port), timeout=DEADLINE) as c:
        block = bytes(range(256)) * 256
        sent = 0
        while sent < total:
            c.sendall(block)
            sent += len(block)
        c.shutdown(socket.SHUT_WR)
        _read_all(c)
    t.join(DEADLINE)


def port_reuse(port: int) -> None:
    """Three connections from one client port, each closed with SO_LINGER 0 (an RST, so no
    TIME_WAIT holds the port), and a connection from another port between each pair: one
    5-tuple that is three streams (Wireshark's "TCP Port numbers reused"), interleaved."""
    rounds = 3
    srv = _listener(port)
    srv.listen(2 * rounds)

    def serve() -> None:
        with srv:
            for _ in range(2 * rounds):
                conn, _ = srv.accept()
                with conn:
                    conn.settimeout(DEADLINE)
                    conn.sendall(conn.recv(100))
                    try:
                        conn.recv(100)  # until the client's RST
                    except OSError:
                        pass

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    client_port = free_port()
    for i in range(rounds):
        for bind in (client_port, 0):
            with socket.socket() as c:
                c.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                c.settimeout(DEADLINE)
                c.bind((HOST, bind))
                c.connect((HOST, port))
                c.sendall(b"round %d from port %d" % (i, c.getsockname()[1]))
                c.recv(100)
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    t.join(DEADLINE)


def nagle(port: int) -> None:
    """A request written in two small pieces, then a wait for the answer, 30 times (the
    write-write-read pattern): the receiver delays its ACK of the first piece (about
    40 ms on Linux) hoping to send it with data, and Nagle's algorithm holds the second
    piece until that ACK comes. Bounded: 30 rounds, each within DEADLINE."""
    rounds, piece = 30, 10

    def handle(conn: socket.socket) -> None:
        conn.settimeout(DEADLINE)
        for _ in range(rounds):
            got = b""
            while len(got) < 2 * piece:
                chunk = conn.recv(2 * piece - len(got))
                if not chunk:
                    return
                got += chunk
            conn.sendall(b"ok")

    t = _serve(port, handle)
    with socket.create_connection((HOST, port), timeout=DEADLINE) as c:
        for _ in range(rounds):
            c.sendall(b"a" * piece)
            c.sendall(b"b" * piece)
            got = b""
            while len(got) < 2:
                chunk = c.recv(2 - len(got))
                if not chunk:
                    break
                got += chunk
    t.join(DEADLINE)


def _nft(rule: str) -> None:
    subprocess.run(["nft", *rule.split()], check=True, timeout=10)


SCENARIOS: dict[str, Callable[[int], None]] = {
    "refused": refused, "reset": reset, "half_close": half_close,
    "zero_window": zero_window, "rto": rto, "lossy": lossy, "port_reuse": port_reuse,
    "server_reset": server_reset, "no_answer": no_answer, "nagle": nagle,
}
NEEDS_NETNS = {"rto", "lossy", "no_answer"}


def can_run() -> str:
    """"" when scenarios can be captured here, else the reason they cannot."""
    if os.geteuid() != 0:
        return "capturing on lo and creating network namespaces needs root"
    for tool in ("tcpdump", "ip", "nft"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    return ""


@contextmanager
def _netns() -> Iterator[list[str]]:
    """A network namespace with lo up and an empty nftables input chain; deleted after."""
    name = "sockcap-" + uuid.uuid4().hex[:8]
    subprocess.run(["ip", "netns", "add", name], check=True, timeout=10)
    try:
        prefix = ["ip", "netns", "exec", name]
        for cmd in (["ip", "link", "set", "lo", "up"],
                    ["nft", "add", "table", "inet", "sockcap"],
                    ["nft", "add", "chain", "inet", "sockcap", "input",
                     "{ type filter hook input priority 0; }"]):
            subprocess.run(prefix + cmd, check=True, timeout=10)
        yield prefix
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False, timeout=10)


def _start_tcpdump(prefix: list[str], path: Path, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [*prefix, "tcpdump", "-i", "lo", "-w", str(path), "--immediate-mode", "-U",
         "-s", "0", "-B", "65536", f"tcp port {port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # tcpdump says "listening on lo" once it is ready
        line = proc.stderr.readline()
        if b"listening on" in line or not line:
            break
    return proc


def _stop(proc: subprocess.Popen[bytes]) -> None:
    time.sleep(0.2)  # let the last packets reach the file
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def capture_scenario(name: str, path: Path, port: int) -> None:
    """Capture scenario ``name`` on ``port`` into ``path`` (in a fresh netns if it drops)."""
    with _netns() if name in NEEDS_NETNS else _no_netns() as prefix:
        proc = _start_tcpdump(prefix, path, port)
        try:
            subprocess.run([*prefix, sys.executable, __file__, name, str(port)],
                           check=True, timeout=DEADLINE * 2)
        finally:
            _stop(proc)


@contextmanager
def _no_netns() -> Iterator[list[str]]:
    yield []


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


if __name__ == "__main__":
    SCENARIOS[sys.argv[1]](int(sys.argv[2]))


_CACHE: dict[str, Path] = {}
_CACHE_DIR: list[Path] = []


def scenario_capture(name: str) -> Path:
    """The capture of scenario ``name``, made once per test run (in a temporary folder).

    The folder is removed when the test process exits."""
    if name not in _CACHE:
        if not _CACHE_DIR:
            import atexit
            import tempfile

            folder = Path(tempfile.mkdtemp(prefix="sockcap-scenarios-"))
            atexit.register(shutil.rmtree, folder, True)
            _CACHE_DIR.append(folder)
        path = _CACHE_DIR[0] / f"{name}.pcap"
        port = 5555 if name in NEEDS_NETNS else free_port()
        capture_scenario(name, path, port)
        _CACHE[name] = path
    return _CACHE[name]
