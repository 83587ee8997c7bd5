"""SQL over an export folder with DuckDB: the tables are views named ``packets`` and
``conversations`` over every capture's partition (``capture`` is a column).

Either format works: the view reads the Parquet parts where there are some, else the
NDJSON parts. DuckDB's own errors (a typo in the SQL, an unknown column) become one
:class:`QueryError` line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sockcap.errors import InputError
from sockcap.export import TABLES
from sockcap.i18n import _


class QueryError(InputError):
    """The SQL could not be run."""


def _view_sql(table: str, folder: Path) -> str | None:
    """``CREATE VIEW`` for one table, or None when the folder has no parts of it."""
    base = folder / table
    for fmt, reader in (("parquet", "read_parquet"), ("ndjson", "read_json_auto")):
        if any(base.glob(f"capture=*/part-*.{fmt}")):
            pattern = str(base / "capture=*" / f"part-*.{fmt}").replace("'", "''")
            options = "hive_partitioning = true, hive_types = {'capture': VARCHAR}"
            if fmt == "ndjson":
                options += ", format = 'newline_delimited'"
            return f"CREATE VIEW {table} AS SELECT * FROM {reader}('{pattern}', {options})"
    return None


def run_query(folder: str, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Column names and rows of ``sql`` over the export in ``folder``."""
    import duckdb

    root = Path(folder)
    if not root.is_dir():
        raise InputError(_("no such folder: {path}").format(path=folder))
    con = duckdb.connect(":memory:")
    try:
        views = [v for v in (_view_sql(t, root) for t in TABLES) if v]
        if not views:
            raise InputError(_("no exported tables in {path}: run sockcap export first")
                             .format(path=folder))
        for view in views:
            con.execute(view)
        try:
            cursor = con.execute(sql)
            names = [d[0] for d in cursor.description or ()]
            return names, cursor.fetchall()
        except duckdb.Error as e:
            raise QueryError(_("query failed: {error}").format(
                error=str(e).strip().splitlines()[0])) from e
    finally:
        con.close()
