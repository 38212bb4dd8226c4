"""The synthetic intraoral scan: labelled vertices lie on their own tooth's crown, the scan stops at the
scanner's reach, instances number the jaw's teeth."""

from __future__ import annotations

import numpy as np
import pytest

from toothmcl_data.synth.anatomy import Anatomy, draw_anatomy
from toothmcl_data.synth.config import SynthConfig
from toothmcl_data.synth.ios import REACH_MM, scan_jaw
from toothmcl_data.synth.shapes import crown_field, to_local
from toothmcl_data.types import Jaw

CONFIG = SynthConfig(ios_resolution_mm=0.6, ios_hole_probability=0.0, third_molar_probability=0.0)


@pytest.fixture(scope="module")
def anatomy() -> Anatomy:
    return draw_anatomy(CONFIG, np.random.default_rng(6))


@pytest.mark.parametrize("jaw", ["upper", "lower"])
def test_labelled_vertices_lie_on_their_crown(anatomy: Anatomy, jaw: Jaw) -> None:
    mesh = scan_jaw(anatomy, jaw, CONFIG, np.random.default_rng(0))
    assert mesh.labels is not None
    assert mesh.instances is not None
    teeth = {t.fdi: t for t in anatomy.jaw_teeth(jaw)}
    assert set(np.unique(mesh.labels)) == {0, *teeth}
    for fdi, spec in teeth.items():
        on = mesh.vertices[mesh.labels == fdi]
        d = np.abs(crown_field(to_local(on, spec), spec))
        assert np.median(d) < 0.1, fdi  # marching cubes at 0.6 mm + 0.02 mm noise
        assert np.percentile(d, 95) < 0.3, fdi
    gingiva = mesh.vertices[mesh.labels == 0]
    nearest = np.min([np.abs(crown_field(to_local(gingiva, s), s)) for s in teeth.values()], axis=0)
    assert np.median(nearest) > 0.5  # gingiva vertices are not on a crown
    cej = anatomy.arch(jaw).cej_z
    depth = cej - mesh.vertices[:, 2] if jaw == "lower" else mesh.vertices[:, 2] - cej
    assert depth.max() <= REACH_MM[jaw] + 0.7  # cut open at the scanner's reach
    fdis = sorted(teeth)
    for i, fdi in enumerate(fdis, start=1):
        assert set(np.unique(mesh.instances[mesh.labels == fdi])) == {i}


def test_same_generator_same_scan(anatomy: Anatomy) -> None:
    a = scan_jaw(anatomy, "lower", CONFIG, np.random.default_rng(3))
    b = scan_jaw(anatomy, "lower", CONFIG, np.random.default_rng(3))
    np.testing.assert_array_equal(a.vertices, b.vertices)
    np.testing.assert_array_equal(a.faces, b.faces)
