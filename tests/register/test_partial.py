"""Partial overlaps (small CBCT field of view, quadrant scans): a right fit goes to review, never to pass."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from tests.register.conftest import COARSE, bench_patient, centroid_errors_mm, unlabelled
from toothmcl_data.geometry import mean_normal
from toothmcl_data.register import jaw as jaw_module
from toothmcl_data.register import register_jaw
from toothmcl_data.register.config import RegisterConfig
from toothmcl_data.register.qc import MIN_OVERLAP_MM2, area_mm2, in_grid
from toothmcl_data.register.sample import CrownSample, crown_sample, scan_target, shown_teeth
from toothmcl_data.register.surface import ToothSurface, cbct_surface
from toothmcl_data.synth.config import SynthConfig
from toothmcl_data.synth.patient import SyntheticPatient, make_patient
from toothmcl_data.types import Jaw, Mesh

QUADRANT_SEED = 12000
"""``bench/register.py``'s seed of its first ``ios_quadrant`` patient (seed 0)."""


def test_in_grid_keeps_a_margin() -> None:
    affine = np.diag([0.5, 0.5, 0.5, 1.0])
    affine[:3, 3] = [10.0, 0.0, 0.0]
    pts = np.array([[10.0, 0.0, 0.0], [11.0, 1.0, 1.0], [14.5, 4.5, 4.5], [13.5, 3.5, 3.5]])
    assert in_grid((10, 10, 10), affine, pts, 1.0).tolist() == [False, True, False, True]


def test_a_label_map_picks_the_scan_teeth_it_shows_for_the_fit() -> None:
    rng = np.random.default_rng(0)
    fdi = np.repeat(np.array([21, 22, 23, 24, 25, 26], dtype=np.int16), 40)
    sample = CrownSample(np.arange(240), rng.normal(size=(240, 3)), rng.normal(size=(240, 3)), fdi, True)

    def shown(teeth: list[int]) -> ToothSurface:
        f = np.repeat(np.array(teeth, dtype=np.int16), 30)
        return ToothSurface(np.zeros((len(f), 3)), np.zeros((len(f), 3)), f, np.ones(len(f), bool), 1.0, "labels")

    fit = shown_teeth(sample, shown([23, 24, 25, 0]))
    assert sorted(set(fit.fdi.tolist())) == [23, 24, 25]
    assert np.array_equal(fit.points, sample.points[(fdi >= 23) & (fdi <= 25)])  # rows kept, order kept
    assert shown_teeth(sample, shown([21, 22, 23, 24, 25, 26, 27])) is sample  # no other tooth
    assert shown_teeth(sample, shown([23])) is sample  # 40 points: too few to fit on their own


def test_area_counts_one_mm_cells() -> None:
    g = np.stack(np.meshgrid(np.arange(0, 10, 0.25), np.arange(0, 5, 0.25), indexing="ij"), -1).reshape(-1, 2)
    plane = np.c_[g + 0.1, np.full(len(g), 0.5)]
    assert area_mm2(plane) == 50.0
    assert area_mm2(np.zeros((0, 3))) == 0.0


@pytest.fixture(scope="module")
def quadrant_fov() -> SyntheticPatient:
    return make_patient(COARSE, np.random.default_rng(3), 0, conditions=("fov_quadrant",))


@pytest.fixture(scope="module")
def quadrant_scan() -> SyntheticPatient:
    return make_patient(COARSE, np.random.default_rng(3), 0, conditions=("ios_quadrant",))


