"""Clinic-like scan variants: a quadrant scan holds the asked-for teeth of one side, holes remove crown surface
of the teeth they name, a scan without palate stops lingual of the teeth."""

from __future__ import annotations

import numpy as np
import pytest

from toothmcl_data.synth.anatomy import Anatomy, draw_anatomy
from toothmcl_data.synth.config import SynthConfig
from toothmcl_data.synth.ios import MeshEdit, scan_jaw
from toothmcl_data.synth.ios_variants import holes_edit, no_palate_edit, quadrant_edit
from toothmcl_data.synth.shapes import ArchCoordinates
from toothmcl_data.types import Jaw

CONFIG = SynthConfig(
    ios_resolution_mm=0.6, ios_hole_probability=0.0, third_molar_probability=0.0, missing_tooth_probability=0.0
)


@pytest.fixture(scope="module")
def anatomy() -> Anatomy:
    return draw_anatomy(CONFIG, np.random.default_rng(9))


def _teeth(anatomy: Anatomy, edit: MeshEdit | None = None, jaw: Jaw = "upper") -> tuple[np.ndarray, np.ndarray]:
    mesh = scan_jaw(anatomy, jaw, CONFIG, np.random.default_rng(0), edit=edit)
    assert mesh.labels is not None
    return mesh.vertices, mesh.labels


def test_quadrant_scan_holds_the_asked_for_teeth_of_one_side(anatomy: Anatomy) -> None:
    _, labels = _teeth(anatomy, quadrant_edit(anatomy, "upper", right=True, positions=(4, 6)))
    counts = {int(f): int((labels == f).sum()) for f in np.unique(labels) if f > 0}
    assert {14, 15, 16} <= set(counts)
    assert set(counts) <= {13, 14, 15, 16, 17}  # neighbours at most in part, nothing of the left side
    _, full = _teeth(anatomy)
    for f in (14, 15, 16):
        assert counts[f] > 0.8 * (full == f).sum()


def test_holes_remove_crown_surface_of_the_named_teeth(anatomy: Anatomy) -> None:
    edit, holed = holes_edit(anatomy, "lower", np.random.default_rng(5))
    assert 3 <= len(holed) <= 6
    _, with_holes = _teeth(anatomy, edit, "lower")
    _, clean = _teeth(anatomy, None, "lower")
    for fdi in {int(f) for f in np.unique(clean) if f > 0}:
        ratio = (with_holes == fdi).sum() / (clean == fdi).sum()
        if fdi in holed:
            assert ratio < 0.85, fdi
        else:
            assert ratio > 0.9, fdi  # a neighbour's hole may graze it


def test_no_palate_stops_lingual_of_the_teeth(anatomy: Anatomy) -> None:
    coords = ArchCoordinates(anatomy.arch("upper"))
    full, _ = _teeth(anatomy)
    cut, _ = _teeth(anatomy, no_palate_edit(anatomy, "upper", margin=2.0))
    d_full, d_cut = coords(full[:, :2])[0], coords(cut[:, :2])[0]
    band = max(t.depth for t in anatomy.jaw_teeth("upper")) / 2 + 1.2
    assert d_full.min() < -band - 6.0  # the palatal vault
    assert d_cut.min() > -band - 2.0 - 1.0  # cut at the margin (faces by their centre, ± one face)
