"""``show --style tcpdump`` written by the compiled engine (sockcap/_speedups_tcpdump.h),
byte for byte what the Python view (sockcap/render/timeline.py, the pure path) writes:
over the goldens and the corpus, in English and in Indonesian, with ``-c``, ``--port``
and ``--hex``; over captures made by hypothesis with the TCP options tcpdump names
(MPTCP, SACK, TFO, SCPS, the experiments, malformed ones), times of any second and
nanosecond, in several time zones (UTC, zones with summer time, half-hour offsets); and
times the C library cannot convert (shown in UTC on both). ``tcpdump -nn`` itself is the
oracle in tests/test_show.py and tests/test_icmp.py, which run the CLI (this engine).
"""

from __future__ import annotations

import os
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import CORPUS, ROOT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_speedups import LINK_HEADS, _ip, _tcp  # puts fuzz/ on the path

from differential import show_result  # isort: skip

from sockcap.pipeline.contract import Style
from sockcap.speedups import compiled_class

GOLDEN = ROOT / "tests" / "golden"
needs_extension = pytest.mark.skipif(compiled_class() is None,
                                     reason="the compiled extension is not built (or SOCKCAP_PURE)")
ZONES = ("UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata",
         "America/St_Johns", "Pacific/Chatham")
OPTION_SETS = ({}, {"hex_": True}, {"count": 5}, {"port": 80}, {"hex_": True, "count": 7, "port": 40000})


@pytest.fixture
def zone() -> Iterator[None]:
    """The test's TZ is put back afterwards (os.environ and the C library's state)."""
    saved = os.environ.get("TZ")
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = saved
        time.tzset()


def use_zone(name: str) -> None:
    os.environ["TZ"] = name
    time.tzset()


def same(path: Path, options: dict[str, object]) -> str:
    """The compiled path's text, checked equal to the pure path's."""
    opts = {"style": "tcpdump", **options}
    compiled = show_result(str(path), opts, pure=False)
    pure = show_result(str(path), opts, pure=True)
    assert compiled == pure, (path.name, options)
    return compiled.stdout


@needs_extension
def test_the_engine_lists_tcpdump_notation() -> None:
    assert Style.TCPDUMP in compiled_class().styles


def goldens() -> list[Path]:
    return sorted(p for p in GOLDEN.iterdir() if p.suffix in (".pcap", ".pcapng"))


@needs_extension
@pytest.mark.parametrize("lang", ["en", "id"])
@pytest.mark.parametrize("path", goldens(), ids=lambda p: p.name)
def test_goldens(path: Path, lang: str, zone: None) -> None:
    use_zone("Europe/Berlin")
    for options in OPTION_SETS:
        out = same(path, {**options, "lang": lang})
        assert out or "port" in options  # every golden has a packet to show


def corpus() -> list[Path]:
    if not CORPUS.is_dir():
        return []
    return sorted(p for d in ("public", "adversarial") for p in (CORPUS / d).iterdir()
                  if p.name.endswith((".pcap", ".pcapng", ".cap")))


@needs_extension
@pytest.mark.skipif(not corpus(), reason="the corpus is not here")
def test_corpus(zone: None) -> None:
    """Every corpus file, plain and with --hex in English, and in Indonesian with -c."""
    use_zone("America/New_York")
    found = []
    for path in corpus():
        for options in ({}, {"hex_": True}, {"lang": "id", "count": 50}):
            opts = {"style": "tcpdump", **options}
            if show_result(str(path), opts, pure=False) != show_result(str(path), opts,
                                                                        pure=True):
                found.append(f"{path.name} {options}")
    assert not found


@needs_extension
def test_indonesian_notes_are_written_by_the_engine() -> None:
    """The notes come in the reader's language, from the engine's words."""
    path = GOLDEN / "diagram-refused.pcap"
    out = same(path, {"lang": "id"})
    english = same(path, {})
    assert out != english and "Flags [R.]" in out


# -- captures made by hypothesis, with the options tcpdump names -------------------------

