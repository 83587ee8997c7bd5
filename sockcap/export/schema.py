"""The export tables' Arrow schemas, built from the column lists of
:mod:`sockcap.render.tables` (the one place the columns are named and typed)."""

from __future__ import annotations

import re

import pyarrow as pa

from sockcap.render.tables import CONVERSATION_COLUMNS, PACKET_COLUMNS

_SCALARS = {"int32": pa.int32(), "int64": pa.int64(), "float64": pa.float64(),
            "string": pa.string(), "binary": pa.binary()}


def arrow_type(name: str) -> pa.DataType:
    """``int64``, ``list<string>``, ``map<string, int64>``, ``struct<a: int64, b: int64>``."""
    if name in _SCALARS:
        return _SCALARS[name]
    kind, inner = re.fullmatch(r"(\w+)<(.*)>", name).groups()  # type: ignore[union-attr]
    if kind == "list":
        return pa.list_(arrow_type(inner))
    if kind == "map":
        key, value = (part.strip() for part in inner.split(",", 1))
        return pa.map_(arrow_type(key), arrow_type(value))
    fields = [field.split(":") for field in inner.split(",")]
    return pa.struct([(n.strip(), arrow_type(t.strip())) for n, t in fields])


def schema_of(columns: tuple[tuple[str, str], ...]) -> pa.Schema:
    return pa.schema([(name, arrow_type(kind)) for name, kind in columns])


SCHEMAS = {"packets": schema_of(PACKET_COLUMNS),
           "conversations": schema_of(CONVERSATION_COLUMNS)}
