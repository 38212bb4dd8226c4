"""nnU-Net v2 export: layout, dataset.json, the version's split, label classes and the NIfTI geometry (nibabel, ITK)."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from tests.export.conftest import EXPECTED_SPLITS
from toothmcl_data.errors import InputError
from toothmcl_data.export.classes import classes_from_fdi
from toothmcl_data.export.nnunet import dataset_id, export_nnunet
from toothmcl_data.fdi import PERMANENT_FDI
from toothmcl_data.store import open_version
from toothmcl_data.types import LPS_FROM_RAS, apply_transform

NAME = "Dataset501_Teeth"


@pytest.fixture(scope="module")
def exported(export_store: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("nnunet") / "nnUNet_raw" / NAME
    report = export_nnunet(open_version(export_store, "v1"), out)
    return out, report.to_dict()


def test_layout_split_and_skipped_cases(exported: tuple[Path, dict]) -> None:
    out, report = exported
    assert sorted(p.name for p in (out / "imagesTr").iterdir()) == ["P0000_0000.nii.gz", "P0001_0000.nii.gz",
                                                                     "P0004_0000.nii.gz"]  # fmt: skip
    assert sorted(p.name for p in (out / "labelsTr").iterdir()) == ["P0000.nii.gz", "P0001.nii.gz", "P0004.nii.gz"]
    assert [p.name for p in (out / "imagesTs").iterdir()] == ["P0003_0000.nii.gz"]
    assert [p.name for p in (out / "labelsTs").iterdir()] == ["P0003.nii.gz"]
    splits = json.loads((out / "splits_final.json").read_text())
    assert splits == [{"train": ["P0001"], "val": ["P0000", "P0004"]}]
    assert all(EXPECTED_SPLITS[c] == "train" for c in splits[0]["train"])
    assert set(report["skipped"]) == {"P0002", "IOS0001"}
    assert "without a CBCT label map" in report["skipped"]["P0002"]
    assert "no CBCT" in report["skipped"]["IOS0001"]
    assert report["dataset_id"] == 501
    assert report["cases"] == {"train": 1, "val": 2, "test": 1}


def test_dataset_json_has_consecutive_labels_with_fdi_names(exported: tuple[Path, dict]) -> None:
    out, _ = exported
    doc = json.loads((out / "dataset.json").read_text())
    assert doc["channel_names"] == {"0": "CT"}
    assert doc["numTraining"] == 3
    assert doc["file_ending"] == ".nii.gz"
    labels = doc["labels"]
    assert sorted(labels.values()) == list(range(53))  # tooth 51 in P0004 adds the deciduous classes 33–52
    assert labels["background"] == 0
    assert labels["FDI 11 upper right central incisor"] == 1
    assert labels["FDI 48 lower right third molar"] == 32
    assert labels["FDI 51 upper right deciduous central incisor"] == 33
    fdi_of_label = {int(k): v for k, v in doc["fdi_of_label"].items()}
    assert [fdi_of_label[c] for c in range(1, 33)] == list(PERMANENT_FDI)
    assert fdi_of_label[52] == 85
    assert doc["label_scheme"] == "fdi_classes"
    assert doc["licence"] == "CC0-1.0"


def test_voxels_and_labels_equal_the_store_and_map_back_to_fdi(exported: tuple[Path, dict], export_store) -> None:
    out, _ = exported
    reader = open_version(export_store, "v1")
    fdi_of_label = json.loads((out / "dataset.json").read_text())["fdi_of_label"]
    lut = np.zeros(256, dtype=np.int16)
    for cls, fdi in fdi_of_label.items():
        lut[int(cls)] = fdi
    for case, folder in (("P0004", "Tr"), ("P0003", "Ts")):
        image = nib.load(out / f"images{folder}" / f"{case}_0000.nii.gz")
        label = nib.load(out / f"labels{folder}" / f"{case}.nii.gz")
        cbct, labels = reader.cbct(case), reader.cbct_labels(case)
        assert image.get_data_dtype() == np.int16
        assert label.get_data_dtype() == np.uint8
        np.testing.assert_array_equal(np.asarray(image.dataobj), cbct.array)
        classes = np.asarray(label.dataobj)
        np.testing.assert_array_equal(lut[classes], labels.array)  # class → FDI through dataset.json
        np.testing.assert_array_equal(classes, classes_from_fdi(labels.array))
    p4 = np.asarray(nib.load(out / "labelsTr" / "P0004.nii.gz").dataobj)
    assert 33 in p4  # deciduous 51
    assert 1 not in p4  # no 11 left in that case


def test_nifti_world_positions_match_the_store_on_an_oblique_grid(exported: tuple[Path, dict], export_store) -> None:
    sitk = pytest.importorskip("SimpleITK")
    out, _ = exported
    cbct = open_version(export_store, "v1").cbct("P0001")
    assert not np.allclose(cbct.affine[:3, :3], np.diag(np.diag(cbct.affine[:3, :3])))  # really oblique
    path = out / "imagesTr" / "P0001_0000.nii.gz"
    ijk = np.array([[0, 0, 0], [5, 7, 11], [cbct.shape[0] - 1, 3, cbct.shape[2] - 1]], dtype=float)
    lps = cbct.world_from_index(ijk)
    ras = apply_transform(nib.load(path).affine, ijk)  # nibabel: voxel → RAS mm
    np.testing.assert_allclose(ras, apply_transform(LPS_FROM_RAS, lps), atol=1e-4)
    np.testing.assert_allclose(ras[:, :2], -lps[:, :2], atol=1e-4)  # x and y flip, z stays
    np.testing.assert_allclose(ras[:, 2], lps[:, 2], atol=1e-4)
    image = sitk.ReadImage(str(path))  # ITK: voxel → LPS mm
    itk = np.array([image.TransformContinuousIndexToPhysicalPoint(list(map(float, p))) for p in ijk])
    np.testing.assert_allclose(itk, lps, atol=1e-4)


def test_anatomy_sits_where_ras_says(exported: tuple[Path, dict]) -> None:
    """Patient right is +x in RAS, superior +z: tooth 16 lies right of 26, upper molars above lower ones."""
    out, _ = exported
    label = nib.load(out / "labelsTr" / "P0000.nii.gz")
    classes = np.asarray(label.dataobj)
    ras = {fdi: apply_transform(label.affine, np.argwhere(classes == c).mean(axis=0)[None])[0]
           for fdi, c in ((16, 6), (26, 14), (46, 30))}  # fmt: skip
    assert ras[16][0] > ras[26][0] + 20
    assert ras[16][2] > ras[46][2] + 5


def test_dry_run_writes_nothing(export_store, tmp_path: Path) -> None:
    out = tmp_path / NAME
    report = export_nnunet(open_version(export_store, "v1"), out, dry_run=True)
    assert not out.exists()
    assert report.written["train"] == ["P0001"]
    assert report.files == []


@pytest.mark.parametrize(
    ("name", "prepare", "message"),
    [
        ("Task501_Teeth", None, "must be DatasetNNN_Name"),
        ("Dataset5_Teeth", None, "must be DatasetNNN_Name"),
        (NAME, "file", "already exists and is not an empty folder"),
    ],
)
def test_refuses_bad_folder_names_and_non_empty_folders(export_store, tmp_path: Path, name, prepare, message) -> None:
    out = tmp_path / name
    if prepare == "file":
        out.mkdir()
        (out / "old.txt").write_text("stale")
    with pytest.raises(InputError, match=message):
        export_nnunet(open_version(export_store, "v1"), out)
    assert dataset_id(Path("x") / NAME) == 501


def test_preprocessed_folder_gets_the_split_too(export_store, tmp_path: Path) -> None:
    export_nnunet(open_version(export_store, "v1"), tmp_path / "raw" / NAME, preprocessed=tmp_path / "pre")
    split = json.loads((tmp_path / "pre" / NAME / "splits_final.json").read_text())
    assert split == [{"train": ["P0001"], "val": ["P0000", "P0004"]}]


def test_a_failed_export_leaves_no_folder(export_store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import toothmcl_data.export.nnunet as nnunet

    calls = []

    def failing(reader, pseudonym, path, values="classes"):
        calls.append(pseudonym)
        if len(calls) == 2:
            raise InputError(f"case {pseudonym}: disk full")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
        return False

    monkeypatch.setattr(nnunet, "write_label_map", failing)
    out = tmp_path / NAME
    with pytest.raises(InputError, match="disk full"):
        export_nnunet(open_version(export_store, "v1"), out)
    assert calls == ["P0000", "P0001"]
    assert list(tmp_path.iterdir()) == []  # neither the dataset nor its .partial staging folder


def test_no_labelled_train_case_is_refused_before_writing(tmp_path: Path) -> None:
    from tests.store.conftest import PROVENANCE, records
    from toothmcl_data.store import SplitConfig, publish

    store = tmp_path / "store"
    publish(store, records(2), message="all test", provenance=PROVENANCE, splits=SplitConfig(fractions=(0, 0, 1)))
    with pytest.raises(InputError, match="no labelled train case with a CBCT"):
        export_nnunet(open_version(store), tmp_path / NAME)
    assert not (tmp_path / NAME).exists()
