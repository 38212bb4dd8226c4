"""Global start poses for ICP that work from any scanner pose.

- From FDI tooth centroids when both the IOS and the CBCT are labelled: every triple of shared teeth proposes a
  rigid fit (Kabsch); the one most teeth agree with (within ``CENTROID_GATE_MM``) wins and is refitted on them,
  so missing and mislabelled teeth (swaps, mirrors) cannot steer it.
- Otherwise a deterministic multi-hypothesis search: the arch normals (least principal axes) are aligned both
  ways up, the arch is turned in ``angles`` equal steps about it, all starts are ranked at once by a cheap
  distance proxy (one k-d tree query), the best few are polished by a short ICP and scored by the fraction of
  IOS points that land on the CBCT crowns with agreeing normals.
"""

from __future__ import annotations

import itertools

import numpy as np
from numpy.typing import NDArray
from scipy.spatial.transform import Rotation

from toothmcl_data.register.icp import Target, icp, match
from toothmcl_data.types import Affine4x4, apply_transform

MIN_TRIANGLE_MM2 = 2.0
"""Twice the area a triple of tooth centroids must span to propose a rotation."""
CENTROID_GATE_MM = 3.0
"""A tooth agrees with a centroid fit when its centroids land within this distance."""
CUSP_BAND_MM = 3.0
"""Depth of the band of cusps whose centres the multi-hypothesis starts align."""
PRESCORE_POINTS = 200
"""Source points (a prefix of the farthest-point sample) that rank all starts before any ICP."""
PRESCORE_CAP_MM = 3.0
"""The rank before ICP is the mean distance to the target capped at this (a few mm: the error of a start in the
right basin), so points far off in a wrong start neither dominate the mean nor slow the search."""
PRESCORE_KEEP = 6
"""Starts, best ranked before ICP, given the coarse polish. On 30 synthetic patients (both jaws, scans with and
without labels: 120 searches) the start that won the search over all starts ranked first before ICP 112 times and
second 4 times; the other 4 were on CBCTs whose intensity surface had failed (metal), where no start fits."""
COARSE_POINTS = 300
"""Source points (a prefix of the farthest-point sample) used by the coarse polish of each kept start."""
KEEP_STARTS = 3
"""Starts kept after the coarse polish for the fine polish."""
CLEAR_SCORE = 0.75
"""The fine polish stops at the first pose (in coarse-score order) that puts this fraction of points on the
target. On 30 synthetic patients (both jaws, scans with and without labels) wrong poses (arch turned or upside
down) scored at most 0.61 and right ones of labelled scans at least 0.80; below it all ``KEEP_STARTS`` are
polished."""
SCORE_GATE_MM = 0.5
"""An IOS point scores when it lands this close to the CBCT crown surface."""
SCORE_CAP_MM = 6.0
"""Distances are searched and counted up to this far in a score's median (farther points slow the search and
tell nothing more)."""


def kabsch(src: NDArray[np.float64], dst: NDArray[np.float64]) -> Affine4x4:
    """Least-squares rigid (proper rotation) ``dst_from_src`` (4, 4) mapping ``src`` (n, 3) onto ``dst`` (n, 3)."""
    cs, cd = src.mean(axis=0), dst.mean(axis=0)
    h = (src - cs).T @ (dst - cd)
    u, _, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(vt.T @ u.T)) or 1.0
    r = vt.T @ np.diag([1.0, 1.0, d]) @ u.T
    T = np.eye(4)
    T[:3, :3] = r
    T[:3, 3] = cd - r @ cs
    return T


def centroids(points: NDArray[np.float64], fdi: NDArray[np.integer]) -> dict[int, NDArray[np.float64]]:
    """Per FDI tooth (> 0) the mean of its ``points`` (n, 3) mm; ``fdi`` (n,) per point."""
    return {int(f): points[fdi == f].mean(axis=0) for f in np.unique(fdi) if f > 0}


