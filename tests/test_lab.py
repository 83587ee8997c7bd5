"""`sockcap lab` end to end: real network namespaces, a real veth/bridge link with real
nftables drops, captures at both ends, and tshark as the oracle on the saved pcaps.

After every test the host's namespaces, interfaces and nftables ruleset are as before
(the ``host_unchanged`` fixture), a SIGKILL of sockcap mid-run included.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT, needs_tshark, sockcap, tshark_fields
from test_kernel import ROOT_TRACEFS

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
    udp_at = lines.index("UDP echo: every packet put on the link, at the time it was sent:")
    first = next(line for line in lines[udp_at + 1:] if not line.lstrip().startswith("▸"))
    assert "client 10.0.0.2:" in first
    # both ends' own calls among the packets, each protocol's in its timeline
    tcp_calls = [line.split(None, 2)[2] for line in lines[:udp_at] if line.lstrip().startswith("▸")]
    udp_calls = [line.split(None, 2)[2] for line in lines[udp_at:] if line.lstrip().startswith("▸")]
    for said in ("server: listen(", "client: connect(10.0.0.1:", "server: accept() → ok",
                 "client: send(b'message 1') → 9 bytes", "client: shutdown(SHUT_WR) → ok"):
        assert any(c.startswith(said) for c in tcp_calls), (said, tcp_calls)
    assert any(c.startswith("client: … connect(10.0.0.1:") and c.endswith("→ ok")
               for c in tcp_calls)  # begun before the SYN, returned after the SYN-ACK
    for said in ("server: bind(10.0.0.1:", "client: send(b'message 1') → 9 bytes",
                 "server: recvfrom() → 9 bytes"):
        assert any(c.startswith(said) for c in udp_calls), (said, udp_calls)


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


@needs_root
@needs_tshark
@pytest.mark.parametrize("delay", [20, 100])
def test_delay_is_the_round_trip_the_client_sees(tmp_path: Path, delay: int) -> None:
    """No netem on this kernel: the lab's own delay line. The client's capture (tshark's
    ack_rtt: a segment the client sent to the server's ACK of it) shows twice the delay."""
    out = tmp_path / "lab"
    record = lab_json(out, "--tcp", "--delay", str(delay), "--count", "8")
    assert record["link"]["by"] == "sockcap" and record["tcp"]["intact"] == 8
    rtts = [float(r[0]) for r in tshark_fields(
        out / "client.pcap", "tcp.analysis.ack_rtt",
        extra=("-Y", f"ip.src == {SERVER} and tcp.analysis.ack_rtt"))]
    assert len(rtts) >= 8
    rtt = 2 * delay / 1000
    # Never early (the delay line holds each frame its time). How late depends on the
    # machine's load, so it is measured in bench/lab_bench.py, not asserted here.
    assert min(rtts) >= 0.9 * rtt, rtts
    assert record["tcp"]["rtt_seconds"] >= 0.9 * rtt


@needs_root
@needs_tshark
def test_rate_holds_within_ten_percent(tmp_path: Path) -> None:
    """A 300 kB stream at 1mbit: the frames arrive at the server at the rate (tshark's
    byte count over their time), and the goodput is what the headers leave of it."""
    out = tmp_path / "lab"
    record = lab_json(out, "--tcp", "--rate", "1mbit", "--size", "300000", "--count", "1",
                      "--pattern", "stream")
    assert record["tcp"]["intact"] == 1
    rows = tshark_fields(out / "server.pcap", "frame.time_epoch", "frame.len",
                         extra=("-Y", f"ip.src == {CLIENT} and tcp.len > 0"))
    times = [float(r[0]) for r in rows]
    bits = 8 * sum(int(r[1]) for r in rows[1:])  # the first frame's bits came before its time
    rate = bits / (times[-1] - times[0])
    # never faster than the rate; how close it comes under load is bench/lab_bench.py's
    assert rate <= 1_100_000, rate
    assert 0 < record["tcp"]["goodput_bps"] <= 1_000_000
    assert record["link"]["rate_bps"] == 1_000_000


@needs_root
@needs_tshark
def test_reorder_is_seen_by_the_receiver_and_tshark(tmp_path: Path) -> None:
    out = tmp_path / "lab"
    record = lab_json(out, "--tcp", "--reorder", "20%", "--size", "100000", "--count", "1",
                      "--pattern", "stream", "--seed", "7")
    assert record["tcp"]["intact"] == 1
    reordered = record["link"]["counts"]["to-server"]["reordered"]
    assert reordered > 0
    seen = {int(r[0]) for r in tshark_fields(
        out / "server.pcap", "tcp.seq",
        extra=("-Y", f"ip.src == {CLIENT} and tcp.analysis.out_of_order"))}
    late = {p["seq"] for p in record["packets"] if p["link_late"] and p["from"] == "client"}
    assert seen and seen <= late  # what tshark saw out of order, sockcap marked late
    # link.pcap is in the order frames were sent: there the same segments are in order
    assert not tshark_fields(out / "link.pcap", "frame.number",
                             extra=("-Y", "tcp.analysis.out_of_order"))


@needs_root
@needs_tshark
def test_duplicates_arrive_twice(tmp_path: Path) -> None:
    out = tmp_path / "lab"
    record = lab_json(out, "--tcp", "--duplicate", "20%", "--size", "50000", "--count", "1",
                      "--pattern", "stream", "--seed", "3", "--direction", "to-server")
    assert record["tcp"]["intact"] == 1
    counts = record["link"]["counts"]
    assert counts["to-server"]["duplicated"] > 0 and counts["to-client"]["duplicated"] == 0
    rows = tshark_fields(out / "server.pcap", "ip.id", "tcp.seq_raw", "tcp.len",
                         extra=("-Y", f"ip.src == {CLIENT} and tcp.len > 0"))
    twice = len(rows) - len({tuple(r) for r in rows})
    assert twice == counts["to-server"]["duplicated"] - _dups_of_empty(out)
    copies = sum(p["link_copies"] for p in record["packets"] if p["from"] == "client")
    assert copies == counts["to-server"]["duplicated"]  # the merge found each copy
    flagged = tshark_fields(out / "server.pcap", "frame.number",
                            extra=("-Y", f"ip.src == {CLIENT} and tcp.analysis.retransmission"))
    assert len(flagged) >= twice > 0


def _dups_of_empty(out: Path) -> int:
    """Duplicated frames without payload (pure ACKs, the SYN): not in the data count."""
    rows = tshark_fields(out / "server.pcap", "ip.id", "tcp.seq_raw", "tcp.flags",
                         extra=("-Y", f"ip.src == {CLIENT} and tcp.len == 0"))
    return len(rows) - len({tuple(r) for r in rows})


@needs_root
def test_corrupted_frames_are_dropped_by_the_receiver_and_resent(tmp_path: Path) -> None:
    record = lab_json(tmp_path / "lab", "--tcp", "--corrupt", "10%", "--count", "20",
                      "--seed", "5")
    corrupted = sum(c["corrupted"] for c in record["link"]["counts"].values())
    assert corrupted > 0
    assert record["tcp"]["intact"] == 20  # TCP's checksum caught every one
    assert record["tcp"]["retransmissions"] > 0


@needs_root
def test_a_stalled_tcp_ends_with_an_answer(tmp_path: Path) -> None:
    """--drop-every 2 stalls TCP in ever longer back-offs: the deadline stops it, and the
    lab still writes all three pcaps, the timeline so far and a partial verdict, exit 1."""
    out = tmp_path / "lab"
    start = time.monotonic()
    res = sockcap("lab", "--drop-every", "2", "--count", "20", "--tcp", "--timeout", "12",
                  "--out", str(out), timeout=120)
    assert time.monotonic() - start < 60  # the deadline, not tcp_retries2's 15 minutes
    assert res.returncode == 1, res.stderr
    lines = res.stdout.splitlines()
    assert re.match(r"TCP: \d+ of 20 messages delivered intact when the lab stopped it after ",
                    lines[0])
    stalled = next(line for line in lines if "was still being retransmitted" in line)
    first, longest = map(float, re.search(r"\d+ tries, the timeout growing ([\d.]+) → ([\d.]+) s",
                                          stalled).groups())
    assert 0.2 <= first < longest  # RTO_MIN at first, then backed off
    assert "tcp_retries2 = 15" in stalled and "~15 min" in stalled
    assert "TCP echo: every packet put on the link, at the time it was sent:" in lines
    assert any("(retransmission)" in line for line in lines)
    for name in ("server.pcap", "client.pcap", "link.pcap"):
        assert sockcap("show", str(out / name)).returncode == 0


@needs_root
@needs_tshark
def test_a_lost_fragment_loses_the_whole_datagram(tmp_path: Path) -> None:
    """Three 4000-byte datagrams, three fragments each; the 5th frame toward the server
    (datagram 2's second fragment) is dropped: datagram 2 is lost, 1 and 3 delivered."""
    out = tmp_path / "lab"
    record = lab_json(out, "--udp", "--size", "4000", "--count", "3", "--drop-every", "5",
                      "--direction", "to-server")
    udp = record["udp"]
    assert (udp["sent"], udp["delivered"], udp["lost_numbers"]) == (3, 2, [2])
    assert udp["fragments"] == 9 and udp["lost_by_a_fragment"] == [2]
    assert udp["echoes_sent"] == udp["echoes_delivered"] == 2
    whole = tshark_fields(out / "server.pcap", "udp.length",
                          extra=("-Y", f"ip.src == {CLIENT} and udp"))
    assert [r[0] for r in whole] == ["4008", "4008"]  # reassembled: datagrams 1 and 3
    lost = [p for p in record["packets"] if p["link"] == "lost"]
    assert len(lost) == 1
    text = sockcap("lab", "--udp", "--size", "4000", "--count", "3", "--drop-every", "5",
                   "--direction", "to-server", "--out", str(tmp_path / "text"), timeout=120)
    assert "Fragmented IP protocol (proto=UDP 17, off=1480, ID=" in text.stdout
    assert "✗ lost on the link — datagram #2 is lost with it" in text.stdout
    assert "lost by a single fragment: #2" in text.stdout


@needs_root
def test_large_tcp_message_is_segmented_at_the_mss(tmp_path: Path) -> None:
    record = lab_json(tmp_path / "lab", "--tcp", "--size", "4000", "--count", "1")
    lengths = [p["len"] for p in record["packets"] if p["from"] == "client" and p["len"]]
    assert lengths == [1448, 1448, 1104]  # segments, where UDP sends fragments


@needs_root
def test_the_course_in_one_run(tmp_path: Path) -> None:
    """``--delay 50 --loss 5% --both``: how much slower TCP is and why, what UDP lost —
    the words carry the numbers of the JSON of the same run."""
    out = tmp_path / "lab"
    res = sockcap("lab", "--delay", "50", "--loss", "5%", "--both", "--seed", "1",
                  "--out", str(out), timeout=180)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    tcp_line, udp_line = lines[0].split(" | ")
    tcp_s = float(re.search(r"delivered intact in ([\d.]+) s", tcp_line)[1])
    udp_s = float(re.search(r"delivered in ([\d.]+) s", udp_line)[1])
    lost = int(re.search(r"(\d+) lost", udp_line)[1]) if "none lost" not in udp_line else 0
    echoes = int(re.search(r"(\d+) of \d+ echoes lost", udp_line)[1])
    race = lines[1]
    assert race.startswith("Reliable vs fast (the same 20 messages, ping-pong): TCP delivered "
                           "20 of 20 in ")
    gap = f"{abs(tcp_s - udp_s):.2f}"
    assert gap[:3] in race  # the difference, as said
    if lost or echoes:
        assert f"lost {lost} of 20 messages and {echoes} echoes for good" in race
    else:
        assert "this time lost nothing" in race
    timing = lines[2]
    handshake = float(re.search(r"([\d.]+) s for the handshake", timing)[1])
    assert 0.09 <= handshake < 0.2  # one round trip of 2 x 50 ms (not two; a load adds)
    assert "round trips waiting for echoes" in timing and "retransmission timeouts" in timing
    assert lines[3].startswith("UDP's ")
    assert "50 ms of delay" in res.stdout and "packets lost at random: 5%" in res.stdout


@needs_root
def test_two_runs_never_share_a_folder(nobody_dir: Path) -> None:
    procs = [subprocess.Popen([sys.executable, "-m", "sockcap", "lab", "--udp", "--count", "1"],
                              cwd=nobody_dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
             for _ in range(2)]
    for proc in procs:
        _out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    folders = sorted((nobody_dir / "captures").iterdir())
    assert len(folders) == 2
    assert all((f / "link.pcap").exists() for f in folders)


def test_fresh_folder_counts_past_those_that_exist(tmp_path: Path) -> None:
    from sockcap.lab.session import fresh_folder
    from sockcap.owner import Owner

    base = tmp_path / "captures" / "lab-20261206-120000"
    assert fresh_folder(Owner(None), base) == base
    assert fresh_folder(Owner(None), base) == base.with_name(base.name + "-2")
    assert fresh_folder(Owner(None), base) == base.with_name(base.name + "-3")


@needs_root
def test_congestion_control_is_chosen_or_listed(tmp_path: Path) -> None:
    have = Path("/proc/sys/net/ipv4/tcp_available_congestion_control").read_text().split()
    record = lab_json(tmp_path / "lab", "--tcp", "--cc", have[0], "--count", "2")
    assert record["tcp"]["intact"] == 2
    res = sockcap("lab", "--cc", "no-such-cc", "--out", str(tmp_path / "no"))
    assert res.returncode == 2 and len(res.stderr.splitlines()) == 1
    assert "no-such-cc" in res.stderr and have[0] in res.stderr
    assert not (tmp_path / "no").exists()


@needs_userns
@needs_tshark
def test_unprivileged_delay_line_as_nobody(nobody_dir: Path) -> None:
    out = nobody_dir / "lab"
    record = lab_json(out, "--delay", "20", "--loss", "10%", "--count", "10", "--seed", "2",
                      user="nobody")
    assert record["link"]["by"] == "sockcap"
    assert record["tcp"]["intact"] == 10
    rtts = [float(r[0]) for r in tshark_fields(
        out / "client.pcap", "tcp.analysis.ack_rtt",
        extra=("-Y", f"ip.src == {SERVER} and tcp.analysis.ack_rtt"))]
    assert min(rtts) >= 0.036, rtts  # never early, as with root
    assert {p.stat().st_uid for p in [out, *out.iterdir()]} == {pwd.getpwnam("nobody").pw_uid}


def _namespaces() -> set[str]:
    out = subprocess.run(["lsns", "-t", "net", "-n", "-o", "NS"], capture_output=True,
                         text=True, timeout=30).stdout
    return set(out.split())


def _children(pid: int) -> set[int]:
    found = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found.update(int(c) for c in (task / "children").read_text().split())
    return found


@needs_root
@pytest.mark.parametrize(("user", "link"), [(None, ()), ("nobody", ()),
                                            (None, ("--delay", "5")),
                                            ("nobody", ("--delay", "5"))])
def test_sigkill_mid_run_leaves_nothing(nobody_dir: Path, user: str | None,
                                        link: tuple[str, ...]) -> None:
    out = nobody_dir / "lab"
    cmd = [sys.executable, "-m", "sockcap", "lab", "--drop-every", "2", "--count", "200",
           "--out", str(out), *link]
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
        helpers = _children(proc.pid)  # the delay line, with --delay
        assert bool(helpers) == bool(link)
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
    for pid in helpers:
        deadline = time.monotonic() + 10
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not Path(f"/proc/{pid}").exists()


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


@needs_root
def test_the_congestion_window_falls_after_a_loss(tmp_path: Path) -> None:
    """Reno over a 10mbit link that drops every 40th packet toward the server: the
    client's congestion window grows in slow start, is cut at the loss, and the graph has
    it under the time-sequence graph."""
    out, graph = tmp_path / "lab", tmp_path / "cwnd.svg"
    args = ("--tcp", "--size", "300000", "--count", "1", "--pattern", "stream", "--rate",
            "10mbit", "--drop-every", "40", "--direction", "to-server", "--cc", "reno")
    record = lab_json(out, *args, "--graph", str(graph))
    assert record["cwnd"]["cc"] == "reno"
    samples = record["cwnd"]["samples"]
    first_retransmission = min(p["time"] for p in record["packets"]
                               if "retransmission" in " ".join(p["notes"]))
    t0 = record["packets"][0]["time"]
    cwnds = [s[1] for s in samples]
    peak = max(cwnds[:next(i for i, s in enumerate(samples) if s[4] in (3, 4))])
    after = [s[1] for s in samples if s[4] in (3, 4)]
    assert peak > 10 and min(after) < peak  # grew from the initial window, then cut
    assert any(s[2] < 0x7FFFFFFF for s in samples)  # ssthresh was set by the loss
    assert first_retransmission > t0
    root = ET.parse(graph).getroot()
    classes = {el.get("class") for el in root.iter()}
    assert {"sc-cwnd", "sc-ssthresh", "sc-retrans"} <= classes
    res = sockcap("lab", *args, "--out", str(tmp_path / "text"), timeout=120)
    lines = res.stdout.splitlines()
    assert any(line.startswith("slow start (reno): the congestion window grew from 10 to ")
               for line in lines)
    loss = next(line for line in lines if line.startswith("the loss at "))
    before, to = map(int, re.search(r"fell from (\d+) to (\d+) segments", loss).groups())
    assert to < before
    assert any(line.startswith("recovery: from there the congestion window grew to ")
               for line in lines)


@needs_root
def test_a_full_queue_is_where_the_packets_went(tmp_path: Path) -> None:
    """At 1mbit with room for 5 packets, a stream overflows the link's queue: every packet
    lost on the link is one the queue had no room for, and the lab says so."""
    args = ("--tcp", "--rate", "1mbit", "--queue", "5", "--size", "200000", "--count", "1",
            "--pattern", "stream")
    record = lab_json(tmp_path / "lab", *args)
    counts = record["link"]["counts"]
    full = sum(c["queue_full"] for c in counts.values())
    assert full > 0 and sum(c["lost"] + c["dropped_every"] for c in counts.values()) == 0
    assert full == sum(1 for p in record["packets"] if p["link"] == "lost")
    assert record["tcp"]["intact"] == 1 and record["tcp"]["retransmissions"] > 0
    res = sockcap("lab", *args, "--out", str(tmp_path / "text"), timeout=120)
    said = next(line for line in res.stdout.splitlines() if line.startswith("on the link: "))
    assert "dropped by a full queue" in said


@needs_root
@needs_tshark
def test_a_link_that_drops_every_packet_times_connect_out(
        tmp_path: Path, sockcap_path: dict[str, str | None]) -> None:
    """--loss 100%: the client's connect() is begun before the first SYN and returns
    ETIMEDOUT after the last, tied to every SYN it sent (tshark counts them in the client's
    capture) and, with --kernel, to each tcp_retransmit_skb of the client; on both engine
    paths, in --json and in the timeline."""
    out = tmp_path / "lab"
    kernel = ("--kernel",) if ROOT_TRACEFS else ()
    args = ("--tcp", "--count", "1", "--loss", "100%", "--timeout", "10", *kernel)
    res = sockcap("lab", "--json", "--out", str(out), *args, timeout=180, env=sockcap_path)
    assert res.returncode == 1, res.stderr  # nothing was delivered
    record = json.loads(res.stdout)
    (connect,) = [c for c in record["calls"] if c["syscall"] == "connect"]
    assert connect["side"] == "client" and connect["errno"] == "ETIMEDOUT"
    syns = tshark_fields(out / "client.pcap", "frame.number",
                         extra=("-Y", "tcp.flags.syn == 1 && tcp.flags.ack == 0"))
    sent = [p["no"] for p in record["packets"] if p["link"] == "lost"]
    assert len(sent) == len(syns) >= 2 and connect["caused_by"] == sent == connect["packets"]
    assert connect["begin"] < 0 < connect["end"]  # begun before the first SYN
    last_syn = max(p["time"] for p in record["packets"])
    assert connect["end"] > last_syn  # returned after the last one
    if kernel:
        retransmits = [k for k in record["kernel"] if k["event"] == "tcp_retransmit_skb"]
        assert [k["event"] for k in connect["kernel"]] == ["tcp_retransmit_skb"] * (len(syns) - 1)
        assert {k["side"] for k in retransmits} == {"client"}
        assert [k["time"] for k in connect["kernel"]] == [k["time"] for k in retransmits]
    text = sockcap("lab", "--out", str(tmp_path / "lab-text"), *args, timeout=180,
                   env=sockcap_path)
    lines = text.stdout.splitlines()
    assert lines[0].startswith("TCP: 0 of 1 messages delivered: the client's connect() failed "
                               "with ETIMEDOUT after ")  # the kernel gave up, not the lab
    ended = next(i for i, line in enumerate(lines)
                 if re.search(r"▸ [\d.]+  client: … connect\(10\.0\.0\.1:\d+\) → ETIMEDOUT$",
                              line))
    last = max(i for i, line in enumerate(lines) if " TCP [SYN] " in line)
    begun = next(i for i, line in enumerate(lines)
                 if re.search(r"client: connect\(10\.0\.0\.1:\d+\) …$", line))
    assert begun < last < ended
    assert re.match(r" +← the SYN, sent \d+ times and never answered: packets 1 \(\+0\.0 s\)",
                    lines[ended + 1])
    if kernel:
        assert "[the kernel: tcp_retransmit_skb" in lines[ended + 1]
