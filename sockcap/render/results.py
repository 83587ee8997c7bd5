"""A query's result (column names and rows) as an aligned table, JSON lines or CSV (pure).

Values print as they read: bytes as hex, null as ``-`` in the table (``null`` in JSON,
empty in CSV), nested values (structs, maps, lists) as JSON.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence
from typing import Any

from sockcap.i18n import _


def _plain(value: Any) -> Any:
    """A value JSON can hold: bytes as hex, dates and decimals as text."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    plain = _plain(value)
    if isinstance(plain, dict | list):
        return json.dumps(plain, ensure_ascii=False, separators=(",", ":"))
    return str(plain)


def result_table(names: Sequence[str], rows: Sequence[Sequence[Any]]) -> Iterator[tuple[str, str]]:
    """``(line, style)`` pairs: a header, the rows, a count."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(n), *(len(r[i]) for r in cells)]) for i, n in enumerate(names)]
    yield "  ".join(n.ljust(w) for n, w in zip(names, widths, strict=True)).rstrip(), "bold"
    for r in cells:
        yield "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip(), ""
    yield _("({count} rows)").format(count=len(rows)), "dim"


def result_json(names: Sequence[str], rows: Sequence[Sequence[Any]]) -> Iterator[str]:
    """One JSON object a row."""
    for row in rows:
        yield json.dumps({n: _plain(v) for n, v in zip(names, row, strict=True)},
                         ensure_ascii=False, separators=(",", ":"))


def result_csv(names: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """The rows as CSV text with a header line (RFC 4180 quoting)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(names)
    for row in rows:
        writer.writerow(["" if v is None else _cell(v) for v in row])
    return buffer.getvalue()
