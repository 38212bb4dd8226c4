"""Geometry shared by every stage: one definition of a vertex normal, one of a crop grid.

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

**Crop grid**: an LPS-aligned grid of isotropic voxels centred on a point (:func:`crop_grid`); the stream's
crops (pretraining, fine-tuning, retrieval) are placed with it.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from toothmcl_data.types import Affine4x4


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
    fn = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
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
