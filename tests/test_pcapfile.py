"""The capture file reader (sockcap.pcapfile.reader) against real files, tshark and itself.

- Every file of ../shared/corpus/{public,adversarial}: only sockcap's DecodeError family
  escapes, and the number of frames equals tshark's (the ``.tshark.tsv`` beside it). Where
  tshark stopped with exit code 2, sockcap raises or warns; where tshark was clean, so is
  sockcap, except for the intended differences in ``COUNT_DIFFERENCES``.
- Per frame of the public corpus: time (to the nanosecond), wire length and captured
  length agree with ``tshark -T fields -e frame.time_epoch -e frame.len -e frame.cap_len``.
- Properties: pcap built here (both byte orders, micro/nano, FCS bits) and pcapng built
  here (both byte orders, several sections, interfaces, resolutions, block kinds) read back
  as built; every cut of a valid file gives a prefix of its frames, then a clean end at a
  record boundary or a CaptureFileError/NotACaptureError, nothing else.
- Pipes give the same frames, and a frame is delivered while the writer still holds the
  pipe open; a 1M-packet file streams in bounded memory.

Intended differences from tshark (COUNT_DIFFERENCES, TIME_DIFFERENCES):

- ``pcapng-unknown-blocks.pcapng``: tshark shows the custom block as an extra frame;
  sockcap skips it (libpcap does too) and counts it in ``skipped``.
- ``caplen-300000.pcap``: record 2 claims 300000 bytes, over libpcap's 262144 limit;
  sockcap stops there as libpcap does. tshark falls back to an old pcap variant and reads
  12501 phantom frames.
- ``caplen-ffffffff.pcap``: tshark shows the 4 GiB record as a malformed frame 2 before its
  error; sockcap stops before it (no frame is made from a length it cannot trust).
- ``bad-version.pcap``: version 3.0; libpcap refuses it ("unsupported pcap savefile
  version"), tshark reads it. sockcap follows libpcap: NotACaptureError.
- ``zero-byte.pcap``: tshark calls it an empty ERF file; sockcap says it is empty.
- ``timestamp_invalid_{micro,nano}.pcap`` frame 3: the fraction field is 2147483648,
  far out of range. sockcap carries it into the seconds (with a warning); tshark prints a
  wrapped value that is no time at all. Frame 2 (fraction exactly one second) agrees.
"""

from __future__ import annotations

import io
import os
import struct
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path
from typing import IO, NamedTuple

import pytest
from conftest import CORPUS, needs_tshark, never_engine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sockcap.decode.records import NO_TIMESTAMP, RawFrame
from sockcap.errors import CaptureFileError, DecodeError, NotACaptureError
from sockcap.pcapfile import open_capture, write_pcap, write_pcap_stream
from sockcap.pcapfile.reader import CaptureReader

pytestmark = never_engine()

NS = 1_000_000_000

COUNT_DIFFERENCES = {  # file -> (sockcap's count, the error class it ends with or None)
    "pcapng-unknown-blocks.pcapng": (3, None),
    "caplen-300000.pcap": (1, CaptureFileError),
    "caplen-ffffffff.pcap": (1, CaptureFileError),
    "bad-version.pcap": (0, NotACaptureError),
    "zero-byte.pcap": (0, NotACaptureError),
}
TIME_DIFFERENCES = {("timestamp_invalid_micro.pcap", 3), ("timestamp_invalid_nano.pcap", 3)}


class Result(NamedTuple):
    frames: list[RawFrame]
    error: DecodeError | None
    reader: CaptureReader | None


def read_stream(stream: IO[bytes]) -> Result:
    """Every frame of a stream and the DecodeError it ended with, if any."""
    frames: list[RawFrame] = []
    reader = None
    try:
        reader = open_capture(stream)
        frames.extend(reader)
    except DecodeError as exc:
        return Result(frames, exc, reader)
    return Result(frames, None, reader)


def read_bytes(data: bytes) -> Result:
    return read_stream(io.BytesIO(data))


def read_path(path: Path) -> Result:
    with path.open("rb") as f:
        return read_stream(f)


# -- the corpus ------------------------------------------------------------------------


