"""Every named synthetic condition produces what it claims, with ground truth that agrees with the images."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
from scipy.spatial import cKDTree
from skimage.measure import marching_cubes

from toothmcl_data.errors import ConfigError
from toothmcl_data.fdi import DECIDUOUS_FDI, tooth
from toothmcl_data.synth.cbct import INTENSITY
from toothmcl_data.synth.conditions import (
    CONDITION_NAMES,
    CONDITIONS,
    check_conditions,
    parse_condition_specs,
    plan_conditions,
)
from toothmcl_data.synth.config import SynthConfig
from toothmcl_data.synth.patient import SyntheticPatient, make_patient
from toothmcl_data.types import Jaw, apply_transform

CONFIG = SynthConfig(spacing_mm=0.6, ios_resolution_mm=0.5)
BRIEF = [
    "fov_full",
    "fov_one_jaw",
    "fov_quadrant",
    "fov_cut_crowns",
    "bite_occlusion",
    "bite_block",
    "bite_open",
    "pose_tilted",
    "intensity_hu",
    "intensity_vendor",
    "ios_full",
    "ios_quadrant",
    "ios_bite_scan",
    "ios_no_palate",
    "ios_holes",
    "edentulous",
    "implants",
    "metal_crowns",
    "crowding",
    "mixed_dentition",
    "missing_third_molar",
]


@cache
def patient(*conditions: str, seed: int = 5) -> SyntheticPatient:
    return make_patient(CONFIG, np.random.default_rng(seed), 0, conditions)


def _world_crowns(p: SyntheticPatient, jaw: Jaw) -> np.ndarray:
    mesh = p.ios[jaw]
    return apply_transform(p.world_from_ios[jaw], mesh.vertices)[np.asarray(mesh.labels) > 0]


def _centroids(p: SyntheticPatient) -> dict[int, np.ndarray]:
    lab = p.cbct_labels
    return {int(f): lab.world_from_index(np.argwhere(lab.array == f)).mean(axis=0) for f in p.variety["teeth_cbct"]}


# ---- registry, parsing, planning ------------------------------------------------------------------------
def test_registry_has_every_condition_of_the_brief() -> None:
    assert list(CONDITION_NAMES) == BRIEF
    assert {c.group for c in CONDITIONS.values()} == {"fov", "bite", "pose", "intensity", "ios", "anatomy"}


def test_condition_names_are_checked() -> None:
    assert check_conditions(["pose_tilted", "fov_one_jaw"]) == ("fov_one_jaw", "pose_tilted")
    with pytest.raises(ConfigError, match="unknown synth condition"):
        check_conditions(["fov_tiny"])
    with pytest.raises(ConfigError, match="exclude each other"):
        check_conditions(["fov_one_jaw", "fov_quadrant"])
    with pytest.raises(ConfigError, match="exclude each other"):
        make_patient(CONFIG, np.random.default_rng(0), 0, ["bite_open", "bite_block"])


def test_specs_parse_with_fractions_and_variety_all() -> None:
    assert parse_condition_specs(["fov_one_jaw=0.3", "bite_occlusion"]) == {"fov_one_jaw": 0.3, "bite_occlusion": 1.0}
    everything = parse_condition_specs([], "all")
    assert set(everything) == set(BRIEF)
    assert all(v == pytest.approx(1 / 21) for v in everything.values())
    for bad in ("fov_one_jaw=1.5", "fov_one_jaw=x", "nope"):
        with pytest.raises(ConfigError):
            parse_condition_specs([bad])


def test_plan_gives_each_condition_its_fraction_one_per_group() -> None:
    fractions = {"fov_one_jaw": 0.3, "fov_quadrant": 0.5, "pose_tilted": 0.25, "intensity_hu": 1.0}
    plan = plan_conditions(20, fractions, np.random.default_rng(1))
    assert plan == plan_conditions(20, fractions, np.random.default_rng(1))
    counts = {name: sum(name in p for p in plan) for name in fractions}
    assert counts == {"fov_one_jaw": 6, "fov_quadrant": 10, "pose_tilted": 5, "intensity_hu": 20}
    assert not any("fov_one_jaw" in p and "fov_quadrant" in p for p in plan)
    spread = plan_conditions(21, parse_condition_specs([], "all"), np.random.default_rng(0))
    assert sorted(c for p in spread for c in p) == sorted(BRIEF)
    few = plan_conditions(5, parse_condition_specs([], "all"), np.random.default_rng(0))
    assert [len(p) for p in few] == [1] * 5  # --variety all on 5 patients: 5 different conditions
    assert len({p[0] for p in few}) == 5


# ---- determinism and the default ------------------------------------------------------------------------
def test_conditions_are_seeded_and_leave_the_default_draws_alone() -> None:
    a = make_patient(CONFIG, np.random.default_rng(9), 0, ["pose_tilted", "ios_holes"])
    b = make_patient(CONFIG, np.random.default_rng(9), 0, ["pose_tilted", "ios_holes"])
    assert np.array_equal(a.cbct.array, b.cbct.array)
    assert np.array_equal(a.ios["upper"].vertices, b.ios["upper"].vertices)
    assert a.variety == b.variety
    # An intensity condition changes only the scale: same anatomy, same label map as the default patient.
    default, hu = patient(), patient("intensity_hu")
    assert [t.fdi for t in default.anatomy.teeth] == [t.fdi for t in hu.anatomy.teeth]
    assert np.array_equal(default.cbct_labels.array, hu.cbct_labels.array)
    assert default.variety == {}
    assert default.conditions == ()


# ---- bite ------------------------------------------------------------------------------------------------
def test_occlusion_closes_the_gap_and_arches_overlap_in_height() -> None:
    for closed, default in ((patient("bite_occlusion"), patient()), (patient("bite_occlusion", seed=2), None)):
        upper, lower = _world_crowns(closed, "upper"), _world_crowns(closed, "lower")
        d, _ = cKDTree(upper).query(lower)
        assert d.min() <= 0.3, d.min()
        assert (d < 0.3).sum() >= 10  # several contacts, not one
        assert lower[:, 2].max() - upper[:, 2].min() >= 1.5  # cusps reach past each other
        if default is not None:
            d0, _ = cKDTree(_world_crowns(default, "upper")).query(_world_crowns(default, "lower"))
            assert d0.min() > 0.4  # the default patient has a gap


def test_bite_block_holds_the_incisors_apart_on_a_block() -> None:
    p = patient("bite_block")
    params = p.variety["params"]["bite_block"]
    assert 4.0 <= params["block_thickness_mm"] <= 10.0
    assert params["incisal_gap_mm"] == pytest.approx(params["block_thickness_mm"], abs=0.05)
    lab = p.cbct_labels
    upper = np.concatenate([lab.world_from_index(np.argwhere(lab.array == f)) for f in (11, 21)])
    lower = np.concatenate([lab.world_from_index(np.argwhere(lab.array == f)) for f in (31, 41)])
    assert upper[:, 2].min() - lower[:, 2].max() >= params["block_thickness_mm"] - 1.5
    # The block between the incisors reads as its own material (≈ 500 raw).
    centre = 0.5 * (upper.mean(axis=0) + lower.mean(axis=0))
    centre[2] = 0.5 * (upper[:, 2].min() + lower[:, 2].max())
    i, j, k = np.round(np.linalg.solve(p.cbct.affine, [*centre, 1.0])[:3]).astype(int)
    patch = p.cbct.array[i - 1 : i + 2, j - 1 : j + 2, k - 1 : k + 2]
    assert abs(np.median(patch) - INTENSITY[9]) < 150


def test_open_bite_is_wedge_shaped() -> None:
    p = patient("bite_open")
    c = _centroids(p)
    incisors = c[11][2] - c[41][2]
    molars = c[16][2] - c[46][2]
    assert incisors > molars + 2.0
    assert 3.0 <= p.variety["params"]["bite_open"]["angle_deg"] <= 12.0


# ---- head pose -------------------------------------------------------------------------------------------
def _principal_axes(p: SyntheticPatient) -> np.ndarray:
    lab = p.cbct_labels
    pts = lab.world_from_index(np.argwhere(lab.array > 0))
    crowns = pts  # all tooth voxels: the arch is wide (x), deep (y) and thin-ish (z)
    _, _, vt = np.linalg.svd(crowns - crowns.mean(axis=0), full_matrices=False)
    return vt  # rows: largest → smallest spread


def _angle(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.degrees(np.arccos(np.clip(abs(a @ b) / np.linalg.norm(a) / np.linalg.norm(b), -1, 1))))


def test_tilt_rotates_the_arch_by_the_drawn_angles() -> None:
    tilted, default = patient("pose_tilted"), patient()
    params = tilted.variety["params"]["pose_tilted"]
    R = np.asarray(params["rotation"])
    assert 5 <= abs(params["pitch_deg"]) <= 20
    assert 5 <= abs(params["roll_deg"]) <= 20
    assert 3 <= abs(params["yaw_deg"]) <= 15
    before, after = _principal_axes(default), _principal_axes(tilted)
    for k in range(3):
        assert _angle(after[k], R @ before[k]) < 2.0, k
    # The occlusal normal moved by the drawn tilt (about the angle between z and R z).
    assert _angle(after[2], before[2]) == pytest.approx(_angle(np.array([0, 0, 1.0]), R[:, 2]), abs=2.0)
    assert tilted.cbct.affine[:3, :3] == pytest.approx(np.diag([0.6] * 3))  # the grid stays axis-aligned


def _surface_distances(p: SyntheticPatient) -> np.ndarray:
    """Per scan crown vertex (mapped by world_from_ios), its distance (mm) to its own tooth's label surface."""
    lab, out = p.cbct_labels, []
    for jaw, mesh in p.ios.items():
        world = apply_transform(p.world_from_ios[jaw], mesh.vertices)
        labels = np.asarray(mesh.labels)
        for fdi in sorted(set(np.unique(labels).tolist()) & set(p.variety.get("fov", {}).get("inside", [])))[:8]:
            idx = np.argwhere(lab.array == fdi)
            lo, hi = np.maximum(idx.min(axis=0) - 2, 0), idx.max(axis=0) + 3
            sub = (lab.array[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] == fdi).astype(np.float32)
            verts, faces, _, _ = marching_cubes(np.pad(sub, 1), 0.5)
            verts -= 1.0
            surface = apply_transform(lab.affine, np.concatenate([verts, verts[faces].mean(axis=1)]) + lo)
            out.append(cKDTree(surface).query(world[labels == fdi])[0])
    return np.concatenate(out)


