"""An unlabelled scan of unknown jaw: its palate says upper; nothing else says anything."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from tests.io.test_vtp_fixture import SCAN
from toothmcl_data.io.mesh import read_mesh
from toothmcl_data.io.palate import PALATE_MM, inner_radius_mm, jaw_from_palate, occlusal_axis
from toothmcl_data.synth.config import SynthConfig
from toothmcl_data.synth.patient import make_patient
from toothmcl_data.types import Mesh, apply_transform

COARSE = SynthConfig(spacing_mm=0.8, ios_resolution_mm=0.6)
"""Scans at 0.6 mm (the palate test does not look at the CBCT)."""


def _anonymous(mesh: Mesh, turn: np.ndarray | None = None) -> Mesh:
    """The scan without labels or jaw, optionally turned (its own frame is arbitrary)."""
    v = mesh.vertices if turn is None else apply_transform(turn, mesh.vertices)
    return Mesh(v, mesh.faces, frame=mesh.frame)


@pytest.mark.parametrize("conditions", [(), ("mixed_dentition",)])
def test_an_upper_scan_with_its_palate_is_upper_and_a_lower_one_is_unknown(conditions: tuple[str, ...]) -> None:
    p = make_patient(COARSE, np.random.default_rng(3), 0, conditions=conditions)
    assert jaw_from_palate(_anonymous(p.ios["upper"])) == "upper"
    assert jaw_from_palate(_anonymous(p.ios["lower"])) is None


@pytest.mark.parametrize("condition", ["ios_no_palate", "ios_quadrant"])
def test_a_scan_without_palate_says_nothing(condition: str) -> None:
    p = make_patient(COARSE, np.random.default_rng(3), 0, conditions=(condition,))
    for mesh in p.ios.values():
        assert inner_radius_mm(_anonymous(mesh)) < PALATE_MM - 1.0


def test_the_measure_does_not_depend_on_the_scan_frame() -> None:
    patient = make_patient(COARSE, np.random.default_rng(11), 0)
    turn = np.eye(4)
    turn[:3, :3] = Rotation.from_euler("xyz", [70, -40, 130], degrees=True).as_matrix()
    turn[:3, 3] = [12.0, -300.0, 45.0]
    for mesh in patient.ios.values():
        before, after = inner_radius_mm(_anonymous(mesh)), inner_radius_mm(_anonymous(mesh, turn))
        assert abs(before - after) <= 1.5  # one 1 mm pixel, either way


@pytest.mark.skipif(not SCAN.exists(), reason=f"real scan fixture missing: {SCAN}")
def test_the_real_upper_scan_trimmed_without_palate_says_nothing() -> None:
    """The real arch (an upper scan cut lingual of the teeth, ``../shared/fixtures``): a U like a lower arch, so the
    test can't tell; a disc of 12 mm fits its band of teeth and gums."""
    mesh = read_mesh(SCAN, scheme="universal")
    assert mesh.jaw == "upper"
    radius = inner_radius_mm(_anonymous(mesh))
    assert 8.0 < radius < PALATE_MM - 2.0
    assert jaw_from_palate(_anonymous(mesh)) is None


def test_a_closed_surface_has_no_occlusal_direction_and_says_nothing() -> None:
    """A model scan with a base is closed: its face normals cancel. Here the upper scan with its palate and the same
    surface facing the other way (every face reversed): no direction to look along, so no palate is claimed."""
    upper = make_patient(COARSE, np.random.default_rng(3), 0).ios["upper"]
    assert jaw_from_palate(_anonymous(upper)) == "upper"
    n = len(upper.vertices)
    both = Mesh(
        np.concatenate([upper.vertices, upper.vertices]),
        np.concatenate([upper.faces, upper.faces[:, ::-1] + n]).astype(np.int32),
        frame=upper.frame,
    )
    assert occlusal_axis(both) is None
    assert inner_radius_mm(both) == 0.0
    assert jaw_from_palate(both) is None
