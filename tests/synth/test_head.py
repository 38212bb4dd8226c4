"""The clinical field of view: the same patient (teeth where they were in world mm) inside a large field with a
head around the jaws — air outside, soft tissue, bone and airway beyond the fitted grid."""

from __future__ import annotations

import numpy as np
import pytest

from toothmcl_data.errors import ConfigError
from toothmcl_data.synth.cbct import AIR, BONE, CORTEX, SOFT, grid_affine, tissue_map
from toothmcl_data.synth.config import SynthConfig
from toothmcl_data.synth.head import CLINICAL_FIELD_MM, field_grid, head_tissue_map, parse_field
from toothmcl_data.synth.patient import SyntheticPatient, make_patient

SPACING = 0.8
FIELD = (120.0, 130.0, 90.0)


@pytest.fixture(scope="module")
def patient() -> SyntheticPatient:
    return make_patient(SynthConfig(spacing_mm=SPACING, field_mm=FIELD), np.random.default_rng(4))


def test_field_grid_holds_the_fitted_grid_on_its_lattice(patient: SyntheticPatient) -> None:
    affine, shape = field_grid(patient.anatomy, SPACING, FIELD)
    inner, inner_shape = grid_affine(patient.anatomy, SPACING)
    assert np.allclose(np.asarray(shape) * SPACING, FIELD, atol=2 * SPACING)
    offset = (inner[:3, 3] - affine[:3, 3]) / SPACING
    np.testing.assert_allclose(offset, np.round(offset), atol=1e-6)  # the same voxel centres
    assert np.all(offset >= 0)
    assert np.all(offset + np.asarray(inner_shape) <= np.asarray(shape))
    np.testing.assert_array_equal(patient.cbct.affine, affine)
    assert patient.cbct.array.shape == shape
    assert patient.cbct_labels.array.shape == shape
    front = min(t.cej[1] for t in patient.anatomy.teeth)
    assert affine[1, 3] == pytest.approx(front - 25.0, abs=SPACING)  # starts 25 mm in front of the incisors


def test_teeth_stay_where_they_were_in_world_mm(patient: SyntheticPatient) -> None:
    inner, inner_shape = grid_affine(patient.anatomy, SPACING)
    _, labels = tissue_map(patient.anatomy, inner, inner_shape)
    a = np.round((inner[:3, 3] - patient.cbct.affine[:3, 3]) / SPACING).astype(int)
    box = tuple(slice(a[n], a[n] + inner_shape[n]) for n in range(3))
    field_labels = patient.cbct_labels.array
    np.testing.assert_array_equal(field_labels[box], labels)  # the same label map where the fitted grid was
    outside = field_labels.copy()
    outside[box] = 0
    assert not outside.any()  # and no tooth beyond it


def test_the_field_looks_like_a_head(patient: SyntheticPatient) -> None:
    tissue, _ = head_tissue_map(patient.anatomy, patient.cbct.affine, patient.cbct.array.shape)
    inner, inner_shape = grid_affine(patient.anatomy, SPACING)
    a = np.round((inner[:3, 3] - patient.cbct.affine[:3, 3]) / SPACING).astype(int)
    beyond = np.ones(tissue.shape, dtype=bool)
    beyond[tuple(slice(a[n], a[n] + inner_shape[n]) for n in range(3))] = False
    for corner in ((0, 0, 0), (-1, 0, 0), (0, 0, -1), (-1, 0, -1)):
        assert tissue[corner] == AIR  # in front of the face, below the chin / beside the forehead
    share = {c: float(np.mean(tissue[beyond] == c)) for c in (AIR, SOFT, BONE, CORTEX)}
    assert 0.15 < share[AIR] < 0.6
    assert share[SOFT] > 0.3
    assert share[BONE] + share[CORTEX] > 0.005  # spine, rami, sinus walls beyond the jaws
    behind = tissue[:, a[1] + inner_shape[1] :, :]
    head = behind != AIR
    inner_air = (behind == AIR) & (np.cumsum(head, axis=0) > 0) & (np.cumsum(head[::-1], axis=0)[::-1] > 0)
    assert inner_air.sum() * SPACING**3 > 2000  # the airway: air enclosed by tissue behind the teeth (> 2 cm³)
    image = patient.cbct.array.astype(np.float32)
    assert image[tissue == AIR].mean() < image[tissue == SOFT].mean() < image[tissue == CORTEX].mean()


def test_field_option_is_checked() -> None:
    assert parse_field("clinical") == CLINICAL_FIELD_MM
    assert parse_field("150, 140, 100") == (150.0, 140.0, 100.0)
    for bad in ("big", "160,160"):
        with pytest.raises(ConfigError, match="expected 'clinical' or three sizes"):
            parse_field(bad)
    with pytest.raises(ConfigError, match=r"field_mm must be three sizes in \[20, 400\]"):
        SynthConfig(field_mm=(160.0, 160.0, 5.0))
    assert SynthConfig.from_dict({"field_mm": [160, 160, 110]}).field_mm == (160.0, 160.0, 110.0)


def test_a_posed_anatomy_is_refused_in_a_clinical_field() -> None:
    config = SynthConfig(spacing_mm=1.2, field_mm=CLINICAL_FIELD_MM)
    with pytest.raises(ConfigError, match="needs an unposed anatomy"):
        make_patient(config, np.random.default_rng(1), conditions=("pose_tilted",))


def test_the_head_has_no_step_or_flat_cut_in_its_outline(patient: SyntheticPatient) -> None:
    """The skin is one smooth outline over the height: no step where the jaw model's upper and lower faces meet,
    no flat cut under the chin (the silhouette's area changes smoothly from slice to slice)."""
    tissue, _ = head_tissue_map(patient.anatomy, patient.cbct.affine, patient.cbct.array.shape)
    head = tissue != AIR
    silhouette = (np.cumsum(head, axis=0) > 0) & (np.cumsum(head[::-1], axis=0)[::-1] > 0)  # enclosed along x
    area = silhouette.sum(axis=(0, 1)).astype(np.float64)
    assert np.all(area > 0)
    bend = np.abs(np.diff(area, 2)) / area[1:-1]
    assert bend.max() < 0.01  # the jaw model's own outlines gave 0.04 at the occlusal plane


def test_the_mouths_air_ends_inside_the_cheeks(patient: SyntheticPatient) -> None:
    """At the occlusal plane the air enclosed by the head lies around the teeth (inside the cheeks, closing behind
    the last molars) or in the pharynx on the midline — not in the jaw model's band behind the arch."""
    anatomy = patient.anatomy
    affine, shape = patient.cbct.affine, patient.cbct.array.shape
    tissue, _ = head_tissue_map(anatomy, affine, shape)
    occlusal = 0.5 * (anatomy.arch("upper").cej_z + anatomy.arch("lower").cej_z)
    k = round(float(occlusal - affine[2, 3]) / SPACING)
    head = tissue[:, :, k] != AIR
    enclosed = ~head & (np.cumsum(head, axis=0) > 0) & (np.cumsum(head[::-1], axis=0)[::-1] > 0)
    i, j = np.nonzero(enclosed)
    x, y = affine[0, 3] + SPACING * i - anatomy.arch("upper").x0, affine[1, 3] + SPACING * j
    molar = max(t.cej[1] for t in anatomy.teeth)
    assert np.any(y < molar)  # the mouth's air is there
    assert np.all((y < molar + 10.0 + SPACING) | (np.abs(x) < 12.0))  # behind the molars only the pharynx
