"""``sockcap export FILE... --to DIR``: captures as tables for DuckDB, Spark, Polars...

The command wires the edge: it names each capture's partition, hands the files to the
process pool (:mod:`sockcap.export.pool`), shows progress on a terminal and a summary at
the end. A file that fails is reported on its own line; the others are still exported,
and the exit code is the first failure's.
"""

from __future__ import annotations

import sys
from typing import TextIO

import click

from sockcap.commands.options import FiniteFloat
from sockcap.i18n import _


@click.command("export", help=_('Write packets and conversations of capture files as Parquet tables (one partition per file).\n'
               '\n'
               '\b\n'
               'DIR/packets/capture=NAME/part-0.parquet\n'
               '    one row per packet (show --json)\n'
               'DIR/conversations/capture=NAME/part-0.parquet\n'
               '    one row per conversation (stats --json + Zeek conn.log + Community ID)\n'
               '\n'
               '\b\n'
               'sockcap capture -q -G 3600 -w "lab/%Y%m%d-%H%M.pcap"  (a file an hour)\n'
               'sockcap export --follow lab --out tables  (each finished file once)'))
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--out", "out", type=click.Path(file_okay=False), metavar="DIR",
              help=_("Folder to write the tables to (made if missing)."))
@click.option("--to", "out_alias", type=click.Path(file_okay=False), hidden=True)  # older name
@click.option("--tables", default="packets,conversations", show_default=True,
              help=_("Tables to write, comma-separated: packets, conversations."))
@click.option("--format", "fmt", type=click.Choice(["parquet", "ndjson"]), default="parquet",
              show_default=True, help=_("Parquet (needs pyarrow) or one JSON object a line."))
@click.option("--jobs", "-j", type=click.IntRange(1, 256), default=None,
              help=_("Files exported at once, one process each (default: one per core)."))
@click.option("--follow", "follow", type=click.Path(file_okay=False), default=None, metavar="DIR",
              help=_("Export each finished capture file in DIR once, as files come, until "
                     "interrupted (a manifest in the --out folder remembers them)."))
@click.option("--once", is_flag=True,
              help=_("With --follow: export what is finished now, then exit."))
@click.option("--settle", type=FiniteFloat(0, 10_000_000), default=5.0, show_default=True, metavar="S",
              help=_("With --follow: a file unchanged for S seconds and not locked by "
                     "sockcap capture is finished."))
@click.option("--interval", type=FiniteFloat(0.1, 10_000_000), default=2.0, show_default=True,
              metavar="S", help=_("With --follow: seconds between looks at DIR."))
def export(files: tuple[str, ...], out: str | None, out_alias: str | None, tables: str,
           fmt: str, jobs: int | None, follow: str | None, once: bool, settle: float,
           interval: float) -> None:
    out = out or out_alias
    if out is None:
        raise click.MissingParameter(param_hint="'--out'", param_type="option")
    if follow is not None:
        if files:
            raise click.UsageError(_("--follow DIR exports the files in DIR: give no FILES"))
        follow_command(follow, out, _tables(tables), fmt, once=once, settle=settle,
                       interval=interval)
        return
    if not files:
        raise click.UsageError(_("give capture FILES, or --follow DIR"))
    if once:
        raise click.UsageError(_("--once goes with --follow DIR"))
    export_command(files, out, _tables(tables), fmt, jobs)


def _tables(text: str) -> tuple[str, ...]:
    from sockcap.export import TABLES

    names = tuple(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))
    unknown = [t for t in names if t not in TABLES]
    if unknown or not names:
        raise click.BadParameter(_("{text!r}: the tables are {TABLES}").format(text=', '.join(unknown) or text, TABLES=', '.join(TABLES)), param_hint="--tables")
    return names


def export_command(files: tuple[str, ...], out: str, tables: tuple[str, ...], fmt: str,
                   jobs: int | None) -> None:
    from sockcap.errors import InputError
    from sockcap.export import capture_name, need
    from sockcap.export.job import ExportJob
    from sockcap.export.pool import default_jobs, run_jobs
    from sockcap.output import Output

    if fmt == "parquet":
        need("pyarrow", "sockcap export")
    names = [capture_name(f) for f in files]
    seen: dict[str, str] = {}
    for f, name in zip(files, names, strict=True):
        if name in seen:
            raise InputError(_("{first} and {second} would both be capture={name}: rename "
                               "one").format(first=seen[name], second=f, name=name))
        seen[name] = f
    if files.count("-") and len(files) > 1:
        raise InputError(_("standard input (-) can only be exported on its own"))
    output = Output()
    progress = _Progress(sys.stderr)
    work = [ExportJob(f, n, out, tables, fmt) for f, n in zip(files, names, strict=True)]
    results = run_jobs(work, jobs or default_jobs(len(work)), progress.show)
    progress.clear()
    failed = [r for r in results if r.error]
    for r in failed:
        output.note(_("sockcap: {path}: {error}").format(path=r.path, error=r.error))
    seconds = max(progress.seconds, 1e-9)
    packets = sum(r.packets for r in results)
    output.line(_("exported {files} of {total} files to {out} in {seconds:.2f} s "
                  "({rate:,.0f} packets/s)").format(
        files=len(results) - sum(1 for r in failed if not r.packets), total=len(results),
        out=out, seconds=seconds, rate=packets / seconds))
    for table in tables:
        rows = sum(r.rows.get(table, 0) for r in results)
        size = sum(r.sizes.get(table, 0) for r in results)
        output.line(_("  {table}: {rows:,} rows, {size:,} bytes").format(
            table=table, rows=rows, size=size))
    output.flush()
    if failed:
        from sockcap.export import ExportFailedError

        raise ExportFailedError(_("{count} of {total} files had errors").format(
            count=len(failed), total=len(results)), failed[0].exit_code)


def follow_command(folder: str, out: str, tables: tuple[str, ...], fmt: str, *, once: bool,
                   settle: float, interval: float) -> None:
    """Export every finished file of ``folder`` as it comes (``once``: those finished now)."""
    import time

    from sockcap.export import need
    from sockcap.export.follow import Follower
    from sockcap.output import Output
    from sockcap.signals import sigterm_raises

    if fmt == "parquet":
        need("pyarrow", "sockcap export")
    output = Output()
    with sigterm_raises(), Follower(folder, out, tables, fmt, settle=settle,
                                    report=output.note) as follower:
        while True:
            for r in follower.run_once():
                output.line(_("exported {path} as capture={name}: {packets:,} packets").format(
                    path=r.path, name=r.capture, packets=r.packets))
                if r.error and r.packets:
                    output.note(_("sockcap: {path}: {error}").format(path=r.path, error=r.error))
            output.flush()
            if once:
                return
            time.sleep(interval)


class _Progress:
    """``3/8 files, 1,234,567 packets, 95,000 packets/s`` on one line of a terminal."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.seconds = 0.0
        self._shown = False

    def show(self, done: int, files: int, packets: int, seconds: float) -> None:

        self.seconds = seconds
        if not self.tty:
            return
        rate = packets / seconds if seconds > 0 else 0.0
        text = _("{done}/{files} files, {packets:,} packets, {rate:,.0f} packets/s").format(
            done=done, files=files, packets=packets, rate=rate)
        self.stream.write("\r\x1b[K" + text)
        self.stream.flush()
        self._shown = True

    def clear(self) -> None:
        if self._shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
