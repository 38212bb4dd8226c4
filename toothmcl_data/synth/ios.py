"""Scan a synthetic jaw the way an intraoral scanner sees it: crowns and gingiva (no roots, no bone).

The surface is the zero level set of ``min(gingiva, crowns)`` — the same fields the CBCT is rendered from —
extracted by marching cubes at ``config.ios_resolution_mm``, cut open at the scanner's reach, with ≈20 µm noise
along the normals and optional holes. Per-vertex FDI labels and instances are exact: each vertex takes the
component whose surface it lies on.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import trimesh
from numpy.typing import NDArray
from scipy import sparse
from scipy.sparse.csgraph import connected_components
from skimage.measure import marching_cubes

from toothmcl_data.synth.anatomy import Anatomy, ToothSpec
from toothmcl_data.synth.config import SynthConfig
from toothmcl_data.synth.shapes import ArchCoordinates, crown_field, gingiva_height, to_local
from toothmcl_data.types import Jaw, Mesh

REACH_MM = {"upper": 13.0, "lower": 9.0}
"""How far apically of the CEJ plane the scan reaches (the upper scan includes the palatal vault)."""


def _height(z: NDArray[np.float64], jaw: Jaw, cej_z: float) -> NDArray[np.float64]:
    return cej_z - z if jaw == "upper" else z - cej_z


def _crown_box(spec: ToothSpec) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    reach = max(spec.width, spec.depth) / 2 + 1.5
    c = np.asarray(spec.cej) + np.asarray(spec.occlusal) * spec.height / 2
    half = np.array([reach, reach, spec.height / 2 + 3.5])
    return c - half, c + half


def jaw_field(anatomy: Anatomy, jaw: Jaw, points: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.int16]]:
    """At (n, 3) LPS mm points: the scan field (n,) (mm, negative inside gingiva or a crown) and the FDI label
    (n,) int16 of the nearest component (0 = gingiva)."""
    arch = anatomy.arch(jaw)
    teeth = anatomy.jaw_teeth(jaw)
    coords = ArchCoordinates(arch)
    d, s = coords(points[:, :2])
    field = _height(points[:, 2], jaw, arch.cej_z) - gingiva_height(d, s, arch, teeth, coords)
    label = np.zeros(len(points), dtype=np.int16)
    for spec in teeth:
        lo, hi = _crown_box(spec)
        sel = np.flatnonzero(np.all((points >= lo) & (points <= hi), axis=1))
        if sel.size == 0:
            continue
        uvw = to_local(points[sel], spec)
        f = np.where(uvw[:, 2] > -2.0, crown_field(uvw, spec), np.inf)
        better = f < field[sel]
        field[sel[better]] = f[better]
        label[sel[better]] = spec.fdi
    return field, label


def grid_field(
    anatomy: Anatomy, jaw: Jaw, x: NDArray[np.float64], y: NDArray[np.float64], z: NDArray[np.float64]
) -> NDArray[np.float64]:
    """``jaw_field`` on the axis-aligned grid ``x × y × z`` (LPS mm, equal steps): (len(x), len(y), len(z))."""
    arch = anatomy.arch(jaw)
    teeth = anatomy.jaw_teeth(jaw)
    coords = ArchCoordinates(arch)
    xy = np.stack(np.meshgrid(x, y, indexing="ij"), axis=-1).reshape(-1, 2)
    d, s = coords(xy)
    top = gingiva_height(d, s, arch, teeth, coords).reshape(len(x), len(y))
    field = _height(z, jaw, arch.cej_z)[None, None, :] - top[..., None]
    origin = np.array([x[0], y[0], z[0]])
    step = float(x[1] - x[0])
    shape = np.array(field.shape)
    for spec in teeth:
        lo, hi = _crown_box(spec)
        a = np.clip(np.floor((lo - origin) / step).astype(int), 0, shape)
        b = np.clip(np.ceil((hi - origin) / step).astype(int) + 1, 0, shape)
        if np.any(b <= a):
            continue
        idx = np.stack(np.meshgrid(*[np.arange(i, j) for i, j in zip(a, b, strict=True)], indexing="ij"), -1)
        uvw = to_local(origin + step * idx.reshape(-1, 3), spec)
        f = np.where(uvw[:, 2] > -2.0, crown_field(uvw, spec), np.inf).reshape(idx.shape[:3])
        box = tuple(slice(i, j) for i, j in zip(a, b, strict=True))
        np.minimum(field[box], f, out=field[box])
    return field


MeshEdit = Callable[[NDArray[np.float64], NDArray[np.int64]], tuple[NDArray[np.float64], NDArray[np.int64]]]
"""(vertices (n, 3) mm, faces (m, 3)) → the same, edited (cropped, holed); see ``synth.ios_variants``."""


def scan_jaw(
    anatomy: Anatomy, jaw: Jaw, config: SynthConfig, rng: np.random.Generator, edit: MeshEdit | None = None
) -> Mesh:
    """The scan of ``jaw`` in the jaw's anatomy-frame LPS mm (the world for an unposed anatomy;
    ``frame="world"``), with per-vertex FDI labels and instances. ``edit`` (a condition's crop or holes) acts on
    the clean surface before the scanner's own holes and noise."""
    step = config.ios_resolution_mm
    arch = anatomy.arch(jaw)
    teeth = anatomy.jaw_teeth(jaw)
    cej = np.array([t.cej for t in teeth])
    top = max(t.height for t in teeth) + 1.0
    lo_xy = cej[:, :2].min(axis=0) - 9.0
    hi_xy = cej[:, :2].max(axis=0) + np.array([9.0, 6.0])
    if jaw == "upper":
        z = np.arange(arch.cej_z - top, arch.cej_z + REACH_MM[jaw] + step, step)
    else:
        z = np.arange(arch.cej_z - REACH_MM[jaw], arch.cej_z + top + step, step)
    x = np.arange(lo_xy[0], hi_xy[0] + step, step)
    y = np.arange(lo_xy[1], hi_xy[1] + step, step)
    field = grid_field(anatomy, jaw, x, y, z)
    verts, faces, _, _ = marching_cubes(field.astype(np.float32), level=0.0, spacing=(step, step, step))
    verts = verts.astype(np.float64) + np.array([x[0], y[0], z[0]])
    faces = faces.astype(np.int64)
    verts, faces = largest_components(verts, faces)
    if edit is not None:
        verts, faces = largest_components(*edit(verts, faces))
    if rng.random() < config.ios_hole_probability:
        verts, faces = _punch_holes(verts, faces, rng)
    normals = trimesh.Trimesh(verts, faces, process=False).vertex_normals
    verts = verts + normals * rng.normal(0.0, config.ios_noise_mm, size=(len(verts), 1))
    _, labels = jaw_field(anatomy, jaw, verts)
    fdis = sorted(int(t.fdi) for t in teeth)
    lut = {f: i + 1 for i, f in enumerate(fdis)}
    instances = np.array([lut.get(int(v), 0) for v in labels], dtype=np.int16)
    return Mesh(verts, faces.astype(np.int32), frame="world", labels=labels, instances=instances, jaw=jaw)


def keep_faces(
    verts: NDArray[np.float64], faces: NDArray[np.int64], keep_face: NDArray[np.bool_]
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Drop faces not in ``keep_face`` and the vertices no face uses any more, keeping the order of the rest."""
    faces = faces[keep_face]
    used = np.zeros(len(verts), dtype=bool)
    used[faces.ravel()] = True
    new_index = np.cumsum(used) - 1
    return verts[used], new_index[faces]


def largest_components(
    verts: NDArray[np.float64], faces: NDArray[np.int64]
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Keep connected pieces with at least 2 % of the faces (drops specks at the scan's edge)."""
    n = len(verts)
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]]])
    graph = sparse.coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    sizes = np.bincount(comp[faces[:, 0]], minlength=comp.max() + 1)
    return keep_faces(verts, faces, sizes[comp[faces[:, 0]]] >= 0.02 * len(faces))


def _punch_holes(
    verts: NDArray[np.float64], faces: NDArray[np.int64], rng: np.random.Generator
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Remove 1–3 small patches (radius 0.8–2 mm), like regions the scanner missed."""
    centroids = verts[faces].mean(axis=1)
    keep = np.ones(len(faces), dtype=bool)
    for _ in range(int(rng.integers(1, 4))):
        centre = verts[int(rng.integers(len(verts)))]
        keep &= np.linalg.norm(centroids - centre, axis=1) > rng.uniform(0.8, 2.0)
    return keep_faces(verts, faces, keep)
