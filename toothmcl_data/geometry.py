"""Geometry shared by every stage: one definition each of a vertex normal, a crop grid, its resampling, and a
vertex sample (random and farthest-point).

Training and inference must see the same normals for the same scan: the store writes each IOS jaw's normals
(:mod:`toothmcl_data.store.casewrite`, what the stream datasets read for pretraining and fine-tuning), pairing
and synthetic records put them beside each tooth's crown points, registration fits with them, and inference
(``toothmcl_models.evaluate`` / ``predict``) computes them for a user's scan. All of them call
:func:`vertex_normals`.

**Why area-weighted**: the stored normals training has always used are the sum of the (unnormalised) normals of
the faces around each vertex, i.e. face normals weighted by twice the face area. Angle weighting (trimesh's
``Trimesh.vertex_normals``) differs by up to tens of degrees on the irregular triangles of an intraoral scan, so a
network trained on one and run on the other sees shifted inputs; the training definition is kept and inference
follows it.

**Crop grid and resampling**: an LPS-aligned grid of isotropic voxels centred on a point (:func:`crop_grid`);
pairing's tooth crops and the stream's crops (pretraining, fine-tuning, retrieval) are placed with it and cut by
:func:`resample`, as is inference's CBCT grid (``toothmcl_models.evaluate``).

**Point sampling**: a random subset of a scan's vertices for a training or inference cloud
(:func:`sample_vertices`, the same draws everywhere so a seed gives the same sample), and a deterministic
farthest-point sample for registration and pairing (:func:`farthest_point_indices`).
"""

from __future__ import annotations

import itertools
from typing import Any, Literal

import fpsample
import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray
from scipy import ndimage

from toothmcl_data.types import Affine4x4, Mesh

Fill = float | Literal["lowest"]
"""What :func:`resample` puts where the crop leaves the volume: a value, or ``"lowest"``: the lowest source value of
the block the crop reads (the crop's footprint plus a voxel each side; 0 when the crop misses the volume): air or
the scanner's padding, whatever the scanner calls it."""


def face_cross(vertices: ArrayLike, faces: ArrayLike) -> NDArray[np.float64]:
    """(m, 3) float64 cross products ``(v1 - v0) × (v2 - v0)`` of the ``faces`` (m, 3) of ``vertices`` (n, 3): each
    face's normal times twice its area (the winding sets the orientation)."""
    v = np.asarray(vertices, dtype=np.float64).reshape(-1, 3)
    f = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    return np.asarray(np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]]), dtype=np.float64)


def vertex_normals(vertices: ArrayLike, faces: ArrayLike, index: ArrayLike | None = None) -> NDArray[np.float64]:
    """Unit vertex normals, area-weighted: each vertex's normal is the normalised sum of the cross products
    ``(v1 - v0) × (v2 - v0)`` of the faces around it (their normals times twice their areas).

    vertices: (n, 3) float mm in any frame (the result is in the same frame; move it with the rotation part of a
    transform only). faces: (m, 3) int vertex indices; the winding sets the orientation (counter-clockwise seen
    from outside → outward normals). index: optional (k,) int vertex indices: then only their normals (k, 3),
    computed from the faces around them alone (the same values as the full computation's rows).
    Returns (n, 3) (or (k, 3)) float64 unit vectors; (0, 0, 0) for a vertex on no face or only on degenerate
    (zero-area) faces. Store float32 copies with ``.astype(np.float32)``.
    """
    v = np.asarray(vertices, dtype=np.float64).reshape(-1, 3)
    f = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    if index is not None:
        wanted = np.zeros(len(v), dtype=bool)
        wanted[np.asarray(index, dtype=np.intp)] = True
        f = f[wanted[f].any(axis=1)]
    fn = face_cross(v, f)
    out = np.zeros_like(v)
    for corner in range(3):
        for axis in range(3):
            out[:, axis] += np.bincount(f[:, corner], weights=fn[:, axis], minlength=len(v))
    if index is not None:
        out = out[np.asarray(index, dtype=np.intp)]
    norm = np.linalg.norm(out, axis=1, keepdims=True)
    return np.divide(out, norm, out=np.zeros_like(out), where=norm > 0)


