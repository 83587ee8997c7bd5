"""The compiled hot path (``sockcap._speedups``) against its pure-Python twin.

Both paths must print the same bytes for ``sockcap show`` (plain and ``--hex``, with
``-c``, ``--port`` and ``--explain``), end with the same exit code and the same damage
message, on: every corpus file, the golden captures, captures made by hypothesis (TCP
and UDP conversations over every link type the compiled decoder reads, with options,
damage and odd timestamps, as pcap or as pcapng with frames without a time among them),
mutated inputs from ``fuzz/mutators.py``, and a capture long enough for the retire rule
of a bounded tracker (``keep=False``), timed and untimed. The comparison itself is
``fuzz/differential.py``'s (the same one ``fuzz/sanitize.sh`` runs under ASan/UBSan).
"""

from __future__ import annotations

import os
import random
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CORPUS, ROOT, sockcap
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(ROOT / "fuzz"))
from differential import OPTION_SETS, differences, show_result

from sockcap.decode.records import NO_TIMESTAMP
from sockcap.speedups import compiled_class

REQUIRED = os.environ.get("SOCKCAP_REQUIRE_EXTENSIONS", "") not in ("", "0")
if not REQUIRED and os.environ.get("SOCKCAP_PURE", "") in ("", "0"):
    BUILT = compiled_class() is not None
else:
    BUILT = not os.environ.get("SOCKCAP_PURE") and compiled_class() is not None
needs_extension = pytest.mark.skipif(not BUILT, reason="the compiled extension is not built")
GOLDEN = ROOT / "tests" / "golden"


def same_on_both_paths(data: bytes, tmp_path: Path) -> None:
    found = differences(data, str(tmp_path))
    assert not found, "\n".join(found)


def test_missing_extension_is_an_error_only_when_required(tmp_path: Path) -> None:
    code = ("import sys; sys.modules['sockcap._speedups'] = None; from sockcap.cli import main;"
            " main(sys.argv[1:])")
    capture = str(GOLDEN / "echo-tcp.pcap")
    env = dict(os.environ, SOCKCAP_PURE="", NO_COLOR="1")
    strict = subprocess.run([sys.executable, "-c", code, "show", capture], capture_output=True,
                            text=True, timeout=60, env={**env, "SOCKCAP_REQUIRE_EXTENSIONS": "1"})
    assert strict.returncode == 1 and strict.stdout == ""
    assert strict.stderr.startswith("sockcap: the compiled extension is required")
    assert len(strict.stderr.splitlines()) == 1
    lenient = subprocess.run([sys.executable, "-c", code, "show", capture], capture_output=True,
                             text=True, timeout=60, env={**env, "SOCKCAP_REQUIRE_EXTENSIONS": ""})
    assert lenient.returncode == 0 and lenient.stdout.startswith("   1 ")
    version = subprocess.run([sys.executable, "-c", code, "--version"], capture_output=True,
                             text=True, timeout=60, env=env)
    assert "pure Python path: the compiled extension is not built" in version.stdout


@needs_extension
def test_version_says_which_path_runs() -> None:
    assert "compiled fast path" in sockcap("--version").stdout
    pure = sockcap("--version", env={"SOCKCAP_PURE": "1"}).stdout
    assert "pure Python path: SOCKCAP_PURE is set" in pure


@needs_extension
@pytest.mark.parametrize("path", sorted(GOLDEN.glob("*.pcap*")), ids=lambda p: p.name)
def test_golden_captures(path: Path, tmp_path: Path) -> None:
    same_on_both_paths(path.read_bytes(), tmp_path)


@needs_extension
@pytest.mark.parametrize("path", sorted((ROOT / "tests" / "differential").glob("*.pcap*")),
                         ids=lambda p: p.name)
def test_inputs_on_which_the_paths_once_differed(path: Path, tmp_path: Path) -> None:
    same_on_both_paths(path.read_bytes(), tmp_path)


@needs_extension
@pytest.mark.skipif(not CORPUS.is_dir(), reason="corpus not present")
def test_corpus(tmp_path: Path) -> None:
    files = sorted(CORPUS.rglob("*.pcap*"))
    assert len(files) > 50
    found = [f"{p.name}: {line}" for p in files for line in differences(p.read_bytes(), str(tmp_path))]
    assert not found, "\n".join(found)


