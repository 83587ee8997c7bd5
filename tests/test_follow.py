"""Follow: reassembled bytes against ``tshark -q -z follow,tcp,raw,N``, the command, and
the reassembly's promise as a property.

tshark writes a hole that the receiver ACKed as the text ``[N bytes missing in capture
file]`` followed by a NUL byte inside the raw stream; sockcap keeps a hole as a gap chunk
(no bytes invented), so the comparison renders sockcap's gaps in tshark's words. A hole
still open at the end of the capture is different on purpose: tshark drops the bytes
held after it, sockcap shows them after a gap; such streams are counted, not compared.
"""

from __future__ import annotations

import io
import itertools
import json
import random
import subprocess
from pathlib import Path

import pytest
from conftest import CORPUS, first_run_only, needs_corpus, needs_tshark, sockcap
from hypothesis import given, settings
from hypothesis import strategies as st
from loopback_scenarios import can_run, scenario_capture
from test_analysis_oracle import edit, read_frames
from test_pcapfile import small_reads

from sockcap.analysis.conversation import ConversationTracker
from sockcap.analysis.follow import Chunk, Follower
from sockcap.decode.records import IPPROTO_TCP, IPPROTO_UDP, Packet
from sockcap.errors import DecodeError
from sockcap.pcapfile.reader import open_capture
from sockcap.pcapfile.writer import write_pcap
from sockcap.pipeline import Pipeline
from sockcap.render.follow import follow_pairs

needs_scenarios = pytest.mark.skipif(bool(can_run()), reason=can_run() or "ok")
RULE = "=" * 67


def tshark_follows(path: Path, streams: list[int]) -> dict[int, tuple[str, bytes, bytes]]:
    """stream -> (node 0 "addr:port", node 0's bytes, node 1's bytes) of tshark's raw
    follow of each of ``streams``: one tshark for the file (a ``-z follow,tcp,raw,N`` for
    each stream, each written as its own block naming its stream in its Filter line),
    where a tshark a stream paid tshark's start once for every stream of the corpus."""
    if not streams:
        return {}
    cmd = ["tshark", "-q", "-r", str(path)]
    for stream in streams:
        cmd += ["-z", f"follow,tcp,raw,{stream}"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300).stdout
    found: dict[int, tuple[str, bytes, bytes]] = {}
    for block in out.split(RULE):
        lines = block.splitlines()
        if not lines or not any(line.startswith("Follow: ") for line in lines):
            continue
        nodes = [bytearray(), bytearray()]
        node0, stream = "", -1
        for line in lines:
            if line.startswith("Filter: tcp.stream eq "):
                stream = int(line.removeprefix("Filter: tcp.stream eq "))
            elif line.startswith("Node 0: "):
                node0 = line[8:]
            elif not line.strip() or line.startswith(("Follow:", "Filter:", "Node 1:")):
                continue
            else:
                nodes[line.startswith("\t")] += bytes.fromhex(line.strip())
        assert stream not in found, f"{path.name}: tshark followed stream {stream} twice"
        found[stream] = (node0, bytes(nodes[0]), bytes(nodes[1]))
    assert sorted(found) == sorted(streams), f"{path.name}: tshark followed {sorted(found)}"
    return found


def follow_all(path: Path) -> tuple[dict[int, tuple[bytes, bytes, bool]], dict[int, str]]:
    """stream -> (client bytes, server bytes, open hole at the end); stream -> first sender."""
    view, follower = Pipeline(), Follower()
    data: dict[int, list[bytearray]] = {}
    open_hole: dict[int, bool] = {}
    first: dict[int, str] = {}
    chunks: list[Chunk] = []
    for a in view.packets(open_capture(io.BytesIO(path.read_bytes()))):
        if a.conv is not None and a.conv.proto == IPPROTO_TCP:
            first.setdefault(a.conv.stream, f"{a.packet.src}:{a.packet.sport}")
        chunks += follower.feed(a)
    chunks += follower.finish()
    for c in chunks:
        if c.conv.proto != IPPROTO_TCP:
            continue
        sides = data.setdefault(c.conv.stream, [bytearray(), bytearray()])
        if c.gap:
            sides[not c.from_client] += f"[{c.gap} bytes missing in capture file]".encode() + b"\0"
            open_hole[c.conv.stream] = open_hole.get(c.conv.stream, False) or c.no < 0
        else:
            sides[not c.from_client] += c.data
    roles = {c.stream: f"{c.client[0]}:{c.client[1]}" for c in view.tracker.conversations
             if c.proto == IPPROTO_TCP}
    return ({s: (bytes(v[0]), bytes(v[1]), open_hole.get(s, False)) for s, v in data.items()},
            {s: "client" if first[s] == roles[s] else "server" for s in first})