def crop_grid(centre: ArrayLike, shape: tuple[int, int, int], spacing: float) -> Affine4x4:
    """(4, 4) float64 ``world_from_crop`` of an LPS-aligned grid of ``shape`` (X, Y, Z) voxels of ``spacing`` mm
    whose centre is ``centre`` (3,) LPS mm: crop index i → +x, j → +y, k → +z, voxel (0, 0, 0) at
    ``centre - spacing · (shape - 1) / 2``."""
    affine = np.diag([spacing, spacing, spacing, 1.0])
    affine[:3, 3] = np.asarray(centre, dtype=np.float64) - spacing * (np.asarray(shape, dtype=np.float64) - 1) / 2
    return affine


def resample(
    source: Any,
    source_affine: Affine4x4,
    world_from_crop: Affine4x4,
    shape: tuple[int, int, int],
    *,
    order: Literal[0, 1],
    fill: Fill = 0.0,
    dtype: DTypeLike | None = None,
) -> NDArray[Any]:
    """The volume ``source`` sampled on a crop grid: a (X, Y, Z) = ``shape`` array of ``dtype``.

    source: (I, J, K) voxels indexed [i, j, k]: a NumPy or zarr array, or a block reader — any object with
    ``shape``, ``dtype`` and ``read(lo, shape, dtype)`` returning that block (a store's
    :class:`~toothmcl_data.store.blocks.BlockReader`, which decodes only the chunks a block touches). Only the
    block the crop covers is read. source_affine: (4, 4) ``world_from_index`` of ``source``, LPS mm;
    world_from_crop: (4, 4) ``world_from_crop`` of the crop grid (e.g. :func:`crop_grid`), any rotation and
    spacing. order: 1 = trilinear, 0 = nearest (labels; a position halfway between voxels takes the higher index).
    fill: the value of a crop voxel whose position lies outside the volume (any index beyond [0, n - 1]), see
    :data:`Fill`. dtype: the result's (default: the source's).

    Values are scipy.ndimage's (``mode="constant"``), kept in the source's dtype before the conversion to
    ``dtype``: an integer volume gives integers also when ``dtype`` is float, its trilinear samples rounded to
    float32 and then to the nearest integer, ties to even (``np.rint``). Three ways, the fastest that applies: a
    crop on the volume's own voxels (identity rotation part, integer offset; not with ``fill="lowest"``) is read
    as a block; a crop whose axes each run along one volume axis (flips and swaps included) is interpolated one
    axis at a time; any other (oblique) goes through ``scipy.ndimage.affine_transform``.
    """
    dtype = np.dtype(source.dtype if dtype is None else dtype)
    M = np.linalg.inv(np.asarray(source_affine, dtype=np.float64)) @ np.asarray(world_from_crop, dtype=np.float64)
    size = tuple(int(n) for n in source.shape)
    offset = M[:3, 3]
    if (
        fill != "lowest"
        and np.allclose(M[:3, :3], np.eye(3), atol=1e-9)
        and np.allclose(offset, np.rint(offset), atol=1e-6)
    ):
        return _block(source, tuple(int(v) for v in np.rint(offset)), shape, dtype, float(fill))
    perm = _axis_permutation(M[:3, :3])
    if perm is not None:
        # index along volume axis r = M[r, 3] + M[r, c] * (crop index along c = perm[r]): one line per axis
        lines = [M[r, 3] + M[r, perm[r]] * np.arange(shape[perm[r]], dtype=np.float64) for r in range(3)]
        corners = np.array([[line.min(), line.max()] for line in lines])
    else:
        ends = np.array(list(itertools.product(*[(0, n - 1) for n in shape])), dtype=np.float64)
        index = ends @ M[:3, :3].T + M[:3, 3]
        corners = np.stack([index.min(axis=0), index.max(axis=0)], axis=1)
    lo = np.clip(np.floor(corners[:, 0]).astype(int) - 1, 0, size)  # a voxel to spare on each side
    hi = np.clip(np.ceil(corners[:, 1]).astype(int) + 2, 0, size)
    if np.any(hi <= lo):
        return np.full(shape, 0.0 if fill == "lowest" else fill, dtype=dtype)
    sub = _read(source, tuple(int(v) for v in lo), tuple(int(v) for v in hi - lo))
    cval = float(sub.min()) if fill == "lowest" else float(fill)
    if perm is not None and min(sub.shape) >= 2:
        grid = _separable(sub, [lines[r] - lo[r] for r in range(3)], order=order, cval=cval)
        return _as_source(grid.transpose(np.argsort(perm)), sub.dtype).astype(dtype, copy=False)
    linear = order == 1 and np.issubdtype(sub.dtype, np.integer)
    out = ndimage.affine_transform(
        sub.astype(np.float32) if linear else sub, M[:3, :3], M[:3, 3] - lo, output_shape=shape, order=order, cval=cval
    )
    return (_as_source(out, sub.dtype) if linear else out).astype(dtype, copy=False)


