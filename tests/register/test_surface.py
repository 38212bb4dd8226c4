"""CBCT crown surfaces: on the true tooth boundary, at a level estimated from the data, from labels or intensity."""

from __future__ import annotations

import numpy as np
import pytest

from toothmcl_data.errors import RegistrationError
from toothmcl_data.register.surface import (
    ToothSurface,
    _morph,
    cbct_surface,
    surface_from_intensity,
    surface_from_labels,
)
from toothmcl_data.synth.patient import SyntheticPatient
from toothmcl_data.synth.shapes import crown_field, to_local
from toothmcl_data.types import Volume


def _distance_to_crowns(patient: SyntheticPatient, points: np.ndarray) -> np.ndarray:
    d = np.full(len(points), np.inf)
    for spec in patient.anatomy.teeth:
        d = np.minimum(d, np.abs(crown_field(to_local(points, spec), spec)))
    return d


@pytest.mark.parametrize("kind", ["labelled", "intensity"])
def test_surface_lies_on_the_true_crowns(
    kind: str, coarse_patient: SyntheticPatient, labelled_surface: ToothSurface, intensity_surface: ToothSurface
) -> None:
    surface = labelled_surface if kind == "labelled" else intensity_surface
    d = _distance_to_crowns(coarse_patient, surface.points)
    assert len(surface.points) > 5000
    assert np.median(d) < 0.15  # 0.8 mm voxels; 0.04 mm at 0.4 mm (bench)
    assert np.percentile(d, 95) < 0.45
    assert np.allclose(np.linalg.norm(surface.normals, axis=1), 1.0)
    # the half-way level between enamel (~2700) and air (~0), measured, not configured
    assert 1150 < surface.level < 1500


def test_labelled_points_carry_their_tooth(coarse_patient: SyntheticPatient, labelled_surface: ToothSurface) -> None:
    specs = {t.fdi: t for t in coarse_patient.anatomy.teeth}
    assert set(np.unique(labelled_surface.fdi)) == set(specs)
    for fdi in (11, 26, 37, 44):
        pts = labelled_surface.points[labelled_surface.fdi == fdi]
        assert np.median(np.abs(crown_field(to_local(pts, specs[fdi]), specs[fdi]))) < 0.2
    assert np.array_equal(labelled_surface.upper, labelled_surface.fdi < 30)


def test_intensity_path_splits_the_jaws(labelled_surface: ToothSurface, intensity_surface: ToothSurface) -> None:
    from scipy.spatial import cKDTree

    _, idx = cKDTree(labelled_surface.points).query(intensity_surface.points)
    agree = labelled_surface.upper[idx] == intensity_surface.upper
    assert agree.mean() > 0.99
    assert intensity_surface.source == "intensity"
    assert np.all(intensity_surface.fdi == 0)


def test_level_follows_the_data_not_a_constant(
    coarse_patient: SyntheticPatient, intensity_surface: ToothSurface
) -> None:
    cbct = coarse_patient.cbct
    brighter = Volume((cbct.array.astype(np.int32) * 2 + 500).astype(np.int16), cbct.affine)
    surface = surface_from_intensity(brighter)
    assert surface.level == pytest.approx(2 * intensity_surface.level + 500, rel=0.02)
    assert len(surface.points) == pytest.approx(len(intensity_surface.points), rel=0.02)
    np.testing.assert_allclose(
        np.median(surface.points, axis=0), np.median(intensity_surface.points, axis=0), atol=0.05
    )


def test_surface_errors_name_the_problem(coarse_patient: SyntheticPatient) -> None:
    cbct = coarse_patient.cbct
    empty = Volume(np.zeros(cbct.shape, dtype=np.uint8), cbct.affine)
    with pytest.raises(RegistrationError, match="the label map holds no tooth"):
        surface_from_labels(cbct, empty)
    small = Volume(np.zeros((4, 4, 4), dtype=np.uint8), cbct.affine)
    with pytest.raises(RegistrationError, match=r"does not match the CBCT grid"):
        cbct_surface(cbct, small)
    flat = Volume(np.full(cbct.shape, 300, dtype=np.int16), cbct.affine)
    with pytest.raises(RegistrationError, match="expected a dental CBCT"):
        surface_from_intensity(flat)


@pytest.mark.parametrize("shape", [(1, 5, 7), (2, 2, 2), (9, 8, 7), (30, 20, 25)])
def test_morphology_matches_scipy(shape: tuple[int, int, int]) -> None:
    from scipy import ndimage

    rng = np.random.default_rng(len(shape) * sum(shape))
    for fraction in (0.03, 0.5, 0.97):
        mask = rng.random(shape) < fraction
        for iterations in (1, 2, 4):
            assert np.array_equal(_morph(mask, iterations), ndimage.binary_dilation(mask, iterations=iterations))
            eroded = ndimage.binary_erosion(mask, iterations=iterations)
            assert np.array_equal(_morph(mask, iterations, erode=True), eroded)
