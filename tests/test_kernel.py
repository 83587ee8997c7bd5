"""``--kernel``: the kernel's TCP events from a private tracefs instance, tied to the
packets: both ends' states in order, the reason a SYN was answered with RST or dropped,
in both languages; the instance is gone after every exit, and a stale one (SIGKILL) is
removed by the next start; without permission one line and the rest works."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, needs_capture, never_engine, sockcap

from sockcap.capture.kernel import PREFIX, tracefs_root

pytestmark = never_engine()

ROOT_TRACEFS = os.geteuid() == 0 and tracefs_root() is not None
needs_tracefs = pytest.mark.skipif(not ROOT_TRACEFS, reason="--kernel needs root and tracefs")
DEADLINE = 60.0


def kernel_rows(*args: str) -> list[dict[str, Any]]:
    res = sockcap("run", "--capture", "--kernel", "--json", *args, timeout=DEADLINE)
    assert res.returncode == 0, res.stderr
    return [json.loads(line) for line in res.stdout.splitlines()]


def events(rows: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [r for r in rows if r["type"] == "kernel" and r["event"] == name]


@needs_capture
@needs_tracefs
def test_the_readme_exchange_shows_both_ends_states_in_order(tmp_path: Path) -> None:
    rows = kernel_rows("--out", str(tmp_path / "r.pcap"))
    states = events(rows, "inet_sock_set_state")
    path = {side: [(s["old_state"], s["new_state"]) for s in states if s["side"] == side
                   and s["conversation"] == 0] for side in ("client", "server")}
    assert path["client"] == [("CLOSE", "SYN_SENT"), ("SYN_SENT", "ESTABLISHED"),
                              ("ESTABLISHED", "FIN_WAIT1"), ("FIN_WAIT1", "FIN_WAIT2"),
                              ("FIN_WAIT2", "TIME_WAIT")]
    assert path["server"] == [("LISTEN", "SYN_RECV"), ("SYN_RECV", "ESTABLISHED"),
                              ("ESTABLISHED", "CLOSE_WAIT"), ("CLOSE_WAIT", "LAST_ACK"),
                              ("LAST_ACK", "CLOSE")]
    by_no = {r["no"]: r for r in rows if r["type"] == "packet"}
    fin_wait = next(s for s in states if s["new_state"] == "FIN_WAIT1")
    assert by_no[fin_wait["packets"][0]]["flags"] == ["FIN", "ACK"]  # the FIN it sent
    probes = events(rows, "tcp_probe")
    assert probes and all(p["snd_cwnd"] > 0 and p["srtt_us"] > 0 for p in probes)
    # in the stream each state change stands next to its packet: time order holds
    times = [r["time"] for r in rows if r["type"] in ("packet", "kernel")]
    assert times == sorted(times)
    assert not any(name.startswith(PREFIX) for name in os.listdir(instances()))


@needs_capture
@needs_tracefs
def test_refused_names_no_socket(tmp_path: Path) -> None:
    rows = kernel_rows("--scenario", "refused", "--out", str(tmp_path / "r.pcap"))
    resets = events(rows, "tcp_send_reset")
    assert [(r["side"], r["reason"]) for r in resets] == [("server", "NO_SOCKET")]
    drops = events(rows, "kfree_skb")
    by_no = {r["no"]: r for r in rows if r["type"] == "packet"}
    assert [(d["reason"], by_no[d["packets"][0]]["flags"]) for d in drops] == [
        ("NO_SOCKET", ["SYN"])]  # the SYN no socket took
    text = sockcap("run", "--capture", "--kernel", "--explain", "--scenario", "refused",
                   "--out", str(tmp_path / "t.pcap")).stdout
    assert "server's kernel dropped packet 1 (NO_SOCKET)" in text
    assert "no socket listens on the port it was sent to" in text
    indonesian = sockcap("--lang", "id", "run", "--capture", "--kernel", "--explain",
                         "--scenario", "refused", "--out", str(tmp_path / "i.pcap")).stdout
    assert "kernel server membuang paket 1 (NO_SOCKET)" in indonesian


@needs_capture
@needs_tracefs
def test_backlog_names_the_listen_overflow(tmp_path: Path) -> None:
    rows = kernel_rows("--scenario", "backlog", "--out", str(tmp_path / "b.pcap"))
    drops = [d for d in events(rows, "kfree_skb") if d["reason"] == "TCP_LISTEN_OVERFLOW"]
    by_no = {r["no"]: r for r in rows if r["type"] == "packet"}
    assert drops and all(by_no[d["packets"][0]]["flags"] == ["SYN"] for d in drops)
    assert all(d["side"] == "server" for d in drops)
    retransmits = events(rows, "tcp_retransmit_skb")
    assert retransmits and all(r["side"] == "client" and r["state"] == "SYN_SENT"
                               for r in retransmits)


def instances() -> str:
    root = tracefs_root()
    assert root is not None
    return os.path.join(root, "instances")


def started(sig: signal.Signals, tmp_path: Path) -> tuple[subprocess.Popen[str], str]:
    """A ``run --capture --kernel --scenario timeout`` (several seconds of SYN retries),
    once its tracefs instance exists; the instance's path."""
    cmd = [sys.executable, "-m", "sockcap", "run", "--capture", "--kernel", "--scenario",
           "timeout", "--out", str(tmp_path / f"{sig.name}.pcap")]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, env=dict(os.environ, NO_COLOR="1"))
    path = os.path.join(instances(), f"{PREFIX}{proc.pid}")
    deadline = time.monotonic() + DEADLINE
    while not os.path.isdir(path) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    assert os.path.isdir(path), "the trace never started"
    return proc, path


