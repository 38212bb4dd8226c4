"""MONAI export: MONAI's own datalist loader and LoadImaged read back the version's voxels, labels and geometry."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from toothmcl_data.errors import InputError
from toothmcl_data.export.classes import classes_from_fdi
from toothmcl_data.export.monai import export_monai
from toothmcl_data.store import open_version
from toothmcl_data.types import LPS_FROM_RAS

monai_data = pytest.importorskip("monai.data", reason="MONAI is not installed (pip install 'toothmcl[models]')")
monai_transforms = pytest.importorskip("monai.transforms")


def test_monai_reads_the_datalist_with_the_version_split(export_store: Path, tmp_path: Path) -> None:
    reader = open_version(export_store, "v1")
    report = export_monai(reader, tmp_path / "monai")
    path = tmp_path / "monai" / "datalist.json"
    training = monai_data.load_decathlon_datalist(path, True, "training")
    validation = monai_data.load_decathlon_datalist(path, True, "validation")
    test = monai_data.load_decathlon_datalist(path, True, "test")
    assert [e["case"] for e in training] == ["P0001"]
    assert [e["case"] for e in validation] == ["P0000", "P0004"]
    assert [e["case"] for e in test] == ["P0003"]
    assert training[0]["image"] == str(tmp_path / "monai" / "images" / "P0001.nii.gz")  # resolved by MONAI
    assert set(report.skipped) == {"P0002", "IOS0001"}
    doc = json.loads(path.read_text())
    assert (doc["numTraining"], doc["numValidation"], doc["numTest"]) == (1, 2, 1)
    assert doc["labels"]["0"] == "background"
    assert doc["labels"]["33"] == "FDI 51 upper right deciduous central incisor"
    assert len(doc["labels"]) == 53

    loader = monai_transforms.LoadImaged(keys=["image", "label"], image_only=True)
    sample = loader(validation[1])  # P0004: oblique-free grid, tooth 11 relabelled 51
    cbct, labels = reader.cbct("P0004"), reader.cbct_labels("P0004")
    np.testing.assert_array_equal(np.asarray(sample["image"]), cbct.array.astype(np.float32))
    np.testing.assert_array_equal(np.asarray(sample["label"]), classes_from_fdi(labels.array))
    np.testing.assert_allclose(np.asarray(sample["image"].affine), LPS_FROM_RAS @ cbct.affine, atol=1e-5)


def test_fdi_label_values_and_oblique_affine(export_store: Path, tmp_path: Path) -> None:
    reader = open_version(export_store, "v1")
    export_monai(reader, tmp_path / "monai", values="fdi")
    path = tmp_path / "monai" / "datalist.json"
    doc = json.loads(path.read_text())
    assert doc["label_values"] == "fdi"
    assert doc["labels"]["36"] == "FDI 36 lower left first molar"
    assert doc["fdi_of_label"]["51"] == 51
    entry = monai_data.load_decathlon_datalist(path, True, "training")[0]
    sample = monai_transforms.LoadImaged(keys=["label"], image_only=True)(entry)
    labels = reader.cbct_labels("P0001")
    np.testing.assert_array_equal(np.asarray(sample["label"]), labels.array)
    np.testing.assert_allclose(np.asarray(sample["label"].affine), LPS_FROM_RAS @ labels.affine, atol=1e-5)


def test_bad_label_values_and_dry_run(export_store: Path, tmp_path: Path) -> None:
    reader = open_version(export_store, "v1")
    with pytest.raises(InputError, match="'classes' or 'fdi'"):
        export_monai(reader, tmp_path / "m", values="universal")  # type: ignore[arg-type]
    report = export_monai(reader, tmp_path / "dry", dry_run=True)
    assert not (tmp_path / "dry").exists()
    assert report.extra["numValidation"] == 2
