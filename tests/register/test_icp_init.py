"""Rigid fits: Kabsch, centroid starts that shrug off swapped teeth, ICP that converges exactly."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from toothmcl_data.register.icp import Target, icp
from toothmcl_data.register.init import centroid_start, hypotheses, kabsch
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
