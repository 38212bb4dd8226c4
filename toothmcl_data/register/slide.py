"""Start poses for a scan that covers part of the arch (a quadrant scan): the scan slid along the CBCT arch.

The arch-axis search (``init.hypotheses``) matches the principal axes and centroids of the whole scan and the
whole jaw, which a quadrant of 3-6 teeth does not share with the arch; shape features (``features``) find few
correct matches on so little surface (measured on ``ios_quadrant`` patients: 7-8 of ~100 feature matches
right). Here the scan's own long axis is laid along the arch's local direction at positions spread over the CBCT
crowns, its mean surface normal (gums → crowns, 8-40° off the occlusal direction on quadrant scans) turned about
the arch in ``ROLLS`` and across it in ``PITCHES``, both ends first; each start's cusps are then settled onto
the CBCT crowns by a few rigid steps and all starts are ranked at once by how close the cusps land.

The same search runs the other way when the CBCT shows part of the arch (a quadrant field of view) and the scan
the whole: the CBCT's crowns are slid along the scan's (:func:`slide` takes either as the part). The CBCT crowns
are crown surface throughout, so their starts are ranked on all their points, not on their cusps alone (a molar's
cusps fit the mirror molar's as well), and every kept start is polished (``crowns``).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation

from toothmcl_data.geometry import farthest_point_indices
from toothmcl_data.register.icp import Target
from toothmcl_data.register.init import PRESCORE_KEEP, best_start
from toothmcl_data.types import Affine4x4

CUSP_BAND_MM = 3.0
"""The scan's (and the CBCT window's) cusps: points within this depth of the most occlusal one."""
POSITIONS = 48
"""Positions on the CBCT crowns (farthest-point spread, in the occlusal plane) the scan is slid to (with 16, the
nearest start could land a tooth off and settle onto the neighbouring cusps: 2 of 6 unlabelled quadrant jaws of
the bench failed once the jaw split was exact; with 48, none of them nor of 20 with 10 patients)."""
ROLLS = tuple(range(-60, 61, 15))
"""Turns (degrees) of the scan about the arch direction, from its mean normal put on the occlusal axis."""
PITCHES = (-20, 0, 20)
"""Turns (degrees) about the axis across the arch: a quadrant scan's long axis is not level (incisors to
premolars it rises with the arch's curve and the gums it holds; 17° on a clinical-field patient whose best start
was then 17° off and missed). The scan is not turned about the occlusal axis: steps of ±10° there tripled the
starts without helping (with them and 32 positions 1 of 6 bench jaws failed, with 48 positions and none, none)."""
SETTLE_STEPS = 3
"""Rigid steps that move each start's cusps onto their nearest CBCT crown points."""
SETTLE_MM = 6.0
"""Cusp points farther than this from the CBCT crowns do not pull the first settle step (Tukey's biweight)."""
SETTLE_SHRINK = 0.6
"""... and each further step's gate is this fraction of the one before."""
RANK_CAP_MM = 3.0
"""The rank of a settled start is the mean cusp distance to the CBCT crowns, each capped at this."""
RANK_AGREEMENT = 0.7
"""A cusp point whose unit normal and its nearest CBCT point's differ by more (|cos| below this) counts as far:
at 0.8 mm voxels the crowns are dense enough that cusps pushed into their sides land near some surface."""
SLIDE_POINTS = 150
"""Points of the partial set (a prefix of its farthest-point sample) whose cusps settle and rank the slid starts."""
RANK_SHARE = 0.25
"""Crowns slid along a scan (``settle``'s ``crowns``): the share of the starts, best ranked by their cusps, that are
ranked again on all their points (the cusps alone ranked clinical seed 17 ``fov_quadrant`` patient 4's true place
102nd of 2,592, 4 %; its ``SLIDE_POINTS`` points then 9th, 50 of them no longer among the kept)."""
SLIDE_KEEP = 24
"""Slid starts, best ranked, handed to the polish and score of ``init.best_start``."""
MIN_WINDOW = 20
"""A position whose window holds fewer CBCT points than this is skipped."""
ONE_SIDED = 0.75
"""A labelled partial scan with at least this fraction of its crown points on one side of the patient (a quadrant
scan with the central incisor of the other side, too) is kept on that side of the arch (``on_side``)."""


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
    turns = np.radians([(roll, pitch) for roll in ROLLS for pitch in PITCHES])  # (k, 2): every turn at once
    starts: list[Affine4x4] = []
    for p in flat[farthest_point_indices(flat, POSITIONS, h=3)]:
        window = tree.query_ball_point(p, radius)
        if len(window) < MIN_WINDOW:
            continue
        w, wf = cbct[window], flat[window]
        _, _, wt = np.linalg.svd(wf - wf.mean(axis=0), full_matrices=False)
        t = wt[0] - (wt[0] @ o) * o
        t = t / np.linalg.norm(t)
        hw = w @ o
        cusps = w[hw > hw.max() - CUSP_BAND_MM].mean(axis=0)
        for sign in (1.0, -1.0):  # the scan's long axis either way along the arch
            along = sign * t
            base = np.stack([along, o, np.cross(along, o)], axis=1) @ scan_frame.T
            across = np.cross(o, along)
            tilt = Rotation.from_rotvec(np.outer(turns[:, 1], across)) * Rotation.from_rotvec(
                np.outer(turns[:, 0], along)
            )
            r = tilt.as_matrix() @ base  # (k, 3, 3)
            # heights of the scan turned each way (k, n): its points against each turn's occlusal (r_k^T o),
            # without turning all of them; the mean of each turn's top band, turned
            h = np.einsum("kji,j->ki", r, o) @ ios.T
            top = (h > h.max(axis=1, keepdims=True) - CUSP_BAND_MM).astype(np.float64)
            T = np.tile(np.eye(4), (len(r), 1, 1))
            T[:, :3, :3] = r
            T[:, :3, 3] = cusps - np.einsum("kij,kj->ki", r, (top @ ios) / top.sum(axis=1)[:, None])
            starts.extend(T)
    return starts


