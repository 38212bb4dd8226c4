"""Render the tissues of an anatomy whose jaws have poses (head tilt, opened mandible) on an axis-aligned grid.

Each jaw's soft tissue, air and bone are computed on a grid of its own anatomy frame (where the arch lies in
axial planes) and resampled nearest-neighbour into the world grid; a world voxel belongs to the jaw on whose
side of the bisector of the two occlusal planes it lies. Teeth are then painted directly in the world from
their posed implicit fields (exact crown surfaces, no resampling). The bite block is an axis-aligned box of the
upper jaw's frame. Each jaw's tissue is computed only over its unposed box + 8 mm (what an unposed grid
would hold); world voxels beyond it are air beside the cheeks and in front of the face, soft tissue
elsewhere. All LPS mm.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from toothmcl_data.synth.anatomy import Anatomy
from toothmcl_data.synth.cbct import AIR, BLOCK, MARGIN_MM, SOFT, add_cortex, jaw_tissue, paint_teeth
from toothmcl_data.types import JAWS, Affine4x4, Jaw, apply_transform

JAW_REACH_MM = 15.0
"""How far past the occlusal plane (mm) a jaw's tissue is computed before the bisector decides."""
BOX_MARGIN_MM = 8.0
"""How far beyond the jaw's unposed box (mm) its tissue is computed; further out: air beside the cheeks and in
front of the face (as the tissue model has it there), soft tissue elsewhere."""
_OUTSIDE = 255


