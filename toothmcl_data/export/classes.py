"""FDI label maps as consecutive class ids (``catalogs/labelmaps/fdi_classes.yaml``), and the class table.

Segmentation frameworks want classes ``0, 1, 2, …`` (nnU-Net v2 refuses anything else; MONAI's one-hot needs
it), while the store holds FDI codes (11–48, deciduous 51–85). The ``fdi_classes`` scheme fixes one order:
background 0, permanent teeth 1–32 in FDI order, deciduous teeth 33–52. An export lists classes 0–32, plus
33–52 only when the version holds a deciduous tooth, so the permanent class ids never change between versions.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from toothmcl_data.errors import LabelSchemeError
from toothmcl_data.fdi import DECIDUOUS_FDI, PERMANENT_FDI, from_fdi, tooth

SCHEME = "fdi_classes"
N_PERMANENT_CLASSES = 1 + len(PERMANENT_FDI)
"""Background plus the 32 permanent teeth: classes 0–32."""


def classes_from_fdi(labels: ArrayLike, *, what: str = "label map") -> NDArray[np.uint8]:
    """FDI label map → class ids.

    labels: any-shape integer array of FDI codes (0 = background, permanent or deciduous teeth); -1 (unknown)
        is refused, since a class map must label every voxel.
    Returns uint8 of the same shape (0–52).
    """
    arr = np.asarray(labels)
    if arr.size and int(arr.min()) < 0:
        raise LabelSchemeError(
            f"{what}: holds -1 (unknown) voxels; a training label map must give every voxel a class — set them to "
            "0 (background) or to their tooth before exporting"
        )
    return from_fdi(arr, SCHEME, allow_deciduous=True, what=what).astype(np.uint8)


def n_classes(deciduous: bool) -> int:
    """How many classes an export lists: 33 (0–32), or 53 when deciduous teeth are present."""
    return N_PERMANENT_CLASSES + (len(DECIDUOUS_FDI) if deciduous else 0)


def fdi_of_class(deciduous: bool) -> dict[int, int]:
    """Class id → FDI code (0 → 0) for the classes an export lists."""
    teeth = (*PERMANENT_FDI, *(DECIDUOUS_FDI if deciduous else ()))
    ids = from_fdi(np.asarray(teeth), SCHEME, allow_deciduous=True)
    return {0: 0, **{int(c): int(f) for c, f in zip(ids.tolist(), teeth, strict=True)}}


def class_name(fdi: int) -> str:
    """``"background"`` for 0, else ``"FDI <code> <tooth name>"`` (e.g. ``"FDI 36 lower left first molar"``)."""
    return "background" if fdi == 0 else f"FDI {fdi} {tooth(fdi).name}"


def has_deciduous(classes: ArrayLike) -> bool:
    """True when a class map (any shape) holds a deciduous class (33–52)."""
    arr = np.asarray(classes)
    return bool(arr.size) and int(arr.max()) >= N_PERMANENT_CLASSES
