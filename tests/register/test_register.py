"""register_jaw on coarse synthetic patients: accurate from any pose, deterministic, honest about failure."""

from __future__ import annotations

import numpy as np
import pytest

from tests.register.conftest import centroid_errors_mm, unlabelled
from toothmcl_data.errors import RegistrationError
from toothmcl_data.register import RegisterConfig, cbct_surface, register_jaw
from toothmcl_data.register.qc import JawQC, verdict
from toothmcl_data.register.surface import ToothSurface
from toothmcl_data.synth.patient import SyntheticPatient
from toothmcl_data.types import JAWS, Jaw, Mesh


@pytest.mark.parametrize("jaw", ["upper", "lower"])
def test_labelled_jaw_lands_on_the_truth(
    jaw: Jaw, coarse_patient: SyntheticPatient, labelled_surface: ToothSurface
) -> None:
    p = coarse_patient
    reg = register_jaw(p.cbct, p.ios[jaw], cbct_labels=p.cbct_labels, surface=labelled_surface)
    err = centroid_errors_mm(p, jaw, reg.world_from_ios)
    assert np.median(err) < 0.08
    assert err.max() < 0.15
    assert reg.jaw == jaw
    assert reg.verdict == "pass", reg
    assert reg.rms_mm < 0.3
    assert reg.inlier_fraction > 0.9
    labels = p.ios[jaw].labels
    assert labels is not None
    assert set(reg.per_tooth_mm) == set(np.unique(labels[labels > 0]).tolist())
    assert reg.flags == ()


def test_same_inputs_give_the_same_transform_bit_for_bit(coarse_patient: SyntheticPatient) -> None:
    p = coarse_patient
    a = register_jaw(p.cbct, p.ios["lower"], cbct_labels=p.cbct_labels)
    b = register_jaw(p.cbct, p.ios["lower"], cbct_labels=p.cbct_labels)
    assert a.world_from_ios.tobytes() == b.world_from_ios.tobytes()


def test_the_search_is_deterministic_too(coarse_patient: SyntheticPatient) -> None:
    """The intensity path (multi-hypothesis search, fresh surface each time) is bit-for-bit repeatable as well."""
    p = coarse_patient
    a = register_jaw(p.cbct, p.ios["upper"])
    b = register_jaw(p.cbct, p.ios["upper"])
    assert a.world_from_ios.tobytes() == b.world_from_ios.tobytes()


def test_unlabelled_cbct_uses_intensity_and_the_search(
    coarse_patient: SyntheticPatient, intensity_surface: ToothSurface
) -> None:
    p = coarse_patient
    reg = register_jaw(p.cbct, p.ios["upper"], surface=intensity_surface)
    err = centroid_errors_mm(p, "upper", reg.world_from_ios)
    assert np.median(err) < 0.1
    assert err.max() < 0.2
    assert reg.verdict == "pass"
    assert "unlabelled_cbct" in reg.flags
    assert reg.per_tooth_mm  # from the scan's labels


def test_nothing_labelled_still_registers(coarse_patient: SyntheticPatient, intensity_surface: ToothSurface) -> None:
    """Neither side labelled: CBCT crowns onto the whole scan (gingiva and palate included), any start pose."""
    p = coarse_patient
    reg = register_jaw(p.cbct, unlabelled(p.ios["lower"]), surface=intensity_surface)
    err = centroid_errors_mm(p, "lower", reg.world_from_ios)
    assert np.median(err) < 0.1
    assert err.max() < 0.2
    assert reg.verdict in ("pass", "review")
    assert set(reg.flags) >= {"unlabelled_ios", "unlabelled_cbct"}


def test_a_scan_of_another_jaw_fails_qc(coarse_patient: SyntheticPatient, labelled_surface: ToothSurface) -> None:
    """The lower scan claimed as upper and stripped of labels cannot fit the upper crowns: fail, never pass."""
    p = coarse_patient
    lower = p.ios["lower"]
    wrong = Mesh(lower.vertices, lower.faces, frame=lower.frame, jaw="upper")
    reg = register_jaw(p.cbct, wrong, cbct_labels=p.cbct_labels, surface=labelled_surface)
    assert reg.jaw == "upper"
    assert reg.verdict == "fail"


@pytest.mark.parametrize(
    ("rms", "p95", "inliers", "cover", "spacing", "expected"),
    [
        (0.10, 0.20, 0.95, 0.9, 0.4, "pass"),
        (0.20, 0.20, 0.95, 0.9, 0.4, "review"),
        (0.20, 0.40, 0.95, 0.9, 0.8, "pass"),  # coarse voxels scale the distance thresholds
        (0.10, 0.20, 0.70, 0.9, 0.4, "review"),
        (0.10, 0.20, 0.95, 0.2, 0.4, "fail"),
        (0.50, 0.90, 0.50, 0.5, 0.4, "fail"),
    ],
)
def test_verdict_thresholds(
    rms: float, p95: float, inliers: float, cover: float, spacing: float, expected: str
) -> None:
    qc = JawQC(rms, p95, inliers, cover, {})
    assert verdict(qc, RegisterConfig(), spacing) == expected


@pytest.mark.parametrize(
    ("mesh", "message"),
    [
        (Mesh(np.zeros((3, 3)), np.array([[0, 1, 2]]), frame="ios:tiny"), "the scan has 3 vertices"),
        (
            Mesh(np.full((40, 3), np.nan), np.array([[0, 1, 2]]), frame="ios:nan"),
            "or non-finite ones",
        ),
    ],
)
def test_bad_scans_are_refused(coarse_patient: SyntheticPatient, mesh: Mesh, message: str) -> None:
    with pytest.raises(RegistrationError, match=message):
        register_jaw(coarse_patient.cbct, mesh)


def test_intensity_path_survives_metal(restored_patient: SyntheticPatient) -> None:
    """An implant, a metal crown (6000, streaks) and crowding must not take over the data-derived levels."""
    p = restored_patient
    assert {t.restoration for t in p.anatomy.teeth} == {"natural", "implant", "metal_crown"}
    surface = cbct_surface(p.cbct, None)
    assert 1100 < surface.level < 1600
    for jaw in JAWS:
        reg = register_jaw(p.cbct, p.ios[jaw], surface=surface)
        err = centroid_errors_mm(p, jaw, reg.world_from_ios)
        assert err.max() < 0.2, (jaw, err.max())
        assert reg.verdict != "fail"
