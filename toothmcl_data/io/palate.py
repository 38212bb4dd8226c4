"""Which jaw an unlabelled scan of unknown jaw shows, from its own shape: only an upper scan can hold a palate.

Seen along its occlusal direction, a lower arch is a U open at the back (the tongue fills its inside, and scans do
not record it), and so is an upper scan trimmed lingual of its teeth; an upper scan with its palate fills the
inside of its arch. The largest disc inside the scan's outline (its projection with the holes filled) measures
that: it is as wide as the arch's band of teeth and gums for an open arch and as wide as the palate for a closed one.
The test can only ever say "upper"; every other scan stays of unknown jaw. Used where nothing else (a sidecar, FDI
labels, the file name) names a scan's jaw: de-identification files a case's scans by jaw, registration fits them.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from toothmcl_data.geometry import face_cross
from toothmcl_data.types import Jaw, Mesh

PALATE_MM = 15.0
"""A scan whose outline holds a disc of at least this radius shows a palate. Measured (``inner_radius_mm``,
synthetic seeds 0 and 1, 5 patients per condition, 8 conditions): upper scans with a palate 17.0–32.0 mm (the
smallest in mixed dentition and edentulous arches); lower scans, palate-less and quadrant upper scans 9.0–12.7 mm;
the real fixture's upper scan (trimmed without palate, ``../shared/fixtures``) 12.0 mm."""
GRID_MM = 1.0
"""Pixel of the projected outline (mm), or the scan's median edge where that is longer (a sparse mesh)."""
OPEN_SCAN = 0.15
"""A jaw scan is an open surface that faces mostly one way: the length of its summed area-weighted face normals is
0.33–0.50 of its area (synthetic scans of 6 conditions, the real fixture 0.44). Below this fraction the mesh is
closed (a model scan with a base: 0) or not one jaw, and has no occlusal direction to look along."""


def occlusal_axis(mesh: Mesh) -> NDArray[np.float64] | None:
    """(3,) unit area-weighted mean face normal of a jaw scan (its own frame: its gums → its crowns, roughly), or
    None for a mesh without one (no faces, or closed: ``OPEN_SCAN``)."""
    areas = face_cross(mesh.vertices, mesh.faces)
    total = areas.sum(axis=0)
    length = float(np.linalg.norm(total))
    if length <= OPEN_SCAN * float(np.linalg.norm(areas, axis=1).sum()):
        return None
    return np.asarray(total / length, dtype=np.float64)


def inner_radius_mm(mesh: Mesh) -> float:
    """Radius (mm) of the largest disc inside ``mesh``'s outline seen along its ``occlusal_axis``: vertices
    projected on a ``GRID_MM`` grid, gaps of up to 4 pixels closed, holes filled, then the largest distance to the
    outside; 0 for a mesh without an occlusal axis."""
    v, f = np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.faces)
    axis = occlusal_axis(mesh)
    if axis is None:
        return 0.0
    helper = np.array([1.0, 0.0, 0.0]) if abs(axis[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    e1 = np.cross(axis, helper)
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(axis, e1)
    cell = max(GRID_MM, float(np.median(np.linalg.norm(v[f[:, 1]] - v[f[:, 0]], axis=1))))
    flat = np.stack([v @ e1, v @ e2], axis=1)
    ij = np.floor((flat - flat.min(axis=0)) / cell).astype(np.intp) + 3  # a margin for the closing
    seen = np.zeros(tuple(ij.max(axis=0) + 4), dtype=bool)
    seen[ij[:, 0], ij[:, 1]] = True
    outline = ndimage.binary_fill_holes(ndimage.binary_closing(seen, iterations=2))
    return float(ndimage.distance_transform_edt(outline).max() * cell)


def jaw_from_palate(mesh: Mesh) -> Jaw | None:
    """``"upper"`` when ``mesh`` shows a palate (``inner_radius_mm`` ≥ ``PALATE_MM``), else None (can't tell)."""
    return "upper" if inner_radius_mm(mesh) >= PALATE_MM else None