def _turned(T: NDArray[np.float64], vectors: NDArray[np.float64]) -> NDArray[np.float64]:
    """``vectors`` (m, 3) turned by the rotation of each start ``T`` (k, 4, 4): (k, m, 3) (a batched matrix product,
    ten times faster than the same ``einsum`` for the slide's 2,592 starts)."""
    return np.asarray(vectors @ T[:, :3, :3].transpose(0, 2, 1), dtype=np.float64)


def _group_sum(owner: NDArray[np.intp], values: NDArray[np.float64], k: int) -> NDArray[np.float64]:
    """Per start (k, ...) the sum of ``values`` (m, ...) over the rows each start ``owner`` (m,) holds."""
    flat = values.reshape(len(values), -1)
    out = np.stack([np.bincount(owner, weights=flat[:, c], minlength=k) for c in range(flat.shape[1])], axis=1)
    return out.reshape((k, *values.shape[1:]))


def settle(
    starts: list[Affine4x4],
    points: NDArray[np.float64],
    normals: NDArray[np.float64],
    tree: cKDTree,
    tree_normals: NDArray[np.float64],
    occlusal: NDArray[np.float64],
    crowns: bool = False,
) -> tuple[list[Affine4x4], NDArray[np.float64]]:
    """Refine each start (4, 4) ``world_from_ios`` by ``SETTLE_STEPS`` rigid point-to-point steps (all starts at
    once) that bring the cusps of ``points`` (m, 3) IOS-frame mm (those within ``CUSP_BAND_MM`` of the most
    occlusal one along ``occlusal`` (3,) after the start's rotation) onto their nearest points of the CBCT crowns
    in ``tree`` (LPS mm, unit ``tree_normals`` (n, 3)). Returns the refined starts and their rank (k,): the mean
    cusp distance, each capped at ``RANK_CAP_MM`` and counted as capped where the unit ``normals`` (m, 3) of the
    cusp and its CBCT point disagree (smaller is better). ``crowns``: ``points`` are all crown surface (CBCT
    crowns slid along a scan), each with a counterpart on the other side: the rank is then taken over all of them,
    settled on the cusps as before."""
    if not starts:
        return [], np.zeros(0)
    T = np.stack(starts)
    k = len(T)
    x = _turned(T, points) + T[:, None, :3, 3]
    h = x @ occlusal
    cusp = h > h.max(axis=1, keepdims=True) - CUSP_BAND_MM
    owner = np.nonzero(cusp)[0]  # only the cusps are queried: the start each belongs to
    y = x[cusp]
    ny = _turned(T, normals)[cusp]
    count = np.maximum(np.bincount(owner, minlength=k), 1)
    n = tree.n
    for step in range(SETTLE_STEPS + 1):
        gate = SETTLE_MM * SETTLE_SHRINK**step if step < SETTLE_STEPS else RANK_CAP_MM
        d, i = tree.query(y, k=1, workers=1, distance_upper_bound=gate)
        found = i < n
        i = np.minimum(i, n - 1)
        if step == SETTLE_STEPS:
            rank = np.bincount(owner, weights=_capped(d, ny, tree_normals[i]), minlength=k) / count
            if crowns:  # the best by their cusps, ranked again on all their points; the others last
                best = np.argsort(rank, kind="stable")[: max(1, int(np.ceil(RANK_SHARE * k)))]
                rank = np.full(k, np.inf)
                rank[best] = _rank(T[best], points, normals, tree, tree_normals)
            break
        w = np.where(found, (1.0 - np.minimum(d / gate, 1.0) ** 2) ** 2, 0.0)  # Tukey's biweight
        q = tree.data[i]
        total = np.maximum(np.bincount(owner, weights=w, minlength=k), 1e-9)
        cy = _group_sum(owner, y * w[:, None], k) / total[:, None]
        cq = _group_sum(owner, q * w[:, None], k) / total[:, None]
        cov = _group_sum(owner, np.einsum("mi,mj->mij", (y - cy[owner]) * w[:, None], q - cq[owner]), k)
        u, _, vt = np.linalg.svd(cov)
        fix = np.tile(np.eye(3), (k, 1, 1))
        fix[:, 2, 2] = np.sign(np.linalg.det(np.einsum("kji,klj->kil", vt, u)))
        fix[fix[:, 2, 2] == 0, 2, 2] = 1.0
        r = np.einsum("kji,kjl,kml->kim", vt, fix, u)  # vᵀ · fix · uᵀ: maps y − cy onto q − cq
        r[total < 3] = np.eye(3)  # too few matches to turn: stay
        t = cq - np.einsum("kij,kj->ki", r, cy)
        t[total < 3] = 0.0
        y = np.einsum("mij,mj->mi", r[owner], y) + t[owner]
        ny = np.einsum("mij,mj->mi", r[owner], ny)
        step_T = np.tile(np.eye(4), (k, 1, 1))
        step_T[:, :3, :3], step_T[:, :3, 3] = r, t
        T = np.einsum("kij,kjl->kil", step_T, T)
    return list(T), np.asarray(rank, dtype=np.float64)


