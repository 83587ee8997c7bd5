"""The kernel filter sockcap assembles equals the one libpcap compiles for the same expression."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from sockcap.capture.bpf import port_filter
from tests.conftest import never_engine

pytestmark = never_engine()


@pytest.mark.skipif(shutil.which("tcpdump") is None, reason="tcpdump is not installed")
@pytest.mark.parametrize("port", [1, 80, 5001, 65535])
def test_port_filter_equals_libpcap(port: int) -> None:
    out = subprocess.run(["tcpdump", "-ddd", f"tcp port {port} or udp port {port}"],
                         capture_output=True, text=True, check=True, timeout=30).stdout.split("\n")
    expected = [tuple(int(x) for x in line.split()) for line in out[1:] if line.strip()]
    assert int(out[0]) == len(expected)
    assert [tuple(i) for i in port_filter(port)] == expected