def compare(path: Path) -> tuple[int, int, list[str]]:
    """(streams equal, streams skipped for an open hole, differences)."""
    mine, first = follow_all(path)
    equal, skipped, diffs = 0, 0, []
    compared = [s for s in sorted(first) if not mine.get(s, (b"", b"", False))[2]]
    theirs = tshark_follows(path, compared)
    for stream in sorted(first):
        client, server, hole = mine.get(stream, (b"", b"", False))
        if hole:
            skipped += 1
            continue
        _, t0, t1 = theirs[stream]
        got = (client, server) if first[stream] == "client" else (server, client)
        if got == (t0, t1):
            equal += 1
        else:
            diffs.append(f"{path.name} stream {stream}: sockcap {len(got[0])}/{len(got[1])} "
                         f"bytes, tshark {len(t0)}/{len(t1)}")
    return equal, skipped, diffs


@needs_corpus
@needs_tshark
@first_run_only("it runs the Python tracker and Follower in this process, never the engine")
def test_corpus_streams_follow_like_tshark() -> None:
    """Every TCP stream of the public corpus, reassembled by the Follower, against tshark's
    raw follow. The tracker and the Follower run in this process, not the engine: the
    same whatever SOCKCAP_PURE says, so .ci/run's second run skips it."""
    equal, diffs = 0, []
    for path in sorted((CORPUS / "public").iterdir()):
        if path.suffix in (".pcap", ".pcapng"):
            e, _, d = compare(path)
            equal += e
            diffs += d
    print(f"corpus: {equal}/{equal + len(diffs)} TCP streams equal tshark's follow")
    assert equal >= 15
    assert not diffs, "\n".join(diffs)


@needs_scenarios
@needs_tshark
@pytest.mark.parametrize("name", ["half_close", "rto", "reset", "zero_window", "lossy"])
@first_run_only("it runs the Python tracker and Follower in this process, never the engine")
def test_loopback_streams_follow_like_tshark(name: str, tmp_path: Path) -> None:
    """The capture as made, then 8 edited copies (duplicated, deleted, swapped frames).
    The reassembly compared is the Follower's in this process (no engine): .ci/run's
    second run, on the pure path, would repeat the first run's."""
    frames = read_frames(scenario_capture(name))
    paths = [scenario_capture(name)]
    for seed in range(8):
        paths.append(tmp_path / f"{seed}.pcap")
        write_pcap(paths[-1], edit(frames, random.Random(seed)), frames[0].linktype)
    equal = skipped = 0
    diffs: list[str] = []
    for path in paths:
        e, s, d = compare(path)
        equal, skipped, diffs = equal + e, skipped + s, diffs + d
    print(f"{name}: {equal} streams equal, {skipped} with a hole at the end (not compared)")
    assert equal >= 5
    assert not diffs, "\n".join(diffs)


@needs_scenarios
def test_follow_command_ascii_and_raw_files(tmp_path: Path) -> None:
    path = scenario_capture("half_close")
    res = sockcap("follow", str(path), "--stream", "0")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].startswith("== tcp stream 0: client 127.0.0.1:")
    assert "> GET / HTTP/1.0" in lines
    assert "< response 0 to 18 bytes" in lines
    res = sockcap("follow", str(path), "--raw", "--out", str(tmp_path / "out"))
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "out" / "stream-0-client.bin").read_bytes() == b"GET / HTTP/1.0\r\n\r\n"
    assert (tmp_path / "out" / "stream-0-server.bin").read_bytes() == b"".join(
        b"response %d to 18 bytes\n" % i for i in range(5))
    hexed = sockcap("follow", str(path), "--hex")
    assert "> 00000000  47 45 54 20" in hexed.stdout


