"""``spark.read.format("sockcap")``: capture files read by Spark with sockcap's engine.

::

    import sockcap.spark
    sockcap.spark.register(spark)
    packets = spark.read.format("sockcap").load("labs/**/*.pcap*")
    conns = spark.read.format("sockcap").option("table", "conversations").load("labs")

A Python data source (pyspark 4's :mod:`pyspark.sql.datasource`): the driver lists the
files and plans the partitions, each executor runs sockcap's pipeline on its partitions
and returns Arrow record batches. The rows are those ``sockcap export`` writes (the same
:class:`~sockcap.export.rows.TableRows`), with the schemas of
:mod:`sockcap.render.tables`, and the ``capture`` column the export's folder gives as its
partition (``capture=NAME``): ``spark.read.parquet("out/packets")`` over an export and
this source over the captures give the same rows.

Partitions: one a file; a classic pcap larger than ``maxPartitionBytes`` (Spark's default,
128 MiB) is read in byte ranges, each holding the records whose headers start in it
(:mod:`sockcap.export.split` says how the boundaries are found and why each range's task
decodes the records before its range again). Compressed and pcapng files are one
partition each.

Options (``.option(name, value)``):

- ``table``: ``packets`` (default) or ``conversations``;
- ``maxPartitionBytes``: bytes a range of a pcap file (default 134217728; 0: one
  partition a file);
- ``damaged``: ``fail`` (default: a file damaged part way fails the task, naming the
  file) or ``keep`` (keep the rows read before the damage, as ``sockcap export`` does);
- ``batchRows``: rows an Arrow batch (default 8192).

The path is a file, a folder (every capture file under it) or a glob (``**`` crosses
folders) on a file system every executor sees at the same path (a local disk in local
mode; NFS or the like on a cluster). Two files with the same partition name (the export's
``capture=NAME``) are refused, as the export refuses them.

Every executor needs ``pip install 'sockcap[spark]'`` in the Python Spark runs there
(``spark.pyspark.python`` or ``PYSPARK_PYTHON``).
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from pyspark.sql.datasource import DataSource, DataSourceReader, InputPartition
from pyspark.sql.types import (
    ArrayType,
    BinaryType,
    DataType,
    DoubleType,
    IntegerType,
    LongType,
    MapType,
    StringType,
    StructField,
    StructType,
)

from sockcap.errors import CaptureFileError, InputError, SockcapError
from sockcap.export import CAPTURE_GLOBS, TABLES, capture_name
from sockcap.export.rows import WHOLE, TableRows
from sockcap.export.sinks import GROUP_BYTES
from sockcap.export.split import pcap_window, splittable
from sockcap.i18n import _
from sockcap.pcapfile.reader import open_capture
from sockcap.pcapfile.source import open_input
from sockcap.render.tables import CONVERSATION_COLUMNS, PACKET_COLUMNS, TypeTree, type_tree

NAME = "sockcap"
SPLIT_BYTES = 128 << 20  # spark.sql.files.maxPartitionBytes' default
BATCH_ROWS = 8192
COLUMNS = {"packets": PACKET_COLUMNS, "conversations": CONVERSATION_COLUMNS}
_SCALARS: dict[str, DataType] = {"int32": IntegerType(), "int64": LongType(),
                                 "float64": DoubleType(), "string": StringType(),
                                 "binary": BinaryType()}


def register(spark: Any) -> None:
    """Make ``spark.read.format("sockcap")`` known to this session."""
    spark.dataSource.register(SockcapDataSource)


def table_schema(table: str) -> StructType:
    """A table's Spark schema: its columns, then ``capture`` (the export's partition)."""
    fields = [StructField(name, _spark(type_tree(kind))) for name, kind in COLUMNS[table]]
    return StructType([*fields, StructField("capture", StringType())])


def _spark(tree: TypeTree) -> DataType:
    kind = tree[0]
    if kind == "list":
        return ArrayType(_spark(tree[1]))  # type: ignore[arg-type]
    if kind == "map":
        return MapType(_spark(tree[1]), _spark(tree[2]))  # type: ignore[arg-type]
    if kind == "struct":
        return StructType([StructField(n, _spark(t)) for n, t in tree[1]])  # type: ignore[attr-defined]
    return _SCALARS[kind]  # type: ignore[index]


class CapturePart(InputPartition):
    """One task's input: a file, or the byte range ``[start, end)`` of a pcap file
    (``end`` None: to its end)."""

    def __init__(self, path: str, capture: str, start: int = 0, end: int | None = None) -> None:
        super().__init__((path, start, end))
        self.path = path
        self.capture = capture
        self.start = start
        self.end = end


class SockcapDataSource(DataSource):
    """The data source registered as ``sockcap``; see the module's docstring."""

    @classmethod
    def name(cls) -> str:
        return NAME

    def schema(self) -> StructType:
        return table_schema(_Options(self.options).table)

    def reader(self, schema: StructType) -> SockcapReader:
        return SockcapReader(_Options(self.options), schema)


