"""The points of a jaw scan that registration fits: crown samples (labelled crowns, or the whole scan without
labels), the teeth a CBCT label map shows, and the whole scan as an ICP target. Points and normals in the scan's
own frame (mm, unit vectors)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from toothmcl_data import geometry
from toothmcl_data.register.icp import Target
from toothmcl_data.register.surface import ToothSurface
from toothmcl_data.types import Mesh

MIN_TARGET_POINTS = 50
"""Fewer CBCT crown points than this for a jaw leave nothing to fit; a label map's shown teeth with fewer scan samples
than this are not fitted apart (``shown_teeth``)."""
MIN_LABELLED = 30
"""A scan with fewer crown-labelled vertices than this is fitted as unlabelled (whole surface, no FDI)."""


def vertex_normals(mesh: Mesh, index: NDArray[np.intp] | None = None) -> NDArray[np.float64]:
    """(n, 3) float64 unit vertex normals of ``mesh`` in its own frame (or (k, 3) for ``index`` (k,)):
    :func:`toothmcl_data.geometry.vertex_normals` (area-weighted, the one definition every stage uses)."""
    return geometry.vertex_normals(mesh.vertices, mesh.faces, index)


@dataclass(frozen=True, eq=False)
class CrownSample:
    """IOS points used for the fit: ``index`` (m,) into the mesh vertices, ``points``/``normals`` (m, 3) in the
    IOS frame (mm, unit), ``fdi`` (m,) labels (0 when the mesh is unlabelled), ``crowns_only`` when the labels
    let gingiva and palate be left out."""

    index: NDArray[np.intp]
    points: NDArray[np.float64]
    normals: NDArray[np.float64]
    fdi: NDArray[np.int16]
    crowns_only: bool


def _labelled(mesh: Mesh) -> bool:
    """Whether the scan has at least ``MIN_LABELLED`` crown-labelled vertices (else it is fitted as unlabelled)."""
    return mesh.labels is not None and int((mesh.labels > 0).sum()) >= MIN_LABELLED


def crown_sample(mesh: Mesh, n: int, normals: NDArray[np.float64] | None = None) -> CrownSample:
    """Farthest-point sample of the crown vertices (labels > 0) of ``mesh``, or of all vertices when unlabelled;
    ``normals``: all (n, 3) vertex normals of ``mesh`` when already computed (the sample's are their rows)."""
    labelled = _labelled(mesh)
    pool = np.flatnonzero(mesh.labels > 0) if labelled and mesh.labels is not None else np.arange(len(mesh.vertices))
    pick = pool[geometry.farthest_point_indices(mesh.vertices[pool], n)]
    fdi = mesh.labels[pick] if labelled and mesh.labels is not None else np.zeros(len(pick), dtype=np.int16)
    nrm = vertex_normals(mesh, pick) if normals is None else normals[pick]
    return CrownSample(pick, mesh.vertices[pick], nrm, fdi.astype(np.int16), labelled)


def shown_teeth(sample: CrownSample, surface: ToothSurface) -> CrownSample:
    """The labelled scan's crown samples of the teeth the CBCT's label map shows (``surface.fdi``), for the search
    and the polish: a small field of view and a whole-arch scan then fit the same teeth on both sides, and the
    scan's other teeth cannot draw the fit onto the mirror side of the arch (metal crowns in a quadrant field, both
    sides labelled: fits 19-39 mm off). ``sample`` itself without a label map or scan labels, when it holds no
    other tooth, or fewer than ``MIN_TARGET_POINTS`` of the shown ones."""
    if surface.source != "labels" or not sample.crowns_only:
        return sample
    keep = np.isin(sample.fdi, surface.fdi)
    if keep.all() or int(keep.sum()) < MIN_TARGET_POINTS:
        return sample
    return CrownSample(sample.index[keep], sample.points[keep], sample.normals[keep], sample.fdi[keep], True)


def whole_scan(mesh: Mesh) -> Target:
    """The whole scan surface (IOS frame) as an ICP target."""
    return Target.of(mesh.vertices, vertex_normals(mesh))


def scan_target(mesh: Mesh) -> Target | None:
    """``whole_scan`` when the scan is unlabelled (fewer than ``MIN_LABELLED`` crown vertices: the fit then runs
    CBCT crowns → scan), else None; built once per registration."""
    return None if _labelled(mesh) else whole_scan(mesh)