@pytest.mark.parametrize("conditions", [("pose_tilted",), ("bite_open",), ("bite_occlusion",), ("fov_quadrant",)])
def test_ios_truth_lands_on_the_cbct_teeth(conditions: tuple[str, ...]) -> None:
    """Scan crowns mapped by world_from_ios lie on their tooth's label-map surface as well as without a pose."""
    baseline = _surface_distances(patient("ios_full")).mean()
    d = _surface_distances(patient(*conditions))
    assert d.mean() <= baseline + 0.03, (d.mean(), baseline)
    assert np.percentile(d, 95) <= 0.4


def test_left_right_and_upper_lower_hold_under_pose_and_bite() -> None:
    for p in (patient("pose_tilted"), patient("bite_open"), patient("bite_occlusion")):
        c = _centroids(p)
        for fdi in (11, 14, 16, 41, 44, 46):
            if fdi in c and tooth(fdi).mirror().fdi in c:
                assert c[fdi][0] < c[tooth(fdi).mirror().fdi][0], fdi  # patient right is −x in LPS
        assert c[16][2] > c[46][2]
        assert c[11][2] > c[41][2]
        assert c[11][1] < c[16][1]  # incisors anterior


# ---- field of view ---------------------------------------------------------------------------------------
def test_quadrant_fov_holds_3_to_6_teeth_and_flags_cut_ones() -> None:
    for seed in (5, 6, 7):
        p = patient("fov_quadrant", seed=seed)
        fov = p.variety["fov"]
        in_volume = set(fov["inside"]) | set(fov["cut"])
        assert 3 <= len(in_volume) <= 6, in_volume
        assert set(p.variety["teeth_cbct"]) == in_volume
        assert max(p.cbct.shape) * 0.6 <= 60.0  # a small field of view
        assert set(p.variety["pairable"]) == set(fov["inside"])  # full-arch scans: crowns wholly inside pair


