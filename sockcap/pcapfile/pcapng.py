"""The pcapng format: block layouts and the pure parts of reading them.

Pure functions on bytes; the streaming loop lives in :mod:`sockcap.pcapfile.reader`.
Layouts follow the IETF draft "PCAP Next Generation (pcapng) Capture File Format"
(draft-ietf-opsawg-pcapng) and limits follow libpcap's ``sf-pcapng.c``:

- every block is ``type, total length, body, total length``; the length is at least 12,
  a multiple of 4, and libpcap refuses blocks over 16 MiB;
- a Section Header Block (SHB) sets the byte order (by its byte-order magic) and starts a
  new set of interfaces; an Interface Description Block (IDB) gives one interface its link
  type, snap length and timestamp unit (``if_tsresol``) and offset (``if_tsoffset``);
- packets come in Enhanced (EPB), Simple (SPB) and the obsolete Packet Block (type 2).
"""

# No `from __future__ import annotations` here: with it, typing.NamedTuple compiles
# each field's annotation string into a ForwardRef at import (~99 fields on the path
# of `sockcap show`: a few ms of every start, bench/startup_bench.py).

import struct

from sockcap._typing import NamedTuple

BT_SHB = 0x0A0D0D0A  # palindromic, so it reads the same in both byte orders
BT_IDB = 0x00000001
BT_OPB = 0x00000002  # obsolete Packet Block
BT_SPB = 0x00000003
BT_NRB = 0x00000004
BT_ISB = 0x00000005
BT_EPB = 0x00000006
BT_CUSTOM = (0x00000BAD, 0x40000BAD)
BYTE_ORDER_MAGIC = 0x1A2B3C4D
MIN_BLOCK_LEN = 12
MAX_BLOCK_LEN = 16 * 1024 * 1024  # libpcap's MAX_BLOCKSIZE
SHB_HEAD_LEN = 16  # type, length, byte-order magic, major and minor version
VERSION_MAJOR = 1

OPT_ENDOFOPT = 0
OPT_IF_TSRESOL = 9
OPT_IF_TSOFFSET = 14

NS_PER_SEC = 1_000_000_000

# what the reader counts in ``skipped`` for blocks that carry no packet
BLOCK_NAMES = {
    BT_NRB: "name resolution block",
    BT_ISB: "interface statistics block",
    0x00000007: "irig timestamp block",
    0x00000008: "afdx information block",
    0x00000009: "systemd journal export block",
    0x0000000A: "decryption secrets block",
    BT_CUSTOM[0]: "custom block",
    BT_CUSTOM[1]: "custom block",
}


class Layout(NamedTuple):
    """Precompiled structs for one byte order."""

    u32: struct.Struct
    head: struct.Struct  # block type, total length
    shb: struct.Struct  # byte-order magic, major, minor (after type and length)
    idb: struct.Struct  # link type, reserved, snap length
    epb: struct.Struct  # interface, ts high, ts low, captured length, original length
    opb: struct.Struct  # interface (16 bits), drops, ts high, ts low, captured, original
    option: struct.Struct  # option code, option length
    i64: struct.Struct


def _layout(order: str) -> Layout:
    return Layout(*(struct.Struct(order + f) for f in ("I", "II", "IHH", "HHI", "IIIII",
                                                           "HHIIII", "HH", "q")))


LAYOUTS = {"<": _layout("<"), ">": _layout(">")}


class Interface(NamedTuple):
    """One IDB, as the packet blocks that name it need it.

    A packet's time in nanoseconds is ``ts * mult // div + offset_ns``, exact for any
    ``if_tsresol`` (a power of 10 or of 2).
    """

    linktype: int
    snaplen: int  # 0: no limit
    mult: int
    div: int
    offset_ns: int


def section_order(head: bytes) -> str | None:
    """``"<"`` or ``">"`` from an SHB's first 12 bytes, or None if the magic is wrong."""
    for order, layout in LAYOUTS.items():
        if layout.u32.unpack_from(head, 8)[0] == BYTE_ORDER_MAGIC:
            return order
    return None


def ts_scale(tsresol: int) -> tuple[int, int]:
    """``(mult, div)`` turning ``if_tsresol`` units into nanoseconds.

    The high bit chooses a power of 2 (``2**-n`` seconds), otherwise a power of 10.
    """
    exponent = tsresol & 0x7F
    if tsresol & 0x80:
        return NS_PER_SEC, 1 << exponent
    if exponent <= 9:
        return 10 ** (9 - exponent), 1
    return 1, 10 ** (exponent - 9)


def ts_ns(high: int, low: int, mult: int, div: int, offset_ns: int) -> int:
    """A packet block's timestamp (its two 32-bit halves) in nanoseconds since the epoch,
    by its interface's ``mult``/``div`` and ``if_tsoffset``: the one Python definition, for
    the reader's fast and general paths (the C engine's is ``Engine_pcapng``)."""
    return ((high << 32) | low) * mult // div + offset_ns


def iter_options(body: bytes, layout: Layout) -> list[tuple[int, bytes]]:
    """The ``(code, value)`` options of a block's option area, up to opt_endofopt.

    An option whose length runs past the area ends the list (the area is bounded by the
    block, so nothing is read outside it).
    """
    options: list[tuple[int, bytes]] = []
    pos = 0
    while pos + 4 <= len(body):
        code, length = layout.option.unpack_from(body, pos)
        if code == OPT_ENDOFOPT or pos + 4 + length > len(body):
            break
        options.append((code, body[pos + 4 : pos + 4 + length]))
        pos += 4 + ((length + 3) & ~3)
    return options


def parse_idb(block: bytes, layout: Layout) -> Interface:
    """An Interface from a whole IDB (the caller checked it is at least 20 bytes)."""
    linktype, _, snaplen = layout.idb.unpack_from(block, 8)
    mult, div, offset_ns = 1000, 1, 0
    for code, value in iter_options(block[16:-4], layout):
        if code == OPT_IF_TSRESOL and len(value) >= 1:
            mult, div = ts_scale(value[0])
        elif code == OPT_IF_TSOFFSET and len(value) >= 8:
            offset_ns = layout.i64.unpack_from(value)[0] * NS_PER_SEC
    return Interface(linktype, snaplen, mult, div, offset_ns)


def block_name(btype: int) -> str:
    """The ``skipped`` key for a block that carries no packet."""
    return BLOCK_NAMES.get(btype, "unknown block")