TCPDUMP_OPTIONS = [
    b"", b"\x01\x01\x08\x0a" + bytes(range(8)), b"\x02\x04\x05\xb4\x04\x02\x03\x03\x07\x00",
    b"\x05\x12" + struct.pack("!IIII", 1000, 1010, 1020, 1030) + b"\x01\x01",  # 2 SACK blocks
    b"\x05\x0a" + struct.pack("!II", 2**32 - 1, 5) + b"\x01\x01",
    b"\x22\x02\x01\x01", b"\x22\x0a" + bytes(range(8)),  # TFO cookie request, cookie
    b"\xfe\x04\xf9\x89", b"\xfe\x06\xf9\x89\xab\xcd", b"\xfd\x04\xac\xc0",  # exp-tfo, AccECN
    b"\xfd\x04\x12\x34", b"\x14\x04\x0a\x01", b"\x14\x03\x0a\x01",  # exp, scps, bad scps
    b"\x1e\x0c\x00\x81" + bytes(range(8)), b"\x1e\x14\x01\x00" + bytes(range(16)),  # capable
    b"\x1e\x0c\x10\x05" + bytes(range(8)), b"\x1e\x10\x11\x05" + bytes(range(12)),  # join
    b"\x1e\x18\x10\x00" + bytes(range(20)) + b"\x01\x01\x01\x01",
    b"\x1e\x14\x20\x1f" + bytes(range(16)), b"\x1e\x08\x20\x05" + bytes(4),  # dss
    b"\x1e\x10\x20\x0d" + bytes(range(12)), b"\x1e\x04\x20\x01",  # dss: bad (too short)
    b"\x1e\x0a\x30\x07\x0a\x00\x00\x02\x1f\x90", b"\x1e\x08\x34\x07\x0a\x00\x00\x02",
    b"\x1e\x12\x31\x02" + bytes(range(14)),  # add-addr v4 + port + hmac
    b"\x1e\x14\x30\x03" + bytes(12) + b"\xff\xff\x01\x02" + b"\x01\x01",  # add-addr v6
    b"\x1e\x1c\x36\x03" + bytes(range(1, 25)), b"\x1e\x1e\x30\x03" + bytes(26),  # idem
    b"\x1e\x05\x40\x01\x02\x01\x01\x01", b"\x1e\x04\x51\x07", b"\x1e\x03\x50\x01",  # rm, prio
    b"\x1e\x0c\x60\x00" + bytes(range(8)), b"\x1e\x0c\x70\x00" + bytes(range(8)),  # fail
    b"\x1e\x04\x80\x00", b"\x1e\x04\xf0\x00", b"\x1e\x05\x60\x00\x00\x01\x01\x01",
    b"\x1e\x02\x01\x01", b"\x63\x04\xaa\xbb", b"\x63\x02\x01\x01", b"\x00\x00\x00\x00",
    b"\x01\x00\x02\x04\x05\xb4\x01\x01",  # EOL, then what tcpdump does not read
]
FLAGS = [0x002, 0x012, 0x010, 0x018, 0x011, 0x004, 0x014, 0x0C2, 0x030, 0x1D0, 0x000, 0x039]
FLOWS = [(1, 2, 40000, 80), (2, 1, 80, 40000), (1, 2, 40000, 80), (2, 1, 80, 40000),
         (10, 9, 5000, 80), (9, 10, 80, 5000), (1, 1, 5000, 5000)]


def addr(v6: bool, n: int) -> bytes:
    return bytes(15) + bytes([n]) if v6 else bytes([10, 0, 0, n])


def ip_packet(v6: bool, src: int, dst: int, proto: int, body: bytes) -> bytes:
    """_ip with addresses whose text orders differently from their bytes (10.0.0.9 and
    10.0.0.10) so that tcpdump's ordering of a connection's two ends by text is tested."""
    if v6:
        return (struct.pack("!IHBB", 0x60000000, len(body), proto, 64) + addr(True, src)
                + addr(True, dst) + body)
    return (struct.pack("!BBHHHBBH", 0x45, 0, 20 + len(body), 1, 0, 64, proto, 0)
            + addr(False, src) + addr(False, dst) + body)


