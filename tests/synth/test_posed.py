"""The world grid of a posed anatomy holds every posed tooth with the margins the unposed grid keeps."""

from __future__ import annotations

import numpy as np

from toothmcl_data.synth.anatomy import draw_anatomy
from toothmcl_data.synth.config import SynthConfig
from toothmcl_data.synth.jawpose import tilt_head
from toothmcl_data.synth.posed import posed_grid
from toothmcl_data.types import apply_transform


def test_posed_grid_holds_every_tooth_with_its_margins() -> None:
    anatomy, _ = tilt_head(draw_anatomy(SynthConfig(), np.random.default_rng(2)), np.random.default_rng(3))
    affine, shape = posed_grid(anatomy, 0.8)
    np.testing.assert_allclose(affine[:3, :3], np.eye(3) * 0.8)
    np.testing.assert_allclose(affine[:3, 3] / 0.8, np.round(affine[:3, 3] / 0.8))  # on the spacing lattice
    lo, hi = affine[:3, 3], affine[:3, 3] + 0.8 * (np.array(shape) - 1)
    for t in anatomy.world_teeth():
        tip = np.asarray(t.cej) + np.asarray(t.occlusal) * t.height
        apex = np.asarray(t.cej) - np.asarray(t.occlusal) * t.root
        for p in (tip, apex):
            assert np.all(p - lo > [8.0, 8.0, 10.0]), t.fdi  # 9 / 9 / 11 mm less half a voxel of rounding
            assert np.all(hi - p > [8.0, 4.0, 6.0]), t.fdi
    world = apply_transform(affine, np.array([[0.0, 0.0, 0.0]]))[0]
    np.testing.assert_allclose(world, lo)
