"""Intensity-path crown surface of 0.4 mm CBCTs with several metal crowns and strong streaks (the ``metal_crowns``
condition): metal must take neither the tooth level, nor the up axis, nor the class split.

Each seed is a patient (``make_patient(FINE, default_rng(seed), 0, …)``) registration failed on before; the
causes below."""

from __future__ import annotations

import numpy as np
import pytest

from tests.register.conftest import bench_patient, centroid_errors_mm, distance_to_crowns
from toothmcl_data.register import cbct_surface, register_jaw
from toothmcl_data.register.field import intensity_classes
from toothmcl_data.register.surface import ToothSurface
from toothmcl_data.synth.config import SynthConfig
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
