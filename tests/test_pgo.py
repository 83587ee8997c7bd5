"""The profile-guided build of the compiled engine (scripts/pgo.py) and its training
traffic (scripts/pgo_traffic.py).

The build itself runs in ``scripts/setup.sh`` (so the whole suite runs on it, and its
differential tests hold it to the pure twin byte for byte); here: that it is the build
in place where the set-up must have made it, that a compiler it cannot use leaves the
plain build untouched with one line, and that the training captures are what they claim
to be, checked by tshark.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import NEVER_ENGINE, first_run_only, tshark_fields

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import pgo  # noqa: E402
import pgo_traffic  # noqa: E402

pytestmark = first_run_only(NEVER_ENGINE)


def _pgo(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "pgo.py"), *args],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env})


@pytest.mark.skipif(not os.environ.get("SOCKCAP_REQUIRE_EXTENSIONS"),
                    reason="only where the set-up must have built the engine (.ci/run)")
def test_the_engine_in_place_is_the_profile_guided_build() -> None:
    """.ci/run's set-up made the build and put it in place (GCC is what setup.sh
    installs)."""
    done = _pgo("--check")
    assert (done.returncode, done.stdout) == (0, "profile-guided\n"), done.stderr


@pytest.mark.skipif(not pgo.EXTENSION.exists(), reason="no compiled extension built")
def test_a_compiler_it_cannot_use_leaves_the_build_in_place(tmp_path: Path) -> None:
    before = hashlib.sha256(pgo.EXTENSION.read_bytes()).hexdigest()
    fake = tmp_path / "cc"
    fake.write_text("#!/bin/sh\necho 'cc 1.0'\n")  # says a version, defines no __GNUC__
    fake.chmod(0o755)
    done = _pgo(CC=str(fake))
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and "needs GCC >= 10" in lines[0] and "plain build stays" in lines[0]
    assert "Traceback" not in done.stderr
    assert hashlib.sha256(pgo.EXTENSION.read_bytes()).hexdigest() == before
    missing = _pgo(CC=str(tmp_path / "no-such-cc"))
    assert missing.returncode == 1 and "does not run" in missing.stderr
    assert len(missing.stderr.splitlines()) == 1


def test_the_training_traffic_is_what_tshark_reads(tmp_path: Path) -> None:
    """Both files read by tshark as the course's traffic: loopback addresses, TCP to and
    from port 5001 with Linux's options, UDP echoes, IPv6 among them, no malformed
    packet; every TCP checksum field holds the pseudo-header's sum (what ``lo``
    leaves, Wireshark's "partial checksum")."""
    pcap, pcapng = tmp_path / "t.pcap", tmp_path / "t.pcapng"
    pgo_traffic.write_pcap(pcap, 4000, seed=1)
    pgo_traffic.write_pcapng(pcapng, 700, seed=2)
    for path, count in ((pcap, 4000), (pcapng, 700)):
        rows = tshark_fields(path, "frame.protocols", "ip.src", "ipv6.src", "tcp.port",
                             "udp.port", "tcp.options.mss_val", "_ws.malformed")
        assert count <= len(rows) < count + 60  # the last conversation is finished
        assert not any(r[6] for r in rows)
        assert {r[1] or r[2] for r in rows} == {"127.0.0.1", "::1"}
        assert all("5001" in (r[3] or r[4]).split(",") for r in rows)
        protocols = {p for r in rows for p in r[0].split(":")}
        assert {"eth", "ip", "ipv6", "tcp", "udp"} <= protocols
        assert {r[5] for r in rows if r[5]} == {"65495", "65476"}
    stamps = tshark_fields(pcapng, "frame.time_epoch")
    assert [s[0] for s in stamps[:2]] == ["1765000000.000000000", "1765000000.000006993"]
    rows = tshark_fields(pcap, "ip.src", "ipv6.src", "tcp.hdr_len", "tcp.len", "tcp.checksum",
                         extra=("-Y", "tcp"))
    assert len(rows) > 3000
    for src, src6, header, payload, field in rows:
        address = ipaddress.ip_address(src or src6).packed * 2  # to itself, on loopback
        words = sum(struct.unpack(f"!{len(address) // 2}H", address))
        assert int(field, 16) == _fold(words + 6 + int(header) + int(payload))


def _fold(total: int) -> int:
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def test_the_training_traffic_is_the_same_every_build(tmp_path: Path) -> None:
    a, b = tmp_path / "a.pcap", tmp_path / "b.pcap"
    pgo_traffic.write_pcap(a, 3000, seed=1)
    pgo_traffic.write_pcap(b, 3000, seed=1)
    assert a.read_bytes() == b.read_bytes()
