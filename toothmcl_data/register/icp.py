"""Robust point-to-plane ICP: IOS points onto the CBCT crown surface (Tukey biweight, shrinking gate).

Same inputs give the same transform bit for bit: nearest neighbours come from one ``cKDTree`` queried on one
thread, and every reduction runs in a fixed order.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from toothmcl_data.types import Affine4x4, apply_transform

COARSE_CELL_MM = 0.6
"""``Target.coarse`` keeps one point per cube of this size: a whole scan surface (~100k vertices ~0.25 mm apart)
keeps about a tenth, still dense for the start search's coarse polish (gate 6 → 3 mm)."""


LEAF_SIZE = 32
"""Points per k-d tree leaf (SciPy's default is 16): searches from points a few mm off the surface, as in the
start search, visit fewer nodes (measured 15-25 % faster on a 100k-vertex scan, the same at 0.1 mm off)."""


@dataclass(frozen=True, eq=False)
class Target:
    """The surface ICP fits onto: points (n, 3) and unit normals (n, 3), LPS world mm, with their k-d tree."""

    points: NDArray[np.float64]
    normals: NDArray[np.float64]
    tree: cKDTree

    @classmethod
    def of(cls, points: NDArray[np.float64], normals: NDArray[np.float64]) -> Target:
        return cls(points, normals, cKDTree(points, leafsize=LEAF_SIZE))

    def thinned(self, cell_mm: float) -> Target:
        """A copy with one point per ``cell_mm`` cube (the first of each, in the original order): for coarse fits,
        whose gates of several mm neither need the full density nor should pay for it (the cost of a nearest-
        neighbour search from a point off the surface grows with the number of points within that distance)."""
        cell = np.floor(self.points / cell_mm).astype(np.int64)
        cell -= cell.min(axis=0)
        span = cell.max(axis=0) + 1
        _, first = np.unique((cell[:, 0] * span[1] + cell[:, 1]) * span[2] + cell[:, 2], return_index=True)
        keep = np.sort(first)
        return Target.of(self.points[keep], self.normals[keep])

    @functools.cached_property
    def coarse(self) -> Target:
        """``thinned(COARSE_CELL_MM)``, built on first use and kept with this target."""
        return self.thinned(COARSE_CELL_MM)


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
    bound_mm: float = np.inf,
) -> Match:
    """Correspondences of source ``points`` (m, 3) LPS mm (with their unit ``normals`` (m, 3) in LPS, or None).

    Only neighbours closer than ``bound_mm`` are searched for (far points make the k-d tree search slow): a point
    with none has distance ``inf``, index 0, a meaningless residual and ``agree`` False.
    """
    distance, index = target.tree.query(points, k=1, workers=1, distance_upper_bound=bound_mm)
    index = np.asarray(index, dtype=np.intp)
    found = index < len(target.points)
    if not found.all():
        index = np.where(found, index, 0)
    tn = target.normals[index]
    residual = np.einsum("ij,ij->i", points - target.points[index], tn)
    agree = found
    if normals is not None:
        agree = found & (np.abs(np.einsum("ij,ij->i", normals, tn)) >= normal_agreement)
    return Match(residual, np.asarray(distance, dtype=np.float64), index, agree)


def _tukey(r: NDArray[np.float64], c: float) -> NDArray[np.float64]:
    u = np.clip(np.abs(r) / c, 0.0, 1.0)
    return np.asarray((1.0 - u * u) ** 2, dtype=np.float64)


def _rotation(v: NDArray[np.float64]) -> NDArray[np.float64]:
    """(3, 3) rotation about axis ``v`` (3,) by |v| radians (Rodrigues)."""
    theta = float(np.sqrt(v @ v))
    if theta == 0.0:
        return np.eye(3)
    kx, ky, kz = v / theta
    k = np.array([[0.0, -kz, ky], [kz, 0.0, -kx], [-ky, kx, 0.0]])
    return np.asarray(np.eye(3) + np.sin(theta) * k + (1.0 - np.cos(theta)) * (k @ k))


def _step(x: NDArray[np.float64], n: NDArray[np.float64], r: NDArray[np.float64], w: NDArray[np.float64]) -> Affine4x4:
    """The small rigid motion minimising Σ w (n·(R x + t − q))² (linearised about the identity)."""
    a = np.empty((len(x), 6))
    a[:, 0] = x[:, 1] * n[:, 2] - x[:, 2] * n[:, 1]  # x × n
    a[:, 1] = x[:, 2] * n[:, 0] - x[:, 0] * n[:, 2]
    a[:, 2] = x[:, 0] * n[:, 1] - x[:, 1] * n[:, 0]
    a[:, 3:] = n
    aw = a * w[:, None]
    lhs = aw.T @ a + 1e-9 * np.eye(6)
    rhs = -(aw.T @ r)
    sol = np.linalg.solve(lhs, rhs)
    step = np.eye(4)
    step[:3, :3] = _rotation(np.asarray(sol[:3], dtype=np.float64))
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
        m = match(target, x, nx, normal_agreement, bound_mm=gate)  # farther points are not used
        use = m.agree & (m.distance < gate)
        if use.sum() < 6:
            break
        xu, r = x[use], m.residual[use]
        tn = target.normals[m.index[use]]
        w = _tukey(r, gate) * _tukey(m.distance[use], 2.0 * gate)
        centre = xu.mean(axis=0)
        step = _step(xu - centre, tn, r, w)
        shift = np.eye(4)
        shift[:3, 3] = centre
        unshift = np.eye(4)
        unshift[:3, 3] = -centre
        update = shift @ step @ unshift
        T = update @ T
        moved = float(np.abs(apply_transform(update, xu) - xu).max())
        at_final = gate <= final_mm * (1 + 1e-9)
        gate = max(final_mm, gate * shrink)
        if at_final and moved < tolerance:
            break
    return T
