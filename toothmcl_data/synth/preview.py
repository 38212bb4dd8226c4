"""PNG previews of a written synthetic drop, so a person can see each patient looks plausible.

Reads what :func:`toothmcl_data.synth.drop.write_drop` wrote: the ground-truth CBCT and label map, and each
IOS mesh through the library's own reader (so the picture shows what a user of the drop would load). Primary
teeth (FDI 51–85) are drawn in the colours of their permanent successors (the colour table holds permanent
teeth only); a scan the reader refuses for its primary-tooth labels is drawn from the file's geometry and the
ground-truth labels, and its title says so.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import trimesh
from numpy.typing import NDArray

from toothmcl_data.errors import LabelSchemeError, MeshError, ToothmclError
from toothmcl_data.io.mesh import read_mesh
from toothmcl_data.report.preview import mesh_png, volume_slices_png
from toothmcl_data.synth.drop import DROP_DIR, TRUTH_DIR
from toothmcl_data.types import Mesh, Volume

log = logging.getLogger(__name__)


def write_previews(out: Path, *, progress: Callable[[int], None] | None = None) -> list[Path]:
    """Write ``out/preview/<key>_cbct.png`` and ``<key>_<jaw>.png`` for every patient of the drop in ``out``.

    A mesh the reader rejects (a planted fault) gets no picture; the reason is logged."""
    truth_dir = Path(out) / TRUTH_DIR
    truth = json.loads((truth_dir / "truth.json").read_text())
    folder = Path(out) / "preview"
    written: list[Path] = []
    for entry in truth["patients"]:
        key = entry["key"]
        affine = np.asarray(entry["cbct"]["affine"])
        cbct = Volume(np.load(truth_dir / entry["arrays"]["cbct"]), affine)
        labels = Volume(display_codes(np.load(truth_dir / entry["arrays"]["cbct_labels"])), affine)
        title = f"{key}: CBCT {entry['format']}, {len(entry['teeth'])} teeth, FDI label map overlaid"
        if entry.get("conditions"):
            title = f"{key} [{', '.join(entry['conditions'])}]: CBCT {entry['format']}, FDI labels overlaid"
        written.append(volume_slices_png(cbct, labels, folder / f"{key}_cbct.png", title=title))
        for item in entry["files"]:
            if item["role"] not in ("ios_mesh", "ios_bite"):
                continue
            scan = item.get("jaw", "bite")
            path = Path(out) / DROP_DIR / item["path"]
            note = ""
            try:
                mesh = read_mesh(path)
            except LabelSchemeError as err:
                truth_labels = np.load(truth_dir / entry["arrays"]["ios_labels"][scan])
                mesh = _geometry_with(path, truth_labels)
                note = " (reader refused the labels; ground truth drawn)"
                log.warning("preview: %s %s scan: %s", key, scan, err)
            except ToothmclError as err:
                log.warning("preview: %s %s scan not drawn: %s", key, scan, err)
                continue
            if mesh.labels is not None:
                mesh = Mesh(
                    mesh.vertices,
                    mesh.faces,
                    frame=mesh.frame,
                    labels=display_codes(mesh.labels).astype(np.int16),
                    jaw=mesh.jaw,
                )
            title = f"{key}: {scan} scan ({path.suffix[1:]}, {len(mesh.vertices)} vertices), FDI colours{note}"
            written.append(mesh_png(mesh, folder / f"{key}_{scan}.png", title=title))
        if progress is not None:
            progress(1)
    return written


def display_codes(labels: NDArray[np.integer]) -> NDArray[np.integer]:
    """Labels for drawing only: primary teeth 51–85 → the permanent code of the same position (11–45)."""
    out = np.array(labels, copy=True)
    primary = out > 48
    out[primary] = (out[primary] // 10 - 4) * 10 + out[primary] % 10
    return out


def _geometry_with(path: Path, labels: NDArray[np.integer]) -> Mesh:
    """The file's triangles (trimesh, no processing) with ``labels`` where the vertex counts agree."""
    loaded = trimesh.load(path, process=False, force="mesh")
    if not isinstance(loaded, trimesh.Trimesh):
        raise MeshError(f"{path}: expected one triangle mesh, trimesh read a {type(loaded).__name__}")
    vertices = np.asarray(loaded.vertices, dtype=np.float64)
    faces = np.asarray(loaded.faces, dtype=np.int32)
    return Mesh(vertices, faces, labels=np.asarray(labels, dtype=np.int16) if len(labels) == len(vertices) else None)
