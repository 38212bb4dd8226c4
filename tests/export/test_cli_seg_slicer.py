"""``toothmcl-data export seg`` and ``export slicer`` through the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.export import onecase
from toothmcl_data.cli.app import app
from toothmcl_data.store import CaseRecord

record = onecase.record  # fixtures shared by the seg and slicer tests
store = onecase.store

pytest.importorskip("highdicom", reason="DICOM-SEG export needs highdicom (pip install 'toothmcl[dicomseg]')")
pytest.importorskip("SimpleITK", reason="Slicer transforms need SimpleITK (pip install 'toothmcl[itk]')")
runner = CliRunner()


def test_export_seg_and_slicer_commands(tmp_path: Path, store: Path, record: CaseRecord) -> None:
    dry = runner.invoke(
        app, ["export", "seg", str(store), "--version", "v1", "--out", str(tmp_path / "s"), "--dry-run", "--json"]
    )
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.stdout)["pseudonyms"] == [record.pseudonym]
    assert not (tmp_path / "s").exists()

    result = runner.invoke(
        app, ["export", "seg", str(store), "--version", "v1", "--out", str(tmp_path / "s"), "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["cases"] == 1
    assert report["sources"] == ["rebuilt-from-store"]
    assert (tmp_path / "s" / record.pseudonym / "seg.dcm").is_file()

    result = runner.invoke(app, ["export", "slicer", str(store), "--out", str(tmp_path / "sl"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["transforms"] == len(record.registrations)
    assert (tmp_path / "sl" / record.pseudonym / "ios_upper_to_cbct.h5").is_file()

    bad = runner.invoke(app, ["export", "seg", str(store), "--out", str(tmp_path / "x"), "--case", "TMNOPE"])
    assert bad.exit_code != 0
    assert "TMNOPE" in str(bad.exception)