def _jaw_box(anatomy: Anatomy, jaw: Jaw) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Anatomy-frame box (lo, hi) (3,) mm of one jaw, as :func:`cbct.grid_affine` bounds both jaws."""
    cej = np.array([t.cej for t in anatomy.teeth])
    upper, lower = anatomy.arch("upper"), anatomy.arch("lower")
    occlusal = 0.5 * (upper.cej_z + lower.cej_z)
    lo = np.array([cej[:, 0].min() - MARGIN_MM - 4, cej[:, 1].min() - MARGIN_MM - 4, lower.cej_z - 28.0])
    hi = np.array([cej[:, 0].max() + MARGIN_MM + 4, cej[:, 1].max() + MARGIN_MM, upper.cej_z + 24.0])
    if jaw == "upper":
        lo[2] = occlusal - 2.0
    else:
        hi[2] = occlusal + 2.0
    return lo, hi


def _corners(lo: NDArray[np.float64], hi: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.array([[(lo, hi)[b >> k & 1][k] for k in range(3)] for b in range(8)])


def posed_grid(anatomy: Anatomy, spacing: float) -> tuple[Affine4x4, tuple[int, int, int]]:
    """The axis-aligned world grid around both posed jaws: the world bounding box of every tooth (apex to tip,
    ± its half width) with about the margins the unposed grid keeps around the teeth (9 mm beside and in
    front, 5 mm behind, 11 mm below and 7 mm above): (4, 4) affine, shape."""
    pts = []
    for t in anatomy.teeth:
        c, occ = np.asarray(t.cej), np.asarray(t.occlusal)
        r = max(t.width, t.depth) / 2
        ends = np.stack([c - occ * t.root, c + occ * t.height])
        pad = np.array([r, r, 0.0])
        box = _corners(ends.min(axis=0) - pad, ends.max(axis=0) + pad)
        pts.append(apply_transform(anatomy.world_from_jaw(t.jaw), box))
    allpts = np.concatenate(pts)
    lo = allpts.min(axis=0) - np.array([9.0, 9.0, 11.0])
    hi = allpts.max(axis=0) + np.array([9.0, 5.0, 7.0])
    affine = np.diag([spacing, spacing, spacing, 1.0])
    affine[:3, 3] = np.round(lo / spacing) * spacing
    shape = np.ceil((hi - affine[:3, 3]) / spacing).astype(int) + 1
    return affine, (int(shape[0]), int(shape[1]), int(shape[2]))


def _world_points(affine: Affine4x4, shape: tuple[int, int, int]) -> NDArray[np.float64]:
    return np.asarray(affine[:3, 3] + affine[0, 0] * np.moveaxis(np.indices(shape), 0, -1), dtype=np.float64)


def posed_tissue_map(
    anatomy: Anatomy, affine: Affine4x4, shape: tuple[int, int, int]
) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
    """Tissue classes and FDI label map (I, J, K) uint8 of a posed ``anatomy`` on the world grid."""
    spacing = float(affine[0, 0])
    upper, lower = anatomy.arch("upper"), anatomy.arch("lower")
    occlusal = 0.5 * (upper.cej_z + lower.cej_z)
    world_corners = _corners(affine[:3, 3], affine[:3, 3] + spacing * (np.asarray(shape) - 1))
    parts: dict[Jaw, NDArray[np.uint8]] = {}
    heights: dict[Jaw, NDArray[np.float64]] = {}
    for jaw in JAWS:
        jaw_from_world = np.asarray(np.linalg.inv(anatomy.world_from_jaw(jaw)), dtype=np.float64)
        pts = apply_transform(jaw_from_world, world_corners)
        # Only the jaw's own box (what an unposed grid holds) + a margin is computed; see _outside.
        box_lo, box_hi = _jaw_box(anatomy, jaw)
        lo = np.floor(np.maximum(pts.min(axis=0), box_lo - BOX_MARGIN_MM) / spacing) * spacing
        hi = np.minimum(pts.max(axis=0), box_hi + BOX_MARGIN_MM)
        if jaw == "upper":
            lo[2] = max(lo[2], occlusal - JAW_REACH_MM)
        else:
            hi[2] = min(hi[2], occlusal + JAW_REACH_MM)
        axes = [np.arange(lo[k], hi[k] + spacing, spacing) for k in range(3)]
        xy = np.stack(np.meshgrid(axes[0], axes[1], indexing="ij"), axis=-1).reshape(-1, 2)
        part = jaw_tissue(anatomy, jaw, xy, (len(axes[0]), len(axes[1])), axes[2])
        # world voxel index v → jaw frame index: (R (A v + a) + t − lo) / spacing
        R, t = jaw_from_world[:3, :3], jaw_from_world[:3, 3]
        offset = (R @ affine[:3, 3] + t - lo) / spacing
        resampled = ndimage.affine_transform(
            part, R, offset=offset, output_shape=shape, order=0, mode="constant", cval=_OUTSIDE
        )
        outside = resampled == _OUTSIDE
        # Beyond the cheeks and in front of the face (lateral or anterior of the box) is air, else soft tissue.
        x = _frame_coordinate(jaw_from_world, 0, affine, shape)[outside]
        y = _frame_coordinate(jaw_from_world, 1, affine, shape)[outside]
        resampled[outside] = np.where((x < box_lo[0]) | (x > box_hi[0]) | (y < box_lo[1]), AIR, SOFT)
        parts[jaw] = resampled
        # height of each world voxel above (upper) / below (lower) the occlusal plane of this jaw's frame
        z = _frame_coordinate(jaw_from_world, 2, affine, shape)
        heights[jaw] = z - occlusal if jaw == "upper" else occlusal - z
    tissue = np.where(heights["upper"] > heights["lower"], parts["upper"], parts["lower"]).astype(np.uint8)
    if anatomy.block is not None:
        tissue[_in_block(anatomy, affine, shape)] = BLOCK
    add_cortex(tissue, spacing)
    labels = np.zeros(shape, dtype=np.uint8)
    paint_teeth(anatomy.world_teeth(), affine, shape, tissue, labels)
    return tissue, labels


def _frame_coordinate(
    frame_from_world: Affine4x4, axis: int, affine: Affine4x4, shape: tuple[int, int, int]
) -> NDArray[np.float64]:
    """(I, J, K) float64: coordinate ``axis`` (mm) of each world voxel centre in another frame."""
    row = frame_from_world[axis]
    spacing = float(affine[0, 0])
    i, j, k = (np.arange(shape[n]) * spacing + affine[n, 3] for n in range(3))
    return np.asarray(row[0] * i[:, None, None] + row[1] * j[None, :, None] + row[2] * k[None, None, :] + row[3])


def _in_block(anatomy: Anatomy, affine: Affine4x4, shape: tuple[int, int, int]) -> NDArray[np.bool_]:
    """(I, J, K) bool: world voxels inside the bite block (a box of the upper jaw's frame)."""
    inside = np.zeros(shape, dtype=bool)
    if anatomy.block is None:
        return inside
    lo, hi = np.asarray(anatomy.block.lo), np.asarray(anatomy.block.hi)
    jaw_from_world = np.linalg.inv(anatomy.world_from_jaw("upper"))
    for i in range(shape[0]):
        pts = _world_points(affine, (1, shape[1], shape[2])) + np.array([i * affine[0, 0], 0.0, 0.0])
        q = apply_transform(jaw_from_world, pts.reshape(-1, 3))
        inside[i] = np.all((q >= lo) & (q <= hi), axis=1).reshape(shape[1], shape[2])
    return inside
