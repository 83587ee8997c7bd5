"""The export's tables as column buffers: what both twins of the engine hand out in
batches (``Engine.batch()`` for the packets, ``Engine.conversation_batch()`` for the
conversations), in Arrow's layout, with no Python object a row once made.

A batch is ``(rows, columns)``, a column for each of
:data:`sockcap.render.tables.PACKET_COLUMNS` (or ``CONVERSATION_COLUMNS``), by its kind
(:data:`PACKET_COLUMN_KINDS`, :data:`CONVERSATION_COLUMN_KINDS`):

- ``q`` int64, ``i`` int32, ``d`` float64: ``(validity, values)``, the values as
  little-endian machine numbers (0 where null);
- ``s`` string, ``b`` binary: ``(validity, offsets, data)``, int32 offsets (rows + 1,
  from 0) into the UTF-8 text or the bytes;
- ``L`` list<string>: ``(offsets, child offsets, child data)``: int32 offsets into the
  list of every row's strings, and those strings as above (a list is never null);
- ``P`` struct<client_to_server: int64, server_to_client: int64>: ``(first values,
  second values)``, int64 each (never null);
- ``M`` map<string, int64>: ``(offsets, key offsets, key data, values)``: int32 offsets
  into the entries, the keys' strings as above and the int64 values (never null).

``validity`` is Arrow's bitmap (a bit a row, least significant first, 1: a value), or
None when the batch holds no null. The compiled engine fills these buffers as it files
each packet (``sockcap/_speedups_columns.h``) and each conversation it forgets
(``sockcap/_speedups_convcols.h``); :func:`encode` makes the same bytes from the
reference rows (:func:`sockcap.render.tables.packet_row`,
:func:`~sockcap.render.tables.conversation_row`), which is what the pure twin hands out
and what the tests compare the compiled one against.

Pure: no I/O; pyarrow is the export's (:mod:`sockcap.export.sinks`).
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Sequence
from typing import Any

from sockcap.render.tables import BOTH_WAYS, CONVERSATION_COLUMNS, PACKET_COLUMNS

KINDS = {"int64": "q", "int32": "i", "float64": "d", "string": "s", "binary": "b",
         "list<string>": "L", BOTH_WAYS: "P", "map<string, int64>": "M"}
# the tables' column kinds, in their order (the C engine's PACKET_COLUMN_KINDS and
# CONVERSATION_COLUMN_KINDS)
PACKET_COLUMN_KINDS = "".join(KINDS[kind] for _name, kind in PACKET_COLUMNS)
CONVERSATION_COLUMN_KINDS = "".join(KINDS[kind] for _name, kind in CONVERSATION_COLUMNS)
# the two fields of a P column's struct, in their order
PAIR = ("client_to_server", "server_to_client")
_LITTLE = sys.byteorder == "little"

Batch = tuple[int, tuple[tuple[Any, ...], ...]]


def column_words() -> tuple[Any, ...]:
    """``columns()``' words for both twins: the TCP flag names by bit, the phases' JSON
    values in the engine's order, the counted notes' JSON texts, and a duplicate ACK's
    text around its number."""
    from sockcap.codes import Note, counted_json
    from sockcap.pipeline.contract import COUNTED_KINDS, PHASES
    from sockcap.render.timeline import FLAG_NAMES

    before, after = counted_json(Note.DUPLICATE_ACK).split("{n}")
    return (tuple(FLAG_NAMES), tuple(p.value for p in PHASES),
            tuple(k.value for k in COUNTED_KINDS), (before, after))


def _numbers(code: str, values: Sequence[Any]) -> bytes:
    a = array(code, [0 if v is None else v for v in values])
    if not _LITTLE:
        a.byteswap()
    return a.tobytes()


def _offsets(ends: list[int]) -> bytes:
    return _numbers("i", ends)


def _validity(values: Sequence[Any]) -> bytes | None:
    if all(v is not None for v in values):
        return None
    bits = bytearray((len(values) + 7) // 8)
    for i, v in enumerate(values):
        if v is not None:
            bits[i >> 3] |= 1 << (i & 7)
    return bytes(bits)


def _strings(values: Sequence[Any]) -> tuple[bytes, bytes]:
    """(offsets, data) of text or bytes values (None: no bytes)."""
    parts = [b"" if v is None else v if isinstance(v, bytes) else str.encode(v)
             for v in values]
    ends = [0]
    n = 0
    for part in parts:
        n += len(part)
        ends.append(n)
    if n > 0x7FFFFFFF:
        raise OverflowError(n)  # int32 offsets: the caller's batches are bounded far below
    return _offsets(ends), b"".join(parts)


def encode(rows: Sequence[tuple[Any, ...]], kinds: str = PACKET_COLUMN_KINDS) -> Batch:
    """The batch of ``rows`` (each a table's values in its column order; ``kinds``: that
    table's column kinds)."""
    columns: list[tuple[Any, ...]] = []
    by_column: list[Sequence[Any]] = (list(zip(*rows, strict=True)) if rows
                                      else [()] * len(kinds))
    for values, kind in zip(by_column, kinds, strict=True):
        if kind == "P":
            columns.append(tuple(_numbers("q", [v[name] for v in values]) for name in PAIR))
        elif kind == "M":
            ends = [0]
            for v in values:
                ends.append(ends[-1] + len(v))
            columns.append((_offsets(ends), *_strings([k for v in values for k in v]),
                            _numbers("q", [n for v in values for n in v.values()])))
        elif kind == "L":
            ends = [0]
            for v in values:
                ends.append(ends[-1] + len(v))
            columns.append((_offsets(ends), *_strings([s for v in values for s in v])))
        elif kind in "sb":
            columns.append((_validity(values), *_strings(values)))
        else:
            columns.append((_validity(values), _numbers(kind, values)))
    return len(rows), tuple(columns)
