"""Jaw poses of the synthetic anatomy: the bite closes to the asked-for gap, the hinge opens the mandible down
and back about the condyle, the bite block is as thick as the incisal gap, the head tilt is one rigid motion."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from toothmcl_data.synth import jawpose
from toothmcl_data.synth.anatomy import Anatomy, draw_anatomy
from toothmcl_data.synth.config import SynthConfig
from toothmcl_data.types import apply_transform


@pytest.fixture(scope="module")
def anatomy() -> Anatomy:
    return draw_anatomy(
        SynthConfig(third_molar_probability=0.0, missing_tooth_probability=0.0), np.random.default_rng(4)
    )


def _rigid(T: np.ndarray) -> None:
    np.testing.assert_allclose(T[:3, :3] @ T[:3, :3].T, np.eye(3), atol=1e-12)
    assert np.linalg.det(T[:3, :3]) == pytest.approx(1.0)


def test_closed_bite_leaves_the_asked_for_gap(anatomy: Anatomy) -> None:
    closed, params = jawpose.close_bite(anatomy, gap=0.1)
    assert params["kind"] == "occlusion"
    upper = list(closed.jaw_teeth("upper"))
    gaps = []
    for spec in closed.jaw_teeth("lower"):
        near = [u for u in upper if np.hypot(*(np.asarray(u.cej[:2]) - np.asarray(spec.cej[:2]))) < 16.0]
        gaps.append(float(jawpose._field(jawpose._crown_surface(spec), near).min()))
    assert np.median(gaps) == pytest.approx(0.1, abs=0.03)  # crowns touch at the gap, none passes through
    assert min(gaps) > 0.0
    raised = np.array(list(params["raise_mm"].values()))
    assert closed.arch("lower").cej_z == pytest.approx(anatomy.arch("lower").cej_z + np.median(raised))


def test_hinge_opens_down_and_back_about_the_condyle(anatomy: Anatomy) -> None:
    upper, lower = anatomy.arch("upper"), anatomy.arch("lower")
    H = jawpose.hinge(upper, lower, 10.0, back_mm=80.0, up_mm=25.0)
    _rigid(H)
    condyle = np.array([upper.x0, upper.y0 + 80.0, 0.5 * (upper.cej_z + lower.cej_z) + 25.0])
    np.testing.assert_allclose(apply_transform(H, condyle[None])[0], condyle, atol=1e-9)
    tips = jawpose._incisal_tips(anatomy, "lower")
    moved = apply_transform(H, tips)
    assert np.all(moved[:, 2] < tips[:, 2] - 3.0)  # down (LPS +z is superior)
    assert np.all(moved[:, 1] > tips[:, 1])  # and back (+y posterior)
    np.testing.assert_allclose(moved[:, 0], tips[:, 0], atol=1e-9)  # no sideways motion


def test_bite_block_is_as_thick_as_the_incisal_gap(anatomy: Anatomy) -> None:
    opened, params = jawpose.open_bite(anatomy, "block", np.random.default_rng(1))
    assert params["incisal_gap_mm"] == pytest.approx(params["block_thickness_mm"], abs=0.01)
    assert opened.block is not None
    assert opened.block.hi[2] - opened.block.lo[2] == pytest.approx(params["block_thickness_mm"], abs=0.01)
    np.testing.assert_array_equal(opened.world_from_jaw("upper"), np.eye(4))
    _rigid(opened.world_from_jaw("lower"))


def test_head_tilt_moves_both_jaws_alike(anatomy: Anatomy) -> None:
    tilted, params = jawpose.tilt_head(anatomy, np.random.default_rng(2))
    U, L = tilted.world_from_jaw("upper"), tilted.world_from_jaw("lower")
    _rigid(U)
    np.testing.assert_allclose(U, L)
    angle = np.degrees(np.arccos((np.trace(U[:3, :3]) - 1) / 2))
    assert angle > 5.0
    centre = np.mean([t.cej for t in anatomy.teeth], axis=0)
    np.testing.assert_allclose(apply_transform(U, centre[None])[0], centre, atol=1e-9)  # about the teeth's centre
    Rz, Ry, Rx = (
        Rotation.from_euler(a, params[k], degrees=True).as_matrix()
        for a, k in zip("zyx", ("yaw_deg", "roll_deg", "pitch_deg"), strict=True)
    )
    np.testing.assert_allclose(U[:3, :3], Rz @ Ry @ Rx, atol=1e-12)
    assert 5.0 <= abs(params["pitch_deg"]) <= 20.0
