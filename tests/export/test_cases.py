"""The export plan: every case with its keyed split and what it holds; staged folders that appear whole or not
at all; reports that count what was written."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.export.conftest import EXPECTED_SPLITS
from toothmcl_data.errors import InputError
from toothmcl_data.export.cases import ExportCase, ExportReport, plan_cases, staged_folder, write_json
from toothmcl_data.store import open_version


def test_plan_lists_every_case_with_its_split_and_contents(export_store: Path) -> None:
    plan = plan_cases(open_version(export_store, "v1"))
    assert [c.pseudonym for c in plan] == sorted(EXPECTED_SPLITS)
    assert {c.pseudonym: c.split for c in plan} == EXPECTED_SPLITS
    by = {c.pseudonym: c for c in plan}
    assert by["IOS0001"] == ExportCase("IOS0001", "val", False, False, ("upper", "lower"))
    assert (by["P0002"].has_cbct, by["P0002"].has_labels) == (True, False)
    assert by["P0001"].jaws == ("upper", "lower")


def _fail_half_way(out: Path) -> None:
    with staged_folder(out, "nnunet") as stage:
        (stage / "a.txt").write_text("half")
        raise RuntimeError("disk full")


def _write_nothing(out: Path) -> None:
    with staged_folder(out, "nnunet"):
        pass


def test_staged_folder_appears_only_when_the_block_succeeds(tmp_path: Path) -> None:
    out = tmp_path / "nnunet"
    with pytest.raises(RuntimeError, match="disk full"):
        _fail_half_way(out)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # no .partial left behind
    with staged_folder(out, "nnunet") as stage:
        write_json(stage / "sub" / "doc.json", {"n": 1})
    assert (out / "sub" / "doc.json").read_text() == '{\n  "n": 1\n}\n'
    with pytest.raises(InputError, match="already exists and is not an empty folder"):
        _write_nothing(out)
    with staged_folder(tmp_path / "dry", "nnunet", dry_run=True) as stage:
        assert stage == tmp_path / "dry"
    assert not (tmp_path / "dry").exists()


def test_report_counts_cases_per_split(tmp_path: Path) -> None:
    report = ExportReport("monai", tmp_path, "v1")
    case = ExportCase("P1", "val", True, True, ())
    report.add(case, [tmp_path / "images" / "P1.nii.gz", tmp_path / "labels" / "P1.nii.gz"])
    report.skipped["P2"] = "no CBCT label map"
    doc = report.to_dict()
    assert doc["cases"] == {"train": 0, "val": 1, "test": 0}
    assert doc["written"]["val"] == ["P1"]
    assert doc["files"] == 2
    assert report.files == ["images/P1.nii.gz", "labels/P1.nii.gz"]
    assert doc["skipped"] == {"P2": "no CBCT label map"}