def corpus_files(*sets: str) -> list[Path]:
    folders = [CORPUS / s for s in sets if (CORPUS / s).is_dir()]
    return sorted(p for d in folders for p in d.iterdir() if p.suffix in (".pcap", ".pcapng"))


def corpus_params(*sets: str) -> list[object]:
    files = corpus_files(*sets)
    if files:
        return [pytest.param(p, id=p.name) for p in files]
    return [pytest.param(None, marks=pytest.mark.skip(reason=f"no corpus at {CORPUS}"))]


def tshark_exit_code(path: Path) -> int:
    log = Path(f"{path}.tools.log").read_text()
    return 2 if "tshark_rc=2" in log else 0


@pytest.mark.parametrize("path", corpus_params("public", "adversarial"))
def test_corpus_file_count_matches_tshark(path: Path) -> None:
    result = read_path(path)  # anything but a DecodeError fails the test here
    tshark_count = len(Path(f"{path}.tshark.tsv").read_text().splitlines())
    if path.name in COUNT_DIFFERENCES:
        count, error = COUNT_DIFFERENCES[path.name]
        assert len(result.frames) == count
        assert type(result.error) is error if error else result.error is None
        return
    assert len(result.frames) == tshark_count
    if tshark_exit_code(path) == 2:  # damage: sockcap must say so, by error or warning
        assert result.error is not None or (result.reader and result.reader.warnings)
    else:
        assert result.error is None


@pytest.mark.parametrize("path", corpus_params("public", "adversarial"))
def test_corpus_messages_are_one_line(path: Path) -> None:
    result = read_path(path)
    lines = ([str(result.error)] if result.error else []) + (
        result.reader.warnings if result.reader else [])
    for line in lines:
        assert "\n" not in line and line[:1].islower()


def tshark_time_ns(text: str) -> int:
    """tshark's frame.time_epoch as nanoseconds ("S.F"; F may have more than 9 digits)."""
    sign = -1 if text.startswith("-") else 1
    sec, _, frac = text.lstrip("-").partition(".")
    frac_ns = int(frac.ljust(9, "0")) if len(frac) <= 9 else int(frac)
    return sign * (int(sec) * NS + frac_ns)


@needs_tshark
@pytest.mark.parametrize("path", corpus_params("public"))
def test_public_corpus_frames_match_tshark(path: Path) -> None:
    out = subprocess.run(
        ["tshark", "-r", str(path), "-T", "fields", "-e", "frame.time_epoch",
         "-e", "frame.len", "-e", "frame.cap_len"],
        capture_output=True, text=True, timeout=120, check=True).stdout
    rows = [line.split("\t") for line in out.splitlines()]
    frames = read_path(path).frames
    assert len(frames) == len(rows)
    for number, (frame, (epoch, wirelen, caplen)) in enumerate(zip(frames, rows, strict=True), 1):
        assert (frame.wirelen, len(frame.data)) == (int(wirelen), int(caplen)), number
        if (path.name, number) not in TIME_DIFFERENCES:
            assert frame.ts_ns == tshark_time_ns(epoch), number


def test_corpus_caplen_over_snaplen_is_kept_with_a_warning() -> None:
    path = CORPUS / "adversarial" / "caplen-gt-snaplen.pcap"
    if not path.exists():
        pytest.skip(f"no corpus at {CORPUS}")
    result = read_path(path)
    assert [len(f.data) for f in result.frames] == [74, 74]
    assert result.reader is not None
    assert result.reader.warnings[0] == "packet 1: record length 74 over snap length 40, kept"


# -- pcap built here -------------------------------------------------------------------

MAGIC = {(False, "<"): b"\xd4\xc3\xb2\xa1", (False, ">"): b"\xa1\xb2\xc3\xd4",
         (True, "<"): b"\x4d\x3c\xb2\xa1", (True, ">"): b"\xa1\xb2\x3c\x4d"}


