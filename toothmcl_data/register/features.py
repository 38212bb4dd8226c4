"""Global start poses from local shape features (FPFH) matched between the two clouds, for when the arch-axis
search finds no clear pose (closed bites, partial fields of view, odd head poses).

FPFH descriptors (Rusu et al. 2009) come from Open3D (optional: ``pip install 'toothmcl[register]'`` or
``pip install open3d-cpu``; imported only when needed). Matching and RANSAC are done here with a seeded
``np.random.Generator`` so that the same inputs give the same starts bit for bit (Open3D's own RANSAC runs on
several threads and is not reproducible): mutual nearest neighbours in feature space propose correspondences,
random triples of them propose rigid fits (Kabsch), triples whose side lengths disagree are dropped before the
fit, and the fits with the most correspondences within ``INLIER_MM`` are returned, best first.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from numpy.typing import NDArray

from toothmcl_data.errors import DependencyError
from toothmcl_data.register.init import kabsch
from toothmcl_data.types import Affine4x4, apply_transform

VOXEL_MM = 1.5
"""Both clouds are thinned to one point per cube of this size before the features (crown cusps are ~2 mm)."""
FEATURE_RADIUS_MM = 6.0
"""Neighbourhood of an FPFH descriptor: about one crown."""
FEATURE_NEIGHBOURS = 60
"""At most this many neighbours per descriptor (the cost grows with it)."""
NORMAL_RADIUS_MM = 2.5
"""Neighbourhood for the normals of points that come without them."""
INLIER_MM = 1.5
"""A correspondence supports a fit when its source point lands this close to its target point."""
TRIALS = 4000
"""Random correspondence triples tried."""
EDGE_RATIO = 0.9
"""A triple is fitted only when its three side lengths agree within this ratio in both clouds."""
KEEP = 4
"""Starts returned (the best-supported fits, each ≥ 10° or 5 mm from a better one)."""


def _open3d() -> Any:
    try:
        import open3d as o3d
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise DependencyError(
            "global registration from shape features needs Open3D, which is not installed: "
            "`pip install open3d-cpu` (or the `register` extra of toothmcl)"
        ) from err
    return o3d


@functools.cache
def available() -> bool:
    """Whether Open3D can be imported (the feature search is skipped without it)."""
    try:
        _open3d()
    except DependencyError:  # handled: an availability probe; a caller that needs Open3D gets the error itself
        return False
    return True


def fpfh(
    points: NDArray[np.float64], normals: NDArray[np.float64] | None
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Thinned points (k, 3) mm and their FPFH descriptors (k, 33) of a cloud ``points`` (n, 3) mm with unit
    ``normals`` (n, 3) (estimated when None; their sign does not matter to FPFH's angles up to symmetry)."""
    o3d = _open3d()
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.ascontiguousarray(points)))
    if normals is not None:
        cloud.normals = o3d.utility.Vector3dVector(np.ascontiguousarray(normals))
    down = cloud.voxel_down_sample(VOXEL_MM)
    if normals is None or not down.has_normals():
        down.estimate_normals(o3d.geometry.KDTreeSearchParamHybrid(radius=NORMAL_RADIUS_MM, max_nn=30))
    feat = o3d.pipelines.registration.compute_fpfh_feature(
        down, o3d.geometry.KDTreeSearchParamHybrid(radius=FEATURE_RADIUS_MM, max_nn=FEATURE_NEIGHBOURS)
    )
    return np.asarray(down.points, dtype=np.float64), np.asarray(feat.data, dtype=np.float64).T


