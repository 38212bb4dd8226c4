"""``toothmcl-data query``: SQL (DuckDB) over a version's catalog tables, straight from the store."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from toothmcl_data.cli.output import console


def query(
    store: Annotated[str, typer.Argument(help="Dataset store (folder or URL).")],
    sql: Annotated[
        str | None, typer.Argument(help="SQL over the tables cases, teeth, registrations, quarantine, …")
    ] = None,
    version: Annotated[str, typer.Option("--version", help="'latest', a tag, or a snapshot id.")] = "latest",
    limit: Annotated[int, typer.Option("--limit", min=1, help="Rows shown in the table view.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print all rows as a JSON list of objects.")] = False,
) -> None:
    """Run SQL over a version's tables with DuckDB; without SQL, list the tables and their columns.

    Examples: "SELECT fdi, count(*) AS n FROM teeth GROUP BY fdi ORDER BY fdi";
    "SELECT pseudonym, max(rms_mm) AS worst FROM registrations GROUP BY pseudonym ORDER BY worst DESC";
    "SELECT reason, count(*) AS n FROM quarantine GROUP BY reason ORDER BY n DESC".
    """
    from toothmcl_data.store import TABLES, open_version
    from toothmcl_data.store.query import run_query

    reader = open_version(store, version)
    if sql is None:
        tables = {n: {"rows": reader.table(n).num_rows, "columns": reader.table(n).column_names} for n in TABLES}
        if as_json:
            print(json.dumps({"version": reader.id, "tables": tables}, indent=2))
            return
        view = Table(title=f"tables of version {reader.id}")
        for column in ("table", "rows", "columns"):
            view.add_column(column)
        for name, info in tables.items():
            view.add_row(name, str(info["rows"]), ", ".join(info["columns"]))
        console.print(view)
        return
    result = run_query(reader, sql)
    if as_json:
        print(json.dumps(result.to_pylist(), indent=2, default=str))
        return
    view = Table(title=f"{result.num_rows} row(s) · version {reader.id}")
    for name in result.column_names:
        view.add_column(name)
    columns = [c.to_pylist() for c in result.slice(0, limit).columns]
    for row in zip(*columns, strict=True):
        view.add_row(*(str(v) for v in row))
    console.print(view)
    if result.num_rows > limit:
        console.print(f"… {result.num_rows - limit} more row(s); --limit N or --json shows them", highlight=False)
