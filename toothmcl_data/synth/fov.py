"""The CBCT's field of view: which part of the full grid a scan covers, and which teeth it holds or cuts.

A field of view is an axis-aligned world box (LPS mm); the CBCT grid is the full grid
(:func:`toothmcl_data.synth.cbct.full_grid`) cropped to it on whole voxels, so voxel centres stay where the full
grid puts them. Each tooth is judged from samples of its implicit field (0.5 mm apart, in world mm): its crown
(the part above the CEJ, what a scan sees) is ``inside`` (every sample in the grid), ``cut`` or ``outside``;
``roots_cut`` lists teeth whose crown is inside but part of the root is not.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from toothmcl_data.errors import ConfigError
from toothmcl_data.synth.anatomy import Anatomy, ToothSpec
from toothmcl_data.synth.shapes import tooth_field
from toothmcl_data.types import Affine4x4, Jaw

FloatArray = NDArray[np.float64]
Grid = tuple[Affine4x4, tuple[int, int, int]]
SAMPLE_MM = 0.5


def tooth_samples(spec: ToothSpec, step: float = SAMPLE_MM) -> tuple[FloatArray, FloatArray]:
    """World points (n, 3) inside the crown and (m, 3) inside the root of ``spec`` (a world-posed tooth)."""
    a = max(spec.width, spec.depth) / 2 + 1.0
    u = np.arange(-a, a + step / 2, step)
    w = np.arange(-spec.root - 1.5, spec.height + 0.5, step)
    uvw = np.stack(np.meshgrid(u, u, w, indexing="ij"), axis=-1).reshape(-1, 3)
    uvw = uvw[tooth_field(uvw, spec) < 0]
    world = np.asarray(spec.cej) + uvw @ spec.local_frame().T
    crown = uvw[:, 2] > 0
    return world[crown], world[~crown]


def grid_box(grid: Grid) -> tuple[FloatArray, FloatArray]:
    """World (lo, hi) (3,) mm of the region a grid's voxels cover (centres ± half a voxel)."""
    affine, shape = grid
    half = 0.5 * float(affine[0, 0])
    lo = affine[:3, 3] - half
    return lo, affine[:3, 3] + float(affine[0, 0]) * (np.asarray(shape) - 1) + half


def crop_grid(grid: Grid, lo: FloatArray, hi: FloatArray) -> Grid:
    """The voxels of ``grid`` whose centres lie in the world box [lo, hi] (3,) mm: (affine, shape)."""
    affine, shape = grid
    spacing = float(affine[0, 0])
    a = np.clip(np.ceil((np.asarray(lo) - affine[:3, 3]) / spacing - 1e-9).astype(int), 0, np.asarray(shape) - 1)
    b = np.clip(np.floor((np.asarray(hi) - affine[:3, 3]) / spacing + 1e-9).astype(int), a, np.asarray(shape) - 1)
    out = affine.copy()
    out[:3, 3] = affine[:3, 3] + spacing * a
    n = b - a + 1
    return out, (int(n[0]), int(n[1]), int(n[2]))


def tooth_status(samples: dict[int, tuple[FloatArray, FloatArray]], grid: Grid) -> dict[str, list[int]]:
    """``{"inside", "cut", "outside", "roots_cut"}`` → sorted FDI codes, judged on the crown samples."""
    lo, hi = grid_box(grid)
    out: dict[str, list[int]] = {"inside": [], "cut": [], "outside": [], "roots_cut": []}
    for fdi, (crown, root) in sorted(samples.items()):
        inside = np.all((crown >= lo) & (crown <= hi), axis=1)
        status = "inside" if inside.all() else "outside" if not inside.any() else "cut"
        out[status].append(fdi)
        if status == "inside" and len(root) and not np.all((root >= lo) & (root <= hi)):
            out["roots_cut"].append(fdi)
    return out


def _tips(teeth: list[ToothSpec]) -> FloatArray:
    return np.array([np.asarray(t.cej) + np.asarray(t.occlusal) * t.height for t in teeth])


def draw_fov(
    kind: str,
    anatomy: Anatomy,
    full: Grid,
    samples: dict[int, tuple[FloatArray, FloatArray]],
    rng: np.random.Generator,
) -> tuple[Grid, dict[str, Any]]:
    """The grid of field of view ``kind`` (``fov_full``, ``fov_one_jaw``, ``fov_quadrant``, ``fov_cut_crowns``)
    inside the ``full`` grid, and the drawn parameters. ``samples``: world crown/root samples per FDI."""
    lo, hi = grid_box(full)
    lo, hi = lo.copy(), hi.copy()
    teeth = list(anatomy.world_teeth())
    params: dict[str, Any] = {"kind": kind}
    if kind == "fov_full":
        return full, params
    if kind in ("fov_one_jaw", "fov_cut_crowns"):
        jaw: Jaw = "upper" if rng.random() < 0.5 else "lower"
        other: Jaw = "lower" if jaw == "upper" else "upper"
        if kind == "fov_one_jaw":
            # Past the chosen jaw's highest (lower jaw) or lowest (upper jaw) crown point: that jaw is whole.
            crowns = np.concatenate([samples[t.fdi][0] for t in teeth if t.jaw == jaw])
            level = float(crowns[:, 2].max() if jaw == "lower" else crowns[:, 2].min())
            past = float(rng.uniform(0.0, 3.0)) + 0.5
            params.update(jaw=jaw, past_occlusal_mm=past)
        else:
            past = float(rng.uniform(1.5, 4.5))  # into the other jaw's crowns, from their tips
            level = float(np.median(_tips([t for t in teeth if t.jaw == other])[:, 2]))
            params.update(jaw=jaw, cut_jaw=other, into_crowns_mm=past)
        if jaw == "upper":
            lo[2] = level - past
        else:
            hi[2] = level + past
        return crop_grid(full, lo, hi), params
    if kind != "fov_quadrant":
        raise ConfigError(
            f"unknown field of view {kind!r}; expected fov_full, fov_one_jaw, fov_quadrant or fov_cut_crowns"
        )
    jaw = "upper" if rng.random() < 0.5 else "lower"
    right = bool(rng.random() < 0.5)
    quadrants = {("upper", True): 1, ("upper", False): 2, ("lower", False): 3, ("lower", True): 4}
    q = quadrants[(jaw, right)]
    run = sorted((t for t in teeth if t.fdi // 10 in (q, q + 4)), key=lambda t: t.fdi % 10)
    k = int(rng.integers(3, 7))
    start = int(rng.integers(0, max(len(run) - min(k, len(run)), 0) + 1))
    margin = float(rng.uniform(1.5, 4.0))
    occlusal_margin = float(rng.uniform(0.0, 0.5))
    grid = full
    for size in range(min(k, len(run)), 0, -1):
        chosen = run[start : start + size] or run[-size:]
        pts = np.concatenate([np.concatenate(samples[t.fdi]) for t in chosen])
        box_lo, box_hi = pts.min(axis=0) - margin, pts.max(axis=0) + margin
        tips = _tips(chosen)[:, 2]
        if jaw == "upper":
            box_lo[2] = tips.min() - occlusal_margin
        else:
            box_hi[2] = tips.max() + occlusal_margin
        grid = crop_grid(full, np.maximum(box_lo, lo), np.minimum(box_hi, hi))
        status = tooth_status(samples, grid)
        if len(status["inside"]) + len(status["cut"]) <= 6:
            break
    params.update(jaw=jaw, quadrant=q, teeth=[t.fdi for t in chosen], margin_mm=margin)
    return grid, params