def test_small_field_of_view_with_a_full_scan_goes_to_review(quadrant_fov: SyntheticPatient) -> None:
    p = quadrant_fov
    jaw: Jaw = p.variety["params"]["fov_quadrant"]["jaw"]
    r = register_jaw(p.cbct, p.ios[jaw], cbct_labels=p.cbct_labels)
    both = [f for f in p.variety["pairable"] if f // 10 in ((1, 2) if jaw == "upper" else (3, 4))]
    assert len(both) >= 2
    errors = centroid_errors_mm(p, jaw, r.world_from_ios)
    scan_labels = np.asarray(p.ios[jaw].labels)
    labels = np.unique(scan_labels[scan_labels > 0]).tolist()
    assert max(errors[labels.index(f)] for f in both) < 0.3
    assert r.verdict == "review"
    assert any(f.startswith("partial_overlap:") for f in r.flags)


def test_quadrant_scan_goes_to_review(quadrant_scan: SyntheticPatient) -> None:
    p = quadrant_scan
    r = register_jaw(p.cbct, p.ios["upper"], cbct_labels=p.cbct_labels)
    assert centroid_errors_mm(p, "upper", r.world_from_ios).max() < 0.3
    assert r.verdict == "review"
    assert any(f.startswith("partial_overlap:") for f in r.flags)


def test_a_wrong_partial_fit_is_not_reviewed(quadrant_scan: SyntheticPatient) -> None:
    """The quadrant scan moved 8 mm along the arch: its overlap no longer fits, QC fails it."""
    p = quadrant_scan
    surface = cbct_surface(p.cbct, p.cbct_labels).jaw("upper")
    mesh = p.ios["upper"]
    config = RegisterConfig()
    sample = crown_sample(mesh, config.ios_points)
    T = p.world_from_ios["upper"].copy()
    T[:3, 3] += [8.0, 0.0, 0.0]
    assert jaw_module._registration("upper", T, mesh, sample, surface, config, p.cbct).verdict == "fail"


def test_quadrant_scan_registers_without_a_label_map() -> None:
    """Labelled quadrant scan (lower jaw), intensity-only CBCT at 0.8 mm, no clear start from the arch axes nor
    from shape features (measured: 43.7 mm off without the slid starts): the slid starts find it."""
    p = make_patient(
        SynthConfig(spacing_mm=0.8, ios_noise_mm=0.02), np.random.default_rng(QUADRANT_SEED), 0, ("ios_quadrant",)
    )
    r = register_jaw(p.cbct, p.ios["lower"])
    assert centroid_errors_mm(p, "lower", r.world_from_ios).max() < 0.3
    assert r.verdict == "review"


def test_a_cbct_surface_too_small_to_place_fails_an_unlabelled_scan(
    coarse_patient: SyntheticPatient, intensity_surface: ToothSurface
) -> None:
    """CBCT crown samples onto an unlabelled scan: a piece under ``MIN_OVERLAP_MM2`` (here one cusp's 6 mm ball;
    in a quadrant field with an implant, bits of implant and enamel taken for crowns) fits a whole scan in many
    places — measured: reviewed 53 mm off. At the true pose too, it is not passed or reviewed; the whole jaw is."""
    p = coarse_patient
    mesh = unlabelled(p.ios["upper"])
    surface = intensity_surface.jaw("upper")
    config = RegisterConfig()
    scan = scan_target(mesh)
    assert scan is not None
    sample = crown_sample(mesh, config.ios_points, scan.normals)
    truth = p.world_from_ios["upper"]
    whole = jaw_module._registration("upper", truth, mesh, sample, surface, config, p.cbct, scan)
    assert whole.verdict != "fail"
    piece = surface.select(np.linalg.norm(surface.points - surface.points[0], axis=1) < 6.0)
    assert area_mm2(piece.points) < MIN_OVERLAP_MM2
    small = jaw_module._registration("upper", truth, mesh, sample, piece, config, p.cbct, scan)
    assert small.verdict == "fail"
    assert any(f.startswith("small_cbct_surface:") for f in small.flags)


def test_a_scan_refitted_against_both_jaws_crowns_must_face_its_own_jaw() -> None:
    """A lower quadrant field at 0.8 mm (``bench/register.py --spacing 0.8``'s ``fov_quadrant`` patient 1) and the
    labelled upper scan, whose teeth it does not show: refitted against all crowns after its fit failed, the scan
    lay upside down on the lower crowns within the *review* thresholds (which double at 0.8 mm). An upper scan's
    occlusal side faces down, against the crowns' up direction, so that fit is not taken: the jaw fails."""
    p = bench_patient(SynthConfig(spacing_mm=0.8, ios_noise_mm=0.02), 0, "fov_quadrant", 1)
    assert p.variety is not None
    assert not any(t // 10 in (1, 2) for t in p.variety["pairable"])  # no upper tooth in the field
    assert register_jaw(p.cbct, p.ios["upper"]).verdict == "fail"


def test_an_unlabelled_upper_scan_of_unknown_jaw_outside_a_lower_field_fails() -> None:
    """The same lower quadrant field (``fov_quadrant`` patient 0 at 0.8 mm) and the upper scan with neither labels
    nor jaw: taken for a lower scan (the only jaw the field shows), it lay upside down on the lower crowns within the
    *review* thresholds (RMS 0.38 mm: a false review). Its palate says it is an upper scan, which the field does not
    show: it fails."""
    p = bench_patient(SynthConfig(spacing_mm=0.8, ios_noise_mm=0.02), 0, "fov_quadrant", 0)
    assert p.variety is not None
    assert not any(t // 10 in (1, 2) for t in p.variety["pairable"])
    upper = p.ios["upper"]
    r = register_jaw(p.cbct, Mesh(upper.vertices, upper.faces, frame=upper.frame))
    assert (r.jaw, r.verdict) == ("upper", "fail")


def test_a_scan_at_its_true_pose_faces_its_own_jaw(
    coarse_patient: SyntheticPatient, intensity_surface: ToothSurface
) -> None:
    """An upper scan's occlusal side faces down, against the crowns' up direction, and a lower one's up; turned
    upside down (half a turn about a horizontal axis) each faces the other jaw's way."""
    up = intensity_surface.up
    across = np.cross(up, [1.0, 0.0, 0.0])
    flip = np.eye(4)
    flip[:3, :3] = Rotation.from_rotvec(np.pi * across / np.linalg.norm(across)).as_matrix()
    jaws: tuple[Jaw, Jaw] = ("upper", "lower")
    for jaw, other in (jaws, jaws[::-1]):
        mesh, T = coarse_patient.ios[jaw], coarse_patient.world_from_ios[jaw]
        occlusal = mean_normal(mesh)
        assert jaw_module._faces_its_jaw(T, occlusal, up, jaw)
        assert not jaw_module._faces_its_jaw(T, occlusal, up, other)
        assert jaw_module._faces_its_jaw(flip @ T, occlusal, up, other)