def centroid_start(
    ios: dict[int, NDArray[np.float64]], cbct: dict[int, NDArray[np.float64]]
) -> tuple[Affine4x4, tuple[int, ...]] | None:
    """``world_from_ios`` from tooth centroids (FDI → (3,) mm, IOS frame and LPS world) and the FDI codes that
    agree with it; None when fewer than three teeth are shared or no triple is supported by three teeth."""
    shared = sorted(set(ios) & set(cbct))
    if len(shared) < 3:
        return None
    src = np.array([ios[f] for f in shared])
    dst = np.array([cbct[f] for f in shared])
    best: tuple[int, float, NDArray[np.bool_]] | None = None
    for trio in itertools.combinations(range(len(shared)), 3):
        idx = list(trio)
        a, b, c = src[idx]
        if np.linalg.norm(np.cross(b - a, c - a)) < MIN_TRIANGLE_MM2:  # (nearly) collinear teeth fix no rotation
            continue
        T = kabsch(src[idx], dst[idx])
        err = np.linalg.norm(apply_transform(T, src) - dst, axis=1)
        ok = err < CENTROID_GATE_MM
        key = (int(ok.sum()), -float(err[ok].sum()))
        if best is None or key > (best[0], best[1]):
            best = (key[0], key[1], ok)
    if best is None or best[0] < 3:
        return None
    ok = best[2]
    return kabsch(src[ok], dst[ok]), tuple(f for f, k in zip(shared, ok, strict=True) if k)


