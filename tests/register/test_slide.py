"""Partial scans slid along the arch: the settle step, the starts, and an unlabelled quadrant scan end to end."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation

from tests.register.conftest import COARSE, centroid_errors_mm, unlabelled
from toothmcl_data import geometry
from toothmcl_data.register import cbct_surface, register_jaw, slide
from toothmcl_data.synth.patient import SyntheticPatient, make_patient
from toothmcl_data.types import Jaw, apply_transform


def _cloud() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A flat-ish random cloud with unit normals, and a pose ``true`` (world_from_src)."""
    rng = np.random.default_rng(0)
    q = rng.normal(size=(600, 3)) * [20.0, 10.0, 3.0]
    n = rng.normal(size=(600, 3))
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    true = np.eye(4)
    true[:3, :3] = Rotation.from_rotvec([0.1, 0.2, 0.3]).as_matrix()
    true[:3, 3] = [5.0, -3.0, 2.0]
    return q, n, true


def test_extent_is_the_length_along_the_largest_axis() -> None:
    x = np.linspace(0.0, 30.0, 31)
    pts = np.c_[x, 0.1 * np.sin(x), np.zeros_like(x)] @ Rotation.from_rotvec([0.0, 0.0, 0.7]).as_matrix().T
    assert abs(slide.extent_mm(pts) - 30.0) < 0.05


def test_settle_turns_and_moves_a_start_onto_the_target() -> None:
    q, n, true = _cloud()
    src = (q - true[:3, 3]) @ true[:3, :3]
    start = true.copy()
    start[:3, :3] = Rotation.from_rotvec([0.0, 0.0, 0.08]).as_matrix() @ true[:3, :3]
    start[:3, 3] += [1.0, 1.0, 0.0]
    far = true.copy()
    far[:3, 3] += [0.0, 0.0, 40.0]
    out, rank = slide.settle([start, far], src, n @ true[:3, :3], cKDTree(q), n, np.array([0.0, 0.0, 1.0]))
    assert np.abs(apply_transform(out[0], src) - q).max() < 1e-6
    assert rank[0] < 1e-6
    assert rank[1] == pytest.approx(slide.RANK_CAP_MM)  # nothing within reach: every cusp counts as capped


def test_settle_ranks_disagreeing_normals_as_far() -> None:
    q, n, true = _cloud()
    src = (q - true[:3, 3]) @ true[:3, :3]
    swapped = np.roll(n, 1, axis=1)  # right places, wrong normals
    _, rank = slide.settle([true], src, swapped @ true[:3, :3], cKDTree(q), n, np.array([0.0, 0.0, 1.0]))
    agree = np.abs(np.einsum("ij,ij->i", swapped, n)) >= slide.RANK_AGREEMENT
    assert 0.0 < rank[0] <= slide.RANK_CAP_MM
    assert rank[0] > 0.5 * slide.RANK_CAP_MM * (1.0 - agree.mean())


def test_crowns_are_ranked_on_all_their_points_not_on_their_cusps_alone() -> None:
    """Two places on the target hold the part's cusps, one of them also its side wall (a molar's cusps fit the
    mirror molar as well): ranked by the cusps both are equal; by every point (``crowns``), the true one wins."""
    g = np.linspace(-2.0, 2.0, 9)
    cusps = np.array([[x, y, 0.0] for x in g for y in g])
    wall = np.array([[-2.5, y, z] for y in g for z in np.linspace(-8.0, -4.0, 9)])  # below the cusp band
    points = np.vstack([cusps, wall])
    normals = np.vstack([np.tile([0.0, 0.0, 1.0], (len(cusps), 1)), np.tile([-1.0, 0.0, 0.0], (len(wall), 1))])
    other = cusps + np.array([20.0, 0.0, 0.0])  # the cusps again, without their wall
    target = np.vstack([points, other])
    target_normals = np.vstack([normals, normals[: len(cusps)]])
    shifted = np.eye(4)
    shifted[0, 3] = 20.0
    far = [np.eye(4) + np.pad(np.array([[0.0, 0.0, 0.0, 50.0 + 10 * i]]), ((0, 3), (0, 0))) for i in range(6)]
    starts = [np.eye(4), shifted, *far]  # 8 starts: the best quarter by their cusps is the first two
    up = np.array([0.0, 0.0, 1.0])
    _, by_cusps = slide.settle(starts, points, normals, cKDTree(target), target_normals, up)
    _, by_all = slide.settle(starts, points, normals, cKDTree(target), target_normals, up, True)
    assert by_cusps[0] == pytest.approx(by_cusps[1], abs=1e-9)
    assert by_all[0] < 1e-9
    assert 1.0 < by_all[1] < slide.RANK_CAP_MM  # the wall's points have nothing within reach, the cusps do
    assert np.all(np.isinf(by_all[2:]))  # far off by their cusps: not ranked again


@pytest.fixture(scope="module")
def quadrant_scan() -> SyntheticPatient:
    """Each jaw scanned over a few teeth of one side (0.8 mm CBCT, seed 9: its upper scan's long axis rises 16° from
    the occlusal plane, and the slid starts of 16 positions without pitches left it 54 mm off, failed by QC)."""
    return make_patient(COARSE, np.random.default_rng(9), 0, conditions=("ios_quadrant",))


