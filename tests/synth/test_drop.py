"""The drop writer with the real make_patient: deterministic tree, complete ground truth, PHI in the raw drop."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from toothmcl_data.errors import ConfigError, InputError
from toothmcl_data.io.dicom import read_series
from toothmcl_data.io.mesh import read_mesh
from toothmcl_data.io.volume import read_nifti
from toothmcl_data.synth.config import SynthConfig
from toothmcl_data.synth.drop import DropSummary, write_drop
from toothmcl_data.synth.faults import FAULT_KINDS
from toothmcl_data.synth.patient import make_patient

TINY = SynthConfig(spacing_mm=0.8, ios_resolution_mm=0.6, nifti_fraction=0.5)
ROLES = {"cbct_slice", "cbct_nifti", "ios_mesh", "ios_labels", "duplicate", "foreign_series_slice"}


def _tree(root: Path) -> dict[bytes, str]:
    """Every file under ``root``: raw relative name → sha256 of its bytes."""
    out: dict[bytes, str] = {}
    for folder, _, names in os.walk(os.fsencode(root)):
        for name in names:
            path = os.path.join(folder, name)
            with open(path, "rb") as fh:
                out[os.path.relpath(path, os.fsencode(root))] = hashlib.sha256(fh.read()).hexdigest()
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("drops")
    calls: list[int] = []
    a = write_drop(base / "a", patients=3, seed=12, bad_fraction=0.67, config=TINY, progress=calls.append)
    b = write_drop(base / "b", patients=3, seed=12, bad_fraction=0.67, config=TINY)
    c = write_drop(base / "c", patients=2, seed=13, config=TINY)
    return {"a": a, "b": b, "c": c, "calls": calls}


def _truth(summary: DropSummary) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((summary.ground_truth / "truth.json").read_text())
    return doc


def test_same_seed_gives_byte_identical_trees_another_seed_differs(runs: dict[str, Any]) -> None:
    a, b, c = (_tree(runs[k].root) for k in "abc")
    assert len(a) > 100
    assert a == b
    assert set(a) != set(c)
    assert not set(a.values()) & set(c.values()) - {hashlib.sha256(b"").hexdigest()}


def test_summary_and_progress(runs: dict[str, Any]) -> None:
    a: DropSummary = runs["a"]
    on_disk = [p for p in a.drop.rglob("*") if p.is_file()]
    assert a.patients == 3
    assert a.dicom_patients + a.nifti_patients == 3
    assert a.files == len(on_disk)
    assert a.bytes == sum(p.stat().st_size for p in on_disk)
    assert sum(a.faults.values()) == 2
    assert set(a.faults) <= set(FAULT_KINDS)
    assert runs["calls"] == [1, 2, 3]
    assert runs["c"].faults == {}


def test_truth_lists_exactly_the_files_on_disk(runs: dict[str, Any]) -> None:
    for key in "ac":
        summary: DropSummary = runs[key]
        truth = _truth(summary)
        assert truth["seed"] == (12 if key == "a" else 13)
        assert SynthConfig.from_dict(truth["config"]) == TINY
        listed = [f for p in truth["patients"] for f in p["files"]]
        assert {f["role"] for f in listed} <= ROLES
        names = {os.fsencode(f["path"]) for f in listed}
        assert len(names) == len(listed)
        assert names == set(_tree(summary.drop))
        faults = [f["kind"] for p in truth["patients"] for f in p["faults"]]
        assert sorted(faults) == sorted(k for k, n in summary.faults.items() for _ in range(n))


def _cbct_untouched(patient: dict[str, Any]) -> bool:
    return not any(
        f["role"].startswith("cbct") and any(f["path"] in fault["paths"] for fault in patient["faults"])
        for f in patient["files"]
    )


def test_cbct_files_read_back_as_ground_truth(runs: dict[str, Any]) -> None:
    checked = {"dicom": 0, "nifti": 0}
    for key in "ac":
        summary: DropSummary = runs[key]
        for p in _truth(summary)["patients"]:
            if not _cbct_untouched(p):
                continue
            truth_array = np.load(summary.ground_truth / p["arrays"]["cbct"])
            labels = np.load(summary.ground_truth / p["arrays"]["cbct_labels"])
            assert truth_array.dtype == np.int16
            assert labels.dtype == np.uint8
            assert labels.shape == truth_array.shape == tuple(p["cbct"]["shape"])
            paths = [summary.drop / f["path"] for f in p["files"] if f["role"].startswith("cbct")]
            vol = read_series(paths) if p["format"] == "dicom" else read_nifti(paths[0])
            np.testing.assert_array_equal(vol.array, truth_array)
            np.testing.assert_allclose(vol.affine, p["cbct"]["affine"], atol=1e-4)
            assert p["cbct"]["spacing"] == pytest.approx([0.8, 0.8, 0.8])
            checked[p["format"]] += 1
    assert checked["dicom"] >= 2
    assert checked["nifti"] >= 1


def test_patient_files_match_make_patient_and_labels(runs: dict[str, Any]) -> None:
    """Patient i is make_patient(config, default_rng([seed, i]), i), whatever N is; scans keep their labels."""
    summary: DropSummary = runs["a"]
    entry = next(p for p in _truth(summary)["patients"] if not p["faults"])
    patient = make_patient(TINY, np.random.default_rng([12, entry["index"]]), entry["index"])
    np.testing.assert_array_equal(np.load(summary.ground_truth / entry["arrays"]["cbct"]), patient.cbct.array)
    for jaw in ("upper", "lower"):
        np.testing.assert_allclose(entry["world_from_ios"][jaw], patient.world_from_ios[jaw])
        mesh_file = next(f for f in entry["files"] if f["role"] == "ios_mesh" and f["jaw"] == jaw)
        mesh = read_mesh(summary.drop / mesh_file["path"])
        truth_labels = np.load(summary.ground_truth / entry["arrays"]["ios_labels"][jaw])
        assert mesh.labels is not None
        np.testing.assert_array_equal(mesh.labels, truth_labels)
        assert len(mesh.vertices) == mesh_file["vertices"]
        if entry["mesh_format"] != "stl":  # STL renumbers; PLY/OBJ keep the scan's vertex order
            np.testing.assert_allclose(mesh.vertices, patient.ios[jaw].vertices, atol=1e-4)
    assert entry["teeth"] == sorted(t.fdi for t in patient.anatomy.teeth)
    assert entry["missing"] == sorted(patient.anatomy.missing)
    assert set(entry["restorations"].values()) <= {"natural", "metal_crown", "implant"}


def test_phi_is_in_the_raw_drop(runs: dict[str, Any]) -> None:
    """A leak scanner fed phi.json must find the planted identity in the raw bytes (and names)."""
    summary: DropSummary = runs["a"]
    blobs: list[bytes] = []
    for folder, _, names in os.walk(os.fsencode(summary.drop)):
        for name in names:
            path = os.path.join(folder, name)
            blobs.append(path)
            with open(path, "rb") as fh:
                data = fh.read()
            blobs.append(gzip.decompress(data) if name.endswith(b".gz") and data else data)
    raw = b"\n".join(blobs)
    phi = json.loads((summary.ground_truth / "phi.json").read_text())
    truth = _truth(summary)
    assert sorted(phi) == [p["key"] for p in truth["patients"]]
    for p in truth["patients"]:
        ident = p["identity"]
        values = phi[p["key"]]
        core = [ident["patient_id"], f"{ident['family']}_{ident['given']}", f"{ident['given']} {ident['family']}"]
        assert set(core) <= set(values)
        for value in core:
            assert value.encode() in raw, (p["key"], value)
        if p["format"] == "dicom" and not p["faults"]:
            missing = [v for v in values if v.encode() not in raw]
            assert missing == [], (p["key"], missing)  # every listed string was planted
            assert sum(v.startswith("2.25.") for v in values) > p["cbct"]["shape"][2]  # UIDs of every slice


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"patients": 0, "seed": 1}, ConfigError, r"patients must be ≥ 1, got 0"),
        ({"patients": 1, "seed": -1}, ConfigError, r"seed must be a non-negative integer, got -1"),
        ({"patients": 1, "seed": 1, "bad_fraction": 2.0}, ConfigError, r"bad_fraction must be in \[0, 1\], got 2.0"),
    ],
)
def test_refusals(tmp_path: Path, kwargs: dict[str, Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        write_drop(tmp_path, config=TINY, **kwargs)


def test_refuses_a_non_empty_output(tmp_path: Path) -> None:
    (tmp_path / "drop").mkdir()
    (tmp_path / "drop" / "old.txt").write_text("x")
    with pytest.raises(InputError, match=r"drop already exists and is not empty; .*choose another --out"):
        write_drop(tmp_path, patients=1, seed=0, config=TINY)


def test_every_fault_kind_lands_in_a_drop(tmp_path: Path) -> None:
    """14 coarse patients, all bad: every kind is injected and the truth still lists exactly the files."""
    coarse = SynthConfig(spacing_mm=1.2, ios_resolution_mm=1.0, nifti_fraction=0.25)
    summary = write_drop(tmp_path, patients=14, seed=5, bad_fraction=1.0, config=coarse)
    assert set(summary.faults) == set(FAULT_KINDS)
    truth = _truth(summary)
    listed = {os.fsencode(f["path"]) for p in truth["patients"] for f in p["files"]}
    assert listed == set(_tree(summary.drop))
    misfiled = next(f for p in truth["patients"] for f in p["faults"] if f["kind"] == "ios_misfiled")
    assert misfiled["other_patient"] in {p["key"] for p in truth["patients"]}
    bad_name = next(f for p in truth["patients"] for f in p["faults"] if f["kind"] == "non_utf8_filename")
    with pytest.raises(UnicodeDecodeError):
        os.fsencode(bad_name["paths"][0]).decode("utf-8")


@pytest.mark.parametrize("fmt", ["stl", "ply", "obj"])
def test_meshes_open_with_trimesh_and_labels_match_vertex_counts(tmp_path: Path, fmt: str) -> None:
    """What a user of the drop does first: trimesh.load(process=False) and the sidecar's label count match."""
    import trimesh

    config = SynthConfig(spacing_mm=0.8, ios_resolution_mm=0.6, mesh_formats=(fmt,))
    summary = write_drop(tmp_path / fmt, patients=1, seed=4, config=config)
    entry = _truth(summary)["patients"][0]
    meshes = [f for f in entry["files"] if f["role"] == "ios_mesh"]
    assert len(meshes) == 2
    for f in meshes:
        path = summary.drop / f["path"]
        assert path.suffix == f".{fmt}"
        loaded = trimesh.load(path, process=False)
        sidecar = json.loads(path.with_suffix(".json").read_text())
        assert len(sidecar["labels"]) == len(sidecar["instances"]) == len(loaded.vertices)
        ours = read_mesh(path)
        truth = np.load(summary.ground_truth / entry["arrays"]["ios_labels"][f["jaw"]])
        np.testing.assert_array_equal(ours.labels, truth)
        # Our reader's vertices are trimesh's (STL: merged corners), in the same frame.
        np.testing.assert_allclose(np.unique(loaded.vertices, axis=0), np.unique(ours.vertices, axis=0), atol=1e-6)
