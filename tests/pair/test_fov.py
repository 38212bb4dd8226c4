"""Pairing follows the field of view and the dentition: synthetic conditions with ground truth (issue 14, item 3).

Each case is registered for real (label map path, coarse 0.8 mm CBCT) and paired; the teeth paired must be
exactly the ground truth's ``pairable`` teeth (crown wholly inside the CBCT, enough scan vertices) and every other
scan tooth must carry a field-of-view flag. Seeds were picked away from the truth's 0.25 mm sampling blur (see
``PairConfig.fov_tolerance_mm``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests.pair.conftest import SMALL
from tests.register.conftest import COARSE
from toothmcl_data.pair import pair_case
from toothmcl_data.pair.teeth import beyond_grid_mm
from toothmcl_data.register import cbct_surface, register_jaw
from toothmcl_data.synth.patient import SyntheticPatient, make_patient
from toothmcl_data.types import Case, Jaw, Registration, Volume

FOV_FLAGS = {"outside_fov", "cut_by_fov"}


def _draw(condition: str, seed: int) -> SyntheticPatient:
    return make_patient(COARSE, np.random.default_rng(seed), 0, conditions=(condition,))


def _register(p: SyntheticPatient, jaws: tuple[Jaw, ...], labelled: bool = True) -> dict[Jaw, Registration]:
    labels = p.cbct_labels if labelled else None
    surface = cbct_surface(p.cbct, labels)
    return {j: register_jaw(p.cbct, p.ios[j], cbct_labels=labels, surface=surface) for j in jaws}


def _rows(p: SyntheticPatient, regs: dict[Jaw, Registration], labelled: bool = True) -> dict[int, dict[str, Any]]:
    case = Case("P001", p.cbct, p.cbct_labels if labelled else None, {j: p.ios[j] for j in regs})
    res = pair_case(case, regs, SMALL)
    assert sorted(pr.fdi for pr in res.pairs) == sorted(r["fdi"] for r in res.teeth if r["paired"])
    return {int(r["fdi"]): r for r in res.teeth}


def _scan_teeth(p: SyntheticPatient, jaw: Jaw) -> list[int]:
    labels = np.asarray(p.ios[jaw].labels)
    return sorted(int(f) for f in np.unique(labels[labels > 0]))


def test_beyond_grid_is_measured_from_the_voxels_edge() -> None:
    affine = np.diag([0.5, 0.5, 0.5, 1.0])
    affine[:3, 3] = [10.0, 0.0, 0.0]
    vol = Volume(np.zeros((10, 10, 10), dtype=np.int16), affine)  # voxels cover x 9.75..14.75 mm
    pts = np.array([[12.0, 2.0, 2.0], [9.75, 2.0, 2.0], [9.25, 2.0, 2.0], [12.0, 2.0, 5.75]])
    np.testing.assert_allclose(beyond_grid_mm(vol, pts), [-2.25, 0.0, 0.5, 1.0])


@pytest.mark.parametrize(
    ("seed", "quadrant", "pairable"),
    [(11, 3, [33, 34, 35, 36, 37]), (15, 2, [22, 23, 24, 25]), (20, 1, [14, 15, 16, 17])],
    ids=["lower-left", "upper-left", "upper-right"],
)
def test_a_quadrant_fov_pairs_only_its_teeth(seed: int, quadrant: int, pairable: list[int]) -> None:
    p = _draw("fov_quadrant", seed)
    params = p.variety["params"]["fov_quadrant"]
    jaw: Jaw = params["jaw"]
    assert params["quadrant"] == quadrant
    assert p.variety["pairable"] == pairable  # the ground truth the seed was picked for
    regs = _register(p, (jaw,))
    assert regs[jaw].verdict == "review"  # a partial overlap is never passed unseen
    rows = _rows(p, regs)
    paired = sorted(f for f, r in rows.items() if r["paired"])
    assert paired == pairable
    assert all(f // 10 == quadrant for f in paired)
    for fdi in _scan_teeth(p, jaw):
        if fdi not in pairable:
            assert set(rows[fdi]["flags"]) & FOV_FLAGS, (fdi, rows[fdi])
            assert not rows[fdi]["paired"]
    truth = p.variety["fov"]
    for fdi in truth["cut"]:
        if fdi in rows and rows[fdi]["in_ios"]:
            assert rows[fdi]["flags"] == ["cut_by_fov"], (fdi, rows[fdi])
    mirror = {1: 2, 2: 1, 3: 4, 4: 3}[quadrant]
    far = [f for f in truth["outside"] if f in rows and f // 10 == mirror]  # the same jaw's other side
    assert far
    assert all(rows[f]["flags"] == ["outside_fov"] and not rows[f]["in_cbct"] for f in far)
    # Left/right in LPS world: the patient's left is +x; a left quadrant lies left of every right-side tooth.
    left = quadrant in (2, 3)
    x_paired = [rows[f]["centroid_ios_mm"][0] for f in paired]
    x_other = [rows[f]["centroid_ios_mm"][0] for f in far]
    assert (min(x_paired) > max(x_other)) if left else (max(x_paired) < min(x_other))


@pytest.mark.parametrize("labelled", [True, False], ids=["label-map", "intensity-only"])
def test_crowns_cut_by_the_fov_are_flagged_not_paired(labelled: bool) -> None:
    p = _draw("fov_cut_crowns", 1)
    params = p.variety["params"]["fov_cut_crowns"]
    whole: Jaw = params["jaw"]
    cut: Jaw = params["cut_jaw"]
    assert (whole, cut) == ("lower", "upper")
    # The cut jaw is paired with its true pose: whatever its registration, its crowns must not pair.
    regs = _register(p, (whole,), labelled)
    regs[cut] = Registration(cut, p.world_from_ios[cut], 0.0, 0.0, 1.0, {}, "pass")
    rows = _rows(p, regs, labelled)
    assert sorted(f for f, r in rows.items() if r["paired"]) == p.variety["pairable"] == _scan_teeth(p, whole)
    assert p.variety["fov"]["cut"] == _scan_teeth(p, cut)
    for fdi in _scan_teeth(p, cut):
        assert rows[fdi]["flags"] == ["cut_by_fov"], (fdi, rows[fdi])


@pytest.mark.parametrize(("seed", "dentition"), [(2, "mixed"), (9, "primary")])
def test_mixed_and_primary_dentition_pair_with_deciduous_codes(seed: int, dentition: str) -> None:
    p = _draw("mixed_dentition", seed)
    assert p.variety["dentition"] == dentition
    regs = _register(p, ("upper", "lower"))
    assert all(r.verdict == "pass" for r in regs.values()), {j: r.verdict for j, r in regs.items()}
    rows = _rows(p, regs)
    paired = sorted(f for f, r in rows.items() if r["paired"])
    assert paired == p.variety["pairable"] == sorted(p.variety["teeth_cbct"])
    deciduous = [f for f in paired if f // 10 in (5, 6, 7, 8)]
    assert len(deciduous) == (20 if dentition == "primary" else 12)
    assert all(r["flags"] == [] for r in rows.values())