def test_slid_starts_hold_one_near_the_truth(quadrant_scan: SyntheticPatient) -> None:
    from toothmcl_data.geometry import farthest_point_indices
    from toothmcl_data.register.sample import crown_sample

    p = quadrant_scan
    surface = cbct_surface(p.cbct, None).jaw("upper")
    sample = crown_sample(unlabelled(p.ios["upper"]), 3000)
    assert slide.extent_mm(sample.points) < 0.6 * slide.extent_mm(surface.points)  # a part of the arch
    pick = farthest_point_indices(surface.points, 2000)
    normal = geometry.mean_normal(p.ios["upper"])
    starts = slide.slide_hypotheses(sample.points[: slide.POSITIONS * 40], normal, surface.points[pick], -surface.up)
    settled, rank = slide.settle(
        starts, sample.points[:150], sample.normals[:150], cKDTree(surface.points[pick]), surface.normals[pick],
        -surface.up,
    )  # fmt: skip
    truth = p.world_from_ios["upper"]
    at_truth = apply_transform(truth, sample.points)
    err = np.array([np.linalg.norm(apply_transform(T, sample.points) - at_truth, axis=1).mean() for T in settled])
    assert err.min() < 2.5
    kept = np.argsort(rank, kind="stable")[: slide.SLIDE_KEEP]  # the starts handed to the polish
    assert err[kept].min() < 3.0


def test_unlabelled_quadrant_scan_registers(quadrant_scan: SyntheticPatient) -> None:
    """With slid starts at 16 positions and no pitches this jaw ended 54 mm off (failed by QC)."""
    p = quadrant_scan
    r = register_jaw(p.cbct, unlabelled(p.ios["upper"]), surface=cbct_surface(p.cbct, None))
    assert centroid_errors_mm(p, "upper", r.world_from_ios).max() < 0.3
    assert r.verdict == "review"  # a partial overlap: never passed unseen


def test_the_side_of_a_scan_comes_from_its_fdi_quadrants() -> None:
    left = np.repeat([0, 31, 32, 33, 34, 35, 41], 10)  # lower left quadrant and the right central incisor
    assert slide.scan_side(left) == 1
    assert slide.scan_side(np.repeat([0, 14, 15, 16, 17, 55], 10)) == -1  # upper right, a deciduous tooth too
    assert slide.scan_side(np.repeat([11, 12, 21, 22], 10)) == 0  # both sides
    assert slide.scan_side(np.zeros(10, dtype=np.int16)) == 0  # unlabelled


def test_starts_on_the_other_side_of_the_arch_are_dropped() -> None:
    cbct = np.c_[np.linspace(-30.0, 30.0, 61), np.zeros(61), np.zeros(61)] + [4.0, 0.0, 0.0]  # midline x = 4
    points = np.array([[20.0, 0.0, 0.0], [24.0, 0.0, 0.0]])
    here, mirrored = np.eye(4), np.diag([-1.0, -1.0, 1.0, 1.0])  # centroid at x = 22 and x = −22
    assert [T is here for T in slide.on_side([mirrored, here], points, 1, cbct)] == [True]  # LPS +x: patient's left
    assert [T is mirrored for T in slide.on_side([mirrored, here], points, -1, cbct)] == [True]
    assert len(slide.on_side([mirrored, here], points, 0, cbct)) == 2
    assert len(slide.on_side([mirrored], points, 1, cbct)) == 1  # none on that side: all kept


@pytest.mark.parametrize(("seed", "jaw"), [(3, "lower"), (9, "upper")])
def test_a_labelled_quadrant_scan_stays_on_its_side_of_the_arch(seed: int, jaw: Jaw) -> None:
    """Intensity path, a labelled quadrant (teeth 32–36 / 12–16): without the side of its FDI quadrant, the best
    scored start put it on the other side of the arch (44 / 54 mm off, failed by QC)."""
    p = make_patient(COARSE, np.random.default_rng(seed), 0, conditions=("ios_quadrant",))
    r = register_jaw(p.cbct, p.ios[jaw])
    assert centroid_errors_mm(p, jaw, r.world_from_ios).max() < 0.3
    assert r.verdict == "review"


def test_a_quadrant_fields_crowns_slide_along_a_whole_labelled_scan() -> None:
    """Intensity path, a quadrant field (teeth 41–46) and the whole labelled lower scan: the arch axes of the whole
    scan match none of the CBCT piece's, and the best start put it 44 mm off (failed by QC). The CBCT crowns are
    now slid along the scan's."""
    p = make_patient(COARSE, np.random.default_rng(7), 0, conditions=("fov_quadrant",))
    r = register_jaw(p.cbct, p.ios["lower"])
    err = centroid_errors_mm(p, "lower", r.world_from_ios)
    assert np.median(err) < 0.3, err
    assert r.verdict == "review"  # a partial overlap: never passed unseen
