"""Read intraoral-scan meshes (STL, PLY, OBJ, VTP) and their tooth labels into :class:`Mesh`.

Vertex order is sacred: per-vertex labels in sidecars refer to it, so readers keep the file's vertex and face
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
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import trimesh
from numpy.typing import NDArray

from toothmcl_data.errors import InputError, InputNotFoundError, LabelSchemeError, MeshError
from toothmcl_data.fdi import load_color_table, scheme_names, to_fdi
from toothmcl_data.io.meshlabels import corner_to_vertex, jaw_from_labels, jaw_from_name, vertex_labels_from_faces
from toothmcl_data.io.teeth3ds import read_teeth3ds_json
from toothmcl_data.io.vtp import read_vtp
from toothmcl_data.types import JAWS, Jaw, Mesh

logger = logging.getLogger(__name__)

LABEL_ARRAY_NAMES = ("Label", "label", "Labels", "labels")
"""Names of VTP point/cell arrays read as tooth labels, in order of preference."""
COLOR_ARRAY_NAMES = ("RGB", "Colors", "colors", "RGBA")
"""Names of VTP point/cell arrays read as colours (uint8, 3 or 4 components)."""


@dataclass(frozen=True, eq=False)
class MeshFile:
    """What a format reader found in one file, before labels are resolved.

    vertices: (n, 3) float64 as stored (mm by convention, producer's frame). faces: (m, 3) int64, file order.
    vertex_colors / face_colors: (n, 3) / (m, 3) uint8 RGB when the file has them.
    point_data / cell_data: named per-vertex / per-face arrays (VTP only).
    header: the file's free text, one entry per line.
    """

    vertices: NDArray[np.float64]
    faces: NDArray[np.int64]
    header: list[str] = field(default_factory=list)
    vertex_colors: NDArray[np.uint8] | None = None
    face_colors: NDArray[np.uint8] | None = None
    point_data: dict[str, NDArray[np.generic]] = field(default_factory=dict)
    cell_data: dict[str, NDArray[np.generic]] = field(default_factory=dict)


def merge_stl_corners(corners: NDArray[np.floating]) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """(m, 3, 3) triangle corners → (vertices (k, 3) float64, faces (m, 3) int64), merged by exact equality.

    Vertices come in order of first appearance in the face list (see the module docstring); -0.0 equals 0.0.
    """
    flat = np.ascontiguousarray(np.asarray(corners, dtype=np.float64).reshape(-1, 3) + 0.0)
    if not len(flat):
        return flat, np.zeros((0, 3), dtype=np.int64)
    bits = flat.view(np.uint64)
    order = np.lexsort((bits[:, 2], bits[:, 1], bits[:, 0]))  # stable: equal corners keep file order
    ranked = bits[order]
    starts = np.ones(len(order), dtype=bool)
    starts[1:] = np.any(ranked[1:] != ranked[:-1], axis=1)
    inverse = np.empty(len(order), dtype=np.int64)
    inverse[order] = np.cumsum(starts) - 1  # corner → its distinct vertex (in sorted order)
    first = order[starts]  # first corner of each distinct vertex (stable sort: its earliest)
    rank = np.argsort(first, kind="stable")
    new_of_uniq = np.empty_like(rank)
    new_of_uniq[rank] = np.arange(len(rank))
    return flat[first[rank]], new_of_uniq[inverse].reshape(-1, 3)


def read_stl(path: Path) -> MeshFile:
    """Binary or ASCII STL → :class:`MeshFile` (binary when the size matches 84 + 50 × triangle count)."""
    data = path.read_bytes()
    count = int(np.frombuffer(data[80:84], "<u4")[0]) if len(data) >= 84 else -1
    if count >= 0 and len(data) == 84 + 50 * count:
        rec = np.dtype([("normal", "<f4", 3), ("corners", "<f4", (3, 3)), ("attr", "<u2")])
        corners = np.frombuffer(data, rec, count=count, offset=84)["corners"]
        header = data[:80].rstrip(b"\0 ").decode("ascii", errors="replace")
    elif data.lstrip().startswith(b"solid"):
        text = data.decode("ascii", errors="replace")
        header = text.lstrip().splitlines()[0][5:].strip()
        values = re.findall(r"vertex\s+(\S+)\s+(\S+)\s+(\S+)", text)
        loops = len(re.findall(r"\bendloop\b", text))
        if len(values) != 3 * loops:
            raise MeshError(
                f"{path}: ASCII STL has {len(values)} vertices in {loops} loops, expected 3 per "
                "loop (triangles only); triangulate the mesh before export"
            )
        try:
            corners = np.array(values, dtype=np.float64).reshape(-1, 3, 3)
        except ValueError as err:  # the message would quote the file's text: it is not repeated
            raise MeshError(f"{path}: ASCII STL has a non-numeric vertex coordinate; re-export the scan") from err
    else:
        binary = f"84 + 50 × {count} = {84 + 50 * count}" if count >= 0 else "at least 84"
        raise MeshError(
            f"{path}: not an STL: binary STL needs {binary} bytes, found {len(data)}, and the file does "
            "not start with 'solid' (ASCII STL); the file is truncated or not STL, re-export it"
        )
    vertices, faces = merge_stl_corners(corners)
    return MeshFile(vertices, faces, [header] if header else [])


_PLY_SIZES = {
    **dict.fromkeys(("char", "int8", "uchar", "uint8"), 1),
    **dict.fromkeys(("short", "int16", "ushort", "uint16"), 2),
    **dict.fromkeys(("int", "int32", "uint", "uint32", "float", "float32"), 4),
    **dict.fromkeys(("double", "float64"), 8),
}


def _check_ply_header(path: Path, header: str, body: int) -> None:
    """Refuse element counts the ``body`` bytes after the header cannot hold (before the parser allocates them).

    A binary element needs at least the sizes of its scalar properties plus each list's count field; an ASCII
    element at least two bytes (a digit and a separator) per property."""
    lines = [line.split() for line in header.splitlines()]
    binary = any(w[:2] in (["format", "binary_little_endian"], ["format", "binary_big_endian"]) for w in lines)
    needed, count, per = 0, 0, 0
    for words in [*lines, ["element", "end", "0"]]:
        if words[:1] == ["element"]:
            needed += count * per
            if len(words) != 3 or not words[2].isdigit():
                raise MeshError(f"{path}: PLY header line 'element …' has no valid count; re-export the scan")
            count, per = int(words[2]), 0
        elif words[:1] == ["property"]:
            types = words[2:4] if words[1:2] == ["list"] else words[1:2]
            if not types or any(t not in _PLY_SIZES for t in types):
                raise MeshError(f"{path}: PLY property of unknown type {types}; expected one of {sorted(_PLY_SIZES)}")
            per += _PLY_SIZES[types[0]] if binary else 2
    if needed > body:
        raise MeshError(
            f"{path}: PLY header declares elements of at least {needed} bytes but {body} bytes follow the header; "
            "the file is truncated or its counts are wrong — re-export it"
        )


def read_ply(path: Path) -> MeshFile:
    """Binary or ASCII PLY → :class:`MeshFile`, with vertex or face colours when present."""
    data = path.read_bytes()
    end = data.find(b"end_header")
    if not data.startswith(b"ply") or end < 0:
        raise MeshError(f"{path}: not a PLY (expected 'ply' … 'end_header' header); re-export the scan")
    _check_ply_header(path, data[:end].decode("ascii", errors="replace"), len(data) - end - len("end_header\n"))
    header = []
    for line in data[:end].decode("ascii", errors="replace").splitlines():
        keyword, _, rest = line.strip().partition(" ")
        if keyword in ("comment", "obj_info"):
            header.append(rest.strip())
    try:
        tm = trimesh.load(path, file_type="ply", process=False, force="mesh")
    except (ValueError, KeyError, IndexError, TypeError, AttributeError, EOFError) as err:
        raise MeshError(f"{path}: PLY cannot be parsed ({type(err).__name__}: {err}); re-export it") from err
    if not isinstance(tm, trimesh.Trimesh):
        raise MeshError(f"{path}: PLY holds no triangle mesh (found {type(tm).__name__}); re-export the scan")
    visual, vc, fc = tm.visual, None, None
    if isinstance(visual, trimesh.visual.ColorVisuals) and visual.kind == "vertex":
        vc = np.asarray(visual.vertex_colors)[:, :3].astype(np.uint8)
    elif isinstance(visual, trimesh.visual.ColorVisuals) and visual.kind == "face":
        fc = np.asarray(visual.face_colors)[:, :3].astype(np.uint8)
    faces = np.asarray(tm.faces, dtype=np.int64).reshape(-1, 3)
    if fc is None:  # trimesh keeps only vertex colours when a PLY has both; label palettes live on the faces
        fc = _ply_face_colors(tm.metadata.get("_ply_raw", {}), len(faces))
    vertices = np.asarray(tm.vertices, dtype=np.float64).reshape(-1, 3)
    return MeshFile(vertices, faces, header, vc, fc)


def _ply_face_colors(raw: dict[str, Any], n_faces: int) -> NDArray[np.uint8] | None:
    """(m, 3) uint8 face colours of a parsed PLY (trimesh's ``_ply_raw``) with one triangle per face, else None."""
    data = raw.get("face", {}).get("data") if isinstance(raw, dict) else None
    names = (data.keys() if isinstance(data, dict) else getattr(getattr(data, "dtype", None), "names", None)) or ()
    if data is None or not {"red", "green", "blue"} <= set(names):
        return None
    rgb = np.stack([np.asarray(data[c]).reshape(-1) for c in ("red", "green", "blue")], axis=1)
    return rgb.astype(np.uint8) if len(rgb) == n_faces else None


def _obj_index(token: str, n: int) -> int:
    i = int(token.split("/", 1)[0])
    if abs(i) > 2**62:
        raise ValueError("a face index beyond any mesh size")
    return i - 1 if i > 0 else n + i  # OBJ is 1-based; negative indices count back from the last vertex


def read_obj(path: Path) -> MeshFile:
    """Wavefront OBJ ``v``/``f`` lines → :class:`MeshFile` (polygons fan-split, ``v x y z r g b`` colours)."""
    vertices: list[list[float]] = []
    colors: list[list[float]] = []
    faces: list[tuple[int, int, int]] = []
    header: list[str] = []
    text = path.read_bytes().decode("utf-8", errors="replace")
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        try:
            if line.startswith("v "):
                values = [float(x) for x in line.split()[1:]]
                if len(values) not in (3, 4, 6, 7):
                    raise MeshError(
                        f"{path}:{number}: {len(values)} numbers on a 'v' line, expected x y z [w | r g b [a]]; "
                        "fix or re-export the scan"
                    )
                vertices.append(values[:3])
                if len(values) >= 6:
                    colors.append(values[3:6])
            elif line.startswith("f "):
                idx = [_obj_index(t, len(vertices)) for t in line.split()[1:]]
                faces.extend((idx[0], idx[k], idx[k + 1]) for k in range(1, len(idx) - 1))
            elif line.startswith("#"):
                header.append(line[1:].strip())
            elif line.split(" ", 1)[0] in ("o", "g", "mtllib", "usemtl"):
                header.append(line)
        except MeshError:
            raise
        except ValueError as err:  # the line and the token are not quoted: they may hold header text
            what = "a 'v' line (expected 3, 4, 6 or 7 numbers)" if line.startswith("v ") else "an 'f' line (expected "
            what += "" if line.startswith("v ") else "integer vertex indices)"
            raise MeshError(f"{path}:{number}: cannot parse {what}; fix or re-export the scan") from err
    vc = None
    if colors and len(colors) == len(vertices):
        c = np.asarray(colors, dtype=np.float64)
        vc = np.clip(np.rint(c * 255.0 if c.max() <= 1.0 else c), 0, 255).astype(np.uint8)
    v = np.asarray(vertices, dtype=np.float64).reshape(-1, 3)
    return MeshFile(v, np.asarray(faces, dtype=np.int64).reshape(-1, 3), header, vc)


def _vtp_colors(arrays: dict[str, NDArray[np.generic]]) -> NDArray[np.uint8] | None:
    for name in COLOR_ARRAY_NAMES:
        arr = arrays.get(name)
        if arr is not None and arr.ndim == 2 and arr.shape[1] in (3, 4) and arr.dtype == np.uint8:
            return np.ascontiguousarray(arr[:, :3])
    return None


def read_vtp_mesh(path: Path) -> MeshFile:
    """VTK XML PolyData → :class:`MeshFile` (see :mod:`toothmcl_data.io.vtp`)."""
    d = read_vtp(path)
    header = [f"{k}: {v}" for k, v in d.field_data.items()]
    return MeshFile(
        d.points,
        d.triangles,
        header,
        _vtp_colors(d.point_data),
        _vtp_colors(d.cell_data),
        d.point_data,
        d.cell_data,
    )


READERS: dict[str, Callable[[Path], MeshFile]] = {
    ".stl": read_stl,
    ".ply": read_ply,
    ".obj": read_obj,
    ".vtp": read_vtp_mesh,
}
"""Mesh file suffix (lower case) → format reader."""


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
