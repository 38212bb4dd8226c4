"""Intensity-path crown surface of 0.4 mm CBCTs with several metal crowns and strong streaks (the ``metal_crowns``
condition): metal must take neither the tooth level, nor the up axis, nor the class split.

Each seed is a patient (``make_patient(FINE, default_rng(seed), 0, …)``) registration failed on before; the
causes below."""

from __future__ import annotations

import numpy as np
import pytest

from tests.register.conftest import bench_patient, centroid_errors_mm, distance_to_crowns, unlabelled
from toothmcl_data.register import cbct_surface, register_jaw
from toothmcl_data.register.field import intensity_classes
from toothmcl_data.register.isosurface import Candidates
from toothmcl_data.register.surface import CrownRule, ToothSurface, _tooth_rule
from toothmcl_data.synth.config import SynthConfig
from toothmcl_data.synth.head import parse_field
from toothmcl_data.synth.patient import SyntheticPatient, make_patient
from toothmcl_data.types import JAWS

FINE = SynthConfig(spacing_mm=0.4, ios_noise_mm=0.02)
SEEDS = (0, 23, 25, 28)
"""0: six metal crowns (a quarter of the air-facing crown points are metal: the metal test's typical contrast lay
on metal, the tooth level at 2923 and 3908 points, nearly all metal). 25: three metal-crowned front teeth (13, 32,
33), too few voxels to move the 99.9th percentile: the CBCT was taken for metal-free, streak rims became crowns and
the up axis tilted 25°. 28: streaks split off a class of their own (tooth level 715, 269 points). 23: the surface
holds, but the lower scan's crowns (37 and 44 metal-crowned, hidden by streaks in the CBCT) found no pose from the
scan's side (best start 0.14 of its points on the CBCT crowns, 61 mm off); also searched from the CBCT crowns onto
the whole scan, 0.33 and right."""


@pytest.fixture(scope="module", params=SEEDS)
def case(request: pytest.FixtureRequest) -> tuple[int, SyntheticPatient, ToothSurface]:
    p = make_patient(FINE, np.random.default_rng(request.param), 0, conditions=("metal_crowns",))
    return request.param, p, cbct_surface(p.cbct, None)


def test_the_patients_carry_metal_crowns(case: tuple[int, SyntheticPatient, ToothSurface]) -> None:
    seed, p, _ = case
    crowns = sorted(t.fdi for t in p.anatomy.teeth if t.restoration == "metal_crown")
    assert crowns == {0: [11, 17, 22, 31, 36, 47], 23: [13, 21, 37, 44], 25: [13, 32, 33], 28: [11, 23, 44]}[seed]


def test_the_tooth_level_and_the_crowns_survive_the_metal(case: tuple[int, SyntheticPatient, ToothSurface]) -> None:
    _, p, surface = case
    _, splits, _ = intensity_classes(np.asarray(p.cbct.array), "test")
    assert 1300 < splits[1] < 1800  # bone | tooth, as without metal
    assert 1150 < surface.level < 1600  # enamel/air half-way, as without metal
    assert len(surface.points) > 10_000
    d = distance_to_crowns(p, surface.points)
    assert np.median(d) < 0.15
    assert abs(float(surface.up[2])) > np.cos(np.radians(5))  # the jaws are not tilted in these patients


def test_both_labelled_scans_register_on_the_intensity_path(case: tuple[int, SyntheticPatient, ToothSurface]) -> None:
    seed, p, surface = case
    for jaw in JAWS:
        reg = register_jaw(p.cbct, p.ios[jaw], surface=surface)
        err = centroid_errors_mm(p, jaw, reg.world_from_ios)
        assert err.max() < 0.2, (seed, jaw, err.max())
        assert reg.verdict != "fail", (seed, jaw)


