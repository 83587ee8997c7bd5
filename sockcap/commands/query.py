"""``sockcap query DIR "SQL"``: SQL over exported tables with DuckDB (an optional extra)."""

from __future__ import annotations

import click

from sockcap.commands.options import color_options
from sockcap.i18n import _


@click.command("query", help=_('Run SQL over the tables `sockcap export` wrote: views `packets` and `conversations`.\n'
               '\n'
               '\b\n'
               'sockcap query out "SELECT capture, count(*) FROM packets GROUP BY capture"\n'
               'Columns with a dot are quoted: "id.orig_h".'))
@click.argument("folder", type=click.Path(file_okay=False))
@click.argument("sql")
@click.option("--json", "json_", is_flag=True, help=_("One JSON object a row."))
@click.option("--csv", "csv_", is_flag=True, help=_("CSV with a header line."))
@color_options
def query(folder: str, sql: str, json_: bool, csv_: bool, no_color: bool, color: str) -> None:
    if json_ and csv_:
        raise click.UsageError(_("--json and --csv exclude each other"))
    query_command(folder, sql, json_=json_, csv_=csv_, no_color=no_color, color=color)


def query_command(folder: str, sql: str, *, json_: bool, csv_: bool, no_color: bool,
                  color: str = "auto") -> None:
    from sockcap.export import need
    from sockcap.output import Output, color_choice

    need("duckdb", "sockcap query")
    from sockcap.export.query import run_query
    from sockcap.render.results import result_csv, result_json, result_table

    names, rows = run_query(folder, sql)
    output = Output(color=color_choice(color, no_color))
    if json_:
        output.text(result_json(names, rows))
    elif csv_:
        output.stream.write(result_csv(names, rows))
    else:
        output.lines(result_table(names, rows))
    output.flush()
