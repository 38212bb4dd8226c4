"""Content sniffing, hashing and grouping of a drop's files (DICOM never by extension)."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from toothmcl_data.io.discover import describe, discover, sniff
from toothmcl_data.io.fs import open_source
from toothmcl_data.io.group import build_units
from toothmcl_data.io.meshwrite import write_obj, write_ply, write_stl
from toothmcl_data.io.volume import write_nifti
from toothmcl_data.types import Volume

CT = Path(get_testdata_file("CT_small.dcm")).read_bytes()
TRI_V = np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0]])
TRI_F = np.array([[0, 1, 2]])


def _mesh_bytes(tmp: Path, writer: str) -> bytes:
    path = tmp / f"m.{writer}"
    {"stl": write_stl, "ply": write_ply, "obj": write_obj}[writer](path, TRI_V, TRI_F)
    return path.read_bytes()


def _nifti_bytes(tmp: Path, gz: bool) -> bytes:
    path = tmp / ("v.nii.gz" if gz else "v.nii")
    write_nifti(path, Volume(np.zeros((2, 2, 2), np.int16), np.eye(4)))
    return path.read_bytes()


@pytest.mark.parametrize(
    ("name", "make", "expected"),
    [
        ("IM00001", lambda t: CT, ("dicom", "dicom")),
        ("scan.stl", lambda t: CT, ("dicom", "dicom")),  # content wins over the suffix
        ("noext", lambda t: _nifti_bytes(t, True), ("volume", "nifti")),
        ("v.nii", lambda t: _nifti_bytes(t, False), ("volume", "nifti")),
        ("x", lambda t: _mesh_bytes(t, "stl"), ("mesh", "stl")),
        ("x", lambda t: _mesh_bytes(t, "ply"), ("mesh", "ply")),
        ("x", lambda t: _mesh_bytes(t, "obj"), ("mesh", "obj")),
        (
            "a.json",
            lambda t: json.dumps({"id_patient": "X", "jaw": "upper", "labels": [], "instances": []}).encode(),
            ("sidecar", "json"),
        ),
        ("b.json", lambda t: b'{"hello": 1}', ("other", "json")),
        ("notes.txt", lambda t: b"call the lab on monday\n", ("other", "")),
        ("e.dcm", lambda t: b"", ("empty", "")),
        ("m.obj", lambda t: b"# emptied\n", ("mesh", "obj")),
    ],
)
def test_sniff(tmp_path: Path, name: str, make: object, expected: tuple[str, str]) -> None:
    assert sniff(name, make(tmp_path)) == expected  # type: ignore[operator]


def test_describe_reads_dicom_header_and_hash() -> None:
    record = describe("a/b/IM1", CT)
    ds = pydicom.dcmread(io.BytesIO(CT))
    assert record.sha256 == hashlib.sha256(CT).hexdigest()
    assert record.size == len(CT)
    assert record.dicom is not None
    assert record.dicom.series_uid == ds.SeriesInstanceUID
    assert record.header_id == ds.PatientID


def test_discover_local_and_memory_agree(tmp_path: Path) -> None:
    import fsspec

    files = {"EXPORT/p1/IM1": CT, "EXPORT/p1/IM1 (1)": CT, "EXPORT/p1/empty": b"", "readme.txt": b"hello"}
    mem = fsspec.filesystem("memory")
    for rel, data in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(data)
        mem.pipe(f"/disc-test/{rel}", data)
    local = discover(open_source(tmp_path))
    remote = discover(open_source("memory://disc-test"))
    assert [(r.path, r.sha256, r.kind) for r in local] == [(r.path, r.sha256, r.kind) for r in remote]
    units, fates = build_units(local)
    assert [u.kind for u in units] == ["series"]
    assert len(units[0].files) == 1
    assert units[0].files[0].path == "EXPORT/p1/IM1"  # the shorter name is the original
    assert {p: f.fate for p, f in fates.items()} == {
        "EXPORT/p1/IM1 (1)": "duplicate",
        "EXPORT/p1/empty": "quarantined",
        "readme.txt": "ignored",
    }


def test_open_source_refuses_missing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        open_source(tmp_path / "nope")
