"""Draw a patient under named clinical conditions, with the ground truth that lets registration and pairing
be checked.

Order of drawing: anatomy (``anatomy`` group) → bite → head pose → field of view → CBCT (intensity scale) →
IOS (``ios`` group). The default draws come from the patient's generator ``rng`` exactly as for a default
patient; every condition's parameters come from a child generator spawned from it (``rng.spawn``), so e.g. a
``pose_tilted`` patient has the anatomy of the default patient with the same seed.

``SyntheticPatient.variety`` (and ``truth.json`` → ``variety``) holds:

- ``conditions``: the names; ``params``: per condition, what it drew (angles, mm, FDI codes, scale);
- ``world_from_jaw``: per jaw, (4, 4) anatomy frame → CBCT LPS world;
- ``intensity``: ``{"kind", "gain", "offset", "air"}``;
- ``teeth_cbct``: FDI codes with voxels in the label map; ``ios_vertices``: per jaw ``{FDI: vertex count}``;
- ``fov``: ``{"inside", "cut", "outside", "roots_cut"}`` → FDI codes, judged on each crown (see ``synth.fov``);
  a tooth with no voxel in the label map counts as outside;
- ``pairable``: FDI codes whose crown is wholly inside the CBCT and that have ≥ 50 vertices in their jaw scan —
  the teeth a pairing should pair; all others should be flagged, not paired.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from toothmcl_data.synth.anatomy import Anatomy, draw_anatomy
from toothmcl_data.synth.cbct import IntensityScale, full_grid, render_cbct
from toothmcl_data.synth.conditions import check_conditions
from toothmcl_data.synth.config import SynthConfig
from toothmcl_data.synth.fov import draw_fov, tooth_samples, tooth_status
from toothmcl_data.synth.ios import MeshEdit, scan_jaw
from toothmcl_data.synth.ios_variants import bite_scan, holes_edit, no_palate_edit, quadrant_edit
from toothmcl_data.synth.jawpose import close_bite, open_bite, tilt_head
from toothmcl_data.synth.patient import SyntheticPatient, in_scanner_frame, scanner_frame
from toothmcl_data.types import JAWS, Affine4x4, Jaw, Mesh

PAIRABLE_MIN_VERTICES = 50


def _pose(anatomy: Anatomy, conds: tuple[str, ...], crng: np.random.Generator) -> tuple[Anatomy, dict[str, Any]]:
    params: dict[str, Any] = {}
    if "bite_occlusion" in conds:
        anatomy, params["bite_occlusion"] = close_bite(anatomy, float(crng.uniform(0.05, 0.15)))
    for name, kind in (("bite_block", "block"), ("bite_open", "open")):
        if name in conds:
            anatomy, params[name] = open_bite(anatomy, kind, crng)
    if "pose_tilted" in conds:
        anatomy, params["pose_tilted"] = tilt_head(anatomy, crng)
    return anatomy, params


def _edits(
    anatomy: Anatomy, conds: tuple[str, ...], crng: np.random.Generator, params: dict[str, Any]
) -> dict[Jaw, MeshEdit | None]:
    edits: dict[Jaw, MeshEdit | None] = {"upper": None, "lower": None}
    if "ios_quadrant" in conds:
        right = bool(crng.random() < 0.5)
        k = int(crng.integers(3, 7))
        last = 8 if anatomy.dentition == "permanent" else 6
        first = int(crng.integers(1, max(last - k + 1, 1) + 1))
        positions = (first, min(first + k - 1, last))
        for jaw in JAWS:
            edits[jaw] = quadrant_edit(anatomy, jaw, right, positions)
        params["ios_quadrant"] = {"side": "right" if right else "left", "positions": list(positions)}
    if "ios_no_palate" in conds:
        margin = float(crng.uniform(1.0, 3.0))
        edits["upper"] = no_palate_edit(anatomy, "upper", margin)
        params["ios_no_palate"] = {"margin_mm": margin}
    if "ios_holes" in conds:
        holed: dict[str, list[int]] = {}
        for jaw in JAWS:
            edits[jaw], holed[jaw] = holes_edit(anatomy, jaw, crng)
        params["ios_holes"] = {"teeth": holed}
    return edits


def make_varied(
    config: SynthConfig, rng: np.random.Generator, index: int, conditions: Sequence[str]
) -> SyntheticPatient:
    """One patient drawn under ``conditions`` (validated; at most one per group), with its ground truth."""
    conds = check_conditions(conditions)
    crng = rng.spawn(1)[0]
    anatomy = draw_anatomy(config, rng, conds, crng)
    params: dict[str, Any] = {k: dict(anatomy.params) for k in conds if k in _ANATOMY and anatomy.params}
    anatomy, pose_params = _pose(anatomy, conds, crng)
    params.update(pose_params)
    full = full_grid(anatomy, config.spacing_mm, config.field_mm)
    fov = next((c for c in conds if c.startswith("fov_")), "fov_full")
    world_teeth = anatomy.world_teeth()
    if fov != "fov_full":
        samples = {t.fdi: tooth_samples(t) for t in world_teeth}
        grid, params[fov] = draw_fov(fov, anatomy, full, samples, crng)
        status = tooth_status(samples, grid)
    else:
        grid = full
        status = {"inside": sorted(t.fdi for t in world_teeth), "cut": [], "outside": [], "roots_cut": []}
    scale = IntensityScale()
    if "intensity_hu" in conds:
        scale = IntensityScale.draw("hu", crng)
    elif "intensity_vendor" in conds:
        scale = IntensityScale.draw("vendor", crng)
    streaks = float(anatomy.params.get("streak_strength", 1.0))
    cbct, labels = render_cbct(anatomy, config, rng, grid=grid, scale=scale, streak_strength=streaks)
    edits = _edits(anatomy, conds, crng, params)
    ios: dict[Jaw, Mesh] = {}
    world_from_ios: dict[Jaw, Affine4x4] = {}
    for jaw in JAWS:
        scan = scan_jaw(anatomy, jaw, config, rng, edits[jaw])
        ios_from_world = scanner_frame(rng)
        ios[jaw] = in_scanner_frame(scan, ios_from_world @ anatomy.world_from_jaw(jaw), f"ios:{jaw}")
        world_from_ios[jaw] = np.asarray(np.linalg.inv(ios_from_world), dtype=np.float64)
    bite_mesh, world_from_bite = None, None
    if "ios_bite_scan" in conds:
        raw, params["ios_bite_scan"] = bite_scan(anatomy, bool(crng.random() < 0.5), config, crng)
        bite_from_world = scanner_frame(crng)
        bite_mesh = in_scanner_frame(raw, bite_from_world @ anatomy.world_from_jaw("upper"), "ios:bite")
        world_from_bite = np.asarray(np.linalg.inv(bite_from_world), dtype=np.float64)
        params["ios_bite_scan"]["matches_cbct_bite"] = "bite_occlusion" in conds
    variety = _truth(conds, params, anatomy, scale, labels.array, ios, status)
    return SyntheticPatient(
        index, anatomy, cbct, labels, ios, world_from_ios, conds, variety, bite_mesh, world_from_bite
    )


_ANATOMY = frozenset({"edentulous", "implants", "metal_crowns", "crowding", "mixed_dentition", "missing_third_molar"})


def _truth(
    conds: tuple[str, ...],
    params: dict[str, Any],
    anatomy: Anatomy,
    scale: IntensityScale,
    labels: np.ndarray,
    ios: dict[Jaw, Mesh],
    status: dict[str, list[int]],
) -> dict[str, Any]:
    in_map = {int(v) for v in np.unique(labels) if v > 0}
    # The label map decides presence: a sliver thinner than half a voxel has no voxel and is outside.
    status = dict(status)
    slivers = [f for f in status["cut"] if f not in in_map]
    strays = [f for f in status["outside"] if f in in_map]
    status["cut"] = sorted(set(status["cut"]) - set(slivers) | set(strays))
    status["outside"] = sorted(set(status["outside"]) - set(strays) | set(slivers))
    counts: dict[str, dict[str, int]] = {}
    for jaw, mesh in ios.items():
        values, n = np.unique(np.asarray(mesh.labels), return_counts=True)
        counts[jaw] = {str(int(v)): int(c) for v, c in zip(values, n, strict=True) if v > 0}
    in_ios = {int(f) for jaw in counts for f, c in counts[jaw].items() if c >= PAIRABLE_MIN_VERTICES}
    return {
        "conditions": list(conds),
        "params": params,
        "dentition": anatomy.dentition,
        "world_from_jaw": {jaw: anatomy.world_from_jaw(jaw).tolist() for jaw in JAWS},
        "intensity": scale.to_dict(),
        "teeth_cbct": sorted(in_map),
        "ios_vertices": counts,
        "fov": status,
        "pairable": sorted(set(status["inside"]) & in_ios),
    }
