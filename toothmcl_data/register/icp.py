"""Robust point-to-plane ICP: IOS points onto the CBCT crown surface (Tukey biweight, shrinking gate).

Same inputs give the same transform bit for bit: nearest neighbours come from one ``cKDTree`` queried on one
thread, and every reduction runs in a fixed order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation

from toothmcl_data.types import Affine4x4, apply_transform


@dataclass(frozen=True, eq=False)
class Target:
    """The surface ICP fits onto: points (n, 3) and unit normals (n, 3), LPS world mm, with their k-d tree."""

    points: NDArray[np.float64]
    normals: NDArray[np.float64]
    tree: cKDTree

    @classmethod
    def of(cls, points: NDArray[np.float64], normals: NDArray[np.float64]) -> Target:
        return cls(points, normals, cKDTree(points))


@dataclass(frozen=True, eq=False)
class Match:
    """Closest-point correspondences of (m,) source points: signed point-to-plane residual (mm), point distance
    (mm), the target index, and whether the normals agree."""

    residual: NDArray[np.float64]
    distance: NDArray[np.float64]
    index: NDArray[np.intp]
    agree: NDArray[np.bool_]


def match(
    target: Target,
    points: NDArray[np.float64],
    normals: NDArray[np.float64] | None,
    normal_agreement: float,
) -> Match:
    """Correspondences of source ``points`` (m, 3) LPS mm (with their unit ``normals`` (m, 3) in LPS, or None)."""
    distance, index = target.tree.query(points, k=1, workers=1)
    index = np.asarray(index, dtype=np.intp)
    tn = target.normals[index]
    residual = np.einsum("ij,ij->i", points - target.points[index], tn)
    if normals is None:
        agree = np.ones(len(points), dtype=bool)
    else:
        agree = np.abs(np.einsum("ij,ij->i", normals, tn)) >= normal_agreement
    return Match(residual, np.asarray(distance, dtype=np.float64), index, agree)


def _tukey(r: NDArray[np.float64], c: float) -> NDArray[np.float64]:
    u = np.clip(np.abs(r) / c, 0.0, 1.0)
    return np.asarray((1.0 - u * u) ** 2, dtype=np.float64)


def _step(x: NDArray[np.float64], n: NDArray[np.float64], r: NDArray[np.float64], w: NDArray[np.float64]) -> Affine4x4:
    """The small rigid motion minimising Σ w (n·(R x + t − q))² (linearised about the identity)."""
    a = np.concatenate([np.cross(x, n), n], axis=1)
    aw = a * w[:, None]
    lhs = aw.T @ a + 1e-9 * np.eye(6)
    rhs = -(aw.T @ r)
    sol = np.linalg.solve(lhs, rhs)
    step = np.eye(4)
    step[:3, :3] = Rotation.from_rotvec(sol[:3]).as_matrix()
    step[:3, 3] = sol[3:]
    return step


def icp(
    target: Target,
    points: NDArray[np.float64],
    normals: NDArray[np.float64] | None,
    start: Affine4x4,
    *,
    iterations: int,
    start_mm: float,
    final_mm: float,
    tolerance: float,
    normal_agreement: float,
) -> Affine4x4:
    """Refine ``start`` (4, 4) ``world_from_ios`` so that ``points`` (m, 3) IOS mm (unit ``normals`` (m, 3) in
    the IOS frame, or None) land on ``target``.

    The correspondence gate shrinks geometrically from ``start_mm`` to ``final_mm``; residuals are weighted by
    Tukey's biweight with the gate as cut-off, so gingiva, palate and missing teeth do not pull the fit.
    Returns the refined (4, 4) float64 transform.
    """
    T = np.array(start, dtype=np.float64)
    shrink = (final_mm / start_mm) ** (1.0 / max(1, iterations // 2))
    gate = start_mm
    for _ in range(iterations):
        x = apply_transform(T, points)
        nx = None if normals is None else normals @ T[:3, :3].T
        m = match(target, x, nx, normal_agreement)
        use = m.agree & (m.distance < gate)
        if use.sum() < 6:
            break
        tn = target.normals[m.index[use]]
        w = _tukey(m.residual[use], gate) * _tukey(m.distance[use], 2.0 * gate)
        centre = x[use].mean(axis=0)
        step = _step(x[use] - centre, tn, m.residual[use], w)
        shift = np.eye(4)
        shift[:3, 3] = centre
        unshift = np.eye(4)
        unshift[:3, 3] = -centre
        update = shift @ step @ unshift
        T = update @ T
        moved = float(np.abs(apply_transform(update, x[use]) - x[use]).max())
        at_final = gate <= final_mm * (1 + 1e-9)
        gate = max(final_mm, gate * shrink)
        if at_final and moved < tolerance:
            break
    return T
