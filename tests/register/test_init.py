"""Start poses: tooth centroids, the best of many starts after a short polish, and the pose score."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from scipy.spatial.transform import Rotation

from tests.register.conftest import centroid_errors_mm
from toothmcl_data.register.icp import Target
from toothmcl_data.register.init import CLEAR_SCORE, best_start, centroid_start, centroids, score
from toothmcl_data.register.surface import ToothSurface
from toothmcl_data.synth.patient import SyntheticPatient
from toothmcl_data.types import apply_transform


def _wavy() -> tuple[np.ndarray, np.ndarray]:
    """A wavy surface z = 3 sin(x/5) cos(y/7) on a 40 × 30 mm grid with unit normals."""
    x, y = np.meshgrid(np.linspace(-20, 20, 120), np.linspace(-15, 15, 90))
    z = 3 * np.sin(x / 5) * np.cos(y / 7)
    dzdx = (3 / 5 * np.cos(x / 5) * np.cos(y / 7)).ravel()
    dzdy = (-3 / 7 * np.sin(x / 5) * np.sin(y / 7)).ravel()
    nrm = np.c_[-dzdx, -dzdy, np.ones(x.size)]
    return np.c_[x.ravel(), y.ravel(), z.ravel()], nrm / np.linalg.norm(nrm, axis=1, keepdims=True)


def _pose(rotvec: list[float], shift: list[float]) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = Rotation.from_rotvec(rotvec).as_matrix()
    T[:3, 3] = shift
    return T


def test_centroids_are_means_per_tooth() -> None:
    pts = np.array([[0.0, 0, 0], [2, 0, 0], [0, 4, 0], [9, 9, 9]])
    got = centroids(pts, np.array([11, 11, 12, 0]))
    assert set(got) == {11, 12}
    np.testing.assert_allclose(got[11], [1.0, 0, 0])
    np.testing.assert_allclose(got[12], [0.0, 4, 0])


def test_collinear_teeth_propose_no_pose() -> None:
    line = {f: np.array([float(i), 0.0, 0.0]) * 5 for i, f in enumerate((11, 12, 13, 14))}
    assert centroid_start(line, line) is None


def test_best_start_finds_the_known_pose_among_wrong_starts() -> None:
    pts, nrm = _wavy()
    target = Target.of(pts, nrm)
    truth = _pose([0.05, -0.03, 0.6], [3.0, -2.0, 1.0])
    src = apply_transform(np.linalg.inv(truth), pts[::11])
    src_n = nrm[::11] @ np.linalg.inv(truth)[:3, :3].T
    near_truth = truth @ _pose([0.0, 0.0, np.radians(4.0)], [0.8, -0.5, 0.3])
    wrong = [_pose([0.0, 0.0, a], [0.0, 0.0, 0.0]) for a in (2.0, 3.0, 4.0)] + [_pose([np.pi, 0, 0], [0, 0, 5])]
    starts = [*wrong[:3], near_truth, wrong[3]]
    T, fraction = best_start(target, src, src_n, starts, iterations=30, normal_agreement=0.5)
    np.testing.assert_allclose(T, truth, atol=2e-3)
    assert fraction >= CLEAR_SCORE
    assert score(target, src, src_n, truth, 0.5) == pytest.approx((1.0, 0.0), abs=1e-6)
    off = truth.copy()
    off[:3, 3] += [0.0, 0.0, 2.0]
    assert score(target, src, src_n, off, 0.5)[0] < 0.1


def test_centroid_start_and_polish_find_a_patients_pose(
    coarse_patient: SyntheticPatient, labelled_surface: ToothSurface
) -> None:
    """From the scanner's arbitrary pose: tooth centroids give a start within ~1 mm, the polish lands on the truth."""
    mesh = coarse_patient.ios["lower"]
    assert mesh.labels is not None
    surface = labelled_surface.jaw("lower")
    crowns = np.flatnonzero(mesh.labels > 0)[::3]
    found = centroid_start(
        centroids(mesh.vertices[crowns], mesh.labels[crowns]), centroids(surface.points, surface.fdi)
    )
    assert found is not None
    start, agreeing = found
    assert len(agreeing) == len(np.unique(mesh.labels[mesh.labels > 0]))
    assert np.median(centroid_errors_mm(coarse_patient, "lower", start)) < 1.5
    normals = trimesh.Trimesh(mesh.vertices, mesh.faces, process=False).vertex_normals[crowns]
    target = Target.of(surface.points, surface.normals)
    T, fraction = best_start(target, mesh.vertices[crowns], normals, [start], iterations=30, normal_agreement=0.5)
    assert np.median(centroid_errors_mm(coarse_patient, "lower", T)) < 0.15
    assert fraction > 0.7
