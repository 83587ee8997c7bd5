"""Capture that rotates (-G/-C/-W, tcpdump as the oracle of the names and the cuts) and the
export that follows it (each finished file once, across SIGKILL, while the capture runs)."""

from __future__ import annotations

import fcntl
import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import needs_capture, needs_corpus, needs_tshark, sockcap
from test_export import PUBLIC

from sockcap.pcapfile.rotation import Rotation, file_name

TCPDUMP = shutil.which("tcpdump")
# datagrams to a bound socket that never reads (no ICMP port unreachable in the capture)
SENDER = """
import socket, sys, time
port, count, size, gap = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sink.bind(("127.0.0.1", port))
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(count):
    s.sendto(bytes([i % 256]) * size, ("127.0.0.1", port))
    if gap and i % 50 == 49:
        time.sleep(gap)
"""
DEADLINE = 120.0  # seconds any wait here may take on a loaded machine


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def sender(port: int, count: int, size: int, gap: float) -> list[str]:
    return [sys.executable, "-c", SENDER, str(port), str(count), str(size), str(gap)]


def tshark_count(path: Path) -> int:
    result = subprocess.run(["tshark", "-r", str(path), "-T", "fields", "-e", "frame.number"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return len(result.stdout.split())


# --- names, as tcpdump's MakeFilename makes them ------------------------------------------------

@pytest.mark.parametrize(("rotation", "count", "name"), [
    (Rotation(megabytes=1), 0, "out.pcap"),
    (Rotation(megabytes=1), 1, "out.pcap1"),
    (Rotation(megabytes=1), 12, "out.pcap12"),
    (Rotation(megabytes=1, files=1), 0, "out.pcap"),  # getWflagChars(1) == 0
    (Rotation(megabytes=1, files=3), 0, "out.pcap0"),
    (Rotation(megabytes=1, files=10), 9, "out.pcap9"),
    (Rotation(megabytes=1, files=11), 3, "out.pcap03"),
    (Rotation(megabytes=1, files=101), 7, "out.pcap007"),
])
def test_size_names_are_tcpdumps(rotation: Rotation, count: int, name: str) -> None:
    assert file_name("out.pcap", rotation, count, 0.0) == name


def test_time_names_are_strftime() -> None:
    t = time.mktime((2026, 12, 6, 15, 4, 5, 0, 0, -1))
    assert file_name("lab-%Y%m%d-%H%M%S.pcap", Rotation(seconds=60), 0, t) == \
        "lab-20261206-150405.pcap"
    assert file_name("lab-%H%M.pcap", Rotation(seconds=60, megabytes=1), 2, t) == \
        "lab-1504.pcap2"
    assert file_name("lab-%H%M.pcap", Rotation(seconds=60, megabytes=1, files=4), 0, t) == \
        "lab-1504.pcap0"


def test_rotation_usage_errors(tmp_path: Path) -> None:
    for args, words in ((["-G", "5"], "give -w NAME"),
                        (["-W", "3", "-w", str(tmp_path / "x.pcap")], "-W counts"),
                        (["-G", "5", "-w", str(tmp_path / "x.pcap")], "time fields")):
        result = sockcap("capture", *args, "-c", "1")
        assert result.returncode == 2, result.stderr
        assert words in result.stderr and "Traceback" not in result.stderr
    (tmp_path / "old.pcap2").write_bytes(b"")  # a file of an earlier -C series
    result = sockcap("capture", "-C", "1", "-w", str(tmp_path / "old.pcap"), "-c", "1")
    assert result.returncode == 2
    assert result.stderr.strip() == f"sockcap: {tmp_path / 'old.pcap2'} exists; use --force to overwrite"


# --- rotation on a real capture ------------------------------------------------------------------

def start_tcpdump(args: list[str]) -> subprocess.Popen[str]:
    """tcpdump, returned once it says it listens (every later packet is captured)."""
    assert TCPDUMP is not None
    # -Z root: with -C tcpdump otherwise drops to its own user, who cannot write here
    keep = ["-Z", "root"] if os.geteuid() == 0 else []
    proc = subprocess.Popen([TCPDUMP, "-i", "lo", "-n", *keep, *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    for _ in range(5):
        line = proc.stderr.readline()  # blocks until tcpdump has opened the device
        if "listening on" in line:
            return proc
    proc.kill()
    raise AssertionError(f"tcpdump did not start: {line}")


def wait_tcpdump(proc: subprocess.Popen[str]) -> bool:
    """Whether tcpdump ended by itself (its -c count reached) within the deadline."""
    try:
        proc.communicate(timeout=DEADLINE)
        return proc.returncode == 0
    except subprocess.TimeoutExpired:
        proc.kill()  # it lost some of them: no oracle this time
        proc.communicate(timeout=DEADLINE)
        return False


@needs_capture
@needs_tshark
@pytest.mark.skipif(TCPDUMP is None, reason="tcpdump is not installed")
@pytest.mark.parametrize("ring", [0, 3])
def test_size_rotation_cuts_where_tcpdump_cuts(ring: int, tmp_path: Path) -> None:
    """The same datagrams captured by tcpdump -C 1 and sockcap capture -C 1 side by side:
    the same file names, each file whole (tshark reads it), the same packets in each."""
    port = free_port()
    theirs, ours = tmp_path / "tcpdump", tmp_path / "sockcap"
    theirs.mkdir()
    ours.mkdir()
    ring_args = ["-W", str(ring)] if ring else []
    # tcpdump ends by itself after the 3,000 datagrams (no signal racing its last reads)
    tcpdump = start_tcpdump(["-c", "3000", "-B", "65536", "-C", "1", *ring_args,
                             "-w", str(theirs / "out.pcap"), f"udp port {port}"])
    try:
        # 3,000 datagrams of 1,400 bytes: about 4.4 MB, in bursts of 50
        result = sockcap("capture", "-q", "-f", f"udp port {port}", "-C", "1", *ring_args,
                         "-w", str(ours / "out.pcap"), "--",
                         *sender(port, 3000, 1400, 0.002), timeout=DEADLINE)
    finally:
        oracle = wait_tcpdump(tcpdump)
    assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in ours.iterdir())
    expected = [f"out.pcap{i}" for i in range(3)] if ring else \
        ["out.pcap", "out.pcap1", "out.pcap2", "out.pcap3", "out.pcap4"]
    assert names == sorted(expected)
    counts = {n: tshark_count(ours / n) for n in names}
    for n in names:
        assert (ours / n).stat().st_size <= 1_000_000 + 1500  # over by one record at most
    if not ring:
        assert sum(counts.values()) == 3000
    if oracle and re.search(r"^3000 packets captured$", result.stderr, re.M):
        assert names == sorted(p.name for p in theirs.iterdir())
        assert counts == {n: tshark_count(theirs / n) for n in names}


@needs_capture
@needs_tshark
def test_time_rotation_and_its_file_limit(tmp_path: Path) -> None:
    port = free_port()
    pattern = str(tmp_path / "lab-%H%M%S.pcap")
    # about 3 s of traffic: 600 datagrams, 50 every 0.25 s
    result = sockcap("capture", "-q", "-f", f"udp port {port}", "-G", "1", "-w", pattern,
                     "--", *sender(port, 600, 200, 0.25), timeout=DEADLINE)
    assert result.returncode == 0, result.stderr
    files = sorted(tmp_path.glob("lab-*.pcap"))
    assert len(files) >= 2
    assert all(re.fullmatch(r"lab-\d{6}\.pcap", f.name) for f in files)
    assert sum(tshark_count(f) for f in files) == 600
    # one file's packets all come before the next file's
    firsts_lasts = []
    for f in files:
        out = subprocess.run(["tshark", "-r", str(f), "-T", "fields", "-e",
                              "frame.time_epoch"], capture_output=True, text=True,
                             timeout=120).stdout.split()
        if out:
            firsts_lasts.append((float(out[0]), float(out[-1])))
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(firsts_lasts))

    limited = tmp_path / "limited"
    limited.mkdir()
    result = sockcap("capture", "-q", "-f", f"udp port {port}", "-G", "1", "-W", "2",
                     "-w", str(limited / "w-%H%M%S.pcap"), "--",
                     *sender(port, 2000, 200, 0.25), timeout=DEADLINE)
    assert result.returncode == 0, result.stderr
    assert "(-W 2)" in result.stderr
    assert len(list(limited.glob("w-*.pcap"))) == 2


# --- the follower ----------------------------------------------------------------------------------

def manifest(tables: Path) -> dict[str, dict[str, object]]:
    path = tables / "_sockcap_follow.json"
    if not path.exists():
        return {}
    files: dict[str, dict[str, object]] = json.loads(path.read_text())["files"]
    return files


def follow(folder: Path, tables: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return sockcap("export", "--follow", str(folder), "--to", str(tables), "--once",
                   "--settle", "0", *extra, timeout=DEADLINE)


def start_follower(folder: Path, tables: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "sockcap", "export", "--follow", str(folder),
                             "--to", str(tables), "--once", "--settle", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def parts_of(tables: Path) -> list[Path]:
    return sorted(p for p in tables.rglob("*") if p.is_file() and "capture=" in str(p))


@needs_corpus
def test_follower_exports_each_file_once_across_sigkill(tmp_path: Path) -> None:
    import importlib.util

    if importlib.util.find_spec("pyarrow") is None:
        pytest.skip("pyarrow is not installed")
    import pyarrow.parquet as pq

    folder, tables = tmp_path / "captures", tmp_path / "tables"
    folder.mkdir()
    names = ("ssh.pcap", "pim-packet-assortment.pcap", "mptcp-v1.pcap", "whois.pcap",
             "bigtcp-ipv4.pcap", "dns_tcp.pcap")
    for i in range(3):
        for name in names:
            shutil.copy(PUBLIC / name, folder / f"r{i}-{name}")
    total = len(names) * 3
    for wanted in (1, 5, 11):  # kill once the manifest holds this many, or the run ended
        proc = start_follower(folder, tables)
        deadline = time.monotonic() + DEADLINE
        while proc.poll() is None and len(manifest(tables)) < wanted \
                and time.monotonic() < deadline:
            time.sleep(0.005)
        if proc.poll() is None:  # wherever it is: the outcome must not depend on it
            proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=DEADLINE)
    result = follow(folder, tables)
    assert result.returncode == 0, result.stderr
    done = manifest(tables)
    assert len(done) == total
    # every file once: one part per table and capture, nothing half-written left
    parts = parts_of(tables)
    assert [p.name for p in parts] == ["part-0.parquet"] * (2 * total)
    assert not [p for p in tables.rglob(".*") if p.is_file()]
    for key, entry in done.items():
        capture = entry["capture"]
        rows = pq.read_metadata(tables / "packets" / f"capture={capture}" /
                                "part-0.parquet").num_rows
        assert rows == entry["packets"]
        if shutil.which("tshark"):
            assert rows == tshark_count(folder / key)
    again = follow(folder, tables)
    assert again.returncode == 0 and again.stdout == ""  # nothing new: nothing exported


def test_a_second_follower_is_refused(tmp_path: Path) -> None:
    (tmp_path / "captures").mkdir()
    tables = tmp_path / "tables"
    tables.mkdir()
    with open(tables / "_sockcap_follow.lock", "a") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        result = follow(tmp_path / "captures", tables)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"sockcap: another sockcap export --follow writes to {tables}"]


@needs_capture
@needs_tshark
def test_follower_keeps_up_with_a_rotating_capture(tmp_path: Path) -> None:
    """A capture rotating every second; the follower runs again and again meanwhile and
    never takes a file being written (it would change afterwards and be exported twice);
    the tables answer queries while the capture runs."""
    folder, tables = tmp_path / "lab", tmp_path / "tables"
    folder.mkdir()
    port = free_port()
    capture = subprocess.Popen(
        [sys.executable, "-m", "sockcap", "capture", "-q", "-f", f"udp port {port}", "-G", "1",
         "-w", str(folder / "lab-%H%M%S.pcap"), "--", *sender(port, 1000, 300, 0.25)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    exported: Counter[str] = Counter()
    queried = False
    deadline = time.monotonic() + DEADLINE
    try:
        while capture.poll() is None and time.monotonic() < deadline:
            result = follow(folder, tables)
            assert result.returncode == 0, result.stderr
            exported.update(re.findall(r"^exported (\S+) as", result.stdout, re.M))
            if exported and not queried and shutil.which("tshark"):
                import importlib.util

                if importlib.util.find_spec("duckdb") is not None:
                    q = sockcap("query", str(tables), "SELECT count(*) AS n FROM packets",
                                "--json")
                    assert q.returncode == 0, q.stderr
                    assert json.loads(q.stdout.splitlines()[0])["n"] > 0
                    queried = True
    finally:
        if capture.poll() is None:
            capture.kill()
        _out, err = capture.communicate(timeout=DEADLINE)
    assert capture.returncode == 0, err
    result = follow(folder, tables)
    exported.update(re.findall(r"^exported (\S+) as", result.stdout, re.M))
    files = sorted(folder.glob("lab-*.pcap"))
    assert len(files) >= 2
    assert sorted(exported) == [str(f) for f in files]
    assert set(exported.values()) == {1}, exported  # no file taken before it was whole
    done = manifest(tables)
    for f in files:
        assert done[f.name]["packets"] == tshark_count(f)
    assert sum(int(str(done[f.name]["packets"])) for f in files) == 1000
