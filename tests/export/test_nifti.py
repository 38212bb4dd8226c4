"""NIfTI export of one case: the voxels as stored, the LPS affine written as RAS, labels as class ids or FDI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest

from toothmcl_data.errors import StoreError
from toothmcl_data.export.classes import classes_from_fdi
from toothmcl_data.export.nifti import write_image, write_label_map
from toothmcl_data.store import open_version
from toothmcl_data.types import LPS_FROM_RAS


def _load(path: Path) -> tuple[np.ndarray, np.dtype, np.ndarray]:
    """Voxels, on-disk dtype and (4, 4) RAS affine of a NIfTI file."""
    image: Any = nib.load(path)
    return np.asarray(image.dataobj), image.get_data_dtype(), np.asarray(image.affine, dtype=np.float64)


def test_image_and_labels_keep_voxels_and_geometry(export_store: Path, tmp_path: Path) -> None:
    reader = open_version(export_store, "v1")
    cbct, labels = reader.cbct("P0001"), reader.cbct_labels("P0001")  # the oblique grid
    assert cbct is not None
    assert labels is not None
    voxels, dtype, affine = _load(write_image(reader, "P0001", tmp_path / "img.nii.gz"))
    np.testing.assert_array_equal(voxels, cbct.array)
    assert dtype == np.int16
    np.testing.assert_allclose(affine, LPS_FROM_RAS @ cbct.affine, atol=1e-5)
    assert write_label_map(reader, "P0001", tmp_path / "lab.nii.gz") is False
    classes = _load(tmp_path / "lab.nii.gz")[0]
    np.testing.assert_array_equal(classes, classes_from_fdi(labels.array))
    write_label_map(reader, "P0001", tmp_path / "fdi.nii.gz", values="fdi")
    fdi, dtype, _ = _load(tmp_path / "fdi.nii.gz")
    assert dtype == np.uint8
    np.testing.assert_array_equal(fdi, labels.array)


def test_deciduous_teeth_are_reported_and_missing_volumes_refused(export_store: Path, tmp_path: Path) -> None:
    reader = open_version(export_store, "v1")
    assert write_label_map(reader, "P0004", tmp_path / "d.nii.gz") is True  # tooth 11 relabelled 51
    with pytest.raises(StoreError, match="case P0002 has no CBCT label map"):
        write_label_map(reader, "P0002", tmp_path / "x.nii.gz")
    with pytest.raises(StoreError, match="case IOS0001 has no CBCT to export"):
        write_image(reader, "IOS0001", tmp_path / "y.nii.gz")
