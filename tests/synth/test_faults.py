"""Bad-input injection: the plan spreads kinds, and each fault changes the files so the readers refuse them."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import trimesh

from toothmcl_data.errors import ConfigError, InputError, LabelSchemeError, MeshError, SeriesError
from toothmcl_data.io.dicom import read_series
from toothmcl_data.io.mesh import read_mesh
from toothmcl_data.io.meshwrite import renumber_by_first_appearance, write_obj, write_ply, write_stl
from toothmcl_data.io.teeth3ds import read_teeth3ds_json, write_teeth3ds_json
from toothmcl_data.io.volume import write_nifti
from toothmcl_data.synth.dicom import write_series
from toothmcl_data.synth.faults import (
    DICOM_ONLY,
    FAULT_KINDS,
    FaultKind,
    FaultRecord,
    PatientFiles,
    apply_fault,
    plan_faults,
    updated_files,
)
from toothmcl_data.synth.identity import draw_identity
from toothmcl_data.types import JAWS, Jaw, Volume


def _write_patient(root: Path, key: str, *, fmt: str = "dicom", mesh_fmt: str = "stl") -> PatientFiles:
    """A tiny patient laid out like synth.drop: 6-slice CBCT and two 42-vertex labelled jaw scans."""
    rng = np.random.default_rng(int(key[1:]))
    ident = draw_identity(rng, key)
    vol = Volume(rng.integers(0, 3000, size=(4, 3, 6)).astype(np.int16), np.diag([0.5, 0.5, 0.5, 1.0]))
    if fmt == "dicom":
        cbct = write_series(root / "PACS" / key, vol, ident, rng).paths
    else:
        (root / "PLAN" / key).mkdir(parents=True)
        cbct = (write_nifti(root / "PLAN" / key / f"{ident.file_stem}_CBCT.nii.gz", vol),)
    sphere = trimesh.creation.icosphere(subdivisions=1)
    meshes: dict[Jaw, str] = {}
    sidecars: dict[Jaw, str] = {}
    folder = root / "IOS" / key
    folder.mkdir(parents=True)
    for jaw in JAWS:
        v, f = np.asarray(sphere.vertices) * 10, np.asarray(sphere.faces)
        base = 10 if jaw == "upper" else 30
        labels = np.where(v[:, 2] > 0, base + 1, 0) + np.where((v[:, 2] > 0) & (v[:, 0] > 0), 1, 0)
        instances = np.unique(labels, return_inverse=True)[1]
        stem = folder / f"{ident.file_stem}_{jaw.title()}Jaw"
        mesh = stem.with_suffix(f".{mesh_fmt}")
        if mesh_fmt == "stl":
            order, f = renumber_by_first_appearance(f)
            v, labels, instances = v[order], labels[order], instances[order]
            write_stl(mesh, v, f, header=ident.file_stem)
        elif mesh_fmt == "ply":
            write_ply(mesh, v, f, comments=[ident.display_name])
        else:
            write_obj(mesh, v, f, comments=[ident.display_name])
        write_teeth3ds_json(stem.with_suffix(".json"), id_patient=key, jaw=jaw, labels=labels, instances=instances)
        meshes[jaw] = str(mesh.relative_to(root))
        sidecars[jaw] = str(stem.with_suffix(".json").relative_to(root))
    return PatientFiles(
        key=key,
        format="dicom" if fmt == "dicom" else "nifti",
        cbct=tuple(str(Path(p).relative_to(root)) for p in cbct),
        meshes=meshes,
        sidecars=sidecars,
    )


def _series(root: Path, files: PatientFiles) -> list[Path]:
    return sorted((root / files.cbct[0]).parent.iterdir())


# ---- the plan ---------------------------------------------------------------------------------------------
def test_plan_spreads_kinds_over_20_patients() -> None:
    plan = plan_faults(["dicom"] * 20, 0.3, np.random.default_rng(0))
    assert len(plan) == 6
    assert sorted(plan.values()) == sorted(FAULT_KINDS[:6])  # six distinct kinds, dealt in order


def test_plan_covers_every_kind_when_enough_patients_are_bad() -> None:
    formats = ["dicom", "nifti", "dicom", "dicom"] * 6
    plan = plan_faults(formats, 0.5, np.random.default_rng(1))
    assert len(plan) == 12
    assert set(plan.values()) == set(FAULT_KINDS)
    assert all(formats[i] == "dicom" for i, kind in plan.items() if kind in DICOM_ONLY)


@pytest.mark.parametrize(
    ("formats", "fraction", "expected"),
    [
        (["nifti"] * 8, 1.0, lambda kinds: not set(kinds) & DICOM_ONLY and len(kinds) == 8),
        (["dicom"], 1.0, lambda kinds: kinds == ["truncated_dicom"]),
        (["dicom"] * 5, 0.0, lambda kinds: kinds == []),
        (["dicom"] * 4, 0.5, lambda kinds: len(kinds) == 2),
        (["dicom"] * 30, 1.0, lambda kinds: max(Counter(kinds).values()) == 3),
    ],
    ids=["all-nifti", "one-patient", "none", "rounding", "cycles"],
)
def test_plan_table(formats: list[str], fraction: float, expected: object) -> None:
    plan = plan_faults(formats, fraction, np.random.default_rng(2))
    kinds = [plan[i] for i in sorted(plan)]
    assert callable(expected)
    assert expected(kinds), kinds


def test_plan_is_deterministic_and_refuses_bad_fraction() -> None:
    formats = ["dicom"] * 10
    assert plan_faults(formats, 0.4, np.random.default_rng(3)) == plan_faults(formats, 0.4, np.random.default_rng(3))
    with pytest.raises(ConfigError, match=r"bad_fraction must be in \[0, 1\], got 1.5"):
        plan_faults(formats, 1.5, np.random.default_rng(3))


# ---- each kind on files -----------------------------------------------------------------------------------
@pytest.fixture
def drop(tmp_path: Path) -> tuple[Path, PatientFiles, PatientFiles]:
    return tmp_path, _write_patient(tmp_path, "P0001"), _write_patient(tmp_path, "P0002", mesh_fmt="ply")


def _apply(drop: tuple[Path, PatientFiles, PatientFiles], kind: FaultKind) -> tuple[Path, PatientFiles, FaultRecord]:
    root, files, other = drop
    record = apply_fault(kind, root, files, np.random.default_rng(7), other=other)
    assert record.kind == kind
    assert record.paths
    for path in record.paths:
        if path not in record.removed:
            assert os.path.lexists(os.fsencode(root / path)), path
    return root, files, record


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("truncated_dicom", "DICOM file {path} declares 1 frame(s)"),
        ("zero_byte_file", "cannot read DICOM file {path}"),
        ("mixed_series", "mixes 2 DICOM series"),
        ("nonuniform_spacing", "non-uniform slice spacing in {folder}"),
        ("missing_slice", "non-uniform slice spacing in {folder}"),
        ("duplicate_file", "lie at the same slice position"),
    ],
)
def test_dicom_faults_make_read_series_name_the_file(
    drop: tuple[Path, PatientFiles, PatientFiles], kind: FaultKind, message: str
) -> None:
    root, files, record = _apply(drop, kind)
    with pytest.raises(SeriesError) as err:
        read_series(_series(root, files))
    path = root / record.paths[0]
    assert message.format(path=path, folder=path.parent) in str(err.value)
    if kind not in ("missing_slice", "nonuniform_spacing"):
        assert any(Path(p).name in str(err.value) for p in record.paths)


def test_missing_slice_removes_an_inner_slice(drop: tuple[Path, PatientFiles, PatientFiles]) -> None:
    root, files, record = _apply(drop, "missing_slice")
    assert record.removed == record.paths
    assert record.paths[0] in files.cbct[1:-1]
    assert not (root / record.paths[0]).exists()


def test_duplicate_is_an_exact_copy(drop: tuple[Path, PatientFiles, PatientFiles]) -> None:
    root, _, record = _apply(drop, "duplicate_file")
    source, copy = record.paths
    assert (root / source).read_bytes() == (root / copy).read_bytes()
    assert copy.endswith(" (1)")
    assert record.added == ((copy, "duplicate"),)


def test_mixed_series_plants_new_uids(drop: tuple[Path, PatientFiles, PatientFiles]) -> None:
    _, _, record = _apply(drop, "mixed_series")
    assert len(record.added) == 3
    assert all(role == "foreign_series_slice" for _, role in record.added)
    assert len(record.planted) == 4  # series UID + 3 SOP instance UIDs


@pytest.mark.parametrize("mesh_fmt", ["stl", "ply", "obj"])
@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("empty_mesh", "mesh is empty"),
        ("nan_vertices", "NaN or inf coordinates"),
        ("label_count_mismatch", "labels but the mesh has 42 vertices"),
    ],
)
def test_mesh_faults_make_read_mesh_name_the_file(tmp_path: Path, mesh_fmt: str, kind: FaultKind, message: str) -> None:
    files = _write_patient(tmp_path, "P0003", fmt="nifti", mesh_fmt=mesh_fmt)
    record = apply_fault(kind, tmp_path, files, np.random.default_rng(0))
    jaw: Jaw = "upper" if kind == "nan_vertices" else "lower"
    mesh = tmp_path / files.meshes[jaw]
    assert record.paths[0] in (files.meshes[jaw], files.sidecars[jaw])
    with pytest.raises(MeshError, match=message) as err:
        read_mesh(mesh)
    assert str(mesh) in str(err.value)
    if kind == "empty_mesh":
        assert mesh.stat().st_size < 1000  # the header (with its PHI) survives, the geometry does not


def test_unknown_tooth_code(drop: tuple[Path, PatientFiles, PatientFiles]) -> None:
    root, files, _ = _apply(drop, "unknown_tooth_code")
    sidecar = root / files.sidecars["upper"]
    labels = json.loads(sidecar.read_text())["labels"]
    assert {19, 59} & set(labels)
    with pytest.raises(LabelSchemeError, match="not codes of label scheme 'teeth3ds'") as err:
        read_teeth3ds_json(sidecar)
    assert str(sidecar) in str(err.value)


def test_ios_misfiled_moves_scan_into_other_patients_folder(drop: tuple[Path, PatientFiles, PatientFiles]) -> None:
    root, files, record = _apply(drop, "ios_misfiled")
    other_folder = Path(drop[2].meshes["upper"]).parent
    assert record.other_patient == "P0002"
    assert [Path(p).parent for p in record.paths] == [other_folder, other_folder]
    assert not (root / files.meshes["lower"]).exists()
    assert read_mesh(root / record.paths[0]).jaw == "lower"  # still a valid scan, just in the wrong place


def test_non_utf8_filename(drop: tuple[Path, PatientFiles, PatientFiles]) -> None:
    root, files, record = _apply(drop, "non_utf8_filename")
    folder = os.fsencode(root / Path(files.meshes["upper"]).parent)
    names = os.listdir(folder)
    bad = [n for n in names if not _is_utf8(n)]
    assert len(bad) == 2
    assert {os.fsencode(Path(p).name) for p in record.paths} == set(bad)
    assert not (root / files.meshes["upper"]).exists()
    json.loads((root / record.paths[1]).read_bytes())  # contents untouched


def _is_utf8(name: bytes) -> bool:
    try:
        name.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@pytest.mark.parametrize(
    ("kind", "other", "message"),
    [
        ("truncated_dicom", False, r"P0004: fault truncated_dicom needs a DICOM series, but the CBCT is nifti"),
        ("ios_misfiled", False, r"P0004: ios_misfiled needs another patient's files"),
        ("no_such_fault", False, r"unknown fault kind 'no_such_fault'"),
    ],
)
def test_apply_refusals(tmp_path: Path, kind: str, other: bool, message: str) -> None:
    files = _write_patient(tmp_path, "P0004", fmt="nifti")
    with pytest.raises(InputError, match=message):
        apply_fault(kind, tmp_path, files, np.random.default_rng(0))  # type: ignore[arg-type]


def test_nifti_patient_zero_byte_and_duplicate(tmp_path: Path) -> None:
    files = _write_patient(tmp_path, "P0005", fmt="nifti", mesh_fmt="obj")
    zero = apply_fault("zero_byte_file", tmp_path, files, np.random.default_rng(0))
    assert zero.paths == files.cbct
    assert (tmp_path / files.cbct[0]).stat().st_size == 0
    dup = apply_fault("duplicate_file", tmp_path, files, np.random.default_rng(0))
    assert dup.paths[1].endswith("_UpperJaw (1).obj")


def test_updated_files_follows_the_record() -> None:
    entries = [{"path": "a", "role": "cbct_slice"}, {"path": "b", "role": "ios_mesh"}, {"path": "c", "role": "x"}]
    record = FaultRecord(
        "ios_misfiled", ("B",), "moved", added=(("d", "duplicate"),), removed=("a",), renamed=(("b", "B"),)
    )
    assert updated_files(entries, record) == [
        {"path": "B", "role": "ios_mesh"},
        {"path": "c", "role": "x"},
        {"path": "d", "role": "duplicate"},
    ]
    assert record.to_dict()["renamed"] == [{"from": "b", "to": "B"}]
