"""Synthetic anatomy, CBCT and IOS agree with each other and with FDI conventions (LPS world)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree
from skimage.measure import marching_cubes

from toothmcl_data.fdi import LOWER_FDI, PERMANENT_FDI, UPPER_FDI, tooth
from toothmcl_data.synth.cbct import ENAMEL, INTENSITY, SOFT
from toothmcl_data.synth.config import SynthConfig
from toothmcl_data.synth.patient import SyntheticPatient, make_patient
from toothmcl_data.types import apply_transform


def _label_surface(labels: np.ndarray, affine: np.ndarray, fdi: int) -> np.ndarray:
    """World points (n, 3) on the boundary of label ``fdi``: marching-cubes vertices plus face centres."""
    idx = np.argwhere(labels == fdi)
    lo, hi = idx.min(axis=0) - 2, idx.max(axis=0) + 3
    sub = (labels[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] == fdi).astype(np.float32)
    verts, faces, _, _ = marching_cubes(sub, 0.5)
    pts = np.concatenate([verts, verts[faces].mean(axis=1)]) + lo
    return apply_transform(affine, pts)


def test_every_tooth_present_with_fdi_numbers(patient: SyntheticPatient) -> None:
    fdis = [t.fdi for t in patient.anatomy.teeth]
    assert fdis == list(PERMANENT_FDI)
    assert set(np.unique(patient.cbct_labels.array)) == {0, *PERMANENT_FDI}
    assert set(np.unique(patient.ios["upper"].labels)) == {0, *UPPER_FDI}
    assert set(np.unique(patient.ios["lower"].labels)) == {0, *LOWER_FDI}


def test_left_right_upper_lower_in_lps_world(patient: SyntheticPatient) -> None:
    """Patient right (quadrants 1, 4) is −x in LPS; upper crowns are superior (+z) of lower crowns."""
    labels = patient.cbct_labels
    centroid = {f: labels.world_from_index(np.argwhere(labels.array == f)).mean(axis=0) for f in PERMANENT_FDI}
    for fdi in PERMANENT_FDI:
        t = tooth(fdi)
        mirror = centroid[t.mirror().fdi]
        assert (centroid[fdi][0] < mirror[0]) == (t.side == "right"), fdi
        opposing = centroid[t.opposing().fdi]
        assert (centroid[fdi][2] > opposing[2]) == (t.jaw == "upper"), fdi
    # Incisors are anterior (−y) of molars.
    assert centroid[11][1] < centroid[16][1]
    assert centroid[41][1] < centroid[46][1]


def test_ios_lands_on_cbct_tooth_surfaces(patient: SyntheticPatient) -> None:
    """Ground-truth transform puts each IOS tooth on the label-map surface of the same tooth (≤ 0.2 mm mean)."""
    distances = []
    for jaw, mesh in patient.ios.items():
        world = apply_transform(patient.world_from_ios[jaw], mesh.vertices)
        for fdi in np.unique(mesh.labels[mesh.labels > 0]):
            surface = _label_surface(patient.cbct_labels.array, patient.cbct_labels.affine, int(fdi))
            d, _ = cKDTree(surface).query(world[mesh.labels == fdi])
            distances.append(d)
    d = np.concatenate(distances)
    assert d.mean() <= 0.2, d.mean()
    assert np.percentile(d, 95) <= 0.4


def test_ios_is_in_a_scanner_frame_not_world(patient: SyntheticPatient) -> None:
    for jaw, mesh in patient.ios.items():
        T = patient.world_from_ios[jaw]
        assert mesh.frame == f"ios:{jaw}"
        np.testing.assert_allclose(T[:3, :3] @ T[:3, :3].T, np.eye(3), atol=1e-12)
        assert np.linalg.det(T[:3, :3]) == pytest.approx(1.0)
        assert not np.allclose(T, np.eye(4))


def test_cbct_intensities_by_tissue(patient: SyntheticPatient) -> None:
    image = patient.cbct.array.astype(np.float64)
    teeth = patient.cbct_labels.array > 0
    assert patient.cbct.array.dtype == np.int16
    assert patient.cbct.spacing == pytest.approx((0.4, 0.4, 0.4))
    # Teeth are the brightest structure apart from metal; air is near 0.
    assert np.median(image[teeth]) > 1600
    assert np.percentile(image, 5) < 150
    assert INTENSITY[ENAMEL] > 2 * INTENSITY[SOFT]
    assert image[teeth].max() >= 2500  # enamel reaches 2500+


def test_ios_scan_is_realistic(patient: SyntheticPatient) -> None:
    for mesh in patient.ios.values():
        assert 40_000 < len(mesh.vertices) < 400_000
        edges = np.linalg.norm(mesh.vertices[mesh.faces[:, 0]] - mesh.vertices[mesh.faces[:, 1]], axis=1)
        assert 0.1 < np.median(edges) < 0.45  # vertex spacing of an intraoral scan
        assert set(np.unique(mesh.instances)) == set(range(0, 17))
        # Instances and labels agree one-to-one.
        pairs = set(zip(mesh.labels.tolist(), mesh.instances.tolist(), strict=True))
        assert len(pairs) == 17


def test_restorations_and_missing_teeth(restored_patient: SyntheticPatient) -> None:
    anatomy = restored_patient.anatomy
    kinds = {t.restoration for t in anatomy.teeth}
    assert {"implant", "metal_crown"} <= kinds
    assert anatomy.missing
    assert not set(anatomy.missing) & {t.fdi for t in anatomy.teeth}
    present = {0, *(t.fdi for t in anatomy.teeth)}
    assert set(np.unique(restored_patient.cbct_labels.array)) == present
    assert restored_patient.cbct.array.max() > 4000  # metal


def test_same_seed_same_patient() -> None:
    config = SynthConfig(spacing_mm=0.8, ios_resolution_mm=0.7)
    a = make_patient(config, np.random.default_rng(11))
    b = make_patient(config, np.random.default_rng(11))
    c = make_patient(config, np.random.default_rng(12))
    assert np.array_equal(a.cbct.array, b.cbct.array)
    assert np.array_equal(a.ios["upper"].vertices, b.ios["upper"].vertices)
    assert not np.array_equal(a.ios["upper"].vertices.shape, c.ios["upper"].vertices.shape) or not np.allclose(
        a.ios["upper"].vertices, c.ios["upper"].vertices
    )
