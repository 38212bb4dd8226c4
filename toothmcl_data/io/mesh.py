"""Read intraoral-scan meshes (STL, PLY, OBJ, VTP) and their tooth labels into :class:`Mesh`.

Vertex order is sacred: per-vertex labels in sidecars refer to it, so the format readers
(:mod:`toothmcl_data.io.meshformats`) keep the file's vertex and face
order (PLY through ``trimesh.load(..., process=False)``, OBJ, STL and VTP through own parsers).

**STL** has no shared vertices. Convention: *STL corners are merged by exact coordinate equality, in order of
first appearance in the face list* (face 0's corners first, then any new corner of face 1, …). A label sidecar
for an STL lists either one label per triangle corner (3 × faces: the vertices ``trimesh.load(...,
process=False)`` returns; what our synthetic drops write) or one per merged vertex in that order
(:func:`toothmcl_data.io.meshwrite.renumber_by_first_appearance` gives it for a mesh about to be written).

**Labels**, first source found wins (recorded in ``Mesh.meta["labels_source"]``):

1. ``labels=``: an explicit Teeth3DS JSON sidecar (FDI per vertex, plus instances and jaw);
2. ``<stem>.json`` beside the mesh, read the same way;
3. labels inside the file: VTP point/cell arrays named ``Label``/``label``/``Labels``/``labels``, or, when
   ``scheme`` names a colour table (``"fdi_colors"``, ``"teeth3ds_challenge_colors"`` …), face colours — else
   vertex colours — decoded with that table (a PLY with both keeps both: label palettes are painted per face,
   vertex colours are often shaded). Codes inside a
   file carry no scheme, so ``scheme=`` is required for label arrays (a :class:`MeshError` says so; we never
   guess Universal vs FDI). Colours are only read as labels when asked: scanners export texture colours too.

Everything is converted to FDI with :func:`toothmcl_data.fdi.to_fdi`. Face labels go to
``Mesh.face_labels`` and vertex labels are derived by majority vote of the incident faces; ties go to a
tooth over gingiva over unknown, and between teeth to the smallest FDI code; vertices on no face get -1.

**Jaw**: ``jaw=``, else the sidecar's ``jaw``, else the labels (all teeth in quadrants 1/2/5/6 → upper,
3/4/7/8 → lower), else the file name (words ``upper``/``maxilla``/``maxillary`` or ``lower``/``mandible``/
``mandibular``, camel case split: ``UpperJaw``), else None; ``Mesh.meta["jaw_source"]`` says which
(``argument``, ``sidecar``, ``labels``, ``filename`` or ``unknown``).

**Headers** (text a de-identification pass must see) go to ``Mesh.meta["header"]``: the STL 80-byte header (or
ASCII ``solid`` name), PLY ``comment``/``obj_info`` lines, OBJ ``#`` comments and ``o``/``g``/``mtllib``/
``usemtl`` lines, VTP string field data, one per line.

Coordinates are returned exactly as stored (float64 mm) in the frame ``"ios:<file stem>"`` unless ``frame=``
says otherwise: mesh files carry no patient frame (see :mod:`toothmcl_data.io.markups` for Slicer landmarks).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from toothmcl_data.errors import InputError, InputNotFoundError, LabelSchemeError, MeshError
from toothmcl_data.fdi import load_color_table, scheme_names, to_fdi
from toothmcl_data.io.meshformats import READERS, MeshFile
from toothmcl_data.io.meshlabels import corner_to_vertex, jaw_from_labels, jaw_from_name, vertex_labels_from_faces
from toothmcl_data.io.teeth3ds import read_teeth3ds_json
from toothmcl_data.types import JAWS, Jaw, Mesh

logger = logging.getLogger(__name__)

LABEL_ARRAY_NAMES = ("Label", "label", "Labels", "labels")
"""Names of VTP point/cell arrays read as tooth labels, in order of preference."""

__all__ = ["LABEL_ARRAY_NAMES", "read_mesh"]  # the format readers: io.meshformats


def _check_geometry(path: Path, m: MeshFile) -> None:
    n, nf = len(m.vertices), len(m.faces)
    if n == 0 or nf == 0:
        raise MeshError(
            f"{path}: mesh is empty (found {n} vertices and {nf} faces, expected at least 3 "
            "vertices and 1 triangle); re-export the scan"
        )
    bad = ~np.all(np.isfinite(m.vertices), axis=1)
    if bad.any():
        raise MeshError(
            f"{path}: {int(bad.sum())} vertices have NaN or inf coordinates (first: vertex "
            f"{int(np.argmax(bad))}), expected finite mm; repair or re-export the scan"
        )
    lo, hi = int(m.faces.min()), int(m.faces.max())
    if lo < 0 or hi >= n:
        raise MeshError(
            f"{path}: face indices must lie in [0, {n - 1}], found [{lo}, {hi}]; the file is "
            "corrupt or truncated, re-export it"
        )


def _convert(path: Path, codes: NDArray[np.generic], scheme: str, jaw: Jaw | None, what: str) -> NDArray[np.int16]:
    values = np.asarray(codes, dtype=np.float64).ravel()
    if not np.all(np.isfinite(values)) or np.any(values != np.rint(values)):
        raise MeshError(f"{path}: {what} must hold integer tooth codes, found non-integer values; fix the file")
    try:
        return np.asarray(to_fdi(values.astype(np.int64), scheme, jaw=jaw), dtype=np.int16)
    except LabelSchemeError as err:
        raise LabelSchemeError(f"{path}: {what}: {err}") from err


def _embedded_labels(
    path: Path, m: MeshFile, scheme: str | None, jaw: Jaw | None
) -> tuple[NDArray[np.int16] | None, NDArray[np.int16] | None, str]:
    """(vertex labels, face labels, source) found inside the file itself."""
    if scheme is not None and scheme in scheme_names(kind="color_table"):
        # face colours first: a label palette is painted per face, vertex colours are often shaded or blended
        which, rgb = ("face", m.face_colors) if m.face_colors is not None else ("vertex", m.vertex_colors)
        if rgb is None:
            return None, None, "none"
        try:
            decoded = np.asarray(load_color_table(scheme).labels_from_colors(rgb), dtype=np.int16)
        except LabelSchemeError as err:
            raise LabelSchemeError(f"{path}: {which} colours: {err}") from err
        return (None, decoded, "face_colors") if which == "face" else (decoded, None, "vertex_colors")
    point = next((n for n in LABEL_ARRAY_NAMES if n in m.point_data), None)
    cell = next((n for n in LABEL_ARRAY_NAMES if n in m.cell_data), None)
    if point is None and cell is None:
        return None, None, "none"
    if scheme is None:
        found = f"cell array {cell!r}" if cell else f"point array {point!r}"
        raise MeshError(
            f"{path}: the file holds tooth labels ({found}) but no scheme was given; pass "
            "scheme='universal' (or 'fdi', 'toothfairy2', 'teeth3ds', 'perjaw17') to say how its "
            "codes are numbered"
        )
    vl = _convert(path, m.point_data[point], scheme, jaw, f"point array {point!r}") if point else None
    fl = _convert(path, m.cell_data[cell], scheme, jaw, f"cell array {cell!r}") if cell else None
    return vl, fl, f"{'cell' if cell else 'point'}_array:{cell or point}"


def read_mesh(
    path: str | Path,
    *,
    labels: str | Path | None = None,
    scheme: str | None = None,
    jaw: Jaw | None = None,
    frame: str | None = None,
    read_labels: bool = True,
) -> Mesh:
    """Read one scan → :class:`Mesh` with FDI labels, jaw and header text (rules in the module docstring).

    path: a ``.stl``/``.ply``/``.obj``/``.vtp`` file (suffix case-insensitive).
    labels: a Teeth3DS JSON sidecar (overrides ``<stem>.json`` and labels inside the file).
    scheme: numbering of labels stored inside the file (``"universal"``, ``"fdi"`` …, or a colour table such as
        ``"fdi_colors"``).
    jaw: overrides every other jaw source. frame: name of the vertices' frame (default ``"ios:<stem>"``).
    read_labels: False reads the geometry only (no sidecar, no labels in the file; jaw from ``jaw`` or the name).
    """
    path = Path(path)
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise MeshError(f"{path}: unsupported mesh suffix {path.suffix!r}; supported: {', '.join(READERS)}")
    if jaw is not None and jaw not in JAWS:
        raise InputError(f"{path}: jaw must be 'upper', 'lower' or None, got {jaw!r}")
    if not path.is_file():
        raise InputNotFoundError(f"{path}: mesh file not found; check the path")
    m = reader(path)
    _check_geometry(path, m)
    n = len(m.vertices)
    name_jaw = jaw_from_name(path.stem)
    sidecar = Path(labels) if labels is not None else path.with_suffix(".json")
    vl = fl = inst = None
    side_jaw: Jaw | None = None
    if not read_labels:
        source = "not read"
    elif labels is not None or sidecar.is_file():
        t = read_teeth3ds_json(sidecar)
        vl, inst = t.labels, t.instances
        if path.suffix.lower() == ".stl" and len(vl) == 3 * len(m.faces) != n:
            vl, inst = corner_to_vertex(path, sidecar, m.faces, n, vl, inst)
        if len(vl) != n:
            raise MeshError(
                f"{path}: label sidecar {sidecar} has {len(t.labels)} labels but the mesh has {n} "
                "vertices; the sidecar must list one label per vertex in the file's vertex order "
                f"(STL: per merged vertex in order of first appearance, or per triangle corner: {3 * len(m.faces)})"
            )
        side_jaw, source = t.jaw, f"sidecar:{sidecar.name}"
    else:
        vl, fl, source = _embedded_labels(path, m, scheme, jaw or name_jaw)
        if fl is not None and vl is None:
            vl = vertex_labels_from_faces(fl, m.faces, n)
    if source == "none" and scheme is not None:
        logger.warning("%s: scheme=%r given but the file holds no labels", path, scheme)
    label_jaw = jaw_from_labels(vl if vl is not None else fl)
    sources = ((jaw, "argument"), (side_jaw, "sidecar"), (label_jaw, "labels"), (name_jaw, "filename"))
    final, how = next(((j, s) for j, s in sources if j is not None), (None, "unknown"))
    meta = {
        "format": path.suffix.lower()[1:],
        "header": "\n".join(m.header),
        "labels_source": source,
        "jaw_source": how,
    }
    if final is not None and label_jaw is not None and label_jaw != final:
        logger.warning("%s: jaw from %s is %r but the labels are %r teeth", path, how, final, label_jaw)
        meta["jaw_conflict"] = f"{how} says {final}, labels say {label_jaw}"
    return Mesh(
        vertices=m.vertices,
        faces=m.faces.astype(np.int32),
        frame=frame or f"ios:{path.stem}",
        labels=vl,
        instances=inst,
        face_labels=fl,
        jaw=final,
        meta=meta,
    )
