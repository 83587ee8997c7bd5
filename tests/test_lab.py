"""`sockcap lab` end to end: real network namespaces, a real veth/bridge link with real
nftables drops, captures at both ends, and tshark as the oracle on the saved pcaps.

After every test the host's namespaces, interfaces and nftables ruleset are as before
(the ``host_unchanged`` fixture), a SIGKILL of sockcap mid-run included.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT, needs_tshark, sockcap, tshark_fields

SERVER, CLIENT = "10.0.0.1", "10.0.0.2"
NOUSERNS = str(Path(__file__).with_name("nouserns.py"))
IDENTITY = ("ip.src", "ip.id", "ip.proto", "tcp.seq_raw", "tcp.ack_raw", "tcp.len",
            "tcp.flags", "udp.length")


def _tools() -> bool:
    return all(shutil.which(t) for t in ("ip", "nft", "setpriv"))


def _userns_allowed() -> bool:
    probe = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                            "unshare", "-Urn", "true"], capture_output=True, timeout=30)
    return probe.returncode == 0


needs_root = pytest.mark.skipif(os.geteuid() != 0 or not _tools(),
                                reason="needs root, ip, nft and setpriv")
needs_userns = pytest.mark.skipif(os.geteuid() != 0 or not _tools() or not _userns_allowed(),
                                  reason="needs root (to become nobody) and unprivileged "
                                         "user namespaces")
pytestmark = pytest.mark.slow


def host_state() -> dict[str, str]:
    def run(*argv: str) -> str:
        return subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout

    links = "\n".join(sorted(line.split(":")[1].strip() for line in
                             run("ip", "-o", "link").splitlines()))
    return {"netns": run("ip", "netns"), "links": links, "nft": run("nft", "list", "ruleset")}


@pytest.fixture(autouse=True)
def host_unchanged() -> Iterator[None]:
    if os.geteuid() != 0 or not _tools():
        yield
        return
    before = host_state()
    yield
    after = host_state()
    assert after == before
    assert "to-server" not in after["links"] and "sockcap_lab" not in after["nft"]


@pytest.fixture
def nobody_dir() -> Iterator[Path]:
    """A directory nobody can reach and write (pytest's tmp_path is root-only)."""
    path = Path(tempfile.mkdtemp(prefix="sockcap-lab-"))
    os.chmod(path, 0o777)
    try:
        yield path
    finally:
        shutil.rmtree(path)


def lab_json(out: Path, *args: str, user: str | None = None) -> dict:
    res = sockcap("lab", "--json", "--out", str(out), *args, user=user,
                  cwd=out.parent if user else None, timeout=180)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def frames(path: Path) -> list[tuple[str, ...]]:
    """Each TCP or UDP frame of a capture as tshark sees it: the fields that tell it apart."""
    return [tuple(row) for row in tshark_fields(path, *IDENTITY, extra=("-Y", "tcp or udp"))]


def sent_by(rows: list[tuple[str, ...]], address: str, proto: str) -> list[tuple[str, ...]]:
    return [r for r in rows if r[0] == address and r[2] == proto]


def check_drop_every_5(out: Path, record: dict) -> None:
    """TCP delivered everything; the lost frames are exactly every 5th each way; tshark
    counts the retransmissions sockcap counts; UDP lost datagrams #5 #10 #15 #20."""
    tcp, udp = record["tcp"], record["udp"]
    assert tcp["messages"] == tcp["intact"] == 20
    assert tcp["delivered_bytes"] == tcp["sent_bytes"] == sum(
        len(f"message {n}") for n in range(1, 21))
    retransmitted = tshark_fields(out / "link.pcap", "frame.number",
                                  extra=("-Y", "tcp.analysis.retransmission"))
    assert tcp["retransmissions"] == len(retransmitted) > 0
    assert tcp["retransmissions"] == tcp["retransmissions_timeout"] + tcp["retransmissions_fast"]

    at = {"server": frames(out / "server.pcap"), "client": frames(out / "client.pcap")}
    expected_lost = set()
    for sender, receiver, address in (("client", "server", CLIENT), ("server", "client", SERVER)):
        for proto in ("6", "17"):
            sent = sent_by(at[sender], address, proto)
            arrived = set(sent_by(at[receiver], address, proto))
            lost = [f for f in sent if f not in arrived]
            assert lost == sent[4::5], (sender, proto)
            expected_lost.update(lost)
    link = {int(r[0]): tuple(r[1:]) for r in
            tshark_fields(out / "link.pcap", "frame.number", *IDENTITY,
                          extra=("-Y", "tcp or udp"))}
    shown_lost = {link[p["no"]] for p in record["packets"] if p["link"] == "lost"}
    assert shown_lost == expected_lost
    assert tcp["lost_segments"] == sum(1 for f in expected_lost if f[2] == "6")

    assert (udp["sent"], udp["delivered"], udp["lost"]) == (20, 16, 4)
    assert udp["lost_numbers"] == [5, 10, 15, 20]
    assert udp["echoes_sent"] == 16 and udp["echoes_delivered"] == 13 and udp["resent"] == 0


@needs_root
@needs_tshark
def test_drop_every_5_tcp_delivers_all_udp_loses_four(tmp_path: Path) -> None:
    out = tmp_path / "lab"
    record = lab_json(out, "--drop-every", "5", "--both", "--count", "20")
    check_drop_every_5(out, record)
    assert record["link"] == {"loss_percent": 0.0, "drop_every": 5, "delay_ms": 0.0,
                              "by": "nftables"}


@needs_root
def test_text_verdict_and_timelines(tmp_path: Path) -> None:
    res = sockcap("lab", "--drop-every", "5", "--count", "20", "--out", str(tmp_path / "lab"),
                  timeout=180)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    tcp, udp = lines[0].split(" | ")
    assert tcp.startswith("TCP: 20 of 20 messages delivered intact in ")
    assert "segments lost" in tcp and "by timeout" in tcp
    assert udp.startswith("UDP: 16 of 20 datagrams delivered in ")
    assert "4 lost (#5 #10 #15 #20)" in udp and udp.endswith("nothing resent")
    lost = [line for line in lines if line.endswith("✗ lost on the link")]
    assert any(" TCP [" in line for line in lost) and any(" UDP " in line for line in lost)
    assert any("(retransmission)" in line for line in lines)
    assert "TCP echo: every packet put on the link, at the time it was sent:" in lines
    assert "client 10.0.0.2:" in lines[lines.index("UDP echo: every packet put on the link, "
                                                    "at the time it was sent:") + 1]


@needs_root
def test_no_loss_loses_nothing(tmp_path: Path) -> None:
    record = lab_json(tmp_path / "lab", "--loss", "0", "--count", "5")
    assert record["tcp"]["lost_segments"] == record["tcp"]["retransmissions"] == 0
    assert record["tcp"]["intact"] == 5
    assert (record["udp"]["delivered"], record["udp"]["lost"]) == (5, 0)
    assert record["udp"]["echoes_delivered"] == 5
    assert all(p["link"] == "delivered" for p in record["packets"])
    assert record["link"]["by"] == ""


@needs_root
@needs_tshark
def test_large_message_is_segmented_at_the_mss_and_delivered(tmp_path: Path) -> None:
    out = tmp_path / "lab"
    record = lab_json(out, "--tcp", "--drop-every", "5", "--size", "100000", "--count", "1")
    tcp = record["tcp"]
    assert tcp["intact"] == 1 and tcp["delivered_bytes"] == tcp["sent_bytes"] == 100000
    assert "udp" not in record
    lengths = [int(r[0]) for r in tshark_fields(out / "link.pcap", "tcp.len")]
    mss = max(lengths)
    assert mss == 1448  # MTU 1500 - 20 (IP) - 20 (TCP) - 12 (timestamps)
    for side in ("client", "server"):
        # The server echoes each read as it comes, so how its segments are cut depends on
        # timing; what does not: none is above the MSS, full-sized ones exist, and the
        # distinct segments cover the 100000 bytes, so there are at least 100000 / MSS.
        data = {(p["seq"], p["len"]) for p in record["packets"]
                if p["from"] == side and p["proto"] == "TCP" and p["len"]}
        assert max(n for _seq, n in data) == mss, side
        covered = set()
        for seq, n in data:
            covered.update(range(seq, seq + n))
        assert covered == set(range(1, 100001)), side
        assert len({seq for seq, _n in data}) >= -(-100000 // mss), side
    assert tcp["lost_segments"] > 0 and tcp["retransmissions"] > 0


@needs_userns
@needs_tshark
def test_unprivileged_lab_as_nobody(nobody_dir: Path) -> None:
    out = nobody_dir / "lab"
    record = lab_json(out, "--drop-every", "5", "--count", "20", user="nobody")
    check_drop_every_5(out, record)
    nobody = pwd.getpwnam("nobody").pw_uid
    assert {p.stat().st_uid for p in [out, *out.iterdir()]} == {nobody}


@needs_userns
@needs_tshark
def test_unprivileged_run_capture_in_a_private_namespace(nobody_dir: Path) -> None:
    res = sockcap("run", "--capture", user="nobody", cwd=nobody_dir)
    assert res.returncode == 0, res.stderr
    lines = [line for line in res.stdout.splitlines() if "▸" not in line]  # not the calls
    assert "[SYN]" in lines[0] and "handshake 1/3" in lines[0]
    assert [line.split('"')[1] for line in lines if '"' in line] == [
        "hello", "hello", "world", "world", "quit", "quit"]
    saved = lines[-2].removeprefix("saved 14 packets to ")
    path = nobody_dir / saved
    assert path.stat().st_uid == pwd.getpwnam("nobody").pw_uid
    assert len(tshark_fields(path, "frame.number")) == 14


@needs_root
def test_forbidden_user_namespaces_one_line(nobody_dir: Path) -> None:
    for args in (("run", "--capture"), ("lab",)):
        res = sockcap(*args, user="nobody", cwd=nobody_dir, prefix=(sys.executable, NOUSERNS),
                      env={"SOCKCAP_DUMPCAP": "/nonexistent/dumpcap"})
        assert res.returncode == 2, res.stderr
        lines = res.stderr.splitlines()
        assert len(lines) == 1 and res.stdout == ""
        assert "user.max_user_namespaces=0" in lines[0] and "sudo" in lines[0]
        assert "CAP_NET_RAW" in lines[0] and "wireshark" in lines[0]
    assert not (nobody_dir / "captures").exists()


def _netem_exists() -> bool:
    probe = subprocess.run(["unshare", "-n", "tc", "qdisc", "add", "dev", "lo", "root", "netem"],
                           capture_output=True, timeout=30)
    return probe.returncode == 0


@needs_root
def test_delay_without_netem_names_the_module(tmp_path: Path) -> None:
    if _netem_exists():
        pytest.skip("this kernel has sch_netem")
    res = sockcap("lab", "--delay", "20", "--out", str(tmp_path / "lab"))
    assert res.returncode == 2
    assert len(res.stderr.splitlines()) == 1 and "sch_netem" in res.stderr
    assert not (tmp_path / "lab").exists()


def _namespaces() -> set[str]:
    out = subprocess.run(["lsns", "-t", "net", "-n", "-o", "NS"], capture_output=True,
                         text=True, timeout=30).stdout
    return set(out.split())


@needs_root
@pytest.mark.parametrize("user", [None, "nobody"])
def test_sigkill_mid_run_leaves_nothing(nobody_dir: Path, user: str | None) -> None:
    out = nobody_dir / "lab"
    cmd = [sys.executable, "-m", "sockcap", "lab", "--drop-every", "2", "--count", "200",
           "--out", str(out)]
    if user:
        cmd = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *cmd]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
    try:
        deadline = time.monotonic() + 30
        while not (out / "client.pcap").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (out / "client.pcap").exists()
        time.sleep(0.3)  # mid-run: the exchange is going on
        assert proc.poll() is None
        lab_ns = os.readlink(f"/proc/{proc.pid}/ns/net").split("[")[1].rstrip("]")
        assert lab_ns in _namespaces()
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    deadline = time.monotonic() + 10
    while lab_ns in _namespaces() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert lab_ns not in _namespaces()


@needs_root
def test_sigterm_stops_with_143_and_valid_files(tmp_path: Path) -> None:
    out = tmp_path / "lab"
    proc = subprocess.Popen([sys.executable, "-m", "sockcap", "lab", "--drop-every", "2",
                             "--count", "200", "--out", str(out)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not (out / "client.pcap").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    assert proc.returncode == 143
    assert err.startswith("sockcap: terminated; the packets captured so far are in ")
    res = sockcap("show", str(out / "client.pcap"))
    assert res.returncode == 0 and "[SYN]" in res.stdout
