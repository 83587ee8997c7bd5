"""The pcap writer (sockcap.pcapfile.writer) on real files, with tshark as the judge.

- Files are created 0600 (also when overwriting with force, and whatever the umask) and an
  existing file is never overwritten without force.
- tshark reads what was written: same count, exit 0, nothing on stderr.
- A writer killed with SIGKILL mid-stream leaves a file holding every record written but
  perhaps the last, which may be cut: Linux may return a short ``write()`` to a regular
  file when a fatal signal is pending, whatever the writer does. sockcap's promise is then
  tcpdump's and tshark's: every whole record is read, the cut one is named in one line
  (exit code 4, DAMAGED_FILE). The cut is planted to test that; the killed writer is only
  asked for that promise, whichever way the kill falls.
- Disk full (a file size limit) raises a one-line WriteError and leaves a valid file
  holding every packet counted as written.
"""

from __future__ import annotations

import io
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, needs_tshark, sockcap

from sockcap.decode.records import RawFrame
from sockcap.errors import CaptureFileError, WriteError
from sockcap.pcapfile import PcapWriter, open_capture, write_pcap, write_pcap_stream

NS = 1_000_000_000


def frames(count: int, linktype: int = 1) -> list[RawFrame]:
    return [RawFrame(1_700_000_000 * NS + n * 1_000_000 + 999, linktype,
                     bytes([n % 256]) * (60 + n % 100), 60 + n % 100) for n in range(count)]


def read_back(path: Path) -> list[RawFrame]:
    with path.open("rb") as f:
        return list(open_capture(f))


def tshark_read(path: Path) -> tuple[int, int, str]:
    """tshark's exit code, frame count and stderr (without its running-as-root notice)."""
    done = subprocess.run(["tshark", "-r", str(path)], capture_output=True, text=True,
                          timeout=60)
    stderr = "\n".join(line for line in done.stderr.splitlines()
                       if not line.startswith("Running as user"))
    return done.returncode, len(done.stdout.splitlines()), stderr


def test_written_frames_read_back_rounded_down_to_the_microsecond(tmp_path: Path) -> None:
    path = tmp_path / "x.pcap"
    assert write_pcap(path, frames(50), 1) == 50
    expected = [f._replace(ts_ns=f.ts_ns // 1000 * 1000) for f in frames(50)]
    assert read_back(path) == expected


@pytest.mark.parametrize("umask", [0o000, 0o022])
def test_file_mode_is_0600(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        with PcapWriter(tmp_path / "x.pcap", 1) as writer:
            writer.write(frames(1)[0])
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "x.pcap").stat().st_mode) == 0o600


def test_refuses_to_overwrite_without_force(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "captures").mkdir()
    (tmp_path / "captures" / "x.pcap").write_bytes(b"keep me")
    with pytest.raises(WriteError) as info:
        PcapWriter("captures/x.pcap", 1)
    assert str(info.value) == "captures/x.pcap exists; use --force to overwrite"
    assert (tmp_path / "captures" / "x.pcap").read_bytes() == b"keep me"


def test_force_overwrites_and_tightens_the_mode(tmp_path: Path) -> None:
    path = tmp_path / "x.pcap"
    path.write_bytes(b"old contents, longer than a pcap header")
    path.chmod(0o644)
    assert write_pcap(path, frames(3), 1, force=True) == 3
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(read_back(path)) == 3


@pytest.mark.skipif(os.geteuid() != 0, reason="making a device node needs root")
def test_writing_to_a_device_leaves_its_mode_alone(tmp_path: Path) -> None:
    """``-w /dev/null --force`` as root once made the system's /dev/null 0600: the mode is
    tightened on a regular file only. A null device of the test's own stands in for it."""
    null = tmp_path / "null"
    os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    null.chmod(0o666)
    assert write_pcap(null, frames(3), 1, force=True) == 3
    assert stat.S_IMODE(null.stat().st_mode) == 0o666


def test_missing_directory_is_a_one_line_write_error(tmp_path: Path) -> None:
    with pytest.raises(WriteError) as info:
        PcapWriter(tmp_path / "nowhere" / "x.pcap", 1)
    assert str(info.value) == f"cannot write {tmp_path}/nowhere/x.pcap: No such file or directory"


def test_wrong_link_type_and_closed_writer(tmp_path: Path) -> None:
    writer = PcapWriter(tmp_path / "x.pcap", 1)
    with pytest.raises(WriteError, match="frame of link type 0 in a pcap file of link type 1"):
        writer.write(frames(1, linktype=0)[0])
    writer.close()
    writer.close()
    with pytest.raises(WriteError, match="is closed"):
        writer.write(frames(1)[0])


def test_flush_every_holds_packets_until_the_batch_is_full(tmp_path: Path) -> None:
    path = tmp_path / "x.pcap"
    with PcapWriter(path, 1, flush_every=10) as writer:
        for frame in frames(9):
            writer.write(frame)
        assert path.stat().st_size == 24 and writer.count == 9
        writer.write(frames(10)[9])
        assert len(read_back(path)) == 10
    assert writer.count == 10


def test_each_packet_is_readable_as_soon_as_it_is_written(tmp_path: Path) -> None:
    path = tmp_path / "x.pcap"
    with PcapWriter(path, 1) as writer:
        for n, frame in enumerate(frames(5), 1):
            writer.write(frame)
            assert len(read_back(path)) == n


def test_stream_writer() -> None:
    out = io.BytesIO()
    assert write_pcap_stream(out, frames(4), 1) == 4
    assert len(list(open_capture(io.BytesIO(out.getvalue())))) == 4


@needs_tshark
def test_tshark_reads_the_written_file_cleanly(tmp_path: Path) -> None:
    path = tmp_path / "x.pcap"
    write_pcap(path, [*frames(300), RawFrame(0, 1, b"\x00" * 70000, 70000)], 1)
    assert tshark_read(path) == (0, 301, "")


KILLED_WRITER = """
import sys
from sockcap.decode.records import RawFrame
from sockcap.pcapfile import PcapWriter
with PcapWriter(sys.argv[1], 1) as writer:
    n = 0
    while True:
        writer.write(RawFrame(n * 1000, 1, bytes([n % 256]) * (60 + n % 1400), 60 + n % 1400))
        n += 1
"""


def read_until_cut(path: Path) -> tuple[list[RawFrame], CaptureFileError | None]:
    """The whole records of ``path`` and the error that ends them (None: the file is whole)."""
    got: list[RawFrame] = []
    with path.open("rb") as f:
        try:
            got.extend(open_capture(f))
        except CaptureFileError as e:
            return got, e
    return got, None


@needs_tshark
def test_writer_killed_mid_stream_keeps_every_record_but_the_last(tmp_path: Path) -> None:
    path = tmp_path / "killed.pcap"
    child = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(path)], cwd=ROOT)
    deadline = time.monotonic() + 60
    while (not path.exists() or path.stat().st_size < 200_000) and time.monotonic() < deadline:
        time.sleep(0.01)
    child.send_signal(signal.SIGKILL)
    child.wait()
    written, cut = read_until_cut(path)
    assert len(written) > 100
    assert [f.data for f in written] == [bytes([n % 256]) * (60 + n % 1400)
                                         for n in range(len(written))]
    code, count, stderr = tshark_read(path)
    assert count == len(written)
    if cut is None:
        assert (code, stderr) == (0, "")
    else:  # the last record was cut by the kill: named, with every record before it
        assert str(cut).startswith(f"file cut short after packet {len(written)}: record ")
        assert code == 2 and "cut short in the middle of a packet" in stderr