def build_pcap(frames: list[RawFrame], order: str = "<", nano: bool = False,
               ltfield: int = 1, snaplen: int = 65535) -> bytes:
    """A pcap file written independently of sockcap's writer."""
    unit = 1 if nano else 1000
    out = [MAGIC[nano, order] + struct.pack(order + "HHiIII", 2, 4, 0, 0, snaplen, ltfield)]
    for f in frames:
        sec, frac = divmod(f.ts_ns // unit, NS // unit)
        out.append(struct.pack(order + "IIII", sec, frac, len(f.data), f.wirelen) + f.data)
    return b"".join(out)


def frame_strategy(linktype: int = 1, nano: bool = True) -> st.SearchStrategy[RawFrame]:
    step = 1 if nano else 1000
    return st.builds(
        lambda ts, data, extra: RawFrame(ts * step, linktype, data, len(data) + extra, 0),
        st.integers(0, (2**32 - 1) * (NS // step)), st.binary(max_size=200),
        st.integers(0, 2000))


@settings(max_examples=60)
@given(st.sampled_from("<>"), st.booleans(), st.data())
def test_pcap_both_orders_and_resolutions_read_back(order: str, nano: bool,
                                                    data: st.DataObject) -> None:
    frames = data.draw(st.lists(frame_strategy(1, nano), max_size=20))
    result = read_bytes(build_pcap(frames, order, nano, ltfield=0x30000001))
    assert result.error is None and result.reader is not None
    assert result.frames == frames
    assert result.reader.linktypes == {0: 1} and result.reader.packets == len(frames)


@settings(max_examples=60)
@given(st.lists(frame_strategy(nano=False), max_size=20))
def test_writer_round_trip(frames: list[RawFrame]) -> None:
    out = io.BytesIO()
    assert write_pcap_stream(out, frames, 1) == len(frames)
    result = read_bytes(out.getvalue())
    assert result.error is None
    assert result.frames == frames


def test_record_length_over_the_limit_names_the_packet() -> None:
    frames = [RawFrame(0, 1, b"x" * 60, 60)] * 3
    data = bytearray(build_pcap(frames))
    struct.pack_into("<I", data, 24 + 2 * 76 + 8, 262145)
    result = read_bytes(bytes(data))
    assert len(result.frames) == 2 and isinstance(result.error, CaptureFileError)
    assert str(result.error) == ("damaged file after packet 2: record 3 at offset 176 claims"
                                 " 262145 bytes, over the 262144-byte limit")
    assert (result.error.packets_read, result.error.offset) == (2, 176)


def test_truncated_record_says_how_much_is_missing() -> None:
    data = build_pcap([RawFrame(0, 1, b"x" * 60, 60)] * 42)[:-37]
    result = read_bytes(data)
    assert len(result.frames) == 41
    assert str(result.error) == ("file cut short after packet 41: record body truncated"
                                 " (needs 60 bytes, 23 left)")


@pytest.mark.parametrize(("data", "message"), [
    (b"", "empty file: not a capture file"),
    (b"\xd4\xc3", "not a capture file: only 2 bytes long"),
    (b"GET / HTTP/1.0\r\n\r\n", "not a capture file: unknown magic 0x47455420"),
    (b"\xd4\xc3\xb2\xa1" + struct.pack("<HHiIII", 1, 0, 0, 0, 0, 1),
     "not a capture file: pcap version 1.0 (only 2.x is read)"),
    (b"\n\r\r\n" + struct.pack("<II", 28, 0x12345678) + b"\x00" * 16,
     "not a capture file: pcapng section header without its byte-order magic"),
], ids=["empty", "short", "text", "pcap-1.0", "pcapng-bad-bom"])
def test_not_a_capture(data: bytes, message: str) -> None:
    with pytest.raises(NotACaptureError) as info:
        open_capture(io.BytesIO(data))
    assert str(info.value) == message


# -- pcapng built here -----------------------------------------------------------------


class Iface(NamedTuple):
    linktype: int
    snaplen: int
    tsresol: int | None  # None: the default, microseconds
    tsoffset: int


class Pkt(NamedTuple):
    kind: str  # "epb", "opb" or "spb"
    iface: int
    ts: int  # in the interface's units
    data: bytes
    wirelen: int


class Section(NamedTuple):
    order: str
    ifaces: list[Iface]
    packets: list[Pkt]
    extra: list[int]  # types of blocks without packets put before the packets (12 zero bytes)


def ng_block(order: str, btype: int, body: bytes) -> bytes:
    body += b"\x00" * (-len(body) % 4)
    length = len(body) + 12
    return struct.pack(order + "II", btype, length) + body + struct.pack(order + "I", length)


def ng_option(order: str, code: int, value: bytes) -> bytes:
    return struct.pack(order + "HH", code, len(value)) + value + b"\x00" * (-len(value) % 4)


def ng_idb(order: str, iface: Iface) -> bytes:
    opts = b""
    if iface.tsresol is not None:
        opts += ng_option(order, 9, bytes([iface.tsresol]))
    if iface.tsoffset:
        opts += ng_option(order, 14, struct.pack(order + "q", iface.tsoffset))
    opts += ng_option(order, 0, b"") if opts else b""
    return ng_block(order, 1, struct.pack(order + "HHI", iface.linktype, 0, iface.snaplen) + opts)


def ng_packet(order: str, pkt: Pkt) -> bytes:
    high, low = pkt.ts >> 32, pkt.ts & 0xFFFFFFFF
    if pkt.kind == "spb":
        return ng_block(order, 3, struct.pack(order + "I", pkt.wirelen) + pkt.data)
    if pkt.kind == "opb":
        head = struct.pack(order + "HHIIII", pkt.iface, 0, high, low, len(pkt.data), pkt.wirelen)
        return ng_block(order, 2, head + pkt.data)
    head = struct.pack(order + "IIIII", pkt.iface, high, low, len(pkt.data), pkt.wirelen)
    return ng_block(order, 6, head + pkt.data)


def ng_blocks(sections: list[Section]) -> list[tuple[bytes, bool]]:
    """The blocks of a pcapng file, each with whether it holds a packet."""
    out = []
    for s in sections:
        shb = struct.pack(s.order + "IHHq", 0x1A2B3C4D, 1, 0, -1)
        out.append((ng_block(s.order, 0x0A0D0D0A, shb), False))
        out += [(ng_idb(s.order, i), False) for i in s.ifaces]
        out += [(ng_block(s.order, t, bytes(12)), False) for t in s.extra]
        out += [(ng_packet(s.order, p), True) for p in s.packets]
    return out


def build_pcapng(sections: list[Section]) -> bytes:
    return b"".join(block for block, _ in ng_blocks(sections))


def expected_frames(sections: list[Section]) -> list[RawFrame]:
    """What a reader must return, computed with exact fractions."""
    frames = []
    for s in sections:
        for p in s.packets:
            i = s.ifaces[p.iface]
            if p.kind == "spb":  # no timestamp; the data is min(wirelen, snaplen) long
                frames.append(RawFrame(NO_TIMESTAMP, i.linktype, p.data, p.wirelen, 0))
                continue
            resol = 6 if i.tsresol is None else i.tsresol
            unit = Fraction(1, 2 ** (resol & 0x7F)) if resol & 0x80 else Fraction(1, 10**resol)
            ts_ns = int(p.ts * unit * NS // 1) + i.tsoffset * NS
            frames.append(RawFrame(ts_ns, i.linktype, p.data, p.wirelen, p.iface))
    return frames


ifaces_st = st.lists(st.builds(
    Iface, st.sampled_from([0, 1, 101, 113, 228, 276]), st.sampled_from([0, 64, 65535]),
    st.sampled_from([None, 3, 6, 9, 12, 0x80 | 10, 0x80 | 30]), st.integers(-10**6, 10**9)),
    min_size=1, max_size=4)


def as_spb(pkt: Pkt, snaplen: int) -> Pkt:
    """A valid simple packet block: interface 0, data cut only by the snap length."""
    return pkt._replace(iface=0, wirelen=len(pkt.data), data=pkt.data[: snaplen or None])


@st.composite
def section_st(draw: st.DrawFn) -> Section:
    ifaces = draw(ifaces_st)
    pkt = st.builds(Pkt, st.sampled_from(["epb", "opb", "spb"]),
                    st.integers(0, len(ifaces) - 1), st.integers(0, 2**64 - 1),
                    st.binary(max_size=80), st.integers(0, 100))
    packets = [as_spb(p, ifaces[0].snaplen) if p.kind == "spb" else p
               for p in draw(st.lists(pkt, max_size=8))]
    extra = draw(st.lists(st.sampled_from([4, 5, 0xBAD, 0x40000BAD, 0xBEEF, 0x80001234]),
                          max_size=3))
    return Section(draw(st.sampled_from("<>")), ifaces, packets, extra)


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(section_st(), min_size=1, max_size=3))
def test_pcapng_reads_back(sections: list[Section]) -> None:
    result = read_bytes(build_pcapng(sections))
    assert result.error is None and result.reader is not None
    assert result.frames == expected_frames(sections)
    last = sections[-1]
    assert result.reader.linktypes == {n: i.linktype for n, i in enumerate(last.ifaces)}
    assert sum(result.reader.skipped.values()) >= sum(len(s.extra) for s in sections)


@needs_tshark
def test_pcapng_builder_agrees_with_tshark(tmp_path: Path) -> None:
    sections = [
        Section("<", [Iface(1, 0, 9, 0), Iface(101, 65535, None, 0)],
                [Pkt("epb", 0, 1_700_000_000_123_456_789, b"\x00" * 60, 60),
                 Pkt("epb", 1, 1_700_000_001_654_321, b"\x45" + b"\x00" * 39, 40)], [4]),
        Section(">", [Iface(1, 0, 3, 100)],
                [Pkt("opb", 0, 1_700_000_002_500, b"\x00" * 60, 64)], []),
    ]
    path = tmp_path / "built.pcapng"
    path.write_bytes(build_pcapng(sections))
    out = subprocess.run(["tshark", "-r", str(path), "-T", "fields", "-e", "frame.time_epoch",
                          "-e", "frame.len", "-e", "frame.cap_len"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    frames = read_path(path).frames
    assert frames == expected_frames(sections)
    assert [(tshark_time_ns(t), int(w), int(c)) for t, w, c in
            (line.split("\t") for line in out.splitlines())] == [
        (f.ts_ns, f.wirelen, len(f.data)) for f in frames]


def test_pcapng_packet_on_undefined_interface_is_skipped_with_a_warning() -> None:
    sections = [Section("<", [Iface(1, 0, None, 0)],
                        [Pkt("epb", 0, 1, b"a", 1), Pkt("epb", 3, 2, b"b", 1),
                         Pkt("epb", 0, 3, b"c", 1)], [])]
    result = read_bytes(build_pcapng(sections))
    assert [f.data for f in result.frames] == [b"a", b"c"] and result.reader is not None
    assert result.reader.skipped == {"packet on undefined interface": 1}


@pytest.mark.parametrize(("blen", "message"), [
    (10, "has length 10 (under 12 or not a multiple of 4)"),
    (30, "has length 30 (under 12 or not a multiple of 4)"),
    (0x7FFFFFF0, "claims 2147483632 bytes, over the 16 MiB limit"),
])
def test_pcapng_bad_block_length(blen: int, message: str) -> None:
    data = bytearray(build_pcapng([Section(">", [Iface(1, 0, None, 0)],
                                           [Pkt("epb", 0, 1, b"a", 1)] * 2, [])]))
    second = len(data) - 36
    struct.pack_into(">I", data, second + 4, blen)
    result = read_bytes(bytes(data))
    assert len(result.frames) == 1
    assert str(result.error) == f"damaged file after packet 1: block at offset {second} {message}"


def test_pcapng_trailer_mismatch() -> None:
    data = bytearray(build_pcapng([Section("<", [Iface(1, 0, None, 0)],
                                           [Pkt("epb", 0, 1, b"a", 1)], [])]))
    struct.pack_into("<I", data, len(data) - 4, 40)
    result = read_bytes(bytes(data))
    assert str(result.error).endswith("has length 36 at its start and 40 at its end")


# -- every cut of a valid file ---------------------------------------------------------


def boundaries_pcap(frames: list[RawFrame]) -> dict[int, int]:
    """File size -> frames wholly in it, for each clean cut of build_pcap(frames)."""
    ends, size = {24: 0}, 24
    for n, f in enumerate(frames, 1):
        size += 16 + len(f.data)
        ends[size] = n
    return ends


def check_cut(data: bytes, cut: int, frames: list[RawFrame], clean: dict[int, int]) -> None:
    result = read_bytes(data[:cut])
    assert result.frames == frames[: len(result.frames)]
    if result.error is None:
        assert clean.get(cut) == len(result.frames), cut
    else:
        assert isinstance(result.error, (CaptureFileError, NotACaptureError)), cut


def test_every_cut_of_a_small_pcap() -> None:
    frames = [RawFrame(n * 1000, 1, bytes([n]) * (10 + n), 20 + n) for n in range(5)]
    data = build_pcap(frames, ">", nano=True)
    for cut in range(len(data) + 1):
        check_cut(data, cut, frames, boundaries_pcap(frames))


def test_every_cut_of_a_small_pcapng() -> None:
    sections = [Section("<", [Iface(1, 0, 9, 0), Iface(0, 0, None, 0)],
                        [Pkt("epb", 0, 5, b"abc", 3), Pkt("spb", 0, 0, b"defgh", 5),
                         Pkt("opb", 1, 7, b"ij", 9)], [0xBAD]),
                Section(">", [Iface(101, 0, None, 0)], [Pkt("epb", 0, 9, b"k", 1)], [])]
    data, frames = build_pcapng(sections), expected_frames(sections)
    clean, pos, n = {}, 0, 0
    for block, is_packet in ng_blocks(sections):
        pos, n = pos + len(block), n + is_packet
        clean[pos] = n
    for cut in range(len(data) + 1):
        check_cut(data, cut, frames, clean)


@settings(max_examples=100)
@given(st.lists(frame_strategy(), min_size=1, max_size=6), st.sampled_from("<>"),
       st.data())
def test_any_cut_of_any_pcap(frames: list[RawFrame], order: str, data: st.DataObject) -> None:
    blob = build_pcap(frames, order, nano=True)
    cut = data.draw(st.integers(0, len(blob)))
    check_cut(blob, cut, frames, boundaries_pcap(frames))


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(section_st(), min_size=1, max_size=2), st.data())
def test_any_cut_of_any_pcapng(sections: list[Section], data: st.DataObject) -> None:
    clean, pos, n = {}, 0, 0
    for block, is_packet in ng_blocks(sections):
        pos, n = pos + len(block), n + is_packet
        clean[pos] = n
    blob = build_pcapng(sections)
    check_cut(blob, data.draw(st.integers(0, len(blob))), expected_frames(sections), clean)


# -- pipes and memory --------------------------------------------------------------------


def sample_frames(count: int) -> list[RawFrame]:
    return [RawFrame(1_700_000_000 * NS + n * 1000, 1, bytes([n % 256]) * (40 + n % 1500),
                     40 + n % 1500) for n in range(count)]


def test_pipe_through_cat_gives_the_same_frames(tmp_path: Path) -> None:
    path = tmp_path / "x.pcap"
    write_pcap(path, sample_frames(3000), 1)
    with subprocess.Popen(["cat", str(path)], stdout=subprocess.PIPE) as cat:
        assert cat.stdout is not None
        piped = read_stream(cat.stdout)
    assert piped.error is None and piped.frames == read_path(path).frames


def feed(fd: int, data: bytes, piece: int) -> None:
    with os.fdopen(fd, "wb", buffering=0) as out:
        for start in range(0, len(data), piece):
            out.write(data[start : start + piece])


@pytest.mark.parametrize("piece", [1, 7, 4096])
def test_unbuffered_pipe_in_small_pieces(piece: int) -> None:
    frames = sample_frames(40 if piece == 1 else 400)
    sections = [Section("<", [Iface(1, 0, None, 0)],
                        [Pkt("epb", 0, f.ts_ns // 1000, f.data, f.wirelen) for f in frames],
                        [])]
    for blob in (build_pcap(frames), build_pcapng(sections)):
        read_fd, write_fd = os.pipe()
        feeder = threading.Thread(target=feed, args=(write_fd, blob, piece))
        feeder.start()
        with os.fdopen(read_fd, "rb", buffering=0) as stream:
            result = read_stream(stream)
        feeder.join()
        assert result.error is None and result.frames == frames


def test_frame_arrives_while_the_pipe_is_still_open() -> None:
    frame = RawFrame(5000, 1, b"\x01" * 60, 60)
    read_fd, write_fd = os.pipe()
    with os.fdopen(write_fd, "wb") as out, os.fdopen(read_fd, "rb") as stream:
        write_pcap_stream(out, [frame], 1)
        got: list[RawFrame] = []
        reader = threading.Thread(target=lambda: got.append(next(iter(open_capture(stream)))))
        reader.start()
        reader.join(timeout=10)
        assert got == [frame]  # the writer end is still open: no EOF was needed


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    pytest.skip("no /proc/self/status")


def million_frames() -> Iterator[RawFrame]:
    template = bytes(range(256)) * 6
    for n in range(1_000_000):
        size = (54, 66, 74, 1514, 120)[n % 5]
        yield RawFrame(1_700_000_000 * NS + n * 1000, 1, template[:size], size)


@pytest.mark.slow
def test_million_packets_stream_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "million.pcap"
    assert write_pcap(path, million_frames(), 1) == 1_000_000
    with path.open("rb") as f:
        reader = open_capture(f)
        start, peak, total = rss_bytes(), 0, 0
        for n, frame in enumerate(reader):
            total += len(frame.data)
            if n % 20000 == 0:
                peak = max(peak, rss_bytes())
    assert reader.packets == 1_000_000 and total == 200 * (54 + 66 + 74 + 1514 + 120) * 1000
    assert peak - start < 30 * 1024 * 1024


# -- prefilter ----------------------------------------------------------------------------


@contextmanager
def small_reads(size: int) -> Iterator[None]:
    """The reader's buffer refilled every ``size`` bytes: records and needles cross it."""
    from sockcap.pcapfile import source

    saved, source.CHUNK = source.CHUNK, size
    try:
        yield
    finally:
        source.CHUNK = saved


def numbered(data: bytes, needles: list[bytes], after: int) -> list[tuple[int, RawFrame]]:
    """(frame number, frame) of each frame read, the prefilter set after ``after`` frames."""
    reader = open_capture(io.BytesIO(data))
    if after == 0:
        reader.prefilter(needles)
    out = []
    for frame in reader:
        out.append((reader.packets, frame))
        if reader.packets == after and after:
            reader.prefilter(needles)
    return out


def check_prefilter(data: bytes, frames: list[RawFrame], needles: list[bytes],
                    after: int) -> None:
    got = numbered(data, needles, after)
    everything = list(enumerate(frames, 1))
    assert set(got) <= set(everything)  # right numbers, right bytes
    must = [(n, f) for n, f in everything
            if n <= after or any(needle in f.data for needle in needles)]
    assert [x for x in got if x in must] == must  # nothing it had to give is missing


def varied(data: bytes) -> bytes:
    """Bytes that rarely repeat (hypothesis likes zeros): a needle is found where cut."""
    return bytes((b + 97 * i) & 0xFF for i, b in enumerate(data))


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.builds(lambda ts, data, extra: RawFrame(ts * 1000, 1, varied(data),
                                                            len(data) + extra),
                          st.integers(0, 2**40), st.binary(min_size=8, max_size=150),
                          st.integers(0, 100)), max_size=30), st.data())
def test_prefilter_passes_every_frame_holding_a_needle(frames: list[RawFrame],
                                                      data: st.DataObject) -> None:
    pool = [f.data[i : i + 4] for f in frames for i in range(0, len(f.data), 5)]
    needles = data.draw(st.lists(st.sampled_from(pool) if pool else st.binary(min_size=1),
                                 min_size=1, max_size=3))
    after = data.draw(st.integers(0, len(frames)))
    sections = [Section("<", [Iface(1, 0, None, 0)],
                        [Pkt("epb", 0, f.ts_ns // 1000, f.data, f.wirelen) for f in frames],
                        [])]
    for chunk in (16, 33, 100, 1 << 20):
        with small_reads(chunk):
            check_prefilter(build_pcap(frames), frames, needles, after)
            check_prefilter(build_pcapng(sections), frames, needles, after)


def test_prefilter_skips_and_still_counts() -> None:
    frames = sample_frames(300)  # frame n is bytes([n % 256]) repeated
    for blob in (build_pcap(frames),):
        got = numbered(blob, [b"\x07\x07\x07"], 0)
        assert [n for n, _ in got] == [8, 264]  # frames 7 and 263 hold 0x07 bytes
        reader = open_capture(io.BytesIO(blob))
        reader.prefilter([b"\xff\xff\xff\xff"])
        assert list(reader) == [frames[255]] and reader.packets == 300
    with pytest.raises(ValueError):
        open_capture(io.BytesIO(build_pcap(frames))).prefilter([b""])