def _read(source: Any, lo: tuple[int, ...], shape: tuple[int, ...]) -> NDArray[Any]:
    """The block ``lo … lo + shape`` of ``source`` (inside it), in the source's dtype."""
    reader = getattr(source, "read", None)
    if callable(reader):
        return np.asarray(reader(lo, shape))
    return np.asarray(source[tuple(slice(a, a + n) for a, n in zip(lo, shape, strict=True))])


def _block(source: Any, lo: tuple[int, ...], shape: tuple[int, ...], dtype: np.dtype[Any], fill: float) -> NDArray[Any]:
    """The voxel block ``lo … lo + shape`` of ``source`` as ``dtype``, ``fill`` where it leaves the source."""
    size = tuple(int(n) for n in source.shape)
    start = [min(max(a, 0), m) for a, m in zip(lo, size, strict=True)]
    stop = [max(min(a + n, m), s) for a, n, m, s in zip(lo, shape, size, start, strict=True)]
    if any(e <= s for s, e in zip(start, stop, strict=True)):
        return np.full(shape, fill, dtype=dtype)
    inside = tuple(slice(s - a, e - a) for s, e, a in zip(start, stop, lo, strict=True))
    reader = getattr(source, "read", None)
    if callable(reader):
        out = np.asarray(reader(lo, shape, dtype))  # decoded straight into ``dtype``; outside: the reader's fill
    else:
        out = np.empty(shape, dtype=dtype)
        out[inside] = np.asarray(source[tuple(slice(s, e) for s, e in zip(start, stop, strict=True))])
    for axis, part in enumerate(inside):  # what lies outside the source: ``fill``
        before = (slice(None),) * axis
        out[(*before, slice(0, part.start))] = fill
        out[(*before, slice(part.stop, None))] = fill
    return out


def _axis_permutation(R: NDArray[np.float64]) -> tuple[int, int, int] | None:
    """For a (3, 3) index-from-crop matrix with one non-zero entry per row and column: ``perm`` with
    ``perm[r]`` the crop axis that volume axis ``r`` follows; None for an oblique one."""
    big = np.abs(R) > 1e-12 * max(1.0, float(np.abs(R).max()))
    if not (big.sum(axis=0) == 1).all() or not (big.sum(axis=1) == 1).all():
        return None
    r0, r1, r2 = (int(np.argmax(row)) for row in big)
    return r0, r1, r2


