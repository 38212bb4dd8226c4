"""Rigid fits: Kabsch, centroid starts that shrug off swapped teeth, ICP that converges exactly."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from toothmcl_data.register.icp import Target, icp, match
from toothmcl_data.register.init import PRESCORE_CAP_MM, centroid_start, hypotheses, kabsch, prescore
from toothmcl_data.types import apply_transform


def _pose(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    T = np.eye(4)
    T[:3, :3] = Rotation.random(random_state=rng).as_matrix()
    T[:3, 3] = rng.uniform(-50, 50, 3)
    return T


@given(st.integers(0, 10_000))
@settings(max_examples=25, deadline=None)
def test_kabsch_recovers_any_pose(seed: int) -> None:
    T = _pose(seed)
    src = np.random.default_rng(seed + 1).normal(size=(12, 3)) * 20
    np.testing.assert_allclose(kabsch(src, apply_transform(T, src)), T, atol=1e-9)


def _arch() -> dict[int, np.ndarray]:
    """Crown centroids of an upper arch (LPS mm)."""
    out = {}
    for q, sign in ((1, -1.0), (2, 1.0)):
        for p in range(1, 8):
            x = sign * (4 + 4.2 * (p - 1))
            out[q * 10 + p] = np.array([x, 0.02 * x * x, 0.0])
    return out


def test_centroid_start_ignores_swapped_and_missing_teeth() -> None:
    world = _arch()
    T = _pose(3)
    ios = {f: apply_transform(np.linalg.inv(T), c[None])[0] for f, c in world.items()}
    ios[11], ios[21] = ios[21], ios[11]  # planted swap
    del ios[17], world[26]  # missing on either side
    found = centroid_start(ios, world)
    assert found is not None
    start, agreeing = found
    np.testing.assert_allclose(start, T, atol=1e-8)
    assert 11 not in agreeing
    assert 21 not in agreeing
    assert len(agreeing) == 10


def test_centroid_start_needs_three_shared_teeth() -> None:
    world = _arch()
    assert centroid_start({11: world[11], 12: world[12]}, world) is None


def test_hypotheses_cover_both_flips_and_all_turns() -> None:
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(500, 3)) * np.array([25.0, 15.0, 3.0])
    starts = hypotheses(pts, pts, np.array([0.0, 0.0, 1.0]), 12)
    assert len(starts) == 24
    angles = [np.degrees(Rotation.from_matrix(s[:3, :3]).magnitude()) for s in starts]
    assert min(angles) < 1e-6  # the identity is among them
    assert all(np.isclose(np.linalg.det(s[:3, :3]), 1.0) for s in starts)


def test_icp_converges_exactly_on_a_clean_surface() -> None:
    # A wavy surface with normals: z = sin(x/5) cos(y/7), sampled on a grid.
    x, y = np.meshgrid(np.linspace(-20, 20, 120), np.linspace(-15, 15, 90))
    z = 3 * np.sin(x / 5) * np.cos(y / 7)
    pts = np.c_[x.ravel(), y.ravel(), z.ravel()]
    dzdx = 3 / 5 * np.cos(x / 5) * np.cos(y / 7)
    dzdy = -3 / 7 * np.sin(x / 5) * np.sin(y / 7)
    nrm = np.c_[-dzdx.ravel(), -dzdy.ravel(), np.ones(x.size)]
    nrm /= np.linalg.norm(nrm, axis=1, keepdims=True)
    target = Target.of(pts, nrm)
    offset = np.eye(4)
    offset[:3, :3] = Rotation.from_rotvec([0.03, -0.02, 0.05]).as_matrix()
    offset[:3, 3] = [0.8, -0.5, 0.4]
    src = apply_transform(np.linalg.inv(offset), pts[::7])
    src_n = nrm[::7] @ np.linalg.inv(offset)[:3, :3].T
    T = icp(
        target, src, src_n, np.eye(4), iterations=60, start_mm=4, final_mm=0.4, tolerance=1e-9, normal_agreement=0.5
    )
    np.testing.assert_allclose(T, offset, atol=1e-4)


def _blob(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """An anisotropic point cloud (n, 3) mm with random unit normals."""
    rng = np.random.default_rng(seed)
    pts = rng.normal(size=(n, 3)) * np.array([25.0, 15.0, 3.0])
    nrm = rng.normal(size=(n, 3))
    return pts, nrm / np.linalg.norm(nrm, axis=1, keepdims=True)


def test_bounded_match_agrees_within_the_bound_and_drops_the_rest() -> None:
    pts, nrm = _blob(0, 2000)
    target = Target.of(pts, nrm)
    query = _blob(1, 500)[0] * 1.3
    full = match(target, query, None, 0.5)
    near = match(target, query, None, 0.5, bound_mm=2.0)
    inside = full.distance < 2.0
    assert 0 < inside.sum() < len(query)
    np.testing.assert_array_equal(near.index[inside], full.index[inside])
    np.testing.assert_array_equal(near.distance[inside], full.distance[inside])
    assert np.all(np.isinf(near.distance[~inside]))
    assert not near.agree[~inside].any()
    assert near.agree[inside].all()


def test_prescore_matches_one_pose_at_a_time_and_ranks_the_true_pose_first() -> None:
    pts, nrm = _blob(2, 1500)
    target = Target.of(pts, nrm)
    truth = _pose(5)
    src = apply_transform(np.linalg.inv(truth), pts[:200])
    starts = [_pose(s) for s in range(6, 12)] + [truth]
    near = prescore(target, src, starts)
    for T, got in zip(starts, near, strict=True):
        d = match(target, apply_transform(T, src), None, 0.5).distance
        assert got == pytest.approx(np.minimum(d, PRESCORE_CAP_MM).mean(), abs=1e-12)
    assert int(np.argmin(near)) == len(starts) - 1
    assert near[-1] == pytest.approx(0.0, abs=1e-9)


def test_thinned_target_keeps_the_first_point_of_each_cell_and_coarse_is_built_once() -> None:
    rng = np.random.default_rng(3)
    pts = rng.uniform(0, 10, size=(4000, 3))
    nrm = rng.normal(size=(4000, 3))
    nrm /= np.linalg.norm(nrm, axis=1, keepdims=True)
    target = Target.of(pts, nrm)
    thin = target.thinned(1.0)
    cells = np.floor(pts).astype(int)
    firsts = sorted({tuple(c): i for i, c in reversed(list(enumerate(cells)))}.values())
    np.testing.assert_array_equal(thin.points, pts[firsts])  # one per occupied 1 mm cell, first in order
    np.testing.assert_array_equal(thin.normals, nrm[firsts])
    assert len(thin.points) == len({tuple(c) for c in cells}) < len(pts)
    d, _ = thin.tree.query(pts)
    assert d.max() <= np.sqrt(3.0)  # every point has a kept one in its own cell
    assert target.coarse is target.coarse
    assert len(target.coarse.points) < len(pts)
