"""``sockcap export`` and ``sockcap query``: captures as Parquet (or NDJSON) tables, and
SQL over them with DuckDB.

An edge package: it opens capture files, writes table files and runs processes. The rows
are those of the pure views in :mod:`sockcap.render.tables`; Parquet's two tables come
from the engine as column batches (:mod:`sockcap.pipeline.columns`, the same values); pyarrow (for
Parquet) and duckdb are optional extras (``pip install 'sockcap[export]'``), imported
only here and only when used.

- :mod:`~sockcap.export.schema`: the tables' Arrow schemas, from the column lists;
- :mod:`~sockcap.export.sinks`: a table's rows to a file, in bounded row groups;
- :mod:`~sockcap.export.job`: one capture file to its partitions (one pipeline pass);
- :mod:`~sockcap.export.pool`: many files across processes, with progress;
- :mod:`~sockcap.export.query`: DuckDB views over an export folder.

Layout of an export folder (hive partitions, one per capture file)::

    DIR/packets/capture=NAME/part-0.parquet
    DIR/conversations/capture=NAME/part-0.parquet
"""

from __future__ import annotations

import re
from pathlib import Path

from sockcap.errors import ExitCode, InputError, SockcapError

TABLES = ("packets", "conversations")
FORMATS = ("parquet", "ndjson")
# suffixes a capture's partition name goes without (a compressed capture's two included)
# the files of a folder that are read as captures (compressed or not, rotated or not)
CAPTURE_GLOBS = ("*.pcap*", "*.cap", "*.cap.*", "*.ntar", "*.ntar.*")
NAME_SUFFIXES = (".gz", ".zst", ".lz4", ".pcapng", ".pcap", ".cap", ".ntar")


class MissingExtraError(InputError):
    """An optional dependency (pyarrow, duckdb) is not installed."""


class ExportFailedError(SockcapError):
    """Some files could not be exported (each was reported); the first one's exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = ExitCode(exit_code)


def need(module: str, command: str) -> None:
    """Raise :class:`MissingExtraError` unless ``module`` can be imported."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        from sockcap.i18n import _

        raise MissingExtraError(_("{command} needs {module}: pip install 'sockcap[export]'")
                                .format(command=command, module=module))


def capture_name(path: str) -> str:
    """The partition name of a capture file: its name without the capture suffixes,
    characters other than letters, digits, ``.``, ``_`` and ``-`` as ``_``."""
    if path == "-":
        return "stdin"
    name = Path(path).name
    for suffix in NAME_SUFFIXES:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)
