"""Voxel machinery of the CBCT crown surface: iso-surface vertices refined along their normals to the half-way
level of their own intensity profile, and the voxel boxes, masks and morphology that bound the work.

Throughout: ``image`` (I, J, K) float32 scanner intensities; ``affine`` (4, 4) float64 LPS world mm from voxel
index (i, j, k, 1); points (n, 3) float64 LPS world mm; normals (n, 3) float64 unit vectors pointing to lower
intensity (out of the tooth). Which candidates are crowns is decided in :mod:`toothmcl_data.register.surface`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from skimage.measure import marching_cubes

from toothmcl_data.types import apply_transform

Box = tuple[slice, slice, slice]


def sample(image: NDArray[np.float32], index: NDArray[np.floating]) -> NDArray[np.float32]:
    """Trilinear samples of ``image`` (I, J, K) at fractional voxel indices (..., 3); edge values outside."""
    flat = index.reshape(-1, 3).T
    out = ndimage.map_coordinates(image, flat, order=1, mode="nearest")
    return np.asarray(out.reshape(index.shape[:-1]), dtype=np.float32)


def refine_along_normals(
    image: NDArray[np.float32],
    affine: NDArray[np.float64],
    points: NDArray[np.float64],
    normals: NDArray[np.float64],
    half_mm: float,
) -> tuple[NDArray[np.float64], NDArray[np.float32], NDArray[np.float32], NDArray[np.bool_], NDArray[np.float32]]:
    """Move each point to the half-way level of its own intensity profile.

    image: (I, J, K) float32 intensities. affine: (4, 4) LPS mm from voxel index. points, normals: (n, 3) LPS
    mm and unit outward normals. half_mm: profile half-length.
    Returns refined points (n, 3) LPS mm, inner and outer plateaus (n,) float32, ok (n,) bool (a crossing
    was found within the profile), and the edge sharpness (n,) float32 (1/mm): the profile's slope at the
    crossing over the contrast ``inner − outer`` (a blurred step of width σ mm: ≈ 0.4/σ).
    """
    step = float(min(np.linalg.norm(affine[:3, :3], axis=0))) / 3.0
    s = np.arange(-half_mm, half_mm + step / 2, step)
    inv = np.linalg.inv(affine)
    start = apply_transform(inv, points).astype(np.float32)
    along = (normals @ inv[:3, :3].T).astype(np.float32)
    prof = sample(image, start[:, None, :] + s.astype(np.float32)[None, :, None] * along[:, None, :])
    centre = int(np.argmin(np.abs(s)))
    inner_at = np.argmax(prof[:, : centre + 1], axis=1)
    inner = prof[np.arange(len(prof)), inner_at]
    outer = prof[:, centre:].min(axis=1)
    level = 0.5 * (inner + outer)
    below = prof < level[:, None]
    below &= np.arange(len(s))[None, :] > inner_at[:, None]
    found = below.any(axis=1)
    j = np.where(found, np.argmax(below, axis=1), 1)
    a = prof[np.arange(len(prof)), j - 1]
    b = prof[np.arange(len(prof)), j]
    frac = np.clip((a - level) / np.maximum(a - b, 1e-6), 0.0, 1.0)
    offset = s[j - 1] + frac * step
    ok = found & (np.abs(offset) < half_mm - step)
    sharp = (a - b) / np.float32(step) / np.maximum(inner - outer, np.float32(1e-6))
    return points + offset[:, None] * normals, inner, outer, ok, sharp.astype(np.float32)


def box_around(mask: NDArray[np.bool_], margin: int) -> tuple[Box, NDArray[np.intp]]:
    """Index box (slices) around the True voxels of ``mask`` (I, J, K), which holds at least one, grown by
    ``margin`` voxels on every side and clipped to the grid; and its first index (3,)."""
    lo, hi = np.zeros(3, dtype=np.intp), np.zeros(3, dtype=np.intp)
    for axis in range(3):
        hit = np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != axis)))
        lo[axis] = max(int(hit[0]) - margin, 0)
        hi[axis] = min(int(hit[-1]) + margin + 1, mask.shape[axis])
    return (slice(lo[0], hi[0]), slice(lo[1], hi[1]), slice(lo[2], hi[2])), lo


def morph(mask: NDArray[np.bool_], iterations: int, *, erode: bool = False) -> NDArray[np.bool_]:
    """``scipy.ndimage.binary_dilation`` (or ``binary_erosion`` when ``erode``) of ``mask`` (I, J, K) bool with
    the 6-neighbour cross, ``iterations`` times, voxels outside the grid counting as False; the same result from
    shifted slices, several times faster."""
    out = mask
    for _ in range(iterations):
        prev, out = out, out.copy()
        for axis in range(3):
            head = tuple(slice(1, None) if a == axis else slice(None) for a in range(3))
            tail = tuple(slice(None, -1) if a == axis else slice(None) for a in range(3))
            if erode:
                out[head] &= prev[tail]
                out[tail] &= prev[head]
                out[tuple(0 if a == axis else slice(None) for a in range(3))] = False
                out[tuple(-1 if a == axis else slice(None) for a in range(3))] = False
            else:
                out[head] |= prev[tail]
                out[tail] |= prev[head]
    return out


def shifted(affine: NDArray[np.float64], lo: NDArray[np.intp]) -> NDArray[np.float64]:
    """The (4, 4) affine of a sub-grid that starts at index ``lo`` (3,) of the grid of ``affine``."""
    out = affine.copy()
    out[:3, 3] = apply_transform(affine, lo[None].astype(np.float64))[0]
    return out


def near_points(
    points: NDArray[np.float64], affine: NDArray[np.float64], shape: tuple[int, ...], reach_mm: float
) -> tuple[NDArray[np.intp], NDArray[np.bool_]]:
    """The voxels of the grid (``affine``, ``shape`` (I, J, K)) within at least ``reach_mm`` of ``points`` (n ≥ 1,
    3) LPS mm along every axis: blocks of ``ceil(reach_mm / spacing)`` voxels that hold a point, with their 26
    neighbours. Returns the first index (3,) of the sub-grid they span and its mask (I', J', K') bool."""
    size = max(1, math.ceil(reach_mm / float(min(np.linalg.norm(affine[:3, :3], axis=0)))))
    grid = np.asarray(shape, dtype=np.intp)
    ijk = np.rint(apply_transform(np.linalg.inv(affine), points)).astype(np.intp)
    block = np.clip(ijk, 0, grid - 1) // size
    first = np.maximum(block.min(axis=0) - 1, 0)
    last = np.minimum(block.max(axis=0) + 1, (grid - 1) // size)
    held = np.zeros(tuple(last - first + 1), dtype=bool)
    held[tuple((block - first).T)] = True
    held = ndimage.binary_dilation(held, structure=np.ones((3, 3, 3), dtype=bool))
    mask = held.repeat(size, 0).repeat(size, 1).repeat(size, 2)
    lo = first * size
    end = np.minimum(lo + np.asarray(mask.shape), grid) - lo
    return lo, np.ascontiguousarray(mask[: end[0], : end[1], : end[2]])


def iso_surface(
    image: NDArray[np.float32],
    affine: NDArray[np.float64],
    level: float,
    mask: NDArray[np.bool_] | None = None,
    *,
    at: NDArray[np.intp] | None = None,
    stride: int = 1,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Marching cubes of ``image`` at ``level``: vertices (n, 3) LPS mm and unit normals pointing to lower
    intensity. ``mask``: the voxels whose cubes are computed, (I, J, K) bool over the whole grid (only its
    bounding box is visited), or over the sub-grid that starts at index ``at`` (3,) when given; None: all.
    ``stride``: cubes of ``stride`` voxels (every ``stride``-th voxel along each axis: a coarse surface, about
    ``stride²`` times fewer vertices, ``stride³`` times fewer cubes)."""
    empty = np.zeros((0, 3)), np.zeros((0, 3))
    if mask is None:
        lo, sub, sub_mask = np.zeros(3, dtype=np.intp), image, None
    elif at is None:
        if not mask.any():
            return empty
        box, lo = box_around(mask, 1)
        sub, sub_mask = image[box], mask[box]
    else:
        lo = np.asarray(at, dtype=np.intp)
        sub = image[tuple(slice(a, a + n) for a, n in zip(lo, mask.shape, strict=True))]
        sub_mask = mask
    if stride > 1:
        sub = sub[::stride, ::stride, ::stride]
        sub_mask = None if sub_mask is None else sub_mask[::stride, ::stride, ::stride]
    if min(sub.shape) < 2 or not sub.min() < level < sub.max():
        return empty
    verts, _, normals, _ = marching_cubes(sub, level=level, mask=sub_mask, allow_degenerate=False)
    ijk = verts.astype(np.float64) * stride + lo
    world = apply_transform(affine, ijk)
    # Normals in index space → world (the affine's inverse transpose); skimage's point to lower values. A stride
    # scales the index space evenly: the directions stay.
    n_world = normals.astype(np.float64) @ np.linalg.inv(affine[:3, :3])
    n_world /= np.maximum(np.linalg.norm(n_world, axis=1, keepdims=True), 1e-12)
    return world, n_world


@dataclass(frozen=True, eq=False)
class Candidates:
    """Iso-surface samples refined along their normals (see :func:`refine_along_normals`): points (n, 3) float64
    LPS mm on their own half-way level, normals (n, 3) unit outward, inner and outer plateaus (n,) float32
    (scanner units), ok (n,) bool (a crossing was found), sharp (n,) float32 edge sharpness (1/mm)."""

    points: NDArray[np.float64]
    normals: NDArray[np.float64]
    inner: NDArray[np.float32]
    outer: NDArray[np.float32]
    ok: NDArray[np.bool_]
    sharp: NDArray[np.float32]

    def select(self, keep: NDArray[np.bool_]) -> Candidates:
        """The candidates where ``keep`` (n,) bool is True."""
        return Candidates(
            self.points[keep], self.normals[keep], self.inner[keep], self.outer[keep], self.ok[keep], self.sharp[keep]
        )


def candidates(
    image: NDArray[np.float32],
    affine: NDArray[np.float64],
    level: float,
    profile_mm: float,
    mask: NDArray[np.bool_] | None = None,
    *,
    at: NDArray[np.intp] | None = None,
    stride: int = 1,
) -> Candidates:
    """Surface samples that may face air: the iso-surface at ``level`` (``mask``, ``at``, ``stride`` as in
    :func:`iso_surface`) where the image ``profile_mm`` outside is darker than ``level`` (drops bone-bound
    roots), refined along their normals over ``± profile_mm`` on the full-resolution ``image``."""
    pts, nrm = iso_surface(image, affine, level, mask, at=at, stride=stride)
    probe = apply_transform(np.linalg.inv(affine), pts + nrm * profile_mm)
    dark = sample(image, probe[:, None, :])[:, 0] < level
    pts, nrm = pts[dark], nrm[dark]
    refined, inner, outer, ok, sharp = refine_along_normals(image, affine, pts, nrm, profile_mm)
    return Candidates(refined, nrm, inner, outer, ok, sharp)
