"""Catalog tables: sorted, byte-deterministic Parquet, content hashes that ignore layout but not content, and
columns that would name an identity refused."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

from toothmcl_data.errors import StoreError
from toothmcl_data.store import tables

ROWS: list[dict[str, Any]] = [
    {"pseudonym": "P2", "fdi": 11, "index": 0, "slot": 8, "flags": []},
    {"pseudonym": "P1", "fdi": 21, "index": 1, "slot": 1, "flags": ["metal"]},
    {"pseudonym": "P1", "fdi": 11, "index": 0, "slot": 0, "flags": []},
]


def test_rows_are_sorted_by_key_and_bytes_do_not_depend_on_row_order() -> None:
    table = tables.to_arrow("pairs", ROWS)
    assert list(zip(table.column("pseudonym").to_pylist(), table.column("fdi").to_pylist(), strict=True)) == [
        ("P1", 11),
        ("P1", 21),
        ("P2", 11),
    ]
    assert tables.parquet_bytes(table) == tables.parquet_bytes(tables.to_arrow("pairs", ROWS[::-1]))
    assert tables.read_parquet(tables.parquet_bytes(table)).equals(table)
    assert tables.to_arrow("pairs", []).num_rows == 0


def test_content_hash_ignores_layout_columns_only() -> None:
    table = tables.to_arrow("pairs", ROWS)
    moved = tables.to_arrow("pairs", [{**r, "slot": r["slot"] + 16} for r in ROWS])
    changed = tables.to_arrow("pairs", [{**r, "fdi": 12} if r["pseudonym"] == "P2" else r for r in ROWS])
    assert tables.content_hash("pairs", table) == tables.content_hash("pairs", moved)  # slots are where, not what
    assert tables.content_hash("pairs", table) != tables.content_hash("pairs", changed)
    assert tables.content_hash("teeth", table) != tables.content_hash(
        "teeth", moved
    )  # only the pairs table's slot is layout
    a, b = {"cases": "1" * 64, "pairs": "2" * 64}, {"pairs": "2" * 64, "cases": "1" * 64}
    assert tables.version_hash(a) == tables.version_hash(b)
    assert tables.version_hash(a) != tables.version_hash({**a, "pairs": "3" * 64})


def test_filter_rows_and_refusals() -> None:
    table = tables.to_arrow("pairs", ROWS)
    assert [r["fdi"] for r in tables.filter_rows(table, "P1")] == [11, 21]
    assert tables.filter_rows(table, "P9") == []
    with pytest.raises(StoreError, match=r"column\(s\) \['patient_name'\], which name an original path"):
        tables.check_columns("cases", [{"pseudonym": "P1", "Patient_Name": "x"}], "store s")
    with pytest.raises(StoreError, match="inconsistent column types"):
        tables.to_arrow("teeth", [{"pseudonym": "P1", "fdi": 11}, {"pseudonym": "P2", "fdi": "eleven"}])
    assert isinstance(table, pa.Table)
