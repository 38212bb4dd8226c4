"""How a clinic's intraoral scans differ from a clean full-arch scan: quadrant scans, no palate, large holes,
and a buccal bite-registration scan of both arches closed in occlusion.

The edits (:data:`toothmcl_data.synth.ios.MeshEdit`) act on a jaw's clean surface in its anatomy frame (LPS mm)
before the scanner's noise; arch coordinates ``d`` (mm, + buccal) and ``s`` (mm along the arch, − patient
right) come from :class:`toothmcl_data.synth.shapes.ArchCoordinates`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import trimesh
from numpy.typing import NDArray
from skimage.measure import marching_cubes

from toothmcl_data.synth.anatomy import Anatomy, ToothSpec
from toothmcl_data.synth.config import SynthConfig
from toothmcl_data.synth.ios import MeshEdit, grid_field, jaw_field, keep_faces, largest_components
from toothmcl_data.synth.jawpose import close_bite
from toothmcl_data.synth.shapes import ArchCoordinates
from toothmcl_data.types import Jaw, Mesh

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


def _tooth_s(spec: ToothSpec, coords: ArchCoordinates) -> float:
    return float(coords(np.asarray(spec.cej[:2])[None])[1][0])


def _band(anatomy: Anatomy, jaw: Jaw) -> float:
    return max(t.depth for t in anatomy.jaw_teeth(jaw)) / 2 + 1.2


def quadrant_edit(anatomy: Anatomy, jaw: Jaw, right: bool, positions: tuple[int, int]) -> MeshEdit:
    """Keep the part of ``jaw``'s scan over the teeth at ``positions`` (first, last, by FDI position) on the
    patient's right (``right``) or left side, ±1 mm along the arch, no palate or floor of the mouth."""
    arch = anatomy.arch(jaw)
    coords = ArchCoordinates(arch)
    quadrants = {("upper", True): 1, ("upper", False): 2, ("lower", False): 3, ("lower", True): 4}
    q = quadrants[(jaw, right)]
    chosen = [
        t for t in anatomy.jaw_teeth(jaw) if t.fdi // 10 in (q, q + 4) and positions[0] <= t.fdi % 10 <= positions[1]
    ]
    if not chosen:  # no tooth at these positions: the same stretch of the arch, from the opposing jaw's teeth
        chosen = [t for t in anatomy.teeth if t.fdi % 10 in range(positions[0], positions[1] + 1)]
        chosen = [t for t in chosen if (t.cej[0] < arch.x0) == right]
    s = np.array([_tooth_s(t, coords) for t in chosen])
    w = np.array([t.width / 2 for t in chosen])
    s_lo, s_hi = float((s - w).min() - 1.0), float((s + w).max() + 1.0)
    band = _band(anatomy, jaw)

    def edit(verts: FloatArray, faces: IntArray) -> tuple[FloatArray, IntArray]:
        d, sv = coords(verts[faces].mean(axis=1)[:, :2])
        return keep_faces(verts, faces, (sv >= s_lo) & (sv <= s_hi) & (d > -band - 3.0) & (d < band + 6.0))

    return edit


def no_palate_edit(anatomy: Anatomy, jaw: Jaw, margin: float) -> MeshEdit:
    """Drop the scan lingual of the teeth by more than ``margin`` mm (the palatal vault of the upper jaw)."""
    coords = ArchCoordinates(anatomy.arch(jaw))
    band = _band(anatomy, jaw)

    def edit(verts: FloatArray, faces: IntArray) -> tuple[FloatArray, IntArray]:
        d, _ = coords(verts[faces].mean(axis=1)[:, :2])
        return keep_faces(verts, faces, d > -band - margin)

    return edit


