"""Registration QC: residual statistics from known residuals, thresholds that scale with the voxels, and a
verdict that passes the true pose and fails one 2 mm off."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from toothmcl_data.register.config import RegisterConfig
from toothmcl_data.register.icp import Target
from toothmcl_data.register.qc import (
    LABEL_AGREEMENT,
    MIN_OVERLAP_MM2,
    PLANE_GATE_MM,
    WIDE_OVERLAP_MM2,
    JawQC,
    coverage,
    label_agreement,
    meets,
    residuals,
    summarise,
    threshold_scale,
    toward_review,
    verdict,
)
from toothmcl_data.register.surface import ToothSurface
from toothmcl_data.synth.patient import SyntheticPatient
from toothmcl_data.types import apply_transform

CONFIG = RegisterConfig()


def _plane(n: int = 41) -> Target:
    """The plane z = 0 sampled every 0.25 mm over 10 × 10 mm, normals +z."""
    x, y = np.meshgrid(np.linspace(-5, 5, n), np.linspace(-5, 5, n))
    pts = np.c_[x.ravel(), y.ravel(), np.zeros(x.size)]
    return Target.of(pts, np.tile([0.0, 0.0, 1.0], (len(pts), 1)))


def test_residual_is_point_to_plane_near_the_surface_and_distance_beyond() -> None:
    target = _plane()
    points = np.array([[0.1, 0.1, 0.3], [0.0, 0.0, -0.6], [0.0, 0.0, 2.0], [0.1, 0.1, 0.3]])
    normals = np.array([[0, 0, 1.0], [0, 0, 1.0], [0, 0, 1.0], [1.0, 0, 0]])
    res, index = residuals(target, points, normals, normal_agreement=0.5)
    assert res[0] == pytest.approx(0.3)  # point-to-plane, not the 0.3x distance to the nearest sample
    assert res[1] == pytest.approx(0.6)
    assert res[2] == pytest.approx(2.0)  # beyond PLANE_GATE_MM: the plain distance
    assert res[3] > 0.3  # normals disagree: the plain distance to the nearest sample
    np.testing.assert_allclose(target.points[index[0]], [0.0, 0.0, 0.0])


def test_summary_of_known_residuals() -> None:
    res = np.array([0.1, 0.2, 0.3, 5.0])
    fdi = np.array([11, 11, 12, 0])
    qc = summarise(res, fdi, 0.7, CONFIG, spacing_mm=0.4)
    assert qc.rms_mm == pytest.approx(np.sqrt((0.01 + 0.04 + 0.09) / 3))  # 5.0 is beyond the gate: unmatched
    assert qc.p95_mm == pytest.approx(np.percentile([0.1, 0.2, 0.3], 95))
    assert qc.inlier_fraction == pytest.approx(0.5)  # < 0.25 mm among all four
    assert qc.coverage == 0.7
    assert qc.per_tooth_mm == pytest.approx({11: np.sqrt(0.025), 12: 0.3})
    coarse = summarise(res, fdi, 0.7, CONFIG, spacing_mm=0.8)  # the inlier gate doubles to 0.5 mm
    assert coarse.inlier_fraction == pytest.approx(0.75)
    assert summarise(np.array([]), np.array([]), 0.5, CONFIG, 0.4).rms_mm == np.inf
    assert summarise(np.array([PLANE_GATE_MM + 1]), np.array([11]), 0.5, CONFIG, 0.4).inlier_fraction == 0.0


def test_verdict_thresholds_and_their_scaling() -> None:
    good = JawQC(rms_mm=0.1, p95_mm=0.2, inlier_fraction=0.9, coverage=0.8, per_tooth_mm={})
    middling = JawQC(rms_mm=0.25, p95_mm=0.5, inlier_fraction=0.7, coverage=0.5, per_tooth_mm={})
    bad = JawQC(rms_mm=0.5, p95_mm=1.0, inlier_fraction=0.3, coverage=0.1, per_tooth_mm={})
    assert [verdict(q, CONFIG, 0.4) for q in (good, middling, bad)] == ["pass", "review", "fail"]
    assert threshold_scale(CONFIG, 0.3) == 1.0
    assert threshold_scale(CONFIG, 0.8) == pytest.approx(2.0)
    coarse = JawQC(rms_mm=0.25, p95_mm=0.5, inlier_fraction=0.9, coverage=0.8, per_tooth_mm={})
    assert verdict(coarse, CONFIG, 0.4) == "review"
    assert verdict(coarse, CONFIG, 0.8) == "pass"  # distance thresholds doubled for 0.8 mm voxels
    assert not meets(JawQC(0.1, 0.2, 0.9, 0.59, {}), CONFIG, 0.4, "pass")  # coverage is not scaled


def test_a_partial_overlap_is_judged_from_pass_towards_review_thresholds_as_it_grows() -> None:
    assert toward_review(MIN_OVERLAP_MM2 - 50) == 0.0
    assert toward_review(WIDE_OVERLAP_MM2 + 50) == 1.0
    assert toward_review((MIN_OVERLAP_MM2 + WIDE_OVERLAP_MM2) / 2) == pytest.approx(0.5)
    # half way: RMS limit half way between pass (0.15) and review (0.30), inlier limit between 0.85 and 0.6
    halfway = JawQC(rms_mm=0.22, p95_mm=0.45, inlier_fraction=0.75, coverage=0.8, per_tooth_mm={})
    assert meets(halfway, CONFIG, 0.4, 0.5)
    assert not meets(halfway, CONFIG, 0.4, "pass")
    assert not meets(halfway, CONFIG, 0.4, 0.3)
    assert not meets(JawQC(0.23, 0.45, 0.75, 0.8, {}), CONFIG, 0.4, 0.5)
    assert meets(halfway, CONFIG, 0.4, "review")


def test_a_partial_overlap_whose_labels_agree_on_both_sides_is_judged_by_the_review_thresholds() -> None:
    scan = np.array([21, 22, 22, 23, 23, 23, 24, 24, 24, 25])
    assert label_agreement(scan, scan) == 1.0
    assert label_agreement(scan, scan + 1) == 0.0  # slid by a tooth: every point on its neighbour
    assert label_agreement(scan[:0], scan[:0]) == 0.0
    small = MIN_OVERLAP_MM2 + 10
    assert toward_review(small, 1.0) == 1.0
    assert toward_review(small, LABEL_AGREEMENT - 0.01) == toward_review(small) < 0.1
    assert toward_review(small, None) == toward_review(small)


def test_coverage_counts_surface_samples_with_a_vertex_near() -> None:
    surface = np.c_[np.arange(10.0), np.zeros(10), np.zeros(10)]
    vertices = surface[:4] + np.array([0.0, 0.3, 0.0])
    assert coverage(surface, vertices, 0.5) == pytest.approx(0.4)
    assert coverage(surface, vertices, 0.2) == 0.0
    assert coverage(surface, vertices[:0], 0.5) == 0.0


def _jaw_qc(patient: SyntheticPatient, surface: ToothSurface, world_from_ios: np.ndarray) -> JawQC:
    mesh = patient.ios["upper"]
    assert mesh.labels is not None
    crowns = np.flatnonzero(mesh.labels > 0)[::4]
    normals = trimesh.Trimesh(mesh.vertices, mesh.faces, process=False).vertex_normals[crowns]
    target = Target.of(surface.points, surface.normals)
    moved = apply_transform(world_from_ios, mesh.vertices[crowns])
    res, _ = residuals(target, moved, normals @ world_from_ios[:3, :3].T, CONFIG.normal_agreement)
    cover = coverage(surface.jaw("upper").points, apply_transform(world_from_ios, mesh.vertices), CONFIG.coverage_mm)
    return summarise(res, mesh.labels[crowns], cover, CONFIG, min(patient.cbct.spacing))


def test_true_pose_passes_and_a_2mm_shift_fails(
    coarse_patient: SyntheticPatient, labelled_surface: ToothSurface
) -> None:
    truth = coarse_patient.world_from_ios["upper"]
    spacing = min(coarse_patient.cbct.spacing)
    right = _jaw_qc(coarse_patient, labelled_surface, truth)
    assert verdict(right, CONFIG, spacing) == "pass", right
    shifted = truth.copy()
    shifted[:3, 3] += [2.0, 0.0, 0.0]
    wrong = _jaw_qc(coarse_patient, labelled_surface, shifted)
    assert verdict(wrong, CONFIG, spacing) == "fail", wrong
    assert wrong.inlier_fraction < 0.5 * right.inlier_fraction
    assert wrong.coverage < right.coverage