def test_one_jaw_and_cut_crowns_fovs() -> None:
    p = patient("fov_one_jaw")
    params, fov = p.variety["params"]["fov_one_jaw"], p.variety["fov"]
    jaw_teeth = {t.fdi for t in p.anatomy.teeth if t.jaw == params["jaw"]}
    assert jaw_teeth <= set(fov["inside"])
    assert not (set(fov["inside"]) - jaw_teeth)  # the other jaw is at most cut
    q = patient("fov_cut_crowns")
    params, fov = q.variety["params"]["fov_cut_crowns"], q.variety["fov"]
    cut_jaw = {t.fdi for t in q.anatomy.teeth if t.jaw == params["cut_jaw"]}
    assert cut_jaw == set(fov["cut"])
    assert cut_jaw <= set(q.variety["teeth_cbct"])  # cut crowns still have voxels
    assert not cut_jaw & set(q.variety["pairable"])


def test_full_fov_truth_says_every_tooth_inside() -> None:
    from toothmcl_data.synth.cbct import full_grid
    from toothmcl_data.synth.fov import tooth_samples, tooth_status

    p = patient("pose_tilted")
    samples = {t.fdi: tooth_samples(t) for t in p.anatomy.world_teeth()}
    status = tooth_status(samples, full_grid(p.anatomy, CONFIG.spacing_mm))
    assert status["inside"] == sorted(samples)
    assert not status["cut"]
    assert not status["roots_cut"]