def _separable(sub: NDArray[Any], positions: list[NDArray[np.float64]], *, order: int, cval: float) -> NDArray[Any]:
    """``sub`` (A, B, C) sampled at the outer product of fractional ``positions`` (one 1-D array per axis, in
    ``sub``'s index units): nearest (``order`` 0, round half up, ``sub``'s dtype) or trilinear (float64); a sample
    with any position outside [0, n - 1] is ``cval`` (``scipy.ndimage``'s ``mode="constant"``)."""
    outside = [(p < 0) | (p > n - 1) for p, n in zip(positions, sub.shape, strict=True)]
    if order == 0:
        near = [np.clip(np.floor(p + 0.5), 0, n - 1).astype(np.intp) for p, n in zip(positions, sub.shape, strict=True)]
        out: NDArray[Any] = sub[np.ix_(*near)]
    else:
        out = sub.astype(np.float64)
        for axis, (p, n) in enumerate(zip(positions, sub.shape, strict=True)):
            start = np.clip(np.floor(p), 0, n - 2)
            t = np.clip(p - start, 0.0, 1.0)
            i0 = start.astype(np.intp)
            shape = [1, 1, 1]
            shape[axis] = len(p)
            w = t.reshape(shape)
            below, above = np.take(out, i0, axis=axis), np.take(out, i0 + 1, axis=axis)
            below *= 1.0 - w
            above *= w
            below += above  # below · (1 - w) + above · w, without temporaries
            out = below
    mask = outside[0][:, None, None] | outside[1][None, :, None] | outside[2][None, None, :]
    if mask.any():
        out[mask] = cval
    return out


def _as_source(values: NDArray[Any], dtype: np.dtype[Any]) -> NDArray[Any]:
    """Trilinear ``values`` (float) kept in the source's ``dtype``: for an integer source, rounded to float32 and
    then to the nearest integer, ties to even (what ``np.rint`` of a float32 interpolation gives); else cast."""
    if values.dtype == dtype or not np.issubdtype(dtype, np.integer):
        return values.astype(dtype, copy=False)
    rounded = values.astype(np.float32)
    return np.rint(rounded, out=rounded).astype(dtype)


def sample_vertices(n: int, k: int, rng: np.random.Generator) -> NDArray[np.int64]:
    """(k,) int64 sorted indices of ``k`` of ``n`` vertices drawn by ``rng``: without replacement when the scan
    has enough (k ≤ n), with replacement otherwise. One definition for training (the stream datasets) and
    inference (``toothmcl_models``): the same ``rng`` state gives the same draw everywhere."""
    return np.sort(rng.choice(n, size=k, replace=n < k))


def farthest_point_indices(points: ArrayLike, n: int, *, h: int | None = None) -> NDArray[np.intp]:
    """(min(n, m),) indices into ``points`` (m, 3) float mm (any frame) of a deterministic farthest-point sample
    of ``n`` (``fpsample``'s KD-line bucket sampling, asked to start at index 0); all of them in order when m ≤ n.
    The first k of the result are themselves a farthest-point sample. h: the KD-tree height of the sampling
    (speed; the sample can differ with it): default 3 below 10,000 points, 5 below 100,000, else 7."""
    pts = np.asarray(points, dtype=np.float64)
    if len(pts) <= n:
        return np.arange(len(pts), dtype=np.intp)
    if h is None:
        h = 3 if len(pts) < 10_000 else 5 if len(pts) < 100_000 else 7
    return np.asarray(fpsample.bucket_fps_kdline_sampling(pts, n, h=h, start_idx=0), dtype=np.intp)


def mean_normal(mesh: Mesh) -> NDArray[np.float64]:
    """The (3,) unit area-weighted mean face normal of ``mesh`` (its frame: a jaw scan's points occlusally)."""
    normal = face_cross(mesh.vertices, mesh.faces).sum(axis=0)
    return np.asarray(normal / max(float(np.linalg.norm(normal)), 1e-12), dtype=np.float64)