@needs_tshark
@pytest.mark.parametrize("cut_at", [1, 15, 16, 17, 100])
def test_a_cut_last_record_is_named_after_every_whole_one(tmp_path: Path, cut_at: int,
                                                           sockcap_path: dict[str, str | None]) -> None:
    """The file a SIGKILL can leave, planted: the last record cut ``cut_at`` bytes in
    (in its header, at the end of its header, in its data)."""
    path = tmp_path / "cut.pcap"
    write_pcap(path, frames(40), 1)
    whole = sockcap("show", str(path), env=sockcap_path).stdout.splitlines()
    last = path.stat().st_size - 16 - len(frames(40)[-1].data)
    os.truncate(path, last + cut_at)
    res = sockcap("show", str(path), env=sockcap_path)
    assert res.returncode == 4 and res.stdout.splitlines() == whole[:39]
    what, need, left = ("header", 16, cut_at) if cut_at < 16 else ("body", 99, cut_at - 16)
    assert res.stderr == (f"sockcap: file cut short after packet 39: record {what} truncated"
                          f" (needs {need} bytes, {left} left)\n")
    code, count, stderr = tshark_read(path)
    assert (code, count) == (2, 39) and "cut short in the middle of a packet" in stderr


DISK_FULL_WRITER = """
import resource, signal, sys
from sockcap.decode.records import RawFrame
from sockcap.errors import CaptureFileError, WriteError
from sockcap.pcapfile import PcapWriter
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (5000, 5000))
writer = PcapWriter(sys.argv[1], 1, flush_every=int(sys.argv[2]))
try:
    for n in range(1000):
        writer.write(RawFrame(n * 1000, 1, b"x" * 100, 100))
except WriteError as exc:
    print(writer.count, exc)
"""


@pytest.mark.parametrize("flush_every", [1, 7])
def test_disk_full_keeps_what_was_written(tmp_path: Path, flush_every: int) -> None:
    path = tmp_path / "full.pcap"
    done = subprocess.run([sys.executable, "-c", DISK_FULL_WRITER, str(path), str(flush_every)],
                          capture_output=True, text=True, timeout=60, cwd=ROOT, check=True)
    count, message = done.stdout.strip().split(" ", 1)
    assert message == f"cannot write {path}: File too large"
    assert len(read_back(path)) == int(count) > 0
    assert path.stat().st_size == 24 + int(count) * 116