# ---- intensity -------------------------------------------------------------------------------------------
def test_hu_scale_puts_air_at_minus_1000_and_vendor_scale_elsewhere() -> None:
    hu, vendor, raw = patient("intensity_hu"), patient("intensity_vendor"), patient()
    teeth = hu.cbct_labels.array > 0
    air = raw.cbct.array < 150  # air voxels, judged on the raw scan of the same anatomy
    assert np.median(hu.cbct.array[air]) == pytest.approx(-1000, abs=60)
    assert hu.cbct.array.max() <= 3071
    assert np.median(hu.cbct.array[teeth]) > 1200
    scale = vendor.variety["intensity"]
    assert scale["kind"] == "vendor"
    assert 0.3 <= scale["gain"] <= 3.0
    got = np.median(vendor.cbct.array[air])
    assert got == pytest.approx(scale["offset"], abs=max(60.0, 60.0 * scale["gain"]))
    want_teeth = scale["gain"] * np.median(raw.cbct.array[teeth]) + scale["offset"]
    assert np.median(vendor.cbct.array[teeth]) == pytest.approx(want_teeth, rel=0.05, abs=60)


# ---- intraoral scans -------------------------------------------------------------------------------------
def _ios_teeth(p: SyntheticPatient, jaw: str, minimum: int = 50) -> set[int]:
    return {int(f) for f, n in p.variety["ios_vertices"][jaw].items() if n >= minimum}


def test_quadrant_scan_covers_3_to_6_teeth_of_one_side() -> None:
    p = patient("ios_quadrant")
    side = p.variety["params"]["ios_quadrant"]["side"]
    for jaw in ("upper", "lower"):
        teeth = _ios_teeth(p, jaw, minimum=300)
        assert 2 <= len(teeth) <= 7, teeth
        assert all(tooth(f).side == side for f in teeth), teeth
    assert set(p.variety["pairable"]) == _ios_teeth(p, "upper") | _ios_teeth(p, "lower")


