"""Mutators: from a seed file and a random generator, one hostile capture file.

Four families, after what found bugs in the tools sockcap measures itself against:

* :func:`mutate_packet` is Wireshark's fuzz step (``editcap -E 0.02``): each packet byte is
  damaged with probability 2% by a bit flip, a random byte, a random printable byte, a
  format string, or a fill of 0xAA to the end of the packet. :func:`poke_headers` adds a
  few "interesting" values (protocol numbers, IHL/data-offset nibbles, VLAN and IPv6
  ethertypes, 0x00/0xff) in the first 96 bytes, where the headers are.
* :func:`mutate_pcap_structure` / :func:`mutate_pcapng_structure` change the file framing:
  magic, version, snap length, link type (with FCS bits), record and block lengths,
  block types, interface ids, timestamp resolutions, and record order.
* :func:`cut_record` is one step of the snap-length sweep (a record cut to a shorter
  captured length, the wire length kept); :mod:`fuzz_reader` also sweeps every length.
* :func:`havoc` works on the finished file's bytes: bit flips, chunk insert / delete /
  duplicate, 32-bit interesting values in either byte order, splices of other seeds,
  and truncation at any offset.

Every mutator is a pure function of its arguments and ``rng``, so an input is rebuilt
exactly from (seed, input number): ``fuzz_reader.py --replay N`` does that.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable

from seeds import (
    BT_IDB,
    BT_SPB,
    PCAPNG_BOM,
    PCAPNG_SHB,
    Block,
    Record,
    Seed,
    pcap_bytes,
    window,
)

MUTATION_RATE = 0.02  # Wireshark's fuzz-test.sh: editcap -E 0.02
LINKTYPES = (0, 1, 9, 12, 14, 50, 101, 104, 105, 108, 113, 127, 147, 192, 228, 229, 239,
             276, 0xFFFF, 0x10000001, 0xFFFFFFFF)
INTERESTING32 = (0, 1, 2, 3, 4, 7, 8, 11, 12, 15, 16, 20, 24, 28, 31, 32, 63, 64, 127, 128,
                 255, 256, 1500, 4095, 4096, 65535, 65536, 65537, 262143, 262144, 262145,
                 1 << 24, (1 << 24) + 4, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFC, 0xFFFFFFFF)
INTERESTING8 = (0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x08, 0x0F, 0x10, 0x11, 0x1E,
                0x22, 0x29, 0x2B, 0x2C, 0x32, 0x33, 0x3A, 0x3B, 0x3C, 0x40, 0x44, 0x45,
                0x46, 0x4F, 0x50, 0x5F, 0x60, 0x7F, 0x80, 0x81, 0x86, 0x87, 0x88, 0xA8,
                0xAA, 0xDD, 0xF0, 0xFE, 0xFF)
FORMAT_STRINGS = (b"%s", b"%n", b"%d%d%d%d", b"%x", b"\x00", b"%%", b"\xff\xff")
PRINTABLE = bytes(range(0x20, 0x7F))
TSRESOL = (0, 3, 6, 9, 19, 63, 64, 0x80, 0x8A, 0xBF, 0xFF)


def mutate_packet(data: bytes, rng: random.Random, rate: float = MUTATION_RATE) -> bytes:
    """editcap -E: each byte damaged with probability ``rate`` (at least one per packet)."""
    if not data:
        return data
    out = bytearray(data)
    hits = max(1, _binomial(len(out), rate, rng))
    for _ in range(hits):
        i = rng.randrange(len(out))
        kind = rng.choices(("bit", "byte", "alnum", "fmt", "aa"), (5, 5, 5, 2, 1))[0]
        if kind == "bit":
            out[i] ^= 1 << rng.randrange(8)
        elif kind == "byte":
            out[i] = rng.randrange(256)
        elif kind == "alnum":
            out[i] = rng.choice(PRINTABLE)
        elif kind == "fmt":
            s = rng.choice(FORMAT_STRINGS)
            out[i : i + len(s)] = s[: len(out) - i]
        else:
            out[i:] = b"\xaa" * (len(out) - i)
    return bytes(out)


def poke_headers(data: bytes, rng: random.Random) -> bytes:
    """Set 1-4 of the first 96 bytes (the headers) to values that steer a decoder."""
    if not data:
        return data
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        i = rng.randrange(min(len(out), 96))
        out[i] = rng.choice(INTERESTING8) if rng.random() < 0.8 else rng.randrange(256)
    return bytes(out)


def _binomial(n: int, p: float, rng: random.Random) -> int:
    """A cheap binomial draw: exact for short packets, normal approximation for long."""
    if n < 64:
        return sum(rng.random() < p for _ in range(n))
    mean, sd = n * p, (n * p * (1 - p)) ** 0.5
    return max(0, round(rng.gauss(mean, sd)))


def _interesting(rng: random.Random, current: int) -> int:
    r = rng.random()
    if r < 0.6:
        return rng.choice(INTERESTING32)
    if r < 0.9:
        return (current + rng.randint(-8, 8)) & 0xFFFFFFFF
    return rng.getrandbits(32)


# -- pcap -------------------------------------------------------------------------------


def mutate_pcap_header(header: bytes, order: str, rng: random.Random) -> bytes:
    """Change one field of the 24-byte file header."""
    fields = list(struct.unpack(order + "IHHiIII", header))
    which = rng.choice(("magic", "version", "snaplen", "linktype", "linktype", "fcs"))
    if which == "magic":
        fields[0] = rng.choice((0xA1B2C3D4, 0xD4C3B2A1, 0xA1B23C4D, 0x4D3CB2A1,
                                0x0A0D0D0A, rng.getrandbits(32)))
    elif which == "version":
        fields[1], fields[2] = rng.choice(((2, 4), (2, 3), (2, 0), (1, 0), (3, 0), (0, 0),
                                           (0xFFFF, 0xFFFF)))
    elif which == "snaplen":
        fields[5] = _interesting(rng, fields[5])
    elif which == "linktype":
        fields[6] = rng.choice(LINKTYPES)
    else:
        fields[6] = (fields[6] & 0xFFFF) | (rng.getrandbits(6) << 26) | 0x04000000
    return struct.pack(order + "IHHiIII", *fields)


def mutate_records(records: list[Record], rng: random.Random) -> list[Record]:
    """Lie in a record header, or reorder, duplicate, drop or empty records."""
    if not records:
        return records
    i = rng.randrange(len(records))
    r = records[i]
    which = rng.choice(("incl", "orig", "frac", "sec", "dup", "drop", "swap", "empty"))
    out = list(records)
    if which == "incl":
        out[i] = Record(r.sec, r.frac, _interesting(rng, r.incl), r.orig, r.data)
    elif which == "orig":
        out[i] = Record(r.sec, r.frac, r.incl, _interesting(rng, r.orig), r.data)
    elif which == "frac":
        out[i] = Record(r.sec, rng.choice((999_999, 1_000_000, 999_999_999, 1_000_000_000,
                                           0xFFFFFFFF)), r.incl, r.orig, r.data)
    elif which == "sec":
        out[i] = Record(rng.choice((0, 0x7FFFFFFF, 0xFFFFFFFF)), r.frac, r.incl, r.orig, r.data)
    elif which == "dup":
        out.insert(i, r)
    elif which == "drop" and len(out) > 1:
        del out[i]
    elif which == "swap" and len(out) > 1:
        j = rng.randrange(len(out))
        out[i], out[j] = out[j], out[i]
    elif which == "empty":
        out[i] = Record(r.sec, r.frac, 0, r.orig, b"")
    return out


def cut_record(r: Record, length: int) -> Record:
    """The record as a capture with a snap length of ``length`` would have stored it."""
    length = min(length, len(r.data))
    return Record(r.sec, r.frac, length, r.orig, r.data[:length])


def pcap_input(seed: Seed, rng: random.Random, strategy: str) -> bytes:
    records, _ = window(seed, rng)
    header = seed.header
    if strategy == "packet":
        records = [_with_data(r, mutate_packet(r.data, rng)) for r in records]
    elif strategy == "headers":
        records = [_with_data(r, poke_headers(r.data, rng)) for r in records]
    elif strategy == "linktype":
        header = header[:20] + struct.pack(seed.order + "I", rng.choice(LINKTYPES))
        records = [_with_data(r, poke_headers(r.data, rng)) if rng.random() < 0.5 else r
                   for r in records]
    elif strategy == "structure":
        for _ in range(rng.randint(1, 3)):
            if rng.random() < 0.3:
                header = mutate_pcap_header(header, seed.order, rng)
            else:
                records = mutate_records(records, rng)
    elif strategy == "cut":
        i = rng.randrange(len(records))
        records[i] = cut_record(records[i], rng.randint(0, len(records[i].data)))
    return pcap_bytes(seed.order, header, records)


def _with_data(r: Record, data: bytes) -> Record:
    return Record(r.sec, r.frac, len(data), r.orig, data)


# -- pcapng -----------------------------------------------------------------------------


def pcapng_block(order: str, btype: int, body: bytes) -> bytes:
    """A block of ``btype`` around ``body`` (padded to 4 bytes), both lengths right."""
    body += b"\0" * (-len(body) % 4)
    blen = len(body) + 12
    return struct.pack(order + "II", btype, blen) + body + struct.pack(order + "I", blen)


def epb_with_data(block: Block, order: str, data: bytes) -> bytes:
    """An EPB/OPB like ``block`` whose packet bytes are ``data`` (wire length kept)."""
    raw = block.raw
    if block.btype == BT_SPB:
        return pcapng_block(order, BT_SPB, raw[8:12] + data)
    fixed = raw[8:28]
    fields = list(struct.unpack(order + "IIIII", fixed))
    fields[3] = len(data)
    end = block.data_off + block.data_len + (-block.data_len % 4)
    options = raw[end:-4]
    return pcapng_block(order, block.btype, struct.pack(order + "IIIII", *fields) + data
                        + options)


def _set_u32(raw: bytes, offset: int, order: str, value: int) -> bytes:
    if offset + 4 > len(raw):
        return raw
    return raw[:offset] + struct.pack(order + "I", value & 0xFFFFFFFF) + raw[offset + 4 :]


def mutate_block(b: Block, order: str, rng: random.Random) -> bytes:
    """Change one framing field of a pcapng block."""
    raw = b.raw
    which = rng.choice(("len_head", "len_tail", "type", "field", "field", "option"))
    if which == "len_head":
        return _set_u32(raw, 4, order, _interesting(rng, len(raw)))
    if which == "len_tail":
        return _set_u32(raw, len(raw) - 4, order, _interesting(rng, len(raw)))
    if which == "type":
        return _set_u32(raw, 0, order, rng.choice((1, 2, 3, 4, 5, 6, 7, 0xBAD, 0x40000BAD,
                                                   PCAPNG_SHB, rng.getrandbits(32))))
    if which == "option":
        return _with_option(b, order, rng)
    if b.btype == PCAPNG_SHB:
        offset = rng.choice((8, 12, 16, 20))  # byte-order magic, version, section length
        if offset == 8:
            return _set_u32(raw, 8, order, rng.choice((PCAPNG_BOM, 0x4D3C2B1A, 0)))
        return _set_u32(raw, offset, order, _interesting(rng, 0))
    if b.btype == BT_IDB:  # link type (16 bits) + reserved, snap length
        if rng.random() < 0.5:
            return raw[:8] + struct.pack(order + "H", rng.choice(LINKTYPES) & 0xFFFF) + raw[10:]
        return _set_u32(raw, 12, order, _interesting(rng, 0))
    # packet blocks: interface id, timestamp high/low, captured length, wire length
    offset = rng.choice((8, 12, 16, 20, 20, 24)) if b.btype != BT_SPB else 8
    return _set_u32(raw, offset, order, _interesting(rng, 0))


def _with_option(b: Block, order: str, rng: random.Random) -> bytes:
    """Append an option (IDB: if_tsresol / if_tsoffset; others: one with a bad length)."""
    raw = b.raw
    if b.btype == BT_IDB:
        code = rng.choice((9, 9, 14))
        value = (bytes([rng.choice(TSRESOL)]) if code == 9
                 else struct.pack(order + "q", rng.choice((0, -1, 1 << 62, -(1 << 62)))))
    else:
        code, value = rng.randrange(1, 16), rng.randbytes(rng.randrange(0, 9))
    length = len(value) if rng.random() < 0.7 else _interesting(rng, len(value)) & 0xFFFF
    option = struct.pack(order + "HH", code, length) + value + b"\0" * (-len(value) % 4)
    body = raw[8:-4]
    return pcapng_block(order, b.btype, body + option)


def pcapng_input(seed: Seed, rng: random.Random, strategy: str) -> bytes:
    order = seed.order
    _, blocks = window(seed, rng)
    parts = [b.raw for b in blocks]
    packets = [i for i, b in enumerate(blocks) if b.data_off]
    if strategy in ("packet", "headers", "cut") and packets:
        for i in packets if strategy != "cut" else [rng.choice(packets)]:
            b = blocks[i]
            data = b.raw[b.data_off : b.data_off + b.data_len]
            if strategy == "packet":
                data = mutate_packet(data, rng)
            elif strategy == "headers":
                data = poke_headers(data, rng)
            else:
                data = data[: rng.randint(0, len(data))]
            parts[i] = epb_with_data(b, order, data)
    elif strategy == "linktype":
        for i, b in enumerate(blocks):
            if b.btype == BT_IDB and len(b.raw) >= 10:
                lt = rng.choice(LINKTYPES) & 0xFFFF
                parts[i] = b.raw[:8] + struct.pack(order + "H", lt) + b.raw[10:]
    else:  # structure, or no packet block to work on
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(blocks))
            if rng.random() < 0.8:
                parts[i] = mutate_block(Block(blocks[i].btype, parts[i]), order, rng)
            elif rng.random() < 0.5:
                parts.insert(i, parts[i])
            else:
                parts.insert(i, pcapng_block(order, BT_IDB, struct.pack(
                    order + "HHI", rng.choice(LINKTYPES) & 0xFFFF, 0, _interesting(rng, 0))))
    return b"".join(parts)


# -- bytes ------------------------------------------------------------------------------


def havoc(data: bytes, rng: random.Random, donors: list[Seed]) -> bytes:
    """1-8 byte-level edits anywhere in the file, AFL-style."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        op = rng.randrange(8)
        n = len(out)
        i = rng.randrange(n + 1)
        if op == 0 and n:
            out[min(i, n - 1)] ^= 1 << rng.randrange(8)
        elif op == 1 and n:
            out[min(i, n - 1)] = rng.choice(INTERESTING8)
        elif op == 2:
            out[i:i] = rng.randbytes(rng.randint(1, 32))
        elif op == 3:
            del out[i : i + rng.randint(1, 64)]
        elif op == 4 and n:
            j = rng.randrange(n)
            out[i:i] = out[j : j + rng.randint(1, 64)]
        elif op == 5 and n >= 4:
            value = _interesting(rng, 0)
            at = rng.randrange(n - 3)
            out[at : at + 4] = struct.pack(rng.choice("<>") + "I", value)
        elif op == 6 and donors:
            donor = _raw(rng.choice(donors))
            j = rng.randrange(len(donor) + 1)
            out[i:] = donor[j : j + rng.randint(1, 512)] + out[i:][: rng.randint(0, 512)]
        else:
            del out[i:]
    return bytes(out)


def _raw(seed: Seed) -> bytes:
    if seed.kind == "pcap":
        return pcap_bytes(seed.order, seed.header, list(seed.records[:8]))
    if seed.kind == "pcapng":
        return b"".join(b.raw for b in seed.blocks[:8])
    return seed.blob


STRATEGIES: dict[str, int] = {"packet": 35, "headers": 20, "linktype": 10, "structure": 20,
                              "cut": 15}
_BUILDERS: dict[str, Callable[[Seed, random.Random, str], bytes]] = {
    "pcap": pcap_input, "pcapng": pcapng_input}


def make_input(seeds: list[Seed], rng: random.Random) -> tuple[str, bytes]:
    """One fuzz input: (a short description, the file's bytes)."""
    seed = rng.choice(seeds)
    if seed.kind == "blob":
        return f"{seed.name} havoc", havoc(seed.blob, rng, seeds)
    strategy = rng.choices(list(STRATEGIES), list(STRATEGIES.values()))[0]
    data = _BUILDERS[seed.kind](seed, rng, strategy)
    if rng.random() < 0.1:
        strategy += "+havoc"
        data = havoc(data, rng, seeds)
    return f"{seed.name} {strategy}", data