class _Options:
    """The options, checked (a wrong one is one line naming the right ones)."""

    def __init__(self, options: Any) -> None:
        given = {str(k).lower(): str(v) for k, v in dict(options).items()}
        self.path = given.get("path", "")
        self.table = given.get("table", "packets")
        if self.table not in TABLES:
            raise InputError(_("{text!r}: the tables are {TABLES}").format(
                text=self.table, TABLES=", ".join(TABLES)))
        self.split = _count(given, "maxpartitionbytes", SPLIT_BYTES)
        self.batch = max(1, _count(given, "batchrows", BATCH_ROWS))
        self.damaged = given.get("damaged", "fail")
        if self.damaged not in ("fail", "keep"):
            raise InputError(_("damaged={value!r}: fail or keep").format(value=self.damaged))


def _count(given: dict[str, str], key: str, default: int) -> int:
    text = given.get(key)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise InputError(_("{key}={value!r}: a whole number of 0 or more").format(
            key=key, value=text))
    return value


class SockcapReader(DataSourceReader):
    def __init__(self, options: _Options, schema: StructType) -> None:
        self.options = options
        self.schema = schema

    def partitions(self) -> Sequence[CapturePart]:
        """The files' partitions, files in name order, ranges in file order."""
        parts: list[CapturePart] = []
        seen: dict[str, str] = {}
        split = self.options.split
        for path in capture_files(self.options.path):
            name = capture_name(path)
            if name in seen:
                raise InputError(_("{first} and {second} would both be capture={name}: rename "
                                   "one").format(first=seen[name], second=path, name=name))
            seen[name] = path
            size = os.path.getsize(path)
            if not split or size <= split or not splittable(path):
                parts.append(CapturePart(path, name))
                continue
            starts = range(0, size, split)
            parts.extend(CapturePart(path, name, s, s + split if s + split < size else None)
                         for s in starts)
        return parts

    def read(self, partition: InputPartition) -> Iterator[Any]:
        """Arrow record batches of the partition's rows."""
        assert isinstance(partition, CapturePart)
        if partition.start or partition.end is not None:
            window = pcap_window(partition.path, partition.start, partition.end)
            if window is None:
                return
        else:
            window = WHOLE
        batches = _Batches(self.schema, partition.capture, self.options.batch)
        with ExitStack() as stack:
            try:
                reader = open_capture(open_input(partition.path, stack))
            except SockcapError as e:  # not a capture at all: said with the file's name
                raise InputError(_("{path}: {error}").format(path=partition.path,
                                                             error=e)) from e
            rows = TableRows(partition.capture, (self.options.table,), window)
            try:
                for _table, row, size in rows.run(reader):
                    yield from batches.add(row, size)
            except CaptureFileError as e:
                if self.options.damaged == "fail":
                    raise CaptureFileError(_("{path}: {error} (option damaged=keep keeps the "
                                             "rows before it)").format(
                        path=partition.path, error=e)) from e
                for _table, row, size in rows.live():
                    yield from batches.add(row, size)
        yield from batches.flush()


class _Batches:
    """Rows held column by column until a batch is full (as the export's Parquet sink)."""

    def __init__(self, schema: StructType, capture: str, rows: int) -> None:
        from pyspark.sql.pandas.types import to_arrow_schema

        # the Arrow schema Spark checks a batch against (its list and map field names)
        self.arrow = to_arrow_schema(schema, timezone="UTC")
        self.names = tuple(schema.fieldNames()[:-1])
        self.capture = capture
        self.limit = rows
        self.columns: tuple[list[Any], ...] = tuple([] for _ in self.names)
        self.held = 0
        self.held_bytes = 0

    def add(self, row: dict[str, Any], size: int) -> Iterator[Any]:
        for column, name in zip(self.columns, self.names, strict=True):
            column.append(row[name])
        self.held += 1
        self.held_bytes += size
        if self.held >= self.limit or self.held_bytes >= GROUP_BYTES:
            yield from self.flush()

    def flush(self) -> Iterator[Any]:
        import pyarrow as pa

        if not self.held:
            return
        arrays = [pa.array(column, type=field.type)
                  for column, field in zip(self.columns, self.arrow, strict=False)]
        arrays.append(pa.array([self.capture] * self.held, type=pa.string()))
        batch = pa.RecordBatch.from_arrays(arrays, schema=self.arrow)
        for column in self.columns:
            column.clear()
        self.held = 0
        self.held_bytes = 0
        yield batch


def capture_files(path: str) -> list[str]:
    """The capture files a ``load()`` path names: a file, every capture file under a
    folder, or what a glob matches (``**``: any folders deep); sorted. A path that names
    none is one line of bad input."""
    if not path:
        raise InputError(_("spark.read.format('sockcap') needs a path: .load(PATH)"))
    if path.startswith("file:"):
        path = path[len("file:"):]
        if path.startswith("//"):
            path = path[2:]
    elif "://" in path:
        raise InputError(_("{path}: only paths every executor sees on its own file system "
                           "are read (a local disk, NFS...)").format(path=path))
    if glob.has_magic(path):
        found = [p for p in glob.glob(path, recursive=True) if os.path.isfile(p)]
    elif os.path.isdir(path):
        found = sorted({str(p) for pattern in CAPTURE_GLOBS for p in Path(path).rglob(pattern)
                        if p.is_file() and not p.name.startswith((".", "_"))})
    elif os.path.isfile(path):
        found = [path]
    else:
        raise InputError(_("no such file: {path}").format(path=path))
    if not found:
        raise InputError(_("no capture files in {path}").format(path=path))
    return sorted(found)