def holes_edit(anatomy: Anatomy, jaw: Jaw, rng: np.random.Generator) -> tuple[MeshEdit, list[int]]:
    """3–6 holes (radius 3–5 mm) centred on the crown tips of as many different teeth; returns the edit and the
    FDI codes of the holed teeth."""
    teeth = list(anatomy.jaw_teeth(jaw))
    n = min(int(rng.integers(3, 7)), len(teeth))
    picked = [teeth[int(i)] for i in rng.choice(len(teeth), size=n, replace=False)]
    centres = np.array([np.asarray(t.cej) + np.asarray(t.occlusal) * t.height for t in picked])
    radii = rng.uniform(3.0, 5.0, size=n)

    def edit(verts: FloatArray, faces: IntArray) -> tuple[FloatArray, IntArray]:
        c = verts[faces].mean(axis=1)
        keep = np.ones(len(faces), dtype=bool)
        for centre, r in zip(centres, radii, strict=True):
            keep &= np.linalg.norm(c - centre, axis=1) > r
        return keep_faces(verts, faces, keep)

    return edit, sorted(t.fdi for t in picked)


def bite_scan(
    anatomy: Anatomy, right: bool, config: SynthConfig, rng: np.random.Generator
) -> tuple[Mesh, dict[str, Any]]:
    """A buccal bite-registration scan: both arches closed in occlusion (contact gap 0.1 mm) over the canine to
    first molar of one side, buccal surfaces only, in the upper jaw's anatomy frame (LPS mm), labelled with FDI
    (0 = gingiva) per vertex. Returns the mesh (``jaw=None``, ``frame="world"``) and what was drawn."""
    closed, closing = close_bite(anatomy, 0.1)
    sign = -1.0 if right else 1.0
    upper = closed.arch("upper")
    near = [t for t in closed.teeth if (t.cej[0] - upper.x0) * sign > 0 and 3 <= t.fdi % 10 <= 6]
    if not near:
        near = list(closed.teeth)
    cej = np.array([t.cej for t in near])
    step = config.ios_resolution_mm
    lo = np.array([*(cej[:, :2].min(axis=0) - 6.0), closed.arch("lower").cej_z - 6.0])
    hi = np.array([*(cej[:, :2].max(axis=0) + 6.0), upper.cej_z + 6.0])
    x, y, z = (np.arange(lo[k], hi[k] + step, step) for k in range(3))
    field = np.minimum(grid_field(closed, "upper", x, y, z), grid_field(closed, "lower", x, y, z))
    verts, faces, _, _ = marching_cubes(field.astype(np.float32), level=0.0, spacing=(step, step, step))
    verts = verts.astype(np.float64) + lo
    faces = faces.astype(np.int64)
    normals = trimesh.Trimesh(verts, faces, process=False).face_normals
    centres = verts[faces].mean(axis=1)
    keep = np.zeros(len(faces), dtype=bool)
    for jaw in ("upper", "lower"):
        coords = ArchCoordinates(closed.arch(jaw))
        d, _ = coords(centres[:, :2])
        d_near, _ = coords(centres[:, :2] + 0.5 * normals[:, :2])
        occ_z = 0.5 * (upper.cej_z + closed.arch("lower").cej_z)
        side = centres[:, 2] > occ_z if jaw == "upper" else centres[:, 2] <= occ_z
        keep |= side & (d > -1.0) & (d_near > d)  # buccal of the arch line, facing outwards
    verts, faces = largest_components(*keep_faces(verts, faces, keep))
    mesh_normals = trimesh.Trimesh(verts, faces, process=False).vertex_normals
    verts = verts + mesh_normals * rng.normal(0.0, config.ios_noise_mm, size=(len(verts), 1))
    fu, lu = jaw_field(closed, "upper", verts)
    fl, ll = jaw_field(closed, "lower", verts)
    labels = np.where(fu <= fl, lu, ll).astype(np.int16)
    fdis = sorted(int(f) for f in np.unique(labels[labels > 0]))
    lut = {f: i + 1 for i, f in enumerate(fdis)}
    instances = np.array([lut.get(int(v), 0) for v in labels], dtype=np.int16)
    mesh = Mesh(verts, faces.astype(np.int32), frame="world", labels=labels, instances=instances, jaw=None)
    params = {"side": "right" if right else "left", "teeth": fdis, "lower_raise_mm": closing["raise_mm"]}
    return mesh, params
