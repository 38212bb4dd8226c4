"""SQL over a version's catalog tables with DuckDB, straight from the store (no checkout).

Each table of the version (:data:`~toothmcl_data.store.layout.TABLES`: ``cases``, ``scans``, ``teeth``, ``pairs``,
``registrations``, ``inventory``, ``quarantine``, ``splits``, ``provenance``) is read from its stored Parquet
bytes and registered in an in-memory DuckDB database under its own name, so ``SELECT … FROM teeth JOIN cases
USING (pseudonym)`` works as written. A table with no rows in this version may also have no columns (nothing
defined them); it is registered as an empty table with one placeholder column ``_empty``.

Example queries (the README's):

- teeth per FDI: ``SELECT fdi, count(*) AS n FROM teeth GROUP BY fdi ORDER BY fdi``
- cases by registration residual: ``SELECT pseudonym, max(rms_mm) AS worst_rms_mm FROM registrations
  GROUP BY pseudonym ORDER BY worst_rms_mm DESC``
- quarantine reasons: ``SELECT reason, count(*) AS n FROM quarantine GROUP BY reason ORDER BY n DESC``
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from toothmcl_data.errors import DependencyError, InputError
from toothmcl_data.store.layout import TABLES
from toothmcl_data.store.reader import VersionReader

EMPTY_COLUMN = "_empty"
"""The placeholder column of a table that has neither rows nor columns in a version."""


def _duckdb() -> Any:
    try:
        import duckdb
    except ImportError as err:
        raise DependencyError(
            "querying a version needs DuckDB: pip install 'toothmcl[query]' (or pip install duckdb)"
        ) from err
    return duckdb


def connect(reader: VersionReader) -> Any:
    """An in-memory DuckDB connection with every catalog table of the version registered under its name."""
    duckdb = _duckdb()
    con = duckdb.connect(":memory:")
    for name in TABLES:
        table = reader.table(name)
        if table.num_columns:
            con.register(name, table)
        else:
            con.execute(f'CREATE TABLE "{name}" ("{EMPTY_COLUMN}" BOOLEAN)')
    return con


def describe_tables(reader: VersionReader) -> str:
    """``cases (12 rows), teeth (340 rows), …``: the tables a query can name, for messages."""
    return ", ".join(f"{name} ({reader.table(name).num_rows} rows)" for name in TABLES)


def run_query(reader: VersionReader, sql: str) -> pa.Table:
    """Run ``sql`` over the version's tables and return the result (an empty table for a statement without one).

    Raises :class:`InputError` with DuckDB's message and the version's tables when the query fails (unknown
    table or column, syntax error …).
    """
    duckdb = _duckdb()
    con = connect(reader)
    try:
        relation = con.sql(sql)
        if relation is None:
            return pa.table({})
        fetch = getattr(relation, "to_arrow_table", None) or relation.fetch_arrow_table
        result: pa.Table = fetch()
        return result
    except duckdb.Error as err:
        first = str(err).splitlines()[0]
        hint = f"tables in version {reader.id}: {describe_tables(reader)}"
        if isinstance(err, duckdb.CatalogException):
            raise InputError(f"query: {first}; {hint}") from err
        empty = [n for n in TABLES if reader.table(n).num_columns == 0]
        if isinstance(err, duckdb.BinderException) and empty:
            hint += f"; empty in this version (no columns): {', '.join(empty)}"
        raise InputError(f"query failed: {first}; {hint}") from err
    finally:
        con.close()
