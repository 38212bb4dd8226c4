"""Import round-trip: public-format files in, export out — labels, ids, geometry and vertex order unchanged.

ToothFairy2 (.mha + ids, nnU-Net layout) → store → nnU-Net export (NIfTI) and Teeth3DS (OBJ + JSON) → store →
Teeth3DS export, on files written to those datasets' published layouts (``tests/adapters/conftest.py``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import trimesh

from tests.adapters.conftest import T3DS_IDS, TF2_LABELS, make_teeth3ds, patient, toothfairy2_labels
from tests.export.conftest import oblique
from toothmcl_data.adapters import teeth3ds, toothfairy2
from toothmcl_data.adapters.toothfairy2 import write_mha
from toothmcl_data.export.nnunet import export_nnunet
from toothmcl_data.export.teeth3ds import export_teeth3ds, instances_from_labels
from toothmcl_data.fdi import from_fdi
from toothmcl_data.io.mesh import read_mesh
from toothmcl_data.io.teeth3ds import read_teeth3ds_json
from toothmcl_data.store import open_version
from toothmcl_data.types import Volume

sitk = pytest.importorskip("SimpleITK", reason="ToothFairy2 .mha files need SimpleITK (pip install 'toothmcl[itk]')")

TF2_IDS = ("ToothFairy2F_001", "ToothFairy2P_004")  # both in the train split of the default SplitConfig


def make_oblique_toothfairy2(root: Path) -> Path:
    """A ToothFairy2 folder whose two cases lie on a rotated, k-reversed grid (ITK direction not identity)."""
    p = patient()
    affine = oblique(p.cbct.affine)
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    for case in TF2_IDS:
        write_mha(root / "imagesTr" / f"{case}_0000.mha", Volume(p.cbct.array, affine))
        write_mha(root / "labelsTr" / f"{case}.mha", Volume(toothfairy2_labels(p), affine))
    meta = {"channel_names": {"0": "CBCT"}, "labels": TF2_LABELS, "numTraining": 2, "file_ending": ".mha"}
    (root / "dataset.json").write_text(json.dumps(meta))
    return root


def test_toothfairy2_to_nnunet_keeps_ids_tooth_labels_voxels_and_geometry(tmp_path: Path) -> None:
    src = make_oblique_toothfairy2(tmp_path / "Dataset112_ToothFairy2")
    store = tmp_path / "store"
    toothfairy2.import_folder(src, store, tag="tf2")
    out = tmp_path / "nnUNet_raw" / "Dataset112_ToothFairy2Teeth"
    report = export_nnunet(open_version(store, "tf2"), out)
    assert sorted(report.written["train"] + report.written["val"]) == list(TF2_IDS)  # case ids survive
    fdi_of_label = json.loads((out / "dataset.json").read_text())["fdi_of_label"]
    lut = np.zeros(256, dtype=np.int16)
    for cls, fdi in fdi_of_label.items():
        lut[int(cls)] = fdi
    for case in TF2_IDS:
        image_in = sitk.ReadImage(str(src / "imagesTr" / f"{case}_0000.mha"))
        label_in = sitk.GetArrayFromImage(sitk.ReadImage(str(src / "labelsTr" / f"{case}.mha")))
        image_out = sitk.ReadImage(str(out / "imagesTr" / f"{case}_0000.nii.gz"))
        label_out = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "labelsTr" / f"{case}.nii.gz")))
        np.testing.assert_array_equal(sitk.GetArrayFromImage(image_out), sitk.GetArrayFromImage(image_in))
        np.testing.assert_allclose(image_out.GetOrigin(), image_in.GetOrigin(), atol=1e-4)
        np.testing.assert_allclose(image_out.GetDirection(), image_in.GetDirection(), atol=1e-5)
        np.testing.assert_allclose(image_out.GetSpacing(), image_in.GetSpacing(), atol=1e-5)
        assert not np.allclose(image_in.GetDirection(), np.eye(3).ravel())
        # nnU-Net classes → FDI (dataset.json) → ToothFairy2 ids: every tooth voxel as in the source file
        teeth_in = np.where(label_in >= 11, label_in, 0)  # anatomy ids 1–10 are not teeth: the import drops them
        np.testing.assert_array_equal(from_fdi(lut[label_out], "toothfairy2"), teeth_in)
        assert (label_in == 2).any()  # the source really had anatomy


def _write_obj_with_normals(path: Path, vertices: np.ndarray, faces: np.ndarray) -> None:
    """An OBJ as scanner software writes it: a comment, fixed-precision ``v``, ``vn`` lines, ``f a//a b//b c//c``."""
    normals = trimesh.Trimesh(vertices, faces, process=False).vertex_normals
    lines = ["# exported by a scanner", *(f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in vertices)]
    lines += [f"vn {x:.6f} {y:.6f} {z:.6f}" for x, y, z in normals]
    lines += [f"f {a}//{a} {b}//{b} {c}//{c}" for a, b, c in (faces + 1).tolist()]
    path.write_text("\n".join(lines) + "\n")