@needs_extension
@pytest.mark.skipif(not CORPUS.is_dir(), reason="corpus not present")
def test_mutated_inputs(tmp_path: Path) -> None:
    from mutators import make_input
    from seeds import load_seeds

    seeds = load_seeds()
    found = []
    for i in range(300):
        description, data = make_input(seeds, random.Random((7 << 32) | i))
        found += [f"input {i} ({description}): {line}" for line in differences(data, str(tmp_path))]
    assert not found, "\n".join(found)


# -- captures made by hypothesis ------------------------------------------------------

LINK_HEADS = {
    1: lambda v6: b"\x00" * 12 + (b"\x86\xdd" if v6 else b"\x08\x00"),
    113: lambda v6: b"\x00" * 14 + (b"\x86\xdd" if v6 else b"\x08\x00"),
    276: lambda v6: (b"\x86\xdd" if v6 else b"\x08\x00") + b"\x00" * 18,
    0: lambda v6: struct.pack("<I", 30 if v6 else 2),
    108: lambda v6: struct.pack(">I", 24 if v6 else 2),
    101: lambda v6: b"",
}
FLAG_CHOICES = [0x002, 0x012, 0x010, 0x018, 0x011, 0x004, 0x014, 0x0C2, 0x052, 0x1D0, 0x050,
                0x001, 0x000, 0x019]
# the handshake's two directions most of the time, then other conversations (one with
# itself, one on the same ports from another address)
FLOWS = [(1, 2, 40000, 80), (2, 1, 80, 40000)] * 4 + [
    (1, 2, 40001, 80), (2, 1, 80, 40001), (1, 1, 5000, 5000), (2, 1, 40000, 80)]
OPTION_CHOICES = [
    b"", b"\x01\x01\x08\x0a" + bytes(8), b"\x03\x03\x07\x01", b"\x03\x03\x0f\x01",
    b"\x02\x04\x05\xb4", b"\x1e\x08\x20\x04" + bytes(4), b"\x1e\x04\x00\x00",
    b"\x05\x0a" + bytes(8) + b"\x01\x01", b"\x04\x02\x01\x01", b"\x03\x02\x00\x00",
]


def _tcp(sport: int, dport: int, seq: int, ack: int, flags: int, window: int,
         options: bytes, payload: bytes) -> bytes:
    hlen = 20 + len(options)
    return (struct.pack("!HHIIHHHH", sport, dport, seq, ack, (hlen // 4) << 12 | flags, window,
                        0, 0) + options + payload)


def pcapng_file(linktype: int, records: list[tuple[int, bytes, int]]) -> bytes:
    """A pcapng file of ``(ts_ns, frame, wirelen)`` records on one interface (microsecond
    times): an Enhanced Packet Block each, or a Simple Packet Block (no time) where
    ``ts_ns`` is NO_TIMESTAMP."""

    def block(btype: int, body: bytes) -> bytes:
        body += bytes(-len(body) % 4)
        return struct.pack("<II", btype, 12 + len(body)) + body + struct.pack("<I", 12 + len(body))

    out = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    out += block(1, struct.pack("<HHI", linktype, 0, 0))
    for ts, frame, wirelen in records:
        if ts == NO_TIMESTAMP:
            out += block(3, struct.pack("<I", wirelen) + frame)
        else:
            t = ts // 1000
            out += block(6, struct.pack("<IIIII", 0, t >> 32, t & 0xFFFFFFFF, len(frame),
                                        wirelen) + frame)
    return out


def _ip(v6: bool, src: int, dst: int, proto: int, body: bytes) -> bytes:
    if v6:
        return (struct.pack("!IHBB", 0x60000000, len(body), proto, 64)
                + bytes(15) + bytes([src]) + bytes(15) + bytes([dst]) + body)
    return (struct.pack("!BBHHHBBH", 0x45, 0, 20 + len(body), 1, 0, 64, proto, 0)
            + bytes([10, 0, 0, src]) + bytes([10, 0, 0, dst]) + body)


@st.composite
def captures(draw: st.DrawFn) -> bytes:
    linktype = draw(st.sampled_from(sorted(LINK_HEADS)))
    v6 = draw(st.booleans())
    ts = draw(st.integers(0, 2**32 - 100)) * 1_000_000
    # pcap, or pcapng where some frames may come without a time (Simple Packet Blocks)
    untimed_share = draw(st.sampled_from([None, None, 0, 2, 4]))
    records: list[tuple[int, bytes, int]] = []

    def record(frame: bytes) -> None:
        wirelen = len(frame)
        cut = draw(st.sampled_from([None, None, None, None, None, None, 10, 30, 50, 70]))
        untimed = untimed_share is not None and draw(st.integers(0, untimed_share)) == 0
        if cut is not None and not untimed:  # an SPB's captured length is its block's
            frame = frame[:cut]
        records.append((NO_TIMESTAMP if untimed else ts, frame, wirelen))

    if draw(st.booleans()):  # a handshake first, so that scaling and the analysis apply
        for src, dst, sport, dport, seq, ack, flags in ((1, 2, 40000, 80, 999, 0, 0x002),
                                                        (2, 1, 80, 40000, 4999, 1000, 0x012)):
            options = draw(st.sampled_from([*OPTION_CHOICES[1:4], b""]))
            body = _tcp(sport, dport, seq, ack, flags | draw(st.sampled_from([0, 0x1C0, 0x80])),
                        65535, options, b"")
            ts += 1000
            record(LINK_HEADS[linktype](v6) + _ip(v6, src, dst, 6, body))
    for _ in range(draw(st.integers(1, 40))):
        ts += draw(st.sampled_from([0, 1, 500, 1500, 2_999_000, 25_000_000, 11_000_000_000,
                                    -7000]))
        ts = max(ts, 0)
        src, dst, sport, dport = draw(st.sampled_from(FLOWS))
        if draw(st.integers(0, 9)) == 0:
            payload = draw(st.binary(max_size=40))
            body = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
            frame = LINK_HEADS[linktype](v6) + _ip(v6, src, dst, 17, body)
        else:
            seq = draw(st.sampled_from([1000, 1001, 1005, 1010, 999, 2**32 - 1, 0, 5000]))
            ack = draw(st.sampled_from([0, 1000, 1001, 1005, 1010, 5001, 2**32 - 1]))
            payload = draw(st.sampled_from([b"", b"x", b"hello", b"\x00\xff\n\"\\" * 7]))
            body = _tcp(sport, dport, seq, ack, draw(st.sampled_from(FLAG_CHOICES)),
                        draw(st.sampled_from([0, 1, 512, 65535])),
                        draw(st.sampled_from(OPTION_CHOICES)), payload)
            frame = LINK_HEADS[linktype](v6) + _ip(v6, src, dst, 6, body)
        record(frame)
    if untimed_share is not None:
        return pcapng_file(linktype, records)
    return struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype) + b"".join(
        struct.pack("<IIII", t // 1_000_000_000, t // 1000 % 1_000_000, len(f), w) + f
        for t, f, w in records)


@needs_extension
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=captures())
def test_hypothesis_captures(data: bytes, tmp_path: Path) -> None:
    same_on_both_paths(data, tmp_path)


