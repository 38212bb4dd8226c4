"""How a mesh's per-vertex labels and jaw are derived from what a file holds.

Face labels vote for vertex labels; an STL sidecar's per-corner labels collapse to merged vertices; the jaw
comes from the labels (FDI quadrants) or the file name. All labels are FDI (0 = gingiva, -1 = unknown).
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from toothmcl_data.errors import MeshError
from toothmcl_data.types import Jaw

_UPPER = {
    "upper",
    "maxilla",
    "maxillary",
    "oberkiefer",
    "maxillaire",
    "maxilar",
    "superior",
    "superiore",
    "bovenkaak",
}
_LOWER = {
    "lower",
    "mandible",
    "mandibular",
    "unterkiefer",
    "mandibulaire",
    "mandibula",
    "inferior",
    "inferiore",
    "onderkaak",
}
"""Words of a file name that name a jaw: English, and the words for the jaws (or arches) in German, French,
Spanish and Portuguese, Italian and Dutch (e.g. ``Oberkiefer.stl``, ``Arcada_Superior.stl``, ``mandíbula.ply``)."""


def vertex_labels_from_faces(face_labels: NDArray[np.integer], faces: NDArray[np.integer], n: int) -> NDArray[np.int16]:
    """Per-vertex labels (n,) int16 by majority vote of the incident faces' labels.

    face_labels: (m,) FDI per face; faces: (m, 3) indices into n vertices. Ties: tooth > gingiva (0) >
    unknown (-1), then the smallest FDI code. Vertices on no face get -1.
    """
    vert = np.asarray(faces, dtype=np.int64).ravel()
    lab = np.repeat(np.asarray(face_labels, dtype=np.int64), 3)
    pairs, counts = np.unique(np.stack([vert, lab], axis=1), axis=0, return_counts=True)
    priority = np.where(pairs[:, 1] > 0, pairs[:, 1], np.where(pairs[:, 1] == 0, 10_000, 20_000))
    order = np.lexsort((priority, -counts, pairs[:, 0]))
    winners = pairs[order]
    first = np.unique(winners[:, 0], return_index=True)[1]
    out = np.full(n, -1, dtype=np.int16)
    out[winners[first, 0]] = winners[first, 1]
    return out


def corner_to_vertex(
    path: Path, sidecar: Path, faces: NDArray[np.int64], n: int, *per_corner: NDArray[np.int16]
) -> list[NDArray[np.int16]]:
    """Per-corner arrays (3m,) of an STL sidecar → per merged vertex (n,), checking that corners agree."""
    corner_vertex = faces.ravel()
    out = []
    for values in per_corner:
        merged = np.full(n, -1, dtype=np.int16)
        merged[corner_vertex] = values
        disagree = np.flatnonzero(merged[corner_vertex] != values)
        if disagree.size:
            raise MeshError(
                f"{path}: sidecar {sidecar} gives different labels to the corners of one vertex (vertex "
                f"{int(corner_vertex[disagree[0]])}, face {int(disagree[0] // 3)}); a point has one label — fix "
                "the sidecar"
            )
        out.append(merged)
    return out


def jaw_from_labels(labels: NDArray[np.integer] | None) -> Jaw | None:
    """`upper` if all tooth labels (> 0) are in FDI quadrants 1, 2, 5, 6; `lower` if 3, 4, 7, 8; else None."""
    if labels is None:
        return None
    quadrants = set((np.unique(np.asarray(labels)[np.asarray(labels) > 0]) // 10).tolist())
    if quadrants and quadrants <= {1, 2, 5, 6}:
        return "upper"
    if quadrants and quadrants <= {3, 4, 7, 8}:
        return "lower"
    return None


def jaw_from_name(name: str) -> Jaw | None:
    """Jaw from a file name's words (``_``/``-``/digits/camel case split, case-insensitive, accents dropped), or
    None."""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    words = {w.lower() for w in re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+", plain)}
    upper, lower = bool(words & _UPPER), bool(words & _LOWER)
    return "upper" if upper and not lower else "lower" if lower and not upper else None
