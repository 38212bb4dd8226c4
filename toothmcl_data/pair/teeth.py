"""Per-tooth samples: a fixed-size CBCT crop (and its label crop) and a fixed number of IOS crown points."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from toothmcl_data.register.jaw import fps_indices
from toothmcl_data.types import Affine4x4, Volume

ROOT_SIDE_MARGIN_MM = 1.5
"""Without a label map, the crop's occlusal face lies this far beyond the crown's most occlusal point."""


def crop_affine(centre: NDArray[np.float64], shape: tuple[int, int, int], spacing_mm: float) -> Affine4x4:
    """(4, 4) ``world_from_crop`` of an LPS-aligned grid of ``shape`` voxels of ``spacing_mm`` centred on
    ``centre`` (3,) LPS mm (crop index i → +x, j → +y, k → +z)."""
    T = np.diag([spacing_mm, spacing_mm, spacing_mm, 1.0])
    T[:3, 3] = np.asarray(centre, dtype=np.float64) - spacing_mm * (np.array(shape, dtype=np.float64) - 1) / 2
    return T


def resample(
    volume: Volume, world_from_crop: Affine4x4, shape: tuple[int, int, int], *, labels: bool
) -> NDArray[np.int16]:
    """``volume`` sampled on the crop grid: (X, Y, Z) int16; trilinear for intensities, nearest for labels;
    outside the volume 0 for labels and the lowest intensity near the crop for intensities.

    When each crop axis runs along one volume axis (the usual case: an LPS-aligned crop in an axis-aligned
    volume, flips and axis swaps included) the interpolation is separable and done one axis at a time: the same
    values ``scipy.ndimage.map_coordinates`` (``mode="constant"``) gives on the full grid of indices, which an
    oblique volume still goes through."""
    M = np.linalg.inv(volume.affine) @ world_from_crop
    data = np.asarray(volume.array)
    perm = _axis_permutation(M[:3, :3])
    if perm is not None:
        # index along volume axis r = M[r, 3] + M[r, c] * (crop index along c = perm[r]): one line per axis
        lines = [M[r, 3] + M[r, perm[r]] * np.arange(shape[perm[r]], dtype=np.float64) for r in range(3)]
        lo, hi = _bounds(np.array([[line.min(), line.max()] for line in lines]), data.shape)
        if np.any(hi <= lo):
            return np.zeros(shape, dtype=np.int16)
        sub = data[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
        if min(sub.shape) >= 2:
            cval = 0.0 if labels else float(sub.min())
            grid = _separable(sub, [lines[r] - lo[r] for r in range(3)], labels=labels, cval=cval)
            out = grid.transpose(np.argsort(perm))  # volume axis order → crop axis order
            return np.asarray(out if labels else np.rint(out), dtype=np.int16)
    axes = [np.arange(n, dtype=np.float64) for n in shape]
    index = np.empty((3, *shape), dtype=np.float64)
    for r in range(3):
        # Separable sum built by broadcasting (no big matmul).
        index[r] = (
            M[r, 3]
            + (M[r, 0] * axes[0])[:, None, None]
            + (M[r, 1] * axes[1])[None, :, None]
            + (M[r, 2] * axes[2])[None, None, :]
        )
    lo, hi = _bounds(np.array([[index[r].min(), index[r].max()] for r in range(3)]), data.shape)
    if np.any(hi <= lo):
        return np.zeros(shape, dtype=np.int16)
    sub = data[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
    cval = 0.0 if labels else float(sub.min())
    index -= lo[:, None, None, None]
    flat = ndimage.map_coordinates(
        sub if labels else sub.astype(np.float32),
        index.reshape(3, -1),
        order=0 if labels else 1,
        mode="constant",
        cval=cval,
    )
    return np.asarray(np.rint(flat).reshape(shape), dtype=np.int16)


def _bounds(corners: NDArray[np.float64], shape: tuple[int, ...]) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """First and past-the-last voxel (3,) of the volume (``shape``) that interpolation at fractional indices
    between ``corners`` (3, 2) [min, max] per axis can touch, with a voxel to spare on each side."""
    lo = np.clip(np.floor(corners[:, 0]).astype(int) - 1, 0, np.array(shape))
    hi = np.clip(np.ceil(corners[:, 1]).astype(int) + 2, 0, np.array(shape))
    return lo, hi


def _axis_permutation(R: NDArray[np.float64]) -> tuple[int, int, int] | None:
    """For a (3, 3) index-from-crop matrix with one non-zero entry per row and column: ``perm`` with
    ``perm[r]`` the crop axis that volume axis ``r`` follows; None for an oblique one."""
    big = np.abs(R) > 1e-12 * max(1.0, float(np.abs(R).max()))
    if not (big.sum(axis=0) == 1).all() or not (big.sum(axis=1) == 1).all():
        return None
    r0, r1, r2 = (int(np.argmax(row)) for row in big)
    return r0, r1, r2


def _separable(sub: NDArray[Any], positions: list[NDArray[np.float64]], *, labels: bool, cval: float) -> NDArray[Any]:
    """``sub`` (A, B, C) sampled at the outer product of fractional ``positions`` (one 1-D array per axis,
    in ``sub``'s index units): nearest (``labels``: round half up, ``sub``'s dtype) or trilinear (float32, as
    ``map_coordinates`` of a float32 input returns); a sample with any position outside [0, n - 1] is ``cval``
    (``map_coordinates``' ``mode="constant"``)."""
    outside = [(p < 0) | (p > n - 1) for p, n in zip(positions, sub.shape, strict=True)]
    if labels:
        near = [np.clip(np.floor(p + 0.5), 0, n - 1).astype(np.intp) for p, n in zip(positions, sub.shape, strict=True)]
        out: NDArray[Any] = sub[np.ix_(*near)]
    else:
        out = sub.astype(np.float32).astype(np.float64)  # as map_coordinates sees a float32 copy
        for axis, (p, n) in enumerate(zip(positions, sub.shape, strict=True)):
            start = np.clip(np.floor(p), 0, n - 2)
            t = np.clip(p - start, 0.0, 1.0)
            i0 = start.astype(np.intp)
            shape = [1, 1, 1]
            shape[axis] = len(p)
            w = t.reshape(shape)
            out = np.take(out, i0, axis=axis) * (1.0 - w) + np.take(out, i0 + 1, axis=axis) * w
        out = out.astype(np.float32)
    mask = outside[0][:, None, None] | outside[1][None, :, None] | outside[2][None, None, :]
    if mask.any():
        out[mask] = cval
    return out


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
    """Per FDI tooth in the label map: the centre of its bounding box and its extent, both (3,) LPS mm."""
    lab = np.asarray(labels.array)
    top = int(lab.max()) if lab.size else 0
    out: dict[int, tuple[NDArray[np.float64], NDArray[np.float64]]] = {}
    for fdi, box in enumerate(ndimage.find_objects(lab.astype(np.int32), max_label=top), start=1):
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
    pick = fps_indices(points, n)
    if len(pick) < n:
        pick = np.resize(pick, n)
    return np.concatenate([points[pick], normals[pick]], axis=1).astype(np.float32)