def follow_stream(path: Path, select: tuple[int, int], prefiltered: bool) -> list[object]:
    """Every annotated packet of the selected stream (number, direction, relative seq and
    ack, payload) and the follow view's lines, read with or without the reader's
    prefilter (a plain iterator over the reader hides it)."""
    pipeline = Pipeline(analyze=False)
    with path.open("rb") as f:
        reader = open_capture(f)
        packets = list(pipeline.select(iter(reader), *select,
                                       skipper=reader if prefiltered else None))
    rows: list[object] = [(a.no, a.from_client, a.seq, a.ack, a.packet.payload)
                          for a in packets]
    return rows + list(follow_pairs(iter(packets), select, "hex"))


def streams_of(path: Path) -> list[tuple[int, int]]:
    view = Pipeline()
    with path.open("rb") as f:
        for _ in view.packets(open_capture(f)):
            pass
    return [(c.proto, c.stream) for c in view.tracker.conversations]


@needs_scenarios
@needs_tshark
def test_port_reuse_streams_are_tsharks_and_follow_the_same_with_the_prefilter() -> None:
    """One client port, three connections, others between them: the prefilter (the port
    pair) passes all three connections' frames; the tracker alone splits them."""
    path = scenario_capture("port_reuse")
    out = subprocess.run(["tshark", "-r", str(path), "-T", "fields", "-e", "tcp.stream"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    view = Pipeline()
    with path.open("rb") as f:
        mine = [str(a.conv.stream) for a in view.packets(open_capture(f)) if a.conv]
    assert mine == out.split() and len(set(mine)) == 6
    for chunk in (64, 1 << 20):
        with small_reads(chunk):
            for select in streams_of(path):
                plain = follow_stream(path, select, prefiltered=False)
                assert plain and follow_stream(path, select, prefiltered=True) == plain


@needs_corpus
def test_corpus_streams_follow_the_same_with_the_prefilter() -> None:
    compared = 0
    for path in sorted((CORPUS / "public").iterdir()):
        if path.suffix in (".pcap", ".pcapng"):
            try:
                selects = streams_of(path)
            except DecodeError:
                continue  # damaged files are the reader's tests
            for select in selects[:40]:
                plain = follow_stream(path, select, prefiltered=False)
                assert follow_stream(path, select, prefiltered=True) == plain, (path, select)
                compared += 1
    assert compared >= 60  # 68 TCP and UDP streams in the public corpus


@needs_scenarios
def test_damaged_file_still_shows_every_stream_read_before_the_damage(tmp_path: Path) -> None:
    data = scenario_capture("half_close").read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[: len(data) - 30])  # the last record loses its end
    for extra in ([], ["--stream", "0"]):
        res = sockcap("follow", str(cut), *extra)
        assert res.returncode == 4, res.stderr
        assert res.stderr.count("\n") == 1 and "file cut short" in res.stderr
        lines = res.stdout.splitlines()
        assert "> GET / HTTP/1.0" in lines and "< response 4 to 18 bytes" in lines
        assert lines[-1].startswith("== tcp stream 0: client sent 18 bytes")
    stats = sockcap("stats", "--json", str(cut))
    assert stats.returncode == 4 and json.loads(stats.stdout)["damaged"] == {
        "damage that stopped reading": 1}


@needs_scenarios
def test_follow_command_errors() -> None:
    path = str(scenario_capture("half_close"))
    res = sockcap("follow", path, "--stream", "7")
    assert res.returncode != 0 and "no tcp stream 7" in res.stderr and "Traceback" not in res.stderr
    res = sockcap("follow", path, "--out", "/tmp/x")
    assert res.returncode != 0 and "--raw" in res.stderr


# ---- the reassembly's promise, with packets built directly ----

ISN_C, ISN_S = 1000, 5000


def segment(seq: int, payload: bytes, flags: int = 0x18, *, from_client: bool = True,
            ts: int = 0, ack: int = ISN_S + 1) -> Packet:
    src, dst = (("10.0.0.1", 40000), ("10.0.0.2", 80)) if from_client else \
        (("10.0.0.2", 80), ("10.0.0.1", 40000))
    return Packet(ts, 1, 54 + len(payload), payload, "IPv4", src[0], dst[0], IPPROTO_TCP,
                  src[1], dst[1], seq % (1 << 32), ack % (1 << 32), flags, 512, (), 0,
                  len(payload), "", ())


def reassemble(packets: list[Packet]) -> tuple[bytes, list[tuple[int, int]]]:
    """Client bytes (gaps left out) and the gaps as (offset, size)."""
    tracker, follower = ConversationTracker(), Follower()
    chunks: list[Chunk] = []
    for p in packets:
        chunks += follower.feed(tracker.feed(p))
    chunks += follower.finish()
    client = [c for c in chunks if c.from_client]
    return (b"".join(c.data for c in client), [(c.offset, c.gap) for c in client if c.gap])


def handshake() -> list[Packet]:
    return [segment(ISN_C, b"", 0x02, ack=0),
            segment(ISN_S, b"", 0x12, from_client=False, ack=ISN_C + 1)]


@st.composite
def shuffled_segments(draw: st.DrawFn) -> tuple[bytes, list[tuple[int, bytes]], int]:
    data = draw(st.binary(min_size=1, max_size=400))
    cuts = sorted(set(draw(st.lists(st.integers(1, max(1, len(data) - 1)), max_size=12))))
    bounds = [0, *[c for c in cuts if c < len(data)], len(data)]
    segs = [(a, data[a:b]) for a, b in itertools.pairwise(bounds) if b > a]
    extra = draw(st.lists(st.sampled_from(segs), max_size=6))  # duplicates
    overlaps = [(a, data[a:min(len(data), a + n)]) for a, n in
                draw(st.lists(st.tuples(st.integers(0, len(data) - 1), st.integers(1, 50)),
                              max_size=4))]
    order = draw(st.permutations(segs + extra + overlaps))
    drop = draw(st.integers(-1, len(segs) - 1))
    return data, list(order), drop


@settings(max_examples=300, deadline=None)
@given(shuffled_segments())
def test_any_order_and_duplication_gives_the_original_bytes(
        case: tuple[bytes, list[tuple[int, bytes]], int]) -> None:
    data, order, _ = case
    packets = handshake() + [segment(ISN_C + 1 + off, chunk) for off, chunk in order]
    got, gaps = reassemble(packets)
    assert got == data and gaps == []


@st.composite
def cut_stream(draw: st.DrawFn) -> tuple[bytes, list[tuple[int, bytes]], int]:
    """Bytes cut in at least three segments, a shuffled order with duplicates, and the
    index of a segment before the last one (to remove)."""
    data = draw(st.binary(min_size=3, max_size=400))
    cuts = sorted(set(draw(st.lists(st.integers(1, len(data) - 1), min_size=2, max_size=12))))
    bounds = [0, *cuts, len(data)]
    segs = [(a, data[a:b]) for a, b in itertools.pairwise(bounds)]
    extra = draw(st.lists(st.sampled_from(segs), max_size=6))
    return data, draw(st.permutations(segs + extra)), draw(st.integers(0, len(segs) - 2))


@settings(max_examples=300, deadline=None)
@given(cut_stream())
def test_a_removed_segment_becomes_a_gap_of_its_size(
        case: tuple[bytes, list[tuple[int, bytes]], int]) -> None:
    data, order, index = case
    victim = sorted(set(order))[index]
    kept = [(o, c) for o, c in order if (o, c) != victim]
    got, gaps = reassemble(handshake() + [segment(ISN_C + 1 + o, c) for o, c in kept])
    assert gaps == [(victim[0], len(victim[1]))]
    assert got == data[: victim[0]] + data[victim[0] + len(victim[1]):]


def dgram(ts: int, payload: bytes, back: bool = False) -> Packet:
    src, dst, sport, dport = ("10.0.0.2", "10.0.0.1", 53, 4000) if back else \
        ("10.0.0.1", "10.0.0.2", 4000, 53)
    return Packet(ts, 1, 42 + len(payload), payload, "IPv4", src, dst, IPPROTO_UDP, sport,
                  dport, -1, -1, 0, -1, (), 0, len(payload), "", ())


def test_udp_follows_as_datagrams() -> None:
    tracker, follower = ConversationTracker(), Follower(select=(IPPROTO_UDP, 0))
    chunks: list[Chunk] = []
    for p in (dgram(1, b"query"), dgram(2, b"answer", back=True), dgram(3, b"again")):
        chunks += follower.feed(tracker.feed(p))
    assert [(c.from_client, c.offset, c.data) for c in chunks] == [
        (True, 0, b"query"), (False, 0, b"answer"), (True, 5, b"again")]
