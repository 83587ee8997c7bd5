"""Seed files for the fuzzer, split into the pieces that the mutators change.

The split is done here with a few lines of ``struct``, independently of sockcap's reader:
a bug in the reader must not decide what the fuzzer can build. A pcap file becomes its
24-byte header and a list of records; a pcapng file becomes its list of blocks, with the
packet bytes of each packet block located; anything else (the corpus's damaged files)
stays a blob, mutated as bytes.

A :class:`Seed` is immutable; the mutators copy the records they change. ``window`` gives
a small file of a few consecutive records (pcapng: preceded by the section and interface
blocks in force there), because the decoder and renderers are exercised just as well by
a 3-packet file as by a 3000-packet one, at a thousandth of the cost.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"
CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap", ".dmp")

PCAP_MAGICS = {b"\xd4\xc3\xb2\xa1": "<", b"\xa1\xb2\xc3\xd4": ">",
               b"\x4d\x3c\xb2\xa1": "<", b"\xa1\xb2\x3c\x4d": ">"}
PCAPNG_SHB = 0x0A0D0D0A
PCAPNG_BOM = 0x1A2B3C4D
BT_IDB, BT_EPB, BT_SPB, BT_OPB = 1, 6, 3, 2
PACKET_BLOCKS = (BT_EPB, BT_SPB, BT_OPB)
MAX_SEED_RECORDS = 5000  # records kept per seed file


@dataclass(frozen=True)
class Record:
    """One pcap record: header fields and captured bytes."""

    sec: int
    frac: int
    incl: int
    orig: int
    data: bytes


@dataclass(frozen=True)
class Block:
    """One pcapng block: its type and its whole bytes; packet bytes at ``data_off``."""

    btype: int
    raw: bytes
    data_off: int = 0  # where the packet bytes start in ``raw`` (0: not a packet block)
    data_len: int = 0


@dataclass(frozen=True)
class Seed:
    name: str
    kind: str  # "pcap", "pcapng" or "blob"
    order: str = "<"
    header: bytes = b""  # pcap: the 24-byte file header
    records: tuple[Record, ...] = ()
    blocks: tuple[Block, ...] = ()
    blob: bytes = b""
    packet_indexes: tuple[int, ...] = field(default=())  # pcapng: blocks that hold packets


def load_seeds(folder: Path = CORPUS) -> list[Seed]:
    """Every capture file under ``folder`` (recursively), split; sorted by name."""
    paths = sorted(p for p in folder.rglob("*") if p.suffix in CAPTURE_SUFFIXES and p.is_file())
    return [split_seed(p.relative_to(folder).as_posix(), p.read_bytes()) for p in paths]


def split_seed(name: str, data: bytes) -> Seed:
    order = PCAP_MAGICS.get(data[:4])
    if order is not None and len(data) >= 24:
        records = _pcap_records(data, order)
        if records:
            return Seed(name, "pcap", order, header=data[:24], records=tuple(records))
    if data[:4] == struct.pack("<I", PCAPNG_SHB) and len(data) >= 12:
        blocks, order = _pcapng_blocks(data)
        if blocks:
            indexes = tuple(i for i, b in enumerate(blocks) if b.data_off)
            return Seed(name, "pcapng", order, blocks=tuple(blocks), packet_indexes=indexes)
    return Seed(name, "blob", blob=data)


def _pcap_records(data: bytes, order: str) -> list[Record]:
    head = struct.Struct(order + "IIII")
    records: list[Record] = []
    pos = 24
    while pos + 16 <= len(data) and len(records) < MAX_SEED_RECORDS:
        sec, frac, incl, orig = head.unpack_from(data, pos)
        if pos + 16 + incl > len(data):
            break
        records.append(Record(sec, frac, incl, orig, data[pos + 16 : pos + 16 + incl]))
        pos += 16 + incl
    return records


def _pcapng_blocks(data: bytes) -> tuple[list[Block], str]:
    blocks: list[Block] = []
    order, pos = "<", 0
    while pos + 12 <= len(data) and len(blocks) < MAX_SEED_RECORDS:
        if data[pos : pos + 4] == struct.pack("<I", PCAPNG_SHB):
            bom = data[pos + 8 : pos + 12]
            order = "<" if bom == struct.pack("<I", PCAPNG_BOM) else ">"
        btype, blen = struct.unpack_from(order + "II", data, pos)
        if blen < 12 or blen % 4 or pos + blen > len(data):
            break
        raw = data[pos : pos + blen]
        off, length = _packet_bytes(btype, raw, order)
        blocks.append(Block(btype, raw, off, length))
        pos += blen
    return blocks, order


def _packet_bytes(btype: int, raw: bytes, order: str) -> tuple[int, int]:
    """Where a packet block's captured bytes are: (offset, length), (0, 0) if none."""
    if btype in (BT_EPB, BT_OPB) and len(raw) >= 32:
        caplen = struct.unpack_from(order + "I", raw, 20)[0]
        return (28, min(caplen, len(raw) - 32))
    if btype == BT_SPB and len(raw) >= 16:
        return (12, len(raw) - 16)
    return (0, 0)


def pcap_bytes(order: str, header: bytes, records: list[Record]) -> bytes:
    """A pcap file from a header and records (lengths as the records say, not recomputed)."""
    head = struct.Struct(order + "IIII")
    parts = [header]
    for r in records:
        parts.append(head.pack(r.sec & 0xFFFFFFFF, r.frac & 0xFFFFFFFF, r.incl & 0xFFFFFFFF,
                               r.orig & 0xFFFFFFFF))
        parts.append(r.data)
    return b"".join(parts)


def window(seed: Seed, rng: random.Random, most: int = 8) -> tuple[list[Record], list[Block]]:
    """A few consecutive records (pcap) or blocks (pcapng: with the SHB and IDBs before)."""
    count = rng.randint(1, most)
    if seed.kind == "pcap":
        start = rng.randrange(len(seed.records))
        return list(seed.records[start : start + count]), []
    if not seed.packet_indexes:
        return [], list(seed.blocks)
    first = seed.packet_indexes[rng.randrange(len(seed.packet_indexes))]
    shb = max((i for i in range(first) if seed.blocks[i].btype == PCAPNG_SHB), default=0)
    idbs = [b for b in seed.blocks[shb + 1 : first] if b.btype == BT_IDB][:64]
    return [], [seed.blocks[shb], *idbs, *seed.blocks[first : first + count]]
