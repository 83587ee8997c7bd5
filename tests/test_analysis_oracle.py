"""Conversations and expert notes against tshark 4.0, the oracle.

For every TCP packet of the corpus's public captures and of captures made here on
loopback: sockcap's stream number equals ``tcp.stream`` / ``udp.stream``, its expert notes
equal the ``tcp.analysis.*`` flags tshark sets on that frame, and the conversation's
handshake RTT equals ``tcp.analysis.initial_rtt`` to the microsecond.

The loopback captures (tests/loopback_scenarios.py) are made for real with tcpdump on
``lo``: a refused connection, a reset (SO_LINGER 0), a half-close, a zero window (a
receiver with a 4 KiB buffer that stops reading), a timeout retransmission and a lossy
transfer (nftables drops inside a network namespace the test creates and deletes).
Duplicate ACKs, lost and out-of-order segments are then made by editing those files
(duplicating, deleting and swapping frames, seeded): tshark judges the edited file too.

Intended differences, excluded with their reason:

- ``timestamp_invalid_*.pcap``: the reader keeps an out-of-range timestamp fraction
  differently from tshark, so the iRTT (a time difference) is not compared there.
- MPTCP connections: Wireshark does not count a repeated ACK as duplicate while MPTCP
  data moves on the connection; sockcap approximates its counter of MPTCP operations
  (data mappings), so duplicate ACKs on MPTCP connections are not compared.
"""

from __future__ import annotations

import io
import random
import subprocess
from pathlib import Path

import pytest
from conftest import CORPUS, first_run_only, needs_corpus, needs_tshark
from loopback_scenarios import SCENARIOS, can_run, scenario_capture

from sockcap.analysis.conversation import Annotated
from sockcap.analysis.expert import SYN_RETRANSMITTED, note_kind
from sockcap.decode.records import RawFrame
from sockcap.pcapfile.reader import open_capture
from sockcap.pcapfile.writer import write_pcap
from sockcap.pipeline import Pipeline

# Every test here runs the reader, decoder and tracker in this process (sockcap.pipeline's
# Pipeline), never the engine and never the CLI: the same code whatever SOCKCAP_PURE says,
# so .ci/run's second run (pure) skips them rather than repeat the first run's work.
pytestmark = first_run_only("the Python pipeline in this process, never the engine")

needs_scenarios = pytest.mark.skipif(bool(can_run()), reason=can_run() or "ok")

FLAGS = {
    "tcp.analysis.retransmission": "retransmission",
    "tcp.analysis.fast_retransmission": "fast retransmission",
    "tcp.analysis.spurious_retransmission": "spurious retransmission",
    "tcp.analysis.out_of_order": "out-of-order",
    "tcp.analysis.lost_segment": "previous segment not captured",
    "tcp.analysis.ack_lost_segment": "ACKed unseen segment",
    "tcp.analysis.duplicate_ack_num": "duplicate ACK",
    "tcp.analysis.zero_window": "zero window",
    "tcp.analysis.zero_window_probe": "zero window probe",
    "tcp.analysis.zero_window_probe_ack": "zero window probe ACK",
    "tcp.analysis.window_full": "window full",
    "tcp.analysis.window_update": "window update",
    "tcp.analysis.keep_alive": "keep-alive",
    "tcp.analysis.keep_alive_ack": "keep-alive ACK",
    "tcp.analysis.reused_ports": "port numbers reused",
}
NAMES = set(FLAGS.values())
IRTT_UNCOMPARABLE = {"timestamp_invalid_micro.pcap", "timestamp_invalid_nano.pcap"}


def tshark_rows(path: Path) -> dict[int, list[str]]:
    cmd = ["tshark", "-r", str(path), "-T", "fields", "-E", "separator=\t",
           "-e", "frame.number", "-e", "tcp.stream", "-e", "udp.stream",
           "-e", "tcp.analysis.initial_rtt"]
    for field in FLAGS:
        cmd += ["-e", field]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
    return {int(r[0]): r for r in (line.split("\t") for line in out.splitlines()) if r[0]}


def annotate(path: Path) -> list[Annotated]:
    view = Pipeline()
    return list(view.packets(open_capture(io.BytesIO(path.read_bytes()))))


def expected_notes(row: list[str]) -> set[str]:
    got = {name for i, name in enumerate(FLAGS.values()) if (row + [""] * 30)[4 + i]}
    if got & {"fast retransmission", "spurious retransmission"}:
        got.add("retransmission")  # tshark sets both flags on these
    return got


def sockcap_notes(a: Annotated) -> set[str]:
    kinds = {note_kind(n) for n in a.notes}
    got = kinds & NAMES
    if SYN_RETRANSMITTED in kinds or got & {"fast retransmission", "spurious retransmission"}:
        got.add("retransmission")
    return got


def disagreements(path: Path) -> tuple[int, list[str]]:
    """(packets compared, one line per disagreement)."""
    rows = tshark_rows(path)
    compared, diffs = 0, []
    for a in annotate(path):
        row = rows.get(a.no)
        if row is None or a.conv is None:
            continue
        row = row + [""] * (4 + len(FLAGS) - len(row))
        tcp_stream, udp_stream, irtt = row[1], row[2], row[3]
        if "," in tcp_stream + udp_stream:
            continue  # a packet quoted inside another (ICMP error): outer only here
        compared += 1
        stream = tcp_stream or udp_stream
        if stream and int(stream) != a.conv.stream:
            diffs.append(f"{path.name} #{a.no}: stream {a.conv.stream} != {stream}")
        want, got = expected_notes(row), sockcap_notes(a)
        if a.conv.mptcp:
            want.discard("duplicate ACK")
            got.discard("duplicate ACK")
        if want != got:
            diffs.append(f"{path.name} #{a.no}: notes {sorted(got)} != tshark {sorted(want)}")
        if irtt and a.packet.is_tcp and path.name not in IRTT_UNCOMPARABLE:
            if round(float(irtt) * 1e6) != round(a.conv.irtt_ns / 1e3):
                diffs.append(f"{path.name} #{a.no}: iRTT {a.conv.irtt_ns} ns != {irtt} s")
    return compared, diffs