@pytest.mark.slow
def test_the_label_map_path_keeps_the_crowns_beside_air_under_strong_streaks() -> None:
    """Patient 19 of ``bench/register.py --conditions metal_crowns --patients 20 --seed 3`` (metal crowns 11, 18, 21,
    2.8x streaks): the label path's guard against a dark streak tail split streaks | air | soft tissue in three
    classes, which fell between deep and shallow streaks (air ended 146 below air): the upper jaw kept its
    streak-facing points, the lower jaw 146 points, and its scan failed QC 1.1 mm off."""
    p = bench_patient(FINE, 3, "metal_crowns", 19)
    assert sorted(t.fdi for t in p.anatomy.teeth if t.restoration == "metal_crown") == [11, 18, 21]
    surface = cbct_surface(p.cbct, p.cbct_labels)
    assert len(surface.jaw("lower").points) > 10_000
    reg = register_jaw(p.cbct, p.ios["lower"], cbct_labels=p.cbct_labels, surface=surface)
    assert centroid_errors_mm(p, "lower", reg.world_from_ios).max() < 0.2
    assert reg.verdict != "fail"


def _air_facing(contrasts: dict[str, tuple[float, int]]) -> tuple[Candidates, dict[str, slice]]:
    """Air-facing candidates whose inner plateaus stand (mean, count) above air (0) per kind, and where each is."""
    rng = np.random.default_rng(0)
    inner, where, at = [], {}, 0
    for kind, (mean, n) in contrasts.items():
        inner.append(rng.normal(mean, 0.06 * mean, n))
        where[kind], at = slice(at, at + n), at + n
    z = np.zeros((at, 3))
    c = Candidates(z, z, np.concatenate(inner).astype(np.float32), rng.normal(0.0, 30.0, at).astype(np.float32),
                   np.ones(at, dtype=bool), np.ones(at, dtype=np.float32))  # fmt: skip
    return c, where


@pytest.mark.parametrize("metal", [400, 1600])
def test_the_tooth_level_lies_below_enamel_when_metal_is_many_of_the_crowns(metal: int) -> None:
    """With metal crowns 30 % of the air-facing points (1600 of 5400) the upper quartile lay on metal, nothing stood
    above it, and the tooth split fell between enamel and metal: only the metal crowns were kept (as for clinical
    seed 11, patient 2, below)."""
    c, where = _air_facing({"bone": (1600.0, 800), "metal": (5800.0, metal), "enamel": (2500.0, 3000)})
    keep = _tooth_rule(c, CrownRule(air=100.0), "test").keep(c)
    assert keep[where["enamel"]].mean() > 0.98
    assert keep[where["metal"]].mean() > 0.98
    assert keep[where["bone"]].mean() < 0.05


def test_metal_free_crowns_beside_bone_half_as_bright_are_not_taken_for_metal() -> None:
    """Metal-free: the upper class of the contrasts (crowns) stands 2x above air-facing bone (measured up to 1.98x, with
    47-53 % of the points): crowns kept, bone not."""
    c, where = _air_facing({"bone": (1300.0, 2000), "enamel": (2600.0, 2000)})
    keep = _tooth_rule(c, CrownRule(air=100.0), "test").keep(c)
    assert keep[where["enamel"]].mean() > 0.98
    assert keep[where["bone"]].mean() < 0.05


def test_six_metal_crowns_in_a_clinical_field_register_without_labels() -> None:
    """Patient 2 of ``bench/register.py --conditions metal_crowns --patients 5 --seed 11 --field-mm clinical`` (metal
    crowns 11, 17, 22, 24, 27, 34: a quarter of the air-facing points): both jaws failed QC (intensity only and no
    labels) with only the metal crowns kept as crowns."""
    config = SynthConfig(spacing_mm=0.4, ios_noise_mm=0.02, field_mm=parse_field("clinical"))
    p = bench_patient(config, 11, "metal_crowns", 2)
    assert sorted(t.fdi for t in p.anatomy.teeth if t.restoration == "metal_crown") == [11, 17, 22, 24, 27, 34]
    surface = cbct_surface(p.cbct, None)
    assert np.median(distance_to_crowns(p, surface.points)) < 0.15
    for jaw in JAWS:
        reg = register_jaw(p.cbct, unlabelled(p.ios[jaw]), surface=surface)
        assert centroid_errors_mm(p, jaw, reg.world_from_ios).max() < 0.2, jaw
        assert reg.verdict != "fail", jaw
