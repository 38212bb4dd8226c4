"""One case's CBCT and label map as NIfTI files, the way nnU-Net v2 and MONAI read them.

The store keeps volumes with an LPS affine; NIfTI is RAS on disk. :func:`~toothmcl_data.io.volume.write_nifti`
flips x and y of the affine (``affine_ras = LPS_FROM_RAS @ affine_lps``) and leaves the voxel array as it is, so
voxel ``[i, j, k]`` sits at the same physical point in the store, in nibabel (RAS) and in SimpleITK (LPS).
The image keeps its int16 scanner values; the label map is uint8 (class ids, or FDI codes on request).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np

from toothmcl_data.errors import StoreError
from toothmcl_data.export.classes import classes_from_fdi, has_deciduous
from toothmcl_data.fdi import check_labels
from toothmcl_data.io.volume import write_nifti
from toothmcl_data.store.reader import VersionReader
from toothmcl_data.types import Volume

LabelValues = Literal["classes", "fdi"]
"""What a written label map holds: consecutive class ids (``fdi_classes``) or the FDI codes themselves."""


def _descrip(reader: VersionReader) -> str:
    return f"toothmcl version {reader.id}"  # ≤ 80 ASCII bytes: a snapshot id is 20 characters


def write_image(reader: VersionReader, pseudonym: str, path: Path) -> Path:
    """Write the case's CBCT (int16, its own grid) to ``path`` (``.nii.gz``)."""
    cbct = reader.cbct(pseudonym)
    if cbct is None:
        raise StoreError(f"store {reader.store} version {reader.id}: case {pseudonym} has no CBCT to export")
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_nifti(path, Volume(np.asarray(cbct.array, dtype=np.int16), cbct.affine), descrip=_descrip(reader))


def write_label_map(reader: VersionReader, pseudonym: str, path: Path, values: LabelValues = "classes") -> bool:
    """Write the case's label map (uint8, the CBCT's grid) to ``path``; True when it holds a deciduous tooth."""
    labels = reader.cbct_labels(pseudonym)
    if labels is None:
        raise StoreError(f"store {reader.store} version {reader.id}: case {pseudonym} has no CBCT label map")
    what = f"case {pseudonym} label map"
    if values == "classes":
        data = classes_from_fdi(labels.array, what=what)
        deciduous = has_deciduous(data)
    else:
        report = check_labels(labels.array, allow_deciduous=True, what=what)
        if report.has_unknown:
            raise StoreError(f"{what}: holds -1 (unknown) voxels, which uint8 NIfTI cannot carry; relabel them first")
        data, deciduous = np.asarray(labels.array).astype(np.uint8), bool(report.deciduous)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_nifti(path, Volume(data, labels.affine), descrip=_descrip(reader))
    return deciduous
