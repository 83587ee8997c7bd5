"""The export tables' Arrow schemas, built from the column lists of
:mod:`sockcap.render.tables` (the one place the columns are named and typed)."""

from __future__ import annotations

import pyarrow as pa

from sockcap.render.tables import CONVERSATION_COLUMNS, PACKET_COLUMNS, TypeTree, type_tree

_SCALARS = {"int32": pa.int32(), "int64": pa.int64(), "float64": pa.float64(),
            "string": pa.string(), "binary": pa.binary()}


def arrow_type(name: str) -> pa.DataType:
    """``int64``, ``list<string>``, ``map<string, int64>``, ``struct<a: int64, b: int64>``."""
    return _arrow(type_tree(name))


def _arrow(tree: TypeTree) -> pa.DataType:
    kind = tree[0]
    if kind == "list":
        return pa.list_(_arrow(tree[1]))  # type: ignore[arg-type]
    if kind == "map":
        return pa.map_(_arrow(tree[1]), _arrow(tree[2]))  # type: ignore[arg-type]
    if kind == "struct":
        return pa.struct([(n, _arrow(t)) for n, t in tree[1]])  # type: ignore[attr-defined]
    return _SCALARS[kind]  # type: ignore[index]


def schema_of(columns: tuple[tuple[str, str], ...]) -> pa.Schema:
    return pa.schema([(name, arrow_type(kind)) for name, kind in columns])


SCHEMAS = {"packets": schema_of(PACKET_COLUMNS),
           "conversations": schema_of(CONVERSATION_COLUMNS)}
