"""The compiled conversation table on a file crafted against its hash (HashDoS).

The table hashed its keys with fixed constants and invertible steps, so anyone could write
a capture whose conversations all land in one slot: every lookup then walks one probe run
as long as the table, and ``show`` of 400,000 such SYNs took 738 s of CPU. The keys below
are made that way, against the old function (:func:`old_hash`); with a keyed hash they
spread like any others. The promise is checked by counting, not timing: the engine says
how many slots its lookups looked at (``Engine.probes``), about one per lookup at a load
of at most one half, whatever the file. With the old hash the crafted file costs about
n**2 / 2 probes (n conversations), here 5,000 times more than its ~2n; the speed itself is
bench/'s (bench/hash_flood_bench.py).
"""

from __future__ import annotations

import io
import random
import struct
from pathlib import Path

import pytest
from conftest import sockcap

from sockcap.decode.records import RawFrame
from sockcap.pcapfile import open_capture, write_pcap
from sockcap.pcapfile.writer import write_pcap_stream
from sockcap.speedups import compiled_class, engine_class

MASK = (1 << 64) - 1
SEED, MULT = 0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9
MULT_INV = pow(MULT, -1, 1 << 64)
COUNT = 20_000

pytestmark = pytest.mark.skipif(compiled_class() is None, reason="the compiled path is not built")


def _mix(h: int, w: int) -> int:
    h = ((h ^ w) * MULT) & MASK
    return h ^ (h >> 31)


def _unmix(h: int) -> int:
    """The h ^ w that _mix turned into h: xorshift 31 undone, then the multiplication."""
    x = h ^ (h >> 31) ^ (h >> 62)
    return (x * MULT_INV) & MASK


def old_hash(key: bytes) -> int:
    """The table's hash before it was keyed: five little-endian words, multiply-mixed."""
    h = SEED
    for (w,) in struct.iter_unpack("<Q", key):
        h = _mix(h, w)
    return h


def _key(src: bytes, sport: int, dst: bytes, dport: int) -> bytes:
    """make_key for an IPv6 TCP packet: proto, family, src, sport, dst, dport, 2 zeros."""
    return bytes([6, 6]) + src + sport.to_bytes(2, "big") + dst + dport.to_bytes(2, "big") + b"\0\0"


def colliding_addresses(count: int) -> list[tuple[bytes, bytes]]:
    """(src, dst) IPv6 pairs whose keys (ports 1234 -> 80) all have one old hash: bytes 4..11
    of dst (the key's fourth word) are solved for from the rest."""
    target = None
    pairs = []
    dst_tail = bytes.fromhex("00000001")
    for n in range(count):
        src = bytes.fromhex("fd000000000000") + n.to_bytes(8, "big") + b"\x01"
        key = _key(src, 1234, bytes(16), 80)
        words = [w for (w,) in struct.iter_unpack("<Q", key)]
        h2 = SEED
        for w in words[:3]:
            h2 = _mix(h2, w)
        w4 = words[4] & ~0xFFFFFFFF | int.from_bytes(dst_tail, "little")
        if target is None:
            target = _mix(_mix(h2, words[3]), w4)
        h3 = _unmix(target) ^ w4
        w3 = _unmix(h3) ^ h2
        dst = key[20:24] + w3.to_bytes(8, "little") + dst_tail
        pairs.append((src, dst))
    return pairs


def _syn(src: bytes, dst: bytes) -> bytes:
    """Ethernet, IPv6, a TCP SYN 1234 -> 80 (checksums left zero: nothing reads them)."""
    tcp = struct.pack(">HHIIBBHHH", 1234, 80, 1000, 0, 5 << 4, 0x02, 65535, 0, 0)
    ip6 = struct.pack(">IHBB", 6 << 28, len(tcp), 6, 64) + src + dst
    return bytes(12) + b"\x86\xdd" + ip6 + tcp


@pytest.fixture(scope="module")
def crafted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pairs = colliding_addresses(COUNT)
    keys = {_key(s, 1234, d, 80) for s, d in pairs}
    assert len(keys) == COUNT and len({old_hash(k) for k in keys}) == 1  # crafted indeed
    path = tmp_path_factory.mktemp("flood") / "flood.pcap"
    write_pcap(path, (RawFrame(n * 1000, 1, _syn(s, d), 74, 0) for n, (s, d) in
                      enumerate(pairs)), 1)
    return path


def _random_file() -> bytes:
    rng = random.Random(7)
    out = io.BytesIO()
    frames = (RawFrame(n * 1000, 1, _syn(rng.randbytes(16), rng.randbytes(16)), 74, 0)
              for n in range(COUNT))
    write_pcap_stream(out, frames, 1)
    return out.getvalue()


def _probes(data: bytes) -> int:
    from sockcap.pipeline import Pipeline
    from sockcap.pipeline.engine import EngineRun

    run = EngineRun(engine_class(), Pipeline(keep=False), hex_=False)
    run.run(open_capture(io.BytesIO(data)), lambda text: None)
    probes: int = run.engine.probes
    return probes


def test_crafted_keys_cost_what_random_ones_do(crafted: Path) -> None:
    crafted_probes = _probes(crafted.read_bytes())
    random_probes = _probes(_random_file())
    assert random_probes < 8 * COUNT  # under 3 slots a lookup (three lookups a SYN)
    assert crafted_probes < 2 * random_probes  # the old hash: ~COUNT**2 / 2 = 200,000,000


def test_crafted_file_shows_the_same_on_both_paths(crafted: Path) -> None:
    compiled = sockcap("show", "-c", "2000", str(crafted), env={"SOCKCAP_PURE": None})
    pure = sockcap("show", "-c", "2000", str(crafted), env={"SOCKCAP_PURE": "1"})
    assert compiled.returncode == pure.returncode == 0
    assert compiled.stdout == pure.stdout and compiled.stdout.count("\n") == 2000