def test_teeth3ds_import_export_keeps_vertex_order_labels_and_instances(tmp_path: Path) -> None:
    src = make_teeth3ds(tmp_path / "teeth3ds")
    p = patient()
    scanner = src / T3DS_IDS[2] / f"{T3DS_IDS[2]}_upper.obj"
    _write_obj_with_normals(scanner, np.round(p.ios["upper"].vertices, 6), p.ios["upper"].faces)
    store = tmp_path / "store"
    teeth3ds.import_folder(src, store)
    out = tmp_path / "export"
    report = export_teeth3ds(open_version(store), out)
    assert sorted(report.written["train"] + report.written["val"] + report.written["test"]) == sorted(T3DS_IDS)
    scans = sorted(src.rglob("*_*.obj"))
    assert len(scans) == 5
    for original in scans:
        exported = out / original.relative_to(src)
        if original != scanner:
            assert exported.read_bytes() == original.read_bytes()  # our OBJ writer: byte for byte
        a = trimesh.load(original, process=False, maintain_order=True)
        b = trimesh.load(exported, process=False, maintain_order=True)
        np.testing.assert_allclose(b.vertices, a.vertices, rtol=0, atol=0)  # same values, same order
        np.testing.assert_array_equal(b.faces, a.faces)
        sidecar_in = read_teeth3ds_json(original.with_suffix(".json"))
        sidecar_out = read_teeth3ds_json(exported.with_suffix(".json"))
        assert (sidecar_out.id_patient, sidecar_out.jaw) == (sidecar_in.id_patient, sidecar_in.jaw)
        np.testing.assert_array_equal(sidecar_out.labels, sidecar_in.labels)
        np.testing.assert_array_equal(sidecar_out.instances, sidecar_in.instances)
        assert len(sidecar_out.labels) == len(read_mesh(exported).vertices)
    split_lines = {f.name: f.read_text().split() for f in out.glob("*.txt")}
    splits = {r["pseudonym"]: r["split"] for r in open_version(store).table("splits").to_pylist()}
    stems = {"train": "training", "val": "validation", "test": "testing"}
    for pid, split in splits.items():
        assert f"{pid}_upper" in split_lines[f"{stems[split]}_upper.txt"]


def test_teeth3ds_export_skips_cbct_only_cases_and_derives_missing_instances(tmp_path: Path) -> None:
    labels = np.array([0, 36, 36, 0, 31, -1, 47], dtype=np.int16)
    np.testing.assert_array_equal(instances_from_labels(labels), [0, 2, 2, 0, 1, 0, 3])
    store = tmp_path / "store"
    toothfairy2.import_folder(make_oblique_toothfairy2(tmp_path / "tf2"), store)
    report = export_teeth3ds(open_version(store), tmp_path / "out")
    assert set(report.skipped) == set(TF2_IDS)
    assert "no intraoral scan" in report.skipped[TF2_IDS[0]]
