"""`toothmcl-data deid run|scan` through Typer, and the leak scanner on names, bytes, gzip and Parquet."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pydicom
import pytest
from typer.testing import CliRunner

from tests.deid.conftest import KEY, DeidRun
from toothmcl_data.cli.app import app
from toothmcl_data.deid.scan import load_phi, scan_tree
from toothmcl_data.errors import ConfigError
from toothmcl_data.synth.config import SynthConfig
from toothmcl_data.synth.drop import write_drop

runner = CliRunner()


def test_scanner_searches_names_bytes_gzip_and_parquet(tmp_path: Path) -> None:
    (tmp_path / "Doe_John").mkdir()
    (tmp_path / "Doe_John" / "a.bin").write_bytes(b"\x00\x01clean")
    (tmp_path / "b.gz").write_bytes(gzip.compress(b"xx MR0048213 yy"))
    pq.write_table(pa.table({"who": ["doe^john " * 50]}), tmp_path / "t.parquet", compression="snappy")
    (tmp_path / "c.txt").write_bytes(b"ok \xd6ster")  # Latin-1 form of a non-ASCII value
    hits, skipped = scan_tree(tmp_path, ["doe_john", "MR0048213", "DOE^JOHN", "Öster", "Li"])
    found = {(h.path, h.where, h.value) for h in hits}
    assert ("Doe_John", "name", "doe_john") in found
    assert ("b.gz", "content", "MR0048213") in found
    assert ("t.parquet", "content", "DOE^JOHN") in found
    assert ("c.txt", "content", "Öster") in found
    assert skipped == ["Li"]


def test_load_phi_formats(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps({"P1": ["x1234", "y1234"], "P2": ["x1234"]}))
    (tmp_path / "b.txt").write_text("one1\n\ntwo2\n")
    assert load_phi(tmp_path / "a.json") == ["x1234", "y1234"]
    assert load_phi(tmp_path / "b.txt") == ["one1", "two2"]


def test_cli_run_dry_run_and_scan(faulty_run: DeidRun, tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_bytes(KEY)
    key.chmod(0o600)
    drop = str(faulty_run.drop.drop)
    dry = runner.invoke(
        app, ["deid", "run", drop, "--out", str(tmp_path / "o"), "--key-file", str(key), "--dry-run", "--json"]
    )
    assert dry.exit_code == 0, dry.output
    report = json.loads(dry.output)
    assert report["files"] == faulty_run.summary.files
    assert report["cases"] == 12
    assert not (tmp_path / "o").exists()
    phi = str(faulty_run.drop.ground_truth / "phi.json")
    clean = runner.invoke(app, ["deid", "scan", str(faulty_run.out), "--phi", phi, "--json"])
    assert clean.exit_code == 0, clean.output
    assert json.loads(clean.output)["hits"] == 0
    leaky = runner.invoke(app, ["deid", "scan", drop, "--phi", phi, "--json"])
    assert leaky.exit_code == 1
    assert int(re.search(r'"hits": (\d+)', leaky.output).group(1)) > 0  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--key-env", "TOOTHMCL_NO_SUCH_VAR"], "TOOTHMCL_NO_SUCH_VAR is not set"), ([], "exactly one key source")],
)
def test_cli_key_errors(tmp_path: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["deid", "run", str(tmp_path), "--out", str(tmp_path / "o"), *args])
    assert result.exit_code != 0
    assert message in str(result.exception)


def test_cli_run_set_reaches_the_deid_options(tmp_path: Path) -> None:
    """`--set` sets any DeidOptions field (here one without a flag): the written DICOM names the option."""
    write_drop(tmp_path / "synth", patients=1, seed=3, config=SynthConfig(spacing_mm=1.2, nifti_fraction=0.0))
    key = tmp_path / "key"
    key.write_bytes(KEY)
    key.chmod(0o600)
    args = ["deid", "run", str(tmp_path / "synth" / "drop"), "--key-file", str(key), "--json"]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "o"), "--set", "retain_safe_private=true"])
    assert result.exit_code == 0, result.output
    first = next((tmp_path / "o").rglob("*.dcm"))
    codes = {item.CodeValue for item in pydicom.dcmread(first).DeidentificationMethodCodeSequence}
    assert {"113100", "113107", "113111"} <= codes
    bad = runner.invoke(app, [*args, "--out", str(tmp_path / "o2"), "--set", "retain_safe_privat=true"])
    assert isinstance(bad.exception, ConfigError)
    assert "retain_safe_privat" in str(bad.exception)
    assert not (tmp_path / "o2").exists()
