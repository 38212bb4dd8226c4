"""Varied patients: a condition changes only what it names (a tilted head keeps the default patient's teeth),
the scans sit on the posed crowns through the ground-truth transforms, and the truth's pairable teeth are ones
inside the CBCT with enough scan vertices."""

from __future__ import annotations

import numpy as np
import pytest

from toothmcl_data.errors import ConfigError
from toothmcl_data.synth.config import SynthConfig
from toothmcl_data.synth.shapes import crown_field, to_local
from toothmcl_data.synth.variety import PAIRABLE_MIN_VERTICES, make_varied
from toothmcl_data.types import apply_transform

COARSE = SynthConfig(spacing_mm=1.2, ios_resolution_mm=0.8, ios_hole_probability=0.0)


def test_a_tilted_head_keeps_the_default_patients_teeth() -> None:
    plain = make_varied(COARSE, np.random.default_rng(21), 0, [])
    tilted = make_varied(COARSE, np.random.default_rng(21), 0, ["pose_tilted"])
    assert [t.fdi for t in plain.anatomy.teeth] == [t.fdi for t in tilted.anatomy.teeth]
    for a, b in zip(plain.anatomy.teeth, tilted.anatomy.teeth, strict=True):
        np.testing.assert_allclose(a.cej, b.cej)
    U = np.asarray(tilted.variety["world_from_jaw"]["upper"])
    assert np.degrees(np.arccos((np.trace(U[:3, :3]) - 1) / 2)) > 5.0
    np.testing.assert_allclose(plain.variety["world_from_jaw"]["upper"], np.eye(4))
    assert tilted.variety["conditions"] == ["pose_tilted"]
    assert set(tilted.variety["params"]["pose_tilted"]) >= {"pitch_deg", "roll_deg", "yaw_deg"}

    world_teeth = {t.fdi: t for t in tilted.anatomy.world_teeth()}
    for jaw in ("upper", "lower"):
        mesh = tilted.ios[jaw]
        assert mesh.labels is not None
        world = apply_transform(tilted.world_from_ios[jaw], mesh.vertices)
        for fdi in np.unique(mesh.labels[mesh.labels > 0])[:4]:
            spec = world_teeth[int(fdi)]
            d = np.abs(crown_field(to_local(world[mesh.labels == fdi], spec), spec))
            assert np.median(d) < 0.15, (jaw, fdi)  # on the posed crown, through the truth transform

    truth = tilted.variety
    assert set(truth["pairable"]) <= set(truth["fov"]["inside"])
    for fdi in truth["pairable"]:
        jaw = "upper" if fdi // 10 in (1, 2) else "lower"
        assert truth["ios_vertices"][jaw][str(fdi)] >= PAIRABLE_MIN_VERTICES
    assert truth["teeth_cbct"] == sorted(int(v) for v in np.unique(tilted.cbct_labels.array) if v > 0)


def test_unknown_conditions_are_refused() -> None:
    with pytest.raises(ConfigError, match="pose_sideways"):
        make_varied(COARSE, np.random.default_rng(0), 0, ["pose_sideways"])