def test_no_palate_and_holes() -> None:
    default, bare, holed = patient("ios_full"), patient("ios_no_palate"), patient("ios_holes")
    assert np.array_equal(default.ios["upper"].vertices, patient().ios["upper"].vertices)  # ios_full = default
    assert len(bare.ios["upper"].vertices) < 0.9 * len(default.ios["upper"].vertices)
    assert _ios_teeth(bare, "upper") == _ios_teeth(default, "upper")
    for jaw in ("upper", "lower"):
        for fdi in holed.variety["params"]["ios_holes"]["teeth"][jaw]:
            n_default = int(np.sum(default.ios[jaw].labels == fdi))
            assert np.sum(holed.ios[jaw].labels == fdi) < min(0.95 * n_default, n_default - 60), (jaw, fdi)


def test_bite_scan_sits_on_both_jaws_in_occlusion() -> None:
    p = patient("bite_occlusion", "ios_bite_scan")
    assert p.bite_scan is not None
    assert p.world_from_bite is not None
    assert p.bite_scan.labels is not None
    world = apply_transform(p.world_from_bite, p.bite_scan.vertices)
    pairs: tuple[tuple[Jaw, tuple[int, int]], ...] = (("upper", (1, 2)), ("lower", (3, 4)))
    for jaw, quadrants in pairs:
        mine = np.isin(p.bite_scan.labels // 10, quadrants)
        assert mine.sum() > 500
        scan = apply_transform(p.world_from_ios[jaw], p.ios[jaw].vertices)
        d, _ = cKDTree(scan).query(world[mine])
        assert np.median(d) < 0.25, (jaw, np.median(d))
    assert p.variety["params"]["ios_bite_scan"]["matches_cbct_bite"] is True


# ---- anatomy ---------------------------------------------------------------------------------------------
def test_mixed_dentition_has_primary_teeth_in_both_modalities() -> None:
    for seed in (5, 8):
        p = patient("mixed_dentition", seed=seed)
        primary = set(DECIDUOUS_FDI)
        in_map = set(p.variety["teeth_cbct"])
        assert in_map & primary
        for jaw in ("upper", "lower"):
            assert _ios_teeth(p, jaw) & primary
        assert in_map == {t.fdi for t in p.anatomy.teeth}
        if p.anatomy.dentition == "mixed":
            assert {11, 16, 53, 55, 46, 75} <= in_map
            assert not in_map & {13, 14, 15, 17, 18}
        c = _centroids(p)
        assert c[55][0] < c[65][0]
        assert c[55][2] > c[85][2]


def test_missing_third_molar_on_one_side_only() -> None:
    p = patient("missing_third_molar")
    gone = p.variety["params"]["missing_third_molar"]["missing_third_molar"]
    thirds = {18, 28, 38, 48}
    in_map = set(p.variety["teeth_cbct"])
    in_ios = _ios_teeth(p, "upper") | _ios_teeth(p, "lower")
    assert thirds - in_map == {gone}
    assert thirds - in_ios == {gone}
    assert tooth(gone).mirror().fdi in in_map


def test_edentulous_implants_metal_crowns_crowding() -> None:
    ed = patient("edentulous")
    spans = ed.variety["params"]["edentulous"]["edentulous_spans"]
    gone = {f for span in spans for f in span}
    assert gone
    assert not gone & set(ed.variety["teeth_cbct"])
    assert all(2 <= len(s) <= 4 for s in spans)
    imp = patient("implants")
    implants = imp.variety["params"]["implants"]["implants"]
    assert 2 <= len(implants) <= 3
    assert {t.fdi for t in imp.anatomy.teeth if t.restoration == "implant"} == set(implants)
    metal = patient("metal_crowns")
    crowns = metal.variety["params"]["metal_crowns"]["metal_crowns"]
    assert 3 <= len(crowns) <= 6
    assert metal.cbct.array.max() > 6000
    crowded, default = patient("crowding"), patient()
    spin = [abs(np.degrees(np.arccos(np.clip(np.dot(a.mesial, b.mesial), -1, 1))))
            for a, b in zip(crowded.anatomy.teeth, default.anatomy.teeth, strict=True) if a.fdi % 10 <= 3]  # fmt: skip
    assert crowded.anatomy.crowding
    assert max(spin) > 10.0