@st.composite
def tcpdump_captures(draw: st.DrawFn) -> bytes:
    """A nanosecond pcap (or a microsecond one) of TCP segments with tcpdump's options,
    UDP datagrams and ICMP messages, times anywhere in the 32-bit seconds."""
    linktype = draw(st.sampled_from(sorted(LINK_HEADS)))
    v6 = draw(st.booleans())
    nano = draw(st.booleans())
    ts = draw(st.integers(0, 2**32 - 10**6)) * 10**9 + draw(st.integers(0, 10**9 - 1))
    records = []
    for _ in range(draw(st.integers(1, 30))):
        ts += draw(st.sampled_from([0, 1, 999, 1000, 1_000_001, 999_999_999, 3600 * 10**9,
                                    86_399 * 10**9]))
        src, dst, sport, dport = draw(st.sampled_from(FLOWS))
        kind = draw(st.integers(0, 11))
        if kind == 0:
            body = struct.pack("!HHHH", sport, dport, 8 + 3, 0) + b"abc"
            frame = ip_packet(v6, src, dst, 17, body)
        elif kind == 1:  # an echo request, or a port unreachable quoting a datagram
            icmp = draw(st.sampled_from([b"\x08\x00\x00\x00\x00\x01\x00\x02",
                                         b"\x03\x03\x00\x00\x00\x00\x00\x00"
                                         + _ip(False, 2, 1, 17, struct.pack("!HHHH", 80, 53, 8, 0))]))
            if v6:
                icmp = bytes([128 if icmp[0] == 8 else 1, 0 if icmp[0] == 8 else 4]) + icmp[2:]
            frame = ip_packet(v6, src, dst, 58 if v6 else 1, icmp)
        else:
            options = draw(st.sampled_from(TCPDUMP_OPTIONS))
            options += bytes(-len(options) % 4)
            flags = draw(st.sampled_from(FLAGS))
            body = _tcp(sport, dport, draw(st.sampled_from([0, 1000, 2**32 - 1, 123456789])),
                        draw(st.sampled_from([0, 1, 1001, 2**32 - 1, 5001])), flags,
                        draw(st.sampled_from([0, 512, 65535])), options,
                        draw(st.sampled_from([b"", b"x", b"hello\n"])))
            if flags & 0x20:  # an urgent pointer
                body = body[:18] + b"\x00\x07" + body[20:]
            frame = ip_packet(v6, src, dst, 6, body)
        frame = LINK_HEADS[linktype](v6) + frame
        cut = draw(st.sampled_from([None] * 6 + [30, 50, 70]))
        records.append((ts, frame[:cut] if cut else frame, len(frame)))
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    return struct.pack("<IHHiIII", magic, 2, 4, 0, 0, 65535, linktype) + b"".join(
        struct.pack("<IIII", t // 10**9, t % 10**9 if nano else t // 1000 % 10**6, len(f), w) + f
        for t, f, w in records)


@needs_extension
@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=tcpdump_captures(), tz=st.sampled_from(ZONES),
       options=st.sampled_from([{}, {"hex_": True}, {"count": 3}, {"port": 80},
                                {"lang": "id"}]))
def test_hypothesis_captures(data: bytes, tz: str, options: dict[str, object],
                             tmp_path: Path, zone: None) -> None:
    use_zone(tz)
    path = tmp_path / "input.pcap"
    path.write_bytes(data)
    same(path, options)


@needs_extension
@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seconds=st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=8),
       tz=st.sampled_from(ZONES))
def test_time_of_day_in_any_zone(seconds: list[int], tz: str, tmp_path: Path,
                                 zone: None) -> None:
    """Each second's local time of day (summer time's changes among them), both paths,
    and as time.localtime gives it."""
    use_zone(tz)
    frame = LINK_HEADS[1](False) + _ip(False, 1, 2, 17, struct.pack("!HHHH", 40000, 53, 8, 0))
    path = tmp_path / "t.pcap"
    path.write_bytes(struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 65535, 1) + b"".join(
        struct.pack("<IIII", s, 123456789, len(frame), len(frame)) + frame for s in seconds))
    lines = same(path, {}).splitlines()
    for s, line in zip(seconds, lines, strict=True):
        t = time.localtime(s)
        assert line.startswith(f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}.123456 IP ")


def pcapng_seconds(seconds: list[int]) -> bytes:
    """A pcapng file whose interface counts time in seconds (if_tsresol 0), so that a
    64-bit timestamp reaches past what the C library converts."""
    def block(btype: int, body: bytes) -> bytes:
        body += bytes(-len(body) % 4)
        return struct.pack("<II", btype, 12 + len(body)) + body + struct.pack("<I", 12 + len(body))

    frame = LINK_HEADS[1](False) + _ip(False, 1, 2, 17, struct.pack("!HHHH", 40000, 53, 8, 0))
    out = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    out += block(1, struct.pack("<HHI", 1, 0, 0) + struct.pack("<HHB", 9, 1, 0) + bytes(3)
                 + struct.pack("<HH", 0, 0))
    for s in seconds:
        out += block(6, struct.pack("<IIIII", 0, s >> 32, s & 0xFFFFFFFF, len(frame),
                                    len(frame)) + frame)
    return out


@needs_extension
@pytest.mark.parametrize("tz", ["UTC", "Europe/Berlin"])
def test_times_the_c_library_cannot_convert(tz: str, tmp_path: Path, zone: None) -> None:
    """Far-out 64-bit times: where localtime fails, the time of day in UTC, on both."""
    use_zone(tz)
    path = tmp_path / "far.pcapng"
    seconds = [1, 2**40, 2**56 + 5, 2**63 + 7, 2**64 - 1]
    path.write_bytes(pcapng_seconds(seconds))
    lines = same(path, {}).splitlines()
    assert len(lines) == len(seconds)
    day = (2**64 - 1) % 86400
    assert lines[-1].startswith(f"{day // 3600:02d}:{day // 60 % 60:02d}:{day % 60:02d}.000000 ")