def _capped(
    d: NDArray[np.float64], normals: NDArray[np.float64], near_normals: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Distances ``d`` (m,) to the nearest points capped at ``RANK_CAP_MM``, and counted as capped where the unit
    ``normals`` (m, 3) and the nearest points' ``near_normals`` disagree (``RANK_AGREEMENT``)."""
    agree = np.abs(np.einsum("ij,ij->i", normals, near_normals)) >= RANK_AGREEMENT
    return np.where(agree, np.minimum(d, RANK_CAP_MM), RANK_CAP_MM)


def _rank(
    T: NDArray[np.float64],
    points: NDArray[np.float64],
    normals: NDArray[np.float64],
    tree: cKDTree,
    tree_normals: NDArray[np.float64],
) -> NDArray[np.float64]:
    """The rank (k,) of starts ``T`` (k, 4, 4) over every point of ``points`` (m, 3) with unit ``normals``: their
    mean capped distance to the nearest point of ``tree`` (``_capped``)."""
    x = (_turned(T, points) + T[:, None, :3, 3]).reshape(-1, 3)
    nx = _turned(T, normals).reshape(-1, 3)
    d, i = tree.query(x, k=1, workers=1, distance_upper_bound=RANK_CAP_MM)
    capped = _capped(d, nx, tree_normals[np.minimum(i, tree.n - 1)])
    return np.asarray(capped.reshape(len(T), -1).mean(axis=1), dtype=np.float64)


def scan_side(fdi: NDArray[np.integer]) -> int:
    """The patient's side a labelled scan shows: +1 when at least ``ONE_SIDED`` of its crown points (FDI labels
    ``fdi`` (m,), 0 = not a tooth) are on the patient's left (FDI quadrants 2, 3, 6, 7), −1 when as many are on the
    right, 0 otherwise (both sides, or no labels)."""
    quadrant = fdi[fdi > 0] // 10
    if len(quadrant) == 0:
        return 0
    left = float(np.isin(quadrant, (2, 3, 6, 7)).mean())
    return 1 if left >= ONE_SIDED else -1 if left <= 1.0 - ONE_SIDED else 0


def on_side(
    starts: list[Affine4x4], points: NDArray[np.float64], side: int, cbct: NDArray[np.float64]
) -> list[Affine4x4]:
    """The starts (4, 4) ``world_from_ios`` that put the centroid of ``points`` (m, 3, IOS-frame mm) on the
    patient's ``side`` (``scan_side``) of the CBCT crowns ``cbct`` (n, 3, LPS mm; the arch's midline taken at
    their median x; LPS +x is the patient's left, whatever the head's pose, up to the yaw of a head turned in
    the volume): a quadrant scan fitted onto the other side of the arch matches its mirror teeth. All starts when
    ``side`` is 0 or none is on that side."""
    if side == 0 or not starts:
        return starts
    centre = points.mean(axis=0)
    midline = float(np.median(cbct[:, 0]))
    kept = [T for T in starts if side * (float(T[0, :3] @ centre + T[0, 3]) - midline) > 0]
    return kept or starts


Part = tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]
"""Crowns covering part of an arch: points, unit normals, mean unit normal (see :func:`slide`)."""
Arch = tuple[NDArray[np.float64], NDArray[np.float64], Target]
"""An arch's crowns: points, unit normals, their ICP target (see :func:`slide`)."""


