"""A table's rows to one file: Parquet in row groups, or one JSON object a line.

Memory stays bounded whatever the capture's size: rows are held until a row group is
full (:data:`GROUP_ROWS` rows or :data:`GROUP_BYTES` of payload, whichever comes
first), then written and dropped. A sink writes to ``.NAME.tmp`` and renames the file to
its name on :meth:`close`, so a reader never sees half a file.
"""

from __future__ import annotations

import json
import operator
import os
from pathlib import Path
from typing import IO, Any, Protocol

from sockcap.render.tables import ndjson_packet

# rows per Parquet row group: a conversation's row holds more (nested) values
GROUP_ROWS = {"packets": 8192, "conversations": 4096}
GROUP_BYTES = 8 << 20  # ... or payload bytes held, for captures of 64 KiB segments
# the columns written with Parquet's dictionary encoding: those whose values repeat
# (addresses, codes, Zeek's letters). pyarrow's default tries it on every column and
# falls back page by page for the numbers, times and payloads that rarely repeat: on the
# bench's 1M file that cost ~5 % of the export's CPU and made the files 15 % larger
# (bench/RESULTS.md, issue 23). The tables' values are the same either way.
DICTIONARY = {
    "packets": ("src", "dst", "proto", "flags", "phase", "from", "truncated", "notes",
                "tunnel"),
    "conversations": ("proto", "roles", "notes", "ended", "id.orig_h", "id.resp_h",
                      "conn_state", "history"),
}


class Sink(Protocol):
    path: Path
    rows: int

    def add(self, row: dict[str, Any], size: int = 0) -> None: ...

    def close(self) -> int:
        """Finish the file; its size in bytes."""
        ...

    def discard(self) -> None: ...


class ParquetSink:
    """Rows held until a row group is full, each as the tuple of its values in the
    schema's order (no dict kept per row), then turned into columns at once.

    Why tuples and not a list per column appended to value by value: taking a row's
    values is one C call (:func:`operator.itemgetter` over the column names) where
    appending to 22 lists was a Python loop of 22 steps a row (about 3 % of an export's
    CPU, bench/RESULTS.md); ``zip(*rows)`` then makes the columns in C. The memory held
    is the same values plus one small tuple a row.
    """

    def __init__(self, path: Path, table: str) -> None:
        import pyarrow.parquet as pq

        from sockcap.export.schema import SCHEMAS

        self.path = path
        self.rows = 0
        self._tmp = temporary(path)
        self._schema = SCHEMAS[table]
        self._values = operator.itemgetter(*self._schema.names)
        self._group_rows = GROUP_ROWS[table]
        self._writer = pq.ParquetWriter(self._tmp, self._schema, compression="zstd",
                                        use_dictionary=list(DICTIONARY[table]))
        self._held: list[tuple[Any, ...]] = []
        self._held_bytes = 0

    def add(self, row: dict[str, Any], size: int = 0) -> None:
        held = self._held
        held.append(self._values(row))
        self._held_bytes += size
        if len(held) >= self._group_rows or self._held_bytes >= GROUP_BYTES:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa

        held = self._held
        if held:
            columns = zip(*held, strict=True)
            arrays = [pa.array(column, type=field.type)
                      for column, field in zip(columns, self._schema, strict=True)]
            batch = pa.RecordBatch.from_arrays(arrays, schema=self._schema)
            self._writer.write_batch(batch, row_group_size=len(held))
            self.rows += len(held)
            held.clear()
            self._held_bytes = 0

    def add_batch(self, rows: int, columns: tuple[tuple[Any, ...], ...]) -> None:
        """A batch of the engine's column buffers (:mod:`sockcap.pipeline.columns`) as one
        row group: handed to pyarrow as they are, no Python object a row."""
        if not rows:
            return
        import pyarrow as pa

        self._flush()  # rows added one by one before it stay before it
        arrays = [column_array(field.type, rows, column)
                  for field, column in zip(self._schema, columns, strict=True)]
        batch = pa.RecordBatch.from_arrays(arrays, schema=self._schema)
        self._writer.write_batch(batch, row_group_size=rows)
        self.rows += rows

    def close(self) -> int:
        self._flush()
        self._writer.close()
        return _install(self._tmp, self.path)

    def discard(self) -> None:
        self._writer.close()
        self._tmp.unlink(missing_ok=True)


class NdjsonSink:
    """One JSON object a line; packets as ``show --json`` writes them (``payload_hex``)."""

    def __init__(self, path: Path, table: str) -> None:
        self.path = path
        self.rows = 0
        self._tmp = temporary(path)
        self._file: IO[str] = open(self._tmp, "w", encoding="utf-8")
        self._packets = table == "packets"
        self._dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode

    def add(self, row: dict[str, Any], size: int = 0) -> None:
        self._file.write(self._dumps(ndjson_packet(row) if self._packets else row) + "\n")
        self.rows += 1

    def close(self) -> int:
        self._file.close()
        return _install(self._tmp, self.path)

    def discard(self) -> None:
        self._file.close()
        self._tmp.unlink(missing_ok=True)


def column_array(type_: Any, rows: int, column: tuple[Any, ...]) -> Any:
    """One column of an engine's batch (:mod:`sockcap.pipeline.columns`) as an Arrow array
    of ``type_`` over the same buffers."""
    import pyarrow as pa

    def buf(b: bytes | None) -> Any:
        return None if b is None else pa.py_buffer(b)

    if pa.types.is_struct(type_):  # P: two int64 children, never null
        children = [pa.Array.from_buffers(type_.field(i).type, rows, [None, buf(b)])
                    for i, b in enumerate(column)]
        return pa.StructArray.from_arrays(children, fields=list(type_))
    if pa.types.is_map(type_):  # M: string keys, int64 values, never null
        offsets, key_offsets, key_data, values = column
        entries = len(key_offsets) // 4 - 1
        keys = pa.Array.from_buffers(type_.key_type, entries,
                                     [None, buf(key_offsets), buf(key_data)])
        items = pa.Array.from_buffers(type_.item_type, entries, [None, buf(values)])
        return pa.MapArray.from_arrays(
            pa.Array.from_buffers(pa.int32(), rows + 1, [None, buf(offsets)]), keys, items,
            type=type_)
    if pa.types.is_list(type_):
        offsets, child_offsets, data = column
        child = pa.Array.from_buffers(type_.value_type, len(child_offsets) // 4 - 1,
                                      [None, buf(child_offsets), buf(data)])
        return pa.Array.from_buffers(type_, rows, [None, buf(offsets)], children=[child])
    return pa.Array.from_buffers(type_, rows, [buf(b) for b in column])


def temporary(path: Path) -> Path:
    """Where a part is written until it is whole: a hidden name (a leading dot), which
    Spark's and Hadoop's file listings skip and DuckDB's ``part-*`` glob does not match,
    so a folder being exported stays readable by them all the while."""
    return path.with_name(f".{path.name}.tmp")


def _install(tmp: Path, path: Path) -> int:
    """Put the finished file in place of the partition's old parts; its size."""
    for old in path.parent.glob("part-*"):
        if old != tmp:
            old.unlink()
    os.replace(tmp, path)
    return path.stat().st_size


def open_sink(folder: Path, table: str, fmt: str) -> Sink:
    """A sink writing ``folder/part-0.<fmt>`` (the folder is made; an earlier export's
    parts there are replaced when the new one is closed)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"part-0.{fmt}"
    return ParquetSink(path, table) if fmt == "parquet" else NdjsonSink(path, table)