def corpus_captures() -> list[Path]:
    if not CORPUS.is_dir():
        return []
    return sorted(p for p in (CORPUS / "public").iterdir()
                  if p.suffix in (".pcap", ".pcapng", ".cap"))


@needs_corpus
@needs_tshark
def test_corpus_streams_notes_and_irtt_agree_with_tshark() -> None:
    total, report = 0, []
    for path in corpus_captures():
        n, diffs = disagreements(path)
        total += n
        report += diffs
    print(f"corpus: {total - len(report)}/{total} packets agree")
    assert total > 250
    assert not report, "\n".join(report[:40])


@needs_scenarios
@needs_tshark
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_loopback_capture_agrees_with_tshark(name: str) -> None:
    path = scenario_capture(name)
    n, diffs = disagreements(path)
    assert n > 0
    assert not diffs, "\n".join(diffs[:40])


def read_frames(path: Path) -> list[RawFrame]:
    return list(open_capture(io.BytesIO(path.read_bytes())))


def edit(frames: list[RawFrame], rng: random.Random) -> list[RawFrame]:
    """Duplicate, delete or swap a few frames after the handshake (time stays monotonic
    for a swap: the two frames trade timestamps)."""
    out = list(frames)
    for _ in range(rng.randrange(1, 6)):
        i = rng.randrange(2, len(out))
        op = rng.choice(("dup", "dup-next", "delete", "swap"))
        if op == "dup":
            out.insert(rng.randrange(i, min(len(out), i + 4) + 1), out[i])
        elif op == "dup-next":
            out.insert(i + 1, out[i]._replace(ts_ns=out[i].ts_ns + 1000))
        elif op == "delete":
            del out[i]
        elif i + 1 < len(out):
            x, y = out[i], out[i + 1]
            out[i], out[i + 1] = y._replace(ts_ns=x.ts_ns), x._replace(ts_ns=y.ts_ns)
    return out


@needs_scenarios
@needs_tshark
@pytest.mark.parametrize("name", ["half_close", "zero_window", "rto", "lossy"])
def test_edited_captures_agree_with_tshark(name: str, tmp_path: Path) -> None:
    """Edited files (frames duplicated, deleted, swapped; seeds 0-11) make duplicate ACKs,
    spurious and fast retransmissions, out-of-order, lost and ACKed-unseen segments."""
    frames = read_frames(scenario_capture(name))
    total, report, seen = 0, [], set()
    for seed in range(12):
        path = tmp_path / f"{name}-{seed}.pcap"
        write_pcap(path, edit(frames, random.Random(seed)), frames[0].linktype)
        n, diffs = disagreements(path)
        total += n
        report += [f"seed {seed}: {d}" for d in diffs]
        seen |= {k for a in annotate(path) for k in sockcap_notes(a)}
    print(f"{name}: {total - len(report)}/{total} packets agree; notes seen: {sorted(seen)}")
    assert not report, "\n".join(report[:40])


@needs_scenarios
@needs_tshark
def test_duplicated_ack_is_numbered_like_tshark(tmp_path: Path) -> None:
    """The half-close capture with one pure ACK repeated three times (an edited file)."""
    frames = read_frames(scenario_capture("half_close"))
    i = next(k for k, a in enumerate(annotate(scenario_capture("half_close")))
             if a.phase in ("ack", "teardown") and a.packet.payload_len == 0 and k > 3)
    edited = frames[: i + 1] + [frames[i]] * 3 + frames[i + 1:]
    path = tmp_path / "dupacks.pcap"
    write_pcap(path, edited, frames[0].linktype)
    notes = [a.notes for a in annotate(path)][i + 1: i + 4]
    assert [n[-1] for n in notes] == ["duplicate ACK #1", "duplicate ACK #2", "duplicate ACK #3"]
    nums = [r[0] for r in _fields(path, "tcp.analysis.duplicate_ack_num")[i + 1: i + 4]]
    assert nums == ["1", "2", "3"]


def _fields(path: Path, *fields: str) -> list[list[str]]:
    cmd = ["tshark", "-r", str(path), "-T", "fields"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout
    return [line.split("\t") for line in out.splitlines()]


@needs_scenarios
@pytest.mark.parametrize(("name", "note", "ended"), [
    ("refused", "connection refused", "refused"),
    ("reset", "connection reset", "reset"),
    ("half_close", "half-close", "FIN both ways"),
    ("zero_window", "zero window", "FIN both ways"),
    ("rto", "retransmission", "FIN both ways"),
])
def test_scenario_has_its_note(name: str, note: str, ended: str) -> None:
    annotated = annotate(scenario_capture(name))
    kinds = {note_kind(n) for a in annotated for n in a.notes}
    assert note in kinds
    conv = annotated[0].conv
    assert conv is not None and conv.end_state == ended
    assert conv.note_counts is not None and conv.note_counts[note] >= 1
