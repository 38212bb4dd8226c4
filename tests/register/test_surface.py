"""CBCT crown surfaces: on the true tooth boundary, at a level estimated from the data, from labels or intensity."""

from __future__ import annotations

import numpy as np
import pytest

from tests.register.conftest import distance_to_crowns
from toothmcl_data.errors import RegistrationError
from toothmcl_data.register.surface import (
    ToothSurface,
    cbct_surface,
    surface_from_intensity,
    surface_from_labels,
)
from toothmcl_data.synth.patient import SyntheticPatient
from toothmcl_data.synth.shapes import crown_field, to_local
from toothmcl_data.types import Volume, apply_transform


@pytest.mark.parametrize("kind", ["labelled", "intensity"])
def test_surface_lies_on_the_true_crowns(
    kind: str, coarse_patient: SyntheticPatient, labelled_surface: ToothSurface, intensity_surface: ToothSurface
) -> None:
    surface = labelled_surface if kind == "labelled" else intensity_surface
    d = distance_to_crowns(coarse_patient, surface.points)
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


def test_a_clinical_field_is_cut_to_its_teeth_and_a_large_box_searched_coarsely(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A 120 × 120 × 80 mm field at 0.4 mm (skull bone, sinuses, airway, spine; air outside): it is cut to the box
    of its teeth (every crown inside, a fraction of the field); a box still that large is searched coarsely, the
    full-resolution surface computed near the crowns only; either way the points lie within a fraction of a voxel
    of the true crowns, no far bone among them, as the single pass's do."""
    from toothmcl_data.register import isosurface
    from toothmcl_data.register import surface as surface_module
    from toothmcl_data.register.field import teeth_field
    from toothmcl_data.synth.anatomy import draw_anatomy
    from toothmcl_data.synth.cbct import render_cbct
    from toothmcl_data.synth.config import SynthConfig

    config = SynthConfig(
        spacing_mm=0.4, field_mm=(120.0, 120.0, 80.0), third_molar_probability=0.0, implant_probability=0.0,
        metal_crown_probability=0.0,
    )  # fmt: skip
    rng = np.random.default_rng(11)
    anatomy = draw_anatomy(config, rng)
    cbct, _ = render_cbct(anatomy, config, rng)
    teeth = anatomy.world_teeth()
    fdi = np.array([t.fdi for t in teeth])
    cut = teeth_field(cbct, "test")
    assert cut.array.size < 0.5 * cbct.array.size
    cut_surface = surface_from_intensity(cbct)

    passes: list[tuple[int, int]] = []  # (stride, vertices) of every iso-surface
    original = isosurface.iso_surface

    def spy(*args: object, **kwargs: object) -> tuple[np.ndarray, np.ndarray]:
        out = original(*args, **kwargs)  # type: ignore[arg-type]
        passes.append((int(kwargs.get("stride", 1)), len(out[0])))  # type: ignore[call-overload]
        return out

    monkeypatch.setattr(isosurface, "iso_surface", spy)
    monkeypatch.setattr(surface_module, "teeth_field", lambda volume, where: volume)  # the whole field's box
    surface = surface_from_intensity(cbct)
    (coarse_stride, _), (fine_stride, fine_vertices) = passes
    assert (coarse_stride, fine_stride) == (2, 1)
    monkeypatch.setattr(surface_module, "COARSE_VOXELS", 10**12)
    passes.clear()
    single = surface_from_intensity(cbct)
    assert [stride for stride, _ in passes] == [1]
    assert fine_vertices < 0.3 * passes[0][1]  # near the crowns only (measured 0.19)

    for s in (cut_surface, surface, single):
        fields = np.stack([np.abs(crown_field(to_local(s.points, t), t)) for t in teeth])
        d = fields.min(axis=0)
        assert np.median(d) < 0.05  # mm, 0.4 mm voxels
        assert np.percentile(d, 95) < 0.15
        # No bone far from the crowns over the whole field; in the teeth's box, as on a grid fitted to the jaws, a
        # few points of bone facing air (measured 35 of 30,716)
        assert np.mean(d > 1.0) < (0.005 if s is cut_surface else 1e-9)
    # every crown found as densely as by the single pass over the whole field
    per_tooth = [np.bincount(np.stack([np.abs(crown_field(to_local(s.points, t), t)) for t in teeth]).argmin(axis=0),
                             minlength=len(fdi)) for s in (cut_surface, surface, single)]  # fmt: skip
    for found in per_tooth[:2]:
        assert np.all(found >= 0.97 * per_tooth[2]), dict(zip(fdi, found / per_tooth[2], strict=True))
    assert len(surface.points) == pytest.approx(len(single.points), rel=0.02)
    assert surface.level == pytest.approx(single.level, rel=0.01)
    assert np.mean(surface.upper) == pytest.approx(np.mean(single.upper), abs=0.01)


def test_metal_crowns_in_a_clinical_field_are_found_without_a_label_map() -> None:
    """Metal crowns in a 160 × 160 × 110 mm head, no label map: over the whole field the air-facing bone (airway,
    sinuses) outnumbered the crowns, enamel was classed as metal and 95 % of the points lay on bone (median 30 mm
    off); cut to the teeth's box, the points lie on the crowns."""
    from scipy.spatial import cKDTree

    from toothmcl_data.synth.config import SynthConfig
    from toothmcl_data.synth.patient import make_patient

    config = SynthConfig(spacing_mm=0.4, ios_noise_mm=0.02, field_mm=(160.0, 160.0, 110.0))
    p = make_patient(config, np.random.default_rng(0), 0, conditions=("metal_crowns",))
    truth = np.concatenate(
        [apply_transform(p.world_from_ios[j], m.vertices[np.asarray(m.labels) > 0]) for j, m in p.ios.items()]
    )
    d, _ = cKDTree(truth).query(surface_from_intensity(p.cbct).points)
    assert np.median(d) < 0.3  # mm (measured 0.14; 29.8 over the whole field)
    assert np.mean(d > 1.0) < 0.3  # (measured 0.25 off a crown by more than 1 mm, as on a grid fitted to the jaws)