def slide(
    part: Part, arch: Arch, occlusal: NDArray[np.float64], agree: float, side: int, crowns: bool = False
) -> Affine4x4:
    """The best pose (4, 4) ``arch_from_part`` of crowns covering part of an arch slid along the arch's crowns
    (a quadrant scan along the CBCT crowns, or a quadrant field's CBCT crowns along a whole scan): starts from
    ``slide_hypotheses``, settled and ranked (``settle``), the ``SLIDE_KEEP`` best kept on ``side`` (``on_side``,
    0: either) and polished and scored part → arch (every point of the part has a counterpart on the arch).

    part: points (m, 3) mm in a farthest-point order, their unit normals (m, 3), and the part's (3,) unit mean
    surface normal (roughly occlusal), in its own frame. arch: points (n, 3) mm (a farthest-point spread), unit
    normals (n, 3) and the ``Target`` of the arch's crowns, in its frame; occlusal: (3,) unit direction from the
    gums towards the crown tips there; agree: the normal agreement of ``init.best_start``; crowns: the part is
    all crown surface (``settle``)."""
    points, normals, normal = part
    arch_points, arch_normals, target = arch
    starts = slide_hypotheses(points[: POSITIONS * 40], normal, arch_points, occlusal)
    few = slice(0, SLIDE_POINTS)
    starts, rank = settle(starts, points[few], normals[few], cKDTree(arch_points), arch_normals, occlusal, crowns)
    ranked = [starts[i] for i in np.argsort(rank, kind="stable")]
    kept = on_side(ranked, points, side, arch_points)[:SLIDE_KEEP]
    keep = len(kept) if crowns else PRESCORE_KEEP  # crowns: ranked on all their points, each kept start polished
    best, _ = best_start(target, points[:600], normals[:600], kept, iterations=20, normal_agreement=agree, keep=keep)
    return best
