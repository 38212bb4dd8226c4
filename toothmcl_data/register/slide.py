"""Start poses for a scan that covers part of the arch (a quadrant scan): the scan slid along the CBCT arch.

The arch-axis search (``init.hypotheses``) matches the principal axes and centroids of the whole scan and the
whole jaw, which a quadrant of 3-6 teeth does not share with the arch; shape features (``features``) find few
correct matches on so little surface (measured on ``ios_quadrant`` patients: 7-8 of ~100 feature matches
right). Here the scan's own long axis is laid along the arch's local direction at positions spread over the CBCT
crowns, its mean surface normal (gums → crowns, 8-40° off the occlusal direction on quadrant scans) turned about
the arch in ``ROLLS`` and about the occlusal axis in ``YAWS``, both ends first; each start's cusps are then
settled onto the CBCT crowns by a few translation-only steps and all starts are ranked at once by how close the
cusps land.
"""

from __future__ import annotations

import fpsample
import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation

from toothmcl_data.types import Affine4x4

CUSP_BAND_MM = 3.0
"""The scan's (and the CBCT window's) cusps: points within this depth of the most occlusal one."""
POSITIONS = 16
"""Positions on the CBCT crowns (farthest-point spread, in the occlusal plane) the scan is slid to."""
ROLLS = tuple(range(-60, 61, 15))
"""Turns (degrees) of the scan about the arch direction, from its mean normal put on the occlusal axis."""
YAWS = (-10, 0, 10)
"""Turns (degrees) about the occlusal axis, from the scan's long axis put on the arch's local direction."""
SETTLE_STEPS = 3
"""Translation-only steps that move each start's cusps onto their nearest CBCT crown points."""
SETTLE_MM = 6.0
"""Cusp points farther than this from the CBCT crowns do not pull a settle step."""
RANK_CAP_MM = 3.0
"""The rank of a settled start is the mean cusp distance to the CBCT crowns, each capped at this."""
MIN_WINDOW = 20
"""A position whose window holds fewer CBCT points than this is skipped."""


def _farthest(points: NDArray[np.float64], n: int) -> NDArray[np.float64]:
    """``n`` of ``points`` (m, 3), a deterministic farthest-point sample from the first (all when m ≤ n)."""
    if len(points) <= n:
        return points
    return points[np.asarray(fpsample.bucket_fps_kdline_sampling(points, n, h=3, start_idx=0), dtype=np.intp)]


def extent_mm(points: NDArray[np.float64]) -> float:
    """Length (mm) of ``points`` (n, 3) along their largest principal axis."""
    centred = points - points.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return float(np.ptp(centred @ vt[0]))


def slide_hypotheses(
    ios: NDArray[np.float64],
    ios_normal: NDArray[np.float64],
    cbct: NDArray[np.float64],
    occlusal: NDArray[np.float64],
) -> list[Affine4x4]:
    """Start poses (4, 4) ``world_from_ios`` of a partial scan slid along the CBCT arch.

    ios: (n, 3) IOS-frame mm points of the scan (a spread sample); ios_normal: (3,) unit mean surface normal of
    the scan (IOS frame, pointing out of the surface: roughly occlusal); cbct: (m, 3) LPS mm crown points of the
    jaw; occlusal: (3,) unit LPS direction from the gums towards the crown tips of that jaw.
    """
    o = occlusal / np.linalg.norm(occlusal)
    cs = ios.mean(axis=0)
    _, _, vt = np.linalg.svd(ios - cs, full_matrices=False)
    a = vt[0]
    b = ios_normal - (ios_normal @ a) * a
    if np.linalg.norm(b) < 1e-6:
        b = vt[1]
    b = b / np.linalg.norm(b)
    scan_frame = np.stack([a, b, np.cross(a, b)], axis=1)
    radius = max(0.5 * float(np.ptp((ios - cs) @ a)), 8.0)
    flat = cbct - np.outer(cbct @ o, o)
    tree = cKDTree(flat)
    turns = [
        (roll, Rotation.from_rotvec(o * np.radians(yaw)).as_matrix()) for roll in ROLLS for yaw in YAWS
    ]  # fmt: skip
    starts: list[Affine4x4] = []
    for p in _farthest(flat, POSITIONS):
        window = tree.query_ball_point(p, radius)
        if len(window) < MIN_WINDOW:
            continue
        w, wf = cbct[window], flat[window]
        _, _, wt = np.linalg.svd(wf - wf.mean(axis=0), full_matrices=False)
        t = wt[0] - (wt[0] @ o) * o
        t = t / np.linalg.norm(t)
        hw = w @ o
        cusps = w[hw > hw.max() - CUSP_BAND_MM].mean(axis=0)
        for sign in (1.0, -1.0):
            along = sign * t
            base = np.stack([along, o, np.cross(along, o)], axis=1) @ scan_frame.T
            for roll, yaw in turns:
                r = yaw @ Rotation.from_rotvec(along * np.radians(roll)).as_matrix() @ base
                y = ios @ r.T
                h = y @ o
                T = np.eye(4)
                T[:3, :3] = r
                T[:3, 3] = cusps - y[h > h.max() - CUSP_BAND_MM].mean(axis=0)
                starts.append(T)
    return starts


def settle(
    starts: list[Affine4x4], points: NDArray[np.float64], tree: cKDTree, occlusal: NDArray[np.float64]
) -> tuple[list[Affine4x4], NDArray[np.float64]]:
    """Move each start (4, 4) ``world_from_ios`` by ``SETTLE_STEPS`` translation-only steps that bring the cusps
    of ``points`` (m, 3) IOS-frame mm (those within ``CUSP_BAND_MM`` of the most occlusal one along
    ``occlusal`` (3,) after the start's rotation) onto their nearest points of the CBCT crowns in ``tree`` (LPS
    mm). Returns the moved starts and their rank (k,) (mean capped cusp distance, mm: smaller is better)."""
    if not starts:
        return [], np.zeros(0)
    T = np.stack(starts)
    x = np.einsum("kij,mj->kmi", T[:, :3, :3], points) + T[:, None, :3, 3]
    h = x @ occlusal
    cusp = h > h.max(axis=1, keepdims=True) - CUSP_BAND_MM
    owner = np.nonzero(cusp)[0]  # only the cusps are queried: the start each belongs to
    y0 = x[cusp]
    count = np.maximum(np.bincount(owner, minlength=len(T)), 1)
    shift = np.zeros((len(T), 3))
    n = tree.n
    for step in range(SETTLE_STEPS + 1):
        y = y0 + shift[owner]
        d, i = tree.query(y, k=1, workers=1, distance_upper_bound=SETTLE_MM if step < SETTLE_STEPS else RANK_CAP_MM)
        if step == SETTLE_STEPS:
            rank = np.bincount(owner, weights=np.minimum(d, RANK_CAP_MM), minlength=len(T)) / count
            break
        found = i < n
        pull = np.where(found[:, None], tree.data[np.minimum(i, n - 1)] - y, 0.0)
        moved = np.stack([np.bincount(owner, weights=pull[:, c], minlength=len(T)) for c in range(3)], axis=1)
        shift += moved / np.maximum(np.bincount(owner, weights=found, minlength=len(T)), 1)[:, None]
    out = T.copy()
    out[:, :3, 3] += shift
    return list(out), np.asarray(rank, dtype=np.float64)
