"""The ``version`` command group, end to end with CliRunner; tables read by pandas and duckdb."""

from __future__ import annotations

import json

import duckdb
import pandas as pd
from typer.testing import CliRunner

from tests.store.conftest import PROVENANCE, records
from toothmcl_data.cli.app import app
from toothmcl_data.store import SplitConfig, open_version, publish

runner = CliRunner()


def _json(args):
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_version_commands(tmp_path):
    store = str(tmp_path / "store")
    dry = _json(["version", "create", store, "--dry-run"])
    assert dry == {"store": store, "would_create": True}
    created = _json(["version", "create", store])
    assert created["n_cases"] == 0
    again = runner.invoke(app, ["version", "create", store])
    assert again.exit_code != 0
    assert "already has versions" in str(again.exception)
    splits = SplitConfig(stratify_by="site")
    v1 = publish(store, records(3), message="three", provenance=PROVENANCE, splits=splits)
    v2 = publish(store, records(5), message="five", provenance=PROVENANCE, splits=splits)
    listed = _json(["version", "list", store])["versions"]
    assert [v["id"] for v in listed] == [v2.id, v1.id, created["id"]]
    assert _json(["version", "tag", store, "first", v1.id])["tags"] == ["first"]
    shown = _json(["version", "show", store, "first"])
    assert shown["card"]["counts"]["patients"] == 3
    assert shown["version"]["id"] == v1.id
    text = runner.invoke(app, ["version", "show", store])
    assert "# Dataset card" in text.output
    assert "| 5 |" in text.output
    diff = _json(["version", "diff", store, "first", "latest"])
    assert diff["added"] == ["P0003", "P0004"]
    assert diff["removed"] == []
    assert "splits" in diff["tables changed"]
    verify = _json(["version", "verify", store, "first"])
    assert verify["ok"] is True
    assert verify["cases_checked"] == 3
    out = tmp_path / "checkout"
    summary = _json(["version", "checkout", store, "latest", str(out)])
    assert summary["id"] == v2.id
    assert (out / "card.md").exists()
    cases = pd.read_parquet(out / "tables" / "cases.parquet")
    assert sorted(cases["pseudonym"]) == ["P0000", "P0001", "P0002", "P0003", "P0004"]
    n_pairs = duckdb.sql(f"select count(*) from '{out / 'tables' / 'pairs.parquet'}'").fetchall()[0][0]
    assert n_pairs == open_version(store).card()["counts"]["pairs"]
    # splits: the first three patients kept theirs
    s1 = open_version(store, "first").table("splits").to_pylist()
    s2 = {r["pseudonym"]: r["split"] for r in pd.read_parquet(out / "tables" / "splits.parquet").to_dict("records")}
    assert all(s2[r["pseudonym"]] == r["split"] for r in s1)
    assert _json(["version", "gc", store, "--grace", "0", "--dry-run"])["dry_run"] == 1
    assert _json(["version", "gc", store, "--grace", "0"])["snapshots_deleted"] == 0
    assert _json(["version", "verify", store])["ok"] is True


def test_unknown_version_is_one_clear_error(tmp_path):
    store = str(tmp_path / "s")
    publish(store, records(1), message="one")
    result = runner.invoke(app, ["version", "show", store, "v9"])
    assert result.exit_code != 0
    assert "no version 'v9'" in str(result.exception)