@needs_extension
@pytest.mark.parametrize("timed", [True, False], ids=["timed", "untimed"])
def test_retire_rule_and_port_reuse_over_many_conversations(tmp_path: Path,
                                                            timed: bool) -> None:
    """More closed conversations than the bounded tracker keeps (RETIRE_AFTER) over more
    than RETIRE_IDLE_NS of capture time, then packets on old and recent 5-tuples and a
    SYN reusing a recent one's ports: the stream numbers must be the pure path's. Untimed
    (pcapng Simple Packet Blocks), idleness cannot be told and the oldest is forgotten."""
    records: list[tuple[int, bytes, int]] = []
    ts = 1_700_000_000 * 10**9

    def add(frame: bytes) -> None:
        nonlocal ts
        ts += 3_000_000
        records.append((ts if timed else NO_TIMESTAMP, frame, len(frame)))

    head = LINK_HEADS[1](False)
    for i in range(4300):
        port = 20000 + i
        for src, dst, sp, dp, seq, ack, flags in (
                (1, 2, port, 80, 100, 0, 0x002), (2, 1, 80, port, 500, 101, 0x012),
                (1, 2, port, 80, 101, 501, 0x010), (1, 2, port, 80, 101, 501, 0x011),
                (2, 1, 80, port, 501, 102, 0x011), (1, 2, port, 80, 102, 502, 0x010)):
            add(head + _ip(False, src, dst, 6, _tcp(sp, dp, seq, ack, flags, 512, b"", b"")))
    for port, seq, flags in ((20000, 102, 0x010), (24299, 102, 0x010), (24298, 900, 0x002)):
        add(head + _ip(False, 1, 2, 6, _tcp(port, 80, seq, 502, flags, 512, b"", b"")))
    if timed:
        data = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1) + b"".join(
            struct.pack("<IIII", t // 10**9, t // 1000 % 10**6, len(f), w) + f
            for t, f, w in records)
    else:
        data = pcapng_file(1, records)
    same_on_both_paths(data, tmp_path)
    path = tmp_path / "many.cap"
    path.write_bytes(data)
    tail = show_result(str(path), {}, pure=False).stdout.splitlines()[-4:]
    # the first conversation was forgotten: a new stream, roles guessed
    assert "tcp stream 4300: no handshake seen" in tail[0]
    assert "client 10.0.0.1:20000" in tail[1] and "Seq=1 Ack=1" in tail[1]
    assert "client 10.0.0.1:24299" in tail[2] and "Seq=2 Ack=2" in tail[2]  # still known
    assert "duplicate ACK #1" in tail[2]
    assert "Seq=0 Win=" in tail[3] and "handshake 1/3" in tail[3]  # port reuse: a new one


def test_option_sets_cover_the_views_moved() -> None:
    assert {"hex_": True} in OPTION_SETS and any("count" in o for o in OPTION_SETS)


@needs_extension
def test_a_pipe_shows_each_packet_before_the_next_arrives() -> None:
    """``tcpdump -w - | sockcap show -``: a packet read whole is printed before sockcap
    waits for more input (the compiled loop hands its text out before each read; the
    pure path's Output.text still batches 4096 lines)."""
    import select

    data = (GOLDEN / "echo-tcp.pcap").read_bytes()
    first_record = 24 + 16 + struct.unpack_from("<I", data, 24 + 8)[0]
    env = dict(os.environ, SOCKCAP_PURE="", NO_COLOR="1")
    proc = subprocess.Popen([sys.executable, "-m", "sockcap", "show", "-"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, env=env)
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(data[:first_record])
        proc.stdin.flush()
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        assert ready, "no line while the input stays open"
        assert proc.stdout.readline().startswith(b"   1 ")
        proc.stdin.write(data[first_record:])
        proc.stdin.close()
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


@needs_extension
def test_another_language_takes_the_compiled_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine is handed its templates translated and whole: with a catalogue of another
    language loaded, ``show`` still runs the compiled engine, which prints the translated
    words, byte for byte as the pure path does (placeholders moved around included)."""
    catalog_mod = pytest.importorskip("babel.messages.catalog")
    mofile = pytest.importorskip("babel.messages.mofile")
    from sockcap import i18n

    catalog = catalog_mod.Catalog(locale="id", domain="sockcap")
    catalog.add("client {client} → server {server}", "klien {client} → peladen {server}")
    catalog.add("server {server} → client {client}", "ke {client} ← peladen {server}")
    catalog.add("duplicate ACK #{n}", "ACK ganda ke-{n}")
    catalog.add("(tcp stream {stream}: no handshake seen; roles guessed from the ports,"
                " server {server})", "(peladen {server}, {{aliran}} {stream}: ditebak)")
    folder = tmp_path / "locale" / "id" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    with (folder / "sockcap.mo").open("wb") as f:
        mofile.write_mo(f, catalog)
    monkeypatch.setattr(i18n, "LOCALE_DIR", tmp_path / "locale")
    captures = [GOLDEN / "echo-tcp.pcap", *(CORPUS / "public" / name for name in (
        "kday3.pcap", "tcp_rst_data.pcap") if (CORPUS / "public" / name).exists())]
    try:
        assert i18n.use_language("id") == "id"
        assert compiled_class() is not None
        for capture in captures:
            translated = show_result(str(capture), {}, pure=False)
            assert translated == show_result(str(capture), {}, pure=True), capture.name
        first = show_result(str(captures[0]), {}, pure=False).stdout
        assert "  klien 127.0.0.1:" in first and "  ke 127.0.0.1:" in first
    finally:
        i18n.use_language("en")
    english = show_result(str(captures[0]), {}, pure=False)
    assert "  client 127.0.0.1:" in english.stdout and "klien" not in english.stdout


@needs_extension
def test_a_tracker_that_reports_forgotten_conversations_is_not_stood_in_for() -> None:
    """``ConversationTracker(on_forget=...)`` (export) gets Python conversations as they
    are forgotten; the engine has none to give, so it refuses such a pipeline."""
    from sockcap.pipeline import Pipeline
    from sockcap.pipeline.engine import EngineRun, PureEngine

    pipeline = Pipeline(keep=False)
    pipeline.tracker.on_forget = lambda conv: None
    with pytest.raises(ValueError, match="on_forget"):
        EngineRun(compiled_class(), pipeline, hex_=False)
    with pytest.raises(ValueError, match="on_forget"):  # the twins alike
        EngineRun(PureEngine, pipeline, hex_=False)
    pipeline.tracker.on_forget = None
    EngineRun(compiled_class(), pipeline, hex_=False)


@needs_extension
@pytest.mark.parametrize("v6", [False, True], ids=["ipv4", "ipv6"])
def test_icmp_messages_and_the_notes_they_put_on_conversations(tmp_path: Path, v6: bool) -> None:
    """ICMP is decoded by Python and its unreachable's note counted by the engine in the
    conversation of the datagram it quotes (kept or forgotten), as the pure tracker does."""
    icmp_proto = 58 if v6 else 1
    unreach = (1, 4) if v6 else (3, 3)  # port unreachable
    host_unreach = (1, 3) if v6 else (3, 1)  # address / host unreachable
    echo = (128, 0) if v6 else (8, 0)
    head = LINK_HEADS[1](v6)
    udp = struct.pack("!HHHH", 40000, 53, 12, 0) + b"ping"
    syn = _tcp(40001, 80, 100, 0, 0x002, 512, b"", b"")
    stray = struct.pack("!HHHH", 41000, 9, 8, 0)  # quotes a datagram never seen

    def icmp(kind: tuple[int, int], body: bytes) -> bytes:
        return head + _ip(v6, 2, 1, icmp_proto, struct.pack("!BBHI", *kind, 0, 0) + body)

    frames = [
        head + _ip(v6, 1, 2, 17, udp),
        icmp(unreach, _ip(v6, 1, 2, 17, udp)),
        head + _ip(v6, 1, 2, 6, syn),
        icmp(host_unreach, _ip(v6, 1, 2, 6, syn)[:48 if v6 else 28]),
        icmp(unreach, _ip(v6, 1, 2, 17, stray)),
        icmp(echo, b"abcd"),
        head + _ip(v6, 1, 2, icmp_proto, b"\x08"),  # too short for a message
        head + _ip(v6, 1, 2, 17, udp),
        icmp(unreach, _ip(v6, 1, 2, 17, udp)),
    ]
    ts = 1_700_000_000 * 10**9
    data = pcapng_file(1, [(ts + i * 1_000_000, f, len(f)) for i, f in enumerate(frames)])
    same_on_both_paths(data, tmp_path)
    path = tmp_path / "icmp.pcapng"
    path.write_bytes(data)
    out = show_result(str(path), {}, pure=False).stdout
    host = "[::2]" if v6 else "10.0.0.2"
    assert out.count(f"(port unreachable: nothing listens on {host}:53)") == 2
    assert f"nothing listens on {host}:9)" in out
    stats = sockcap("stats", "--json", str(path)).stdout
    assert '"notes": {"port unreachable": 2}' in stats


@needs_extension
def test_time_past_2_to_the_53_nanoseconds_rounds_as_the_timeline(tmp_path: Path) -> None:
    """The timeline's ``(ts - first) / 1e9`` makes the difference a double first: past
    2**53 ns that rounding shows in the sixth decimal."""
    frame = LINK_HEADS[1](False) + _ip(False, 1, 2, 17, struct.pack("!HHHH", 40000, 53, 8, 0))
    records = b"".join(struct.pack("<IIII", sec, nsec, len(frame), len(frame)) + frame
                       for sec, nsec in ((1418145372, 147483648), (2147483648, 72)))
    data = struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 65535, 1) + records
    same_on_both_paths(data, tmp_path)
    path = tmp_path / "far.pcap"
    path.write_bytes(data)
    lines = show_result(str(path), {}, pure=False).stdout.splitlines()
    assert lines[1].startswith("   2 729338275.852517  ")  # int / int would end in ...516


def test_no_engine_makes_asking_for_one_an_error() -> None:
    """SOCKCAP_NO_ENGINE=1 (tests/conftest.py, never_engine): a command that runs the
    engine fails loudly, naming the variable, on either path; one that runs none is
    unchanged. This is what holds the second run's skipped modules to their claim."""
    for env in ({"SOCKCAP_NO_ENGINE": "1"}, {"SOCKCAP_NO_ENGINE": "1", "SOCKCAP_PURE": "1"}):
        for command in (("show",), ("stats",), ("follow", "--stream", "0")):
            run = sockcap(*command, str(GOLDEN / "echo-tcp.pcap"), env=env)
            assert run.returncode != 0 and "SOCKCAP_NO_ENGINE" in run.stderr, (env, command)
    helped = sockcap("check", "--help", env={"SOCKCAP_NO_ENGINE": "1"})
    assert helped.returncode == 0 and "SOCKCAP_NO_ENGINE" not in helped.stderr
