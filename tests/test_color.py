"""Colour on a terminal only; NO_COLOR and --no-color turn it off (no-color.org)."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT, sockcap

PCAP = str(ROOT / "tests" / "golden" / "echo-tcp.pcap")


def on_a_terminal(args: str, env: dict[str, str]) -> str:
    """Run sockcap under `script`, which gives it a pseudo-terminal as stdout."""
    cmd = f"{shlex.quote(sys.executable)} -m sockcap {args}"
    res = subprocess.run(["script", "-qc", cmd, "/dev/null"], capture_output=True, text=True,
                         timeout=60, env=env, stdin=subprocess.DEVNULL)
    return res.stdout


@pytest.mark.skipif(shutil.which("script") is None, reason="script (util-linux) is not installed")
def test_colour_on_a_terminal_only() -> None:
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    assert "\x1b[" in on_a_terminal(f"show -c 3 {PCAP}", env)
    assert "\x1b[" not in on_a_terminal(f"show -c 3 --no-color {PCAP}", env)
    assert "\x1b[" not in on_a_terminal(f"show -c 3 {PCAP}", {**env, "NO_COLOR": "1"})
    assert "\x1b[" not in sockcap("show", "-c", "3", PCAP).stdout  # a pipe
