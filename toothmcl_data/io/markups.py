"""3D Slicer markups fiducial files (``.fcsv``) → landmark names and LPS points.

An ``.fcsv`` states its frame in a header line ``# CoordinateSystem = RAS`` (or ``LPS``; Slicer ≤ 4.10
wrote ``0`` for RAS and ``1`` for LPS). Points are returned in LPS mm, the library's frame; RAS points are
converted with :data:`~toothmcl_data.types.LPS_FROM_RAS`. A file without the line is read as RAS (Slicer's
default) and a warning is logged.

Landmarks placed on a *mesh* need care: mesh files (STL, PLY, OBJ, VTP) carry no frame, and Slicer ≤ 4.10
loaded them as RAS without conversion (Slicer ≥ 4.11 assumes LPS unless the file header says otherwise).
So for such landmarks, the file's RAS values equal the mesh file's raw coordinates. Checked empirically on
the Mesh_Labeler example (Slicer 4.10, ``Example_01_UR1.fcsv``): with that pairing all four UR1 landmarks
lie within 0.3 mm of the scan's surface, next to cells labelled UR1, whereas reading the raw mesh
coordinates as LPS puts them 14–18 mm away from any cell. To compare such landmarks with a mesh read by
:func:`toothmcl_data.io.mesh.read_mesh` (raw coordinates kept), map them back:
``apply_transform(LPS_FROM_RAS, points_lps)``.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from toothmcl_data.errors import InputError, InputNotFoundError
from toothmcl_data.types import LPS_FROM_RAS, apply_transform

logger = logging.getLogger(__name__)

_DEFAULT_COLUMNS = [
    "id",
    "x",
    "y",
    "z",
    "ow",
    "ox",
    "oy",
    "oz",
    "vis",
    "sel",
    "lock",
    "label",
    "desc",
    "associatedNodeID",
]
_FRAMES = {"RAS": "RAS", "0": "RAS", "LPS": "LPS", "1": "LPS"}


def read_fcsv(path: str | Path) -> tuple[list[str], NDArray[np.float64]]:
    """Read a Slicer ``.fcsv`` → (labels in file order, points (n, 3) float64 LPS mm)."""
    path = Path(path)
    if not path.is_file():
        raise InputNotFoundError(f"{path}: markups file not found; check the path")
    frame: str | None = None
    columns = _DEFAULT_COLUMNS
    rows: list[list[str]] = []
    text = path.read_text(encoding="utf-8", errors="replace")
    for line in text.splitlines():
        if line.startswith("#"):
            key, _, value = line[1:].partition("=")
            key, value = key.strip().lower(), value.strip()
            if key == "coordinatesystem":
                if value not in _FRAMES:
                    raise InputError(
                        f"{path}: CoordinateSystem must be RAS, LPS, 0 or 1, found {value!r}; fix the header line"
                    )
                frame = _FRAMES[value]
            elif key == "columns":
                columns = [c.strip() for c in value.split(",")]
        elif line.strip():
            rows.extend(csv.reader([line]))
    missing = [c for c in ("x", "y", "z", "label") if c not in columns]
    if missing:
        raise InputError(f"{path}: '# columns' lacks {missing}; expected at least x, y, z and label")
    if not rows:
        raise InputError(f"{path}: no landmarks found (expected one CSV line per point after the header)")
    ix, iy, iz, il = (columns.index(c) for c in ("x", "y", "z", "label"))
    try:
        points = np.array([[float(r[ix]), float(r[iy]), float(r[iz])] for r in rows], dtype=np.float64)
        labels = [r[il] for r in rows]
    except (ValueError, IndexError) as err:
        raise InputError(f"{path}: a landmark line does not match columns {columns} ({err}); fix the file") from err
    if not np.all(np.isfinite(points)):
        raise InputError(f"{path}: landmark coordinates contain NaN or inf; remove undefined points")
    if frame is None:
        logger.warning("%s: no '# CoordinateSystem' line, reading points as RAS (Slicer's default)", path)
        frame = "RAS"
    return labels, apply_transform(LPS_FROM_RAS, points) if frame == "RAS" else points
