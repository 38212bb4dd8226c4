"""Per-tooth samples: where a tooth's fixed-size CBCT crop goes, and a fixed number of IOS crown points.

The crop is placed with :func:`toothmcl_data.geometry.crop_grid` and cut with :func:`toothmcl_data.geometry.resample`
(``pair.case``)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from toothmcl_data.geometry import farthest_point_indices
from toothmcl_data.types import Volume

ROOT_SIDE_MARGIN_MM = 1.5
"""Without a label map, the crop's occlusal face lies this far beyond the crown's most occlusal point."""


def beyond_grid_mm(volume: Volume, points: NDArray[np.float64]) -> NDArray[np.float64]:
    """(n,) how far (mm) each of ``points`` (n, 3) LPS mm lies beyond the region ``volume``'s voxels cover (voxel
    centres ± half a voxel along each grid axis); ≤ 0 inside. Measured along the grid axes (index space × the
    voxel size), so any affine works."""
    if len(points) == 0:
        return np.zeros(0, dtype=np.float64)
    ijk = volume.index_from_world(points)
    last = np.asarray(volume.shape, dtype=np.float64) - 0.5
    out = np.maximum(-0.5 - ijk, ijk - last) * np.asarray(volume.spacing, dtype=np.float64)
    return np.asarray(out.max(axis=1), dtype=np.float64)


def label_boxes(labels: Volume) -> dict[int, tuple[NDArray[np.float64], NDArray[np.float64]]]:
    """Per FDI tooth in the label map: the centre of its bounding box and its extent, both (3,) LPS mm. Its keys
    are the label map's positive values (the FDI codes it holds)."""
    lab = np.asarray(labels.array)
    top = int(lab.max()) if lab.size else 0
    if not np.issubdtype(lab.dtype, np.integer):  # find_objects reads any integer type as it is (no copy)
        lab = lab.astype(np.int32)
    out: dict[int, tuple[NDArray[np.float64], NDArray[np.float64]]] = {}
    for fdi, box in enumerate(ndimage.find_objects(lab, max_label=top), start=1):
        if box is None:
            continue
        first = np.array([b.start for b in box], dtype=np.float64)
        last = np.array([b.stop - 1 for b in box], dtype=np.float64)
        corners = labels.world_from_index(np.array([first, last]))
        lo, hi = corners.min(axis=0), corners.max(axis=0)
        out[fdi] = (0.5 * (lo + hi), hi - lo + np.array(labels.spacing))
    return out


def crown_centre(
    crown: NDArray[np.float64], occlusal: NDArray[np.float64], crop_mm: tuple[float, float, float]
) -> NDArray[np.float64]:
    """Crop centre for a tooth known only by its registered crown points (n, 3) LPS mm: the crown's centroid
    across, and along ``occlusal`` (3,) the crop's face just beyond the crown tip so the roots fill the rest."""
    c = crown.mean(axis=0)
    tip = float((crown @ occlusal).max())
    along = tip + ROOT_SIDE_MARGIN_MM - crop_mm[2] / 2
    return c + (along - float(c @ occlusal)) * occlusal


def keep_crown(
    centre: NDArray[np.float64],
    crown: NDArray[np.float64],
    occlusal: NDArray[np.float64],
    crop_mm: tuple[float, float, float],
) -> NDArray[np.float64]:
    """``centre`` (3,) LPS mm moved along ``occlusal`` (3,) just enough that the crop's occlusal face lies
    ``ROOT_SIDE_MARGIN_MM`` beyond the crown tip of ``crown`` (n, 3) LPS mm: when a tooth is longer than the crop,
    the roots are cut, never the crown the scan shows."""
    tip = float((crown @ occlusal).max()) + ROOT_SIDE_MARGIN_MM
    face = float(centre @ occlusal) + crop_mm[2] / 2
    return centre + max(0.0, tip - face) * occlusal


def tooth_points(points: NDArray[np.float64], normals: NDArray[np.float64], n: int) -> NDArray[np.float32]:
    """``n`` crown points of one tooth as (n, 6) float32 [x, y, z, nx, ny, nz]: farthest-point sample of
    ``points`` (m, 3) LPS mm with unit ``normals`` (m, 3); when m < n the sample repeats in order."""
    pick = farthest_point_indices(points, n)
    if len(pick) < n:
        pick = np.resize(pick, n)
    return np.concatenate([points[pick], normals[pick]], axis=1).astype(np.float32)