def _frame(points: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Centroid (3,) and principal axes (3, 3) as columns, largest first, right-handed."""
    c = points.mean(axis=0)
    _, _, vt = np.linalg.svd(points - c, full_matrices=False)
    axes = vt.T.copy()
    if np.linalg.det(axes) < 0:
        axes[:, 2] = -axes[:, 2]
    return c, axes


def hypotheses(
    ios: NDArray[np.float64],
    cbct: NDArray[np.float64],
    occlusal: NDArray[np.float64],
    angles: int,
    *,
    crowns_only: bool = False,
) -> list[Affine4x4]:
    """Start poses (4, 4) ``world_from_ios`` aligning the arch normals both ways up and turning the arch in
    ``angles`` steps about it.

    ios: (n, 3) IOS-frame mm points of the scan; cbct: (m, 3) LPS mm crown points of the same jaw; occlusal: (3,)
    unit LPS vector from the gums towards the crown tips (−z for the upper jaw, +z for the lower). When both
    clouds are crowns only (``crowns_only``), translations match their centroids; otherwise the cusp bands
    (points within ``CUSP_BAND_MM`` of the most occlusal one), as gingiva and palate pull the scan's centroid
    away from the crowns.
    """
    _, es = _frame(ios)
    _, et = _frame(cbct)
    h_cbct = cbct @ occlusal
    band_cbct = cbct.mean(axis=0) if crowns_only else cbct[h_cbct > h_cbct.max() - CUSP_BAND_MM].mean(axis=0)
    starts = []
    for flip in (np.diag([1.0, 1.0, 1.0]), np.diag([1.0, -1.0, -1.0])):
        base = et @ flip @ es.T
        for k in range(angles):
            spin = Rotation.from_rotvec(et[:, 2] * (2 * np.pi * k / angles)).as_matrix()
            r = spin @ base
            y = ios @ r.T
            h = y @ occlusal
            T = np.eye(4)
            T[:3, :3] = r
            band = y if crowns_only else y[h > h.max() - CUSP_BAND_MM]
            T[:3, 3] = band_cbct - band.mean(axis=0)
            starts.append(T)
    return starts


def score(
    target: Target,
    points: NDArray[np.float64],
    normals: NDArray[np.float64] | None,
    T: Affine4x4,
    normal_agreement: float,
) -> tuple[float, float]:
    """(fraction of IOS ``points`` (m, 3) landing within ``SCORE_GATE_MM`` with agreeing normals, minus the
    median distance capped at ``SCORE_CAP_MM``) for pose ``T``: larger is better."""
    x = apply_transform(T, points)
    nx = None if normals is None else normals @ T[:3, :3].T
    m = match(target, x, nx, normal_agreement, bound_mm=SCORE_CAP_MM)
    good = m.agree & (m.distance < SCORE_GATE_MM)
    return float(good.mean()), -float(np.median(np.minimum(m.distance, SCORE_CAP_MM)))


def prescore(target: Target, points: NDArray[np.float64], starts: list[Affine4x4]) -> NDArray[np.float64]:
    """Per start (k,) the mean distance (mm) from ``points`` (m, 3) source-frame mm, mapped by each of ``starts``
    (4, 4), to the target, each distance capped at ``PRESCORE_CAP_MM``: smaller is better. All starts are
    queried at once."""
    if not starts:
        return np.zeros(0)
    T = np.stack(starts)
    x = np.einsum("kij,mj->kmi", T[:, :3, :3], points) + T[:, None, :3, 3]
    d, _ = target.tree.query(x.reshape(-1, 3), k=1, workers=1, distance_upper_bound=PRESCORE_CAP_MM)
    return np.asarray(np.minimum(d, PRESCORE_CAP_MM).reshape(len(starts), len(points)).mean(axis=1))


def _polish(
    target: Target,
    points: NDArray[np.float64],
    normals: NDArray[np.float64] | None,
    T0: Affine4x4,
    iterations: int,
    final_mm: float,
    normal_agreement: float,
    fit: Target | None = None,
) -> tuple[Affine4x4, tuple[float, float]]:
    """ICP of ``points`` onto ``fit`` (default ``target``) from ``T0``, and the pose's ``score`` on ``target``."""
    T = icp(
        target if fit is None else fit,
        points,
        normals,
        T0,
        iterations=iterations,
        start_mm=6.0,
        final_mm=final_mm,
        tolerance=1e-4,
        normal_agreement=normal_agreement,
    )
    return T, score(target, points, normals, T, normal_agreement)


def best_start(
    target: Target,
    points: NDArray[np.float64],
    normals: NDArray[np.float64] | None,
    starts: list[Affine4x4],
    *,
    iterations: int,
    normal_agreement: float,
    coarse: Target | None = None,
    keep: int = PRESCORE_KEEP,
) -> tuple[Affine4x4, float]:
    """Rank ``starts`` (4, 4) by ``prescore``, polish the ``keep`` best with a short coarse ICP of
    ``points`` (m, 3) (source-frame mm, a farthest-point sample; unit ``normals`` or None) onto ``coarse`` (a
    thinned copy of ``target``, ``Target.thinned``; default ``target`` itself), score them on ``target``, polish the
    ``KEEP_STARTS`` best of those again finely (stopping at the first that scores ``CLEAR_SCORE``), and return the
    best pose and its score (fraction of points on the target). Ties keep the earlier start, so the choice is
    deterministic."""
    near = prescore(target, points[:PRESCORE_POINTS], starts)  # a farthest-point prefix is itself spread evenly
    kept = sorted(sorted(range(len(starts)), key=lambda i: (near[i], i))[:keep])
    few = slice(0, max(COARSE_POINTS, len(points) // 2))
    nfew = None if normals is None else normals[few]
    polished = [
        _polish(target, points[few], nfew, starts[i], iterations // 2, 3.0, normal_agreement, coarse) for i in kept
    ]
    order = sorted(range(len(polished)), key=lambda i: (-polished[i][1][0], -polished[i][1][1], i))
    best_T, best_key = starts[0], (-1.0, -np.inf)
    for i in order[:KEEP_STARTS]:
        T, key = _polish(target, points, normals, polished[i][0], iterations, 0.5, normal_agreement)
        if key > best_key:
            best_T, best_key = T, key
        if best_key[0] >= CLEAR_SCORE:
            break
    return best_T, best_key[0]
