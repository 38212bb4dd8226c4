"""Patient matching across modalities: header > folder > manifest, conflicts reported, never guessed."""

from __future__ import annotations

from pathlib import Path

import pytest

from toothmcl_data.io.discover import FileRecord
from toothmcl_data.io.match import Unit, folder_key, match_units, read_manifest


def _unit(path: str, header: str | None, kind: str = "mesh") -> Unit:
    record = FileRecord(path=path, size=1, sha256=path.encode().hex().ljust(64, "0")[:64], kind="mesh", fmt="ply")
    return Unit(kind, (record,), header)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("path", "kind", "key"),
    [
        ("PACS/DOE_J/2020/IM1", "series", "doe_j"),
        ("IOS/Doe_J/up.stl", "mesh", "doe_j"),
        ("Doe_J/up.stl", "mesh", "doe_j"),
        ("up.stl", "mesh", ""),
        ("batch2/PACS/DOE_J/2020/IM1", "series", "doe_j"),  # nested drops keep the patient folder
        ("batch2/PLAN/Doe_J/cbct.nii.gz", "volume", "doe_j"),
    ],
)
def test_folder_key(path: str, kind: str, key: str) -> None:
    assert folder_key(path, kind) == key  # type: ignore[arg-type]


def test_trust_order_and_conflicts() -> None:
    units = [
        _unit("PACS/doe/s1/IM1", "MR1", "series"),
        _unit("PLAN/DOE/cbct.nii.gz", None, "volume"),  # no header: folder decides
        _unit("IOS/Doe/upper.ply", "MR1"),
        _unit("IOS/Doe/lower.ply", "MR2"),  # misfiled: header wins, conflict reported
        _unit("IOS/lonely/upper.ply", None),  # no header, no folder identity: manifest decides
        _unit("loose.ply", None),  # nothing at all: its own patient
    ]
    manifest = {"IOS/lonely": "MR3", "IOS/Doe/upper.ply": "MR9"}
    matches = match_units(units, manifest)
    assert [(m.patient, m.how) for m in matches] == [
        ("MR1", "header"),
        ("MR1", "folder"),
        ("MR1", "header"),
        ("MR2", "header"),
        ("MR3", "manifest"),
        (f"file:{units[5].key}", "file"),
    ]
    assert "header says 'MR2'" in matches[3].conflict
    assert "header trusted" in matches[3].conflict
    assert "manifest says 'MR9'" in matches[2].conflict
    assert matches[0].conflict == ""
    assert matches[1].conflict == ""


def test_read_manifest(tmp_path: Path) -> None:
    (tmp_path / "m.csv").write_text("path,patient_id\nIOS/x/,MR1\n")
    assert read_manifest(tmp_path / "m.csv") == {"IOS/x": "MR1"}
    (tmp_path / "bad.csv").write_text("file,who\n")
    with pytest.raises(ValueError, match="expected at least 'path' and 'patient_id'"):
        read_manifest(tmp_path / "bad.csv")