@needs_capture
@needs_tracefs
@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_the_instance_is_gone_after_a_signal(tmp_path: Path, sig: signal.Signals,
                                             code: int) -> None:
    proc, path = started(sig, tmp_path)
    try:
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=DEADLINE)
    finally:
        proc.kill()
    assert proc.returncode == code, err
    assert not os.path.exists(path)


@needs_capture
@needs_tracefs
def test_a_killed_runs_instance_is_removed_by_the_next(tmp_path: Path) -> None:
    proc, path = started(signal.SIGKILL, tmp_path)
    proc.kill()
    proc.wait(DEADLINE)
    assert os.path.isdir(path)  # SIGKILL leaves it: nothing runs at a SIGKILL
    kernel_rows("--scenario", "refused", "--out", str(tmp_path / "next.pcap"))
    assert not os.path.exists(path)


@needs_capture
@pytest.mark.skipif(os.geteuid() != 0, reason="runs the test as nobody, which needs root")
def test_kernel_without_permission_is_one_line_and_the_run_goes_on(tmp_path: Path) -> None:
    res = sockcap("run", "--capture", "--kernel", "--json", "--out", "r.pcap",
                  user="nobody", cwd=tmp_path, timeout=DEADLINE)
    if "user namespaces" in res.stderr:
        pytest.skip("this kernel forbids user namespaces: nobody cannot capture at all")
    assert res.returncode == 0, res.stderr
    said = [line for line in res.stderr.splitlines() if "--kernel" in line]
    assert len(said) == 1 and "needs root" in said[0]
    types = {json.loads(line)["type"] for line in res.stdout.splitlines()}
    assert types == {"packet", "call"}


@needs_capture
@needs_tracefs
def test_the_ladder_writes_each_sides_states_beside_its_lifeline(tmp_path: Path) -> None:
    res = sockcap("run", "--capture", "--kernel", "--diagram", "-m", "hi", "--out",
                  str(tmp_path / "d.pcap"), timeout=DEADLINE)
    assert res.returncode == 0, res.stderr
    lines = res.stdout[res.stdout.index("tcp stream 0"):].splitlines()

    def first(test: Any) -> int:
        return next(i for i, line in enumerate(lines) if test(line))

    client_states = [line.split()[0] for line in lines if line.rstrip().endswith("│")
                     and line.split()[0] in ("SYN_SENT", "ESTABLISHED", "FIN_WAIT1",
                                             "FIN_WAIT2", "TIME_WAIT")]
    assert client_states == ["SYN_SENT", "ESTABLISHED", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT"]
    server_states = [line.split()[-1] for line in lines if line.split()
                     and line.split()[-1] in ("SYN_RECV", "CLOSE_WAIT", "LAST_ACK", "CLOSE")]
    assert server_states == ["SYN_RECV", "CLOSE_WAIT", "LAST_ACK", "CLOSE"]
    assert first(lambda x: x.strip().startswith("SYN_SENT")) < first(lambda x: "[SYN]" in x)
    assert first(lambda x: "FIN_WAIT1" in x) < first(lambda x: "[FIN, ACK] Seq=3 Ack=3" in x)
    assert first(lambda x: "▸ connect(" in x) < first(lambda x: "[SYN]" in x)


@needs_tracefs
@pytest.mark.skipif(not all(__import__("shutil").which(t) for t in ("ip", "nft", "setpriv")),
                    reason="the lab needs ip, nft and setpriv")
def test_a_lossy_lab_shows_the_congestion_window_falling_after_a_loss(tmp_path: Path) -> None:
    res = sockcap("lab", "--tcp", "--drop-every", "4", "--count", "6", "--kernel", "--json",
                  "--out", str(tmp_path / "lab"), timeout=180)
    assert res.returncode == 0, res.stderr
    record = json.loads(res.stdout)
    kernel = record["kernel"]
    assert all(k["type"] == "kernel" and k["conversation"] == 0 for k in kernel)
    lost = {p["no"] for p in record["packets"] if p["link"] == "lost"}
    drops = [k for k in kernel if k["event"] == "kfree_skb" and k["reason"] == "NETFILTER_DROP"]
    assert drops and {k["packets"][0] for k in drops} <= lost  # the link's drops, named
    fell = False
    for side in ("client", "server"):
        seen = [k for k in kernel if k["side"] == side]
        for i, k in enumerate(seen):
            if k["event"] != "tcp_retransmit_skb":
                continue
            before = [p["snd_cwnd"] for p in seen[:i] if p["event"] == "tcp_probe"]
            after = [p["snd_cwnd"] for p in seen[i:] if p["event"] == "tcp_probe"]
            fell = fell or bool(before and after and min(after) < before[-1])
    assert fell, "no side's cwnd fell after a retransmission"
    text = sockcap("lab", "--tcp", "--drop-every", "4", "--count", "6", "--kernel", "--out",
                   str(tmp_path / "lab2"), timeout=180).stdout
    assert "◆" in text and "the kernel sends a segment again" in text
