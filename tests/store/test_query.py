"""DuckDB over a version's catalog tables: the README's three example queries, joins, errors, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.export.conftest import build_export_store
from toothmcl_data.errors import InputError
from toothmcl_data.store import TABLES, open_version
from toothmcl_data.store.query import run_query

pytest.importorskip("duckdb", reason="DuckDB is not installed (pip install 'toothmcl[query]')")

TEETH_PER_FDI = "SELECT fdi, count(*) AS n FROM teeth GROUP BY fdi ORDER BY fdi"
CASES_BY_RESIDUAL = (
    "SELECT pseudonym, round(max(rms_mm), 3) AS worst_rms_mm FROM registrations "
    "GROUP BY pseudonym ORDER BY worst_rms_mm DESC"
)
QUARANTINE_REASONS = "SELECT reason, count(*) AS n FROM quarantine GROUP BY reason ORDER BY n DESC, reason"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_export_store(tmp_path_factory.mktemp("query") / "store")


def test_teeth_per_fdi(store: Path) -> None:
    rows = run_query(open_version(store, "v1"), TEETH_PER_FDI).to_pylist()
    counts = {r["fdi"]: r["n"] for r in rows}
    assert len(counts) == 28  # no third molars in the coarse patients
    assert counts[36] == 4  # P0003 has no row for 36
    assert counts[11] == 5
    assert 18 not in counts


def test_cases_by_residual(store: Path) -> None:
    rows = run_query(open_version(store, "v1"), CASES_BY_RESIDUAL).to_pylist()
    assert [(r["pseudonym"], r["worst_rms_mm"]) for r in rows] == [
        ("P0004", 0.5),
        ("P0003", 0.4),
        ("P0002", 0.3),
        ("P0001", 0.2),
        ("P0000", 0.1),
    ]  # IOS0001 has no registration


def test_quarantine_reasons(store: Path) -> None:
    rows = run_query(open_version(store, "v1"), QUARANTINE_REASONS).to_pylist()
    assert rows == [{"reason": "truncated DICOM", "n": 2}, {"reason": "empty mesh", "n": 1}]


def test_join_across_tables_and_empty_tables(store: Path) -> None:
    reader = open_version(store, "v1")
    joined = "SELECT split, count(*) AS n FROM cases JOIN splits USING (pseudonym) WHERE has_cbct GROUP BY 1 ORDER BY 1"
    assert run_query(reader, joined).to_pylist() == [
        {"split": "test", "n": 1},
        {"split": "train", "n": 2},
        {"split": "val", "n": 2},
    ]
    assert run_query(reader, "SELECT count(*) AS n FROM inventory").to_pylist() == [{"n": 0}]
    with pytest.raises(InputError, match=r"empty in this version \(no columns\): inventory"):
        run_query(reader, "SELECT sha256 FROM inventory")


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELECT * FROM patients", r"patients does not exist.*tables in version \w+: cases \(6 rows\), scans"),
        ("SELECT nope FROM cases", r"query failed: Binder Error.*nope"),
        ("SELEC 1", r"query failed: Parser Error"),
    ],
)
def test_errors_name_the_tables(store: Path, sql: str, message: str) -> None:
    with pytest.raises(InputError, match=message) as info:
        run_query(open_version(store, "v1"), sql)
    assert all(name in str(info.value) for name in TABLES)


def test_cli_query_json_table_and_table_list(store: Path) -> None:
    from toothmcl_data.cli.app import app

    runner = CliRunner()
    done = runner.invoke(app, ["query", str(store), "--version", "v1", QUARANTINE_REASONS, "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.output) == [{"reason": "truncated DICOM", "n": 2}, {"reason": "empty mesh", "n": 1}]
    shown = runner.invoke(app, ["query", str(store), "--version", "v1", TEETH_PER_FDI, "--limit", "3"])
    assert shown.exit_code == 0, shown.output
    assert "28 row(s)" in shown.output
    assert "25 more row(s)" in shown.output
    listed = runner.invoke(app, ["query", str(store), "--json"])
    tables = json.loads(listed.output)["tables"]
    assert tables["quarantine"] == {"rows": 3, "columns": ["case", "reason", "role"]}
    assert list(tables) == list(TABLES)
    bad = runner.invoke(app, ["query", str(store), "SELECT * FROM nope"])
    assert bad.exit_code != 0
    assert isinstance(bad.exception, InputError)