def _nearest(x: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.intp]:
    """Index into ``y`` (m, d) of the nearest row to each row of ``x`` (n, d): squared distances from one matrix
    product per chunk (a k-d tree is slow in 33 dimensions)."""
    yy = np.einsum("ij,ij->i", y, y)
    out = np.empty(len(x), dtype=np.intp)
    step = max(1, 4_000_000 // max(len(y), 1))
    for lo in range(0, len(x), step):
        d = yy[None, :] - 2.0 * (x[lo : lo + step] @ y.T)  # |x|² is the same along a row
        out[lo : lo + step] = np.argmin(d, axis=1)
    return out


def _mutual(fs: NDArray[np.float64], ft: NDArray[np.float64]) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Index pairs (i into fs, j into ft) that are each other's nearest neighbour in feature space."""
    st, ts = _nearest(fs, ft), _nearest(ft, fs)
    i = np.flatnonzero(ts[st] == np.arange(len(fs)))
    return i.astype(np.intp), np.asarray(st[i], dtype=np.intp)


def feature_starts(
    src: NDArray[np.float64],
    src_normals: NDArray[np.float64] | None,
    dst: NDArray[np.float64],
    dst_normals: NDArray[np.float64] | None,
    rng: np.random.Generator,
) -> list[Affine4x4]:
    """Up to ``KEEP`` rigid ``dst_from_src`` (4, 4) poses, best supported first, from FPFH matches between
    ``src`` (n, 3) and ``dst`` (m, 3) mm clouds (unit normals (n, 3)/(m, 3) or None); [] when too few match."""
    ps, fs = fpfh(src, src_normals)
    pt, ft = fpfh(dst, dst_normals)
    i, j = _mutual(fs, ft)
    if len(i) < 6:
        return []
    a, b = ps[i], pt[j]
    trio = rng.integers(0, len(i), size=(TRIALS, 3))
    trio = trio[(trio[:, 0] != trio[:, 1]) & (trio[:, 1] != trio[:, 2]) & (trio[:, 0] != trio[:, 2])]
    ea = np.linalg.norm(a[trio] - a[np.roll(trio, 1, axis=1)], axis=2)
    eb = np.linalg.norm(b[trio] - b[np.roll(trio, 1, axis=1)], axis=2)
    ratio = np.minimum(ea, eb) / np.maximum(np.maximum(ea, eb), 1e-9)
    trio = trio[(ratio > EDGE_RATIO).all(axis=1) & (ea > 2.0 * VOXEL_MM).all(axis=1)]
    if len(trio) == 0:
        return []
    rot, shift = _kabsch_many(a[trio], b[trio])
    support = np.zeros(len(trio), dtype=np.intp)
    step = max(1, 2_000_000 // (3 * len(a)))  # fits per chunk: bounded memory
    for lo in range(0, len(trio), step):
        moved = np.einsum("kij,mj->kmi", rot[lo : lo + step], a) + shift[lo : lo + step, None, :]
        support[lo : lo + step] = (np.sum((moved - b[None]) ** 2, axis=2) < INLIER_MM**2).sum(axis=1)
    order = np.lexsort((np.arange(len(trio)), -support))  # most support first, ties in trial order
    out: list[Affine4x4] = []
    for t in order:
        if support[t] < 4:
            break
        T = np.eye(4)
        T[:3, :3], T[:3, 3] = rot[t], shift[t]
        inlier = np.linalg.norm(apply_transform(T, a) - b, axis=1) < INLIER_MM
        T = kabsch(a[inlier], b[inlier])  # refit on all the correspondences it explains
        if all(not _near(T, U) for U in out):
            out.append(T)
        if len(out) == KEEP:
            break
    return out


def _kabsch_many(src: NDArray[np.float64], dst: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Rigid fits of many small point sets at once: ``src``, ``dst`` (k, n, 3) → rotations (k, 3, 3) and
    translations (k, 3) with ``dst ≈ R src + t`` (proper rotations)."""
    cs, cd = src.mean(axis=1), dst.mean(axis=1)
    h = np.einsum("kni,knj->kij", src - cs[:, None], dst - cd[:, None])
    u, _, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(np.einsum("kji,kjl->kil", vt, np.transpose(u, (0, 2, 1)))))
    d[d == 0] = 1.0
    fix = np.tile(np.eye(3), (len(src), 1, 1))
    fix[:, 2, 2] = d
    r = np.einsum("kji,kjl,klm->kim", vt, fix, np.transpose(u, (0, 2, 1)))
    return r, cd - np.einsum("kij,kj->ki", r, cs)


def _near(T: Affine4x4, U: Affine4x4) -> bool:
    r = T[:3, :3] @ U[:3, :3].T
    angle = np.degrees(np.arccos(np.clip((np.trace(r) - 1) / 2, -1.0, 1.0)))
    return bool(angle < 10.0 and np.linalg.norm(T[:3, 3] - U[:3, 3]) < 5.0)
