"""Progress of a long read: on a terminal (stderr a pty) only, cleared at the end; never
in a pipe or with --json. ``SOCKCAP_PROGRESS_AFTER=0`` shows it from the first packet, so
the test does not depend on how fast the machine reads."""

from __future__ import annotations

import gzip
import os
import pty
import select
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import ROOT

GOLDEN = ROOT / "tests" / "golden"


@pytest.fixture(scope="module")
def big_capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """echo-tcp.pcap's records repeated: 14,000 packets."""
    data = (GOLDEN / "echo-tcp.pcap").read_bytes()
    path = tmp_path_factory.mktemp("progress") / "big.pcap"
    path.write_bytes(data[:24] + data[24:] * 1000)
    return path


def _on_a_pty(*args: str, after: str = "0") -> tuple[int, str, bytes]:
    """Run sockcap with stderr on a pty and stdout a pipe: (exit code, what the terminal
    got, stdout)."""
    master, slave = pty.openpty()
    env = dict(os.environ, SOCKCAP_PROGRESS_AFTER=after, TERM="xterm-256color", COLUMNS="100",
               PYTHONDONTWRITEBYTECODE="1")
    env.pop("NO_COLOR", None)
    sink = tempfile.TemporaryFile()  # a file, not a pipe: show's lines never block the child
    proc = subprocess.Popen([sys.executable, "-m", "sockcap", *args], stdout=sink,
                            stderr=slave, stdin=subprocess.DEVNULL, cwd=ROOT, env=env)
    os.close(slave)
    seen = b""
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 60)
            if not ready:
                break
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the child closed the pty
                break
            if not chunk:
                break
            seen += chunk
        code = proc.wait(timeout=60)
        sink.seek(0)
        out = sink.read()
    finally:
        proc.kill()
        os.close(master)
        sink.close()
    return code, seen.decode("utf-8", "replace"), out


@pytest.mark.parametrize("command", ["stats", "show"])
def test_progress_on_a_terminal_then_cleared(big_capture: Path, command: str) -> None:
    code, terminal, out = _on_a_pty(command, str(big_capture))
    assert code == 0
    assert "packets/s" in terminal and "reading" in terminal
    assert terminal.rstrip(" \r\n").endswith(("\x1b[2K", "\x1b[?25h"))  # line cleared, cursor back
    assert b"packets/s" not in out


def test_progress_of_a_gzip_file_counts_its_compressed_bytes(big_capture: Path,
                                                             tmp_path: Path) -> None:
    packed = tmp_path / "big.pcap.gz"
    packed.write_bytes(gzip.compress(big_capture.read_bytes()))
    code, terminal, _ = _on_a_pty("stats", str(packed))
    assert code == 0 and "packets/s" in terminal


def test_no_progress_with_json_or_a_short_read(big_capture: Path) -> None:
    code, terminal, out = _on_a_pty("stats", "--json", str(big_capture))
    assert code == 0 and "packets/s" not in terminal and out.startswith(b"{")
    code, terminal, _ = _on_a_pty("stats", str(big_capture), after="3600")
    assert code == 0 and "packets/s" not in terminal


def test_no_progress_in_a_pipe(big_capture: Path) -> None:
    env = dict(os.environ, SOCKCAP_PROGRESS_AFTER="0")
    res = subprocess.run([sys.executable, "-m", "sockcap", "stats", str(big_capture)],
                         capture_output=True, text=True, timeout=60, cwd=ROOT, env=env)
    assert res.returncode == 0 and res.stderr == ""
