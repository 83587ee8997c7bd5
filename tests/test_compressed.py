"""Compressed captures are read as Wireshark reads them: gzip always, zstd and lz4 with
``sockcap[compressed]``; anything else names the compression and the fix."""

from __future__ import annotations

import bz2
import gzip
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, sockcap

PCAP = ROOT / "tests" / "golden" / "echo-tcp.pcap"


def _plain() -> str:
    res = sockcap("show", str(PCAP))
    assert res.returncode == 0 and res.stdout
    return res.stdout


def test_gzip_file_and_gzip_on_stdin(tmp_path: Path) -> None:
    packed = tmp_path / "x.pcap.gz"
    packed.write_bytes(gzip.compress(PCAP.read_bytes()))
    res = sockcap("show", str(packed))
    assert res.returncode == 0, res.stderr
    assert res.stdout == _plain()
    piped = subprocess.run([sys.executable, "-m", "sockcap", "stats", "--json", "-"],
                           input=packed.read_bytes(), capture_output=True, timeout=60)
    assert piped.returncode == 0 and b'"packets"' in piped.stdout


def test_cut_short_gzip_is_damage_not_a_traceback(tmp_path: Path) -> None:
    packed = tmp_path / "x.pcap.gz"
    packed.write_bytes(gzip.compress(PCAP.read_bytes())[:-30])
    res = sockcap("show", str(packed))
    assert res.returncode == 4
    assert res.stderr.startswith("sockcap: the gzip stream is damaged or cut short")
    assert "Traceback" not in res.stderr


@pytest.mark.skipif(importlib.util.find_spec("zstandard") is None, reason="zstandard missing")
def test_zstd(tmp_path: Path) -> None:
    import zstandard

    packed = tmp_path / "x.pcap.zst"
    packed.write_bytes(zstandard.ZstdCompressor().compress(PCAP.read_bytes()))
    res = sockcap("show", str(packed))
    assert res.returncode == 0 and res.stdout == _plain()


@pytest.mark.skipif(importlib.util.find_spec("lz4") is None, reason="lz4 missing")
def test_lz4(tmp_path: Path) -> None:
    import lz4.frame

    packed = tmp_path / "x.pcap.lz4"
    packed.write_bytes(lz4.frame.compress(PCAP.read_bytes()))
    res = sockcap("show", str(packed))
    assert res.returncode == 0 and res.stdout == _plain()


def test_zstd_without_its_library_names_the_fix(tmp_path: Path) -> None:
    blocker = tmp_path / "block"
    blocker.mkdir()  # a module that fails to import, as when the extra is not installed
    (blocker / "zstandard.py").write_text("raise ImportError('not installed')\n")
    packed = tmp_path / "x.pcap.zst"
    packed.write_bytes(b"\x28\xb5\x2f\xfd" + b"\0" * 40)
    res = sockcap("show", str(packed), env={"PYTHONPATH": str(blocker)})
    assert res.returncode == 2
    assert res.stderr.strip() == (f"sockcap: {packed} is compressed with zstd: install "
                                  "'sockcap[compressed]' to read it, or decompress it first")


def test_bzip2_is_named(tmp_path: Path) -> None:
    packed = tmp_path / "x.pcap.bz2"
    packed.write_bytes(bz2.compress(PCAP.read_bytes()))
    res = sockcap("show", str(packed))
    assert res.returncode == 2
    assert "compressed with bzip2" in res.stderr and "bunzip2 -k" in res.stderr
