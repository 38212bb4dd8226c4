"""Mesh writers: binary STL, binary little-endian PLY and OBJ, with the text headers clinics' exports carry.

All writers are deterministic (the same input gives byte-identical files: no timestamps, no software banner
beyond what the caller passes) and atomic (the file is written under a temporary name in the same folder, then
renamed over the target with :func:`os.replace`, so a reader never sees a half-written file).

Precision, i.e. what :func:`toothmcl_data.io.mesh.read_mesh` gives back:

- STL and PLY store coordinates as float32, as scanners do: reading returns ``vertices.astype(float32)``
  exactly (as float64).
- OBJ writes each coordinate as Python's shortest round-trip ``repr`` of the float64 value: reading returns
  ``vertices`` exactly.
- STL has no shared vertices. The reader merges corners by exact coordinate equality in order of first
  appearance in the face list; write per-vertex sidecars in the order given by
  :func:`renumber_by_first_appearance` so that they match what the reader returns.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from toothmcl_data.errors import MeshError

_STL_RECORD = np.dtype([("normal", "<f4", 3), ("corners", "<f4", (3, 3)), ("attr", "<u2")])


def write_atomic(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: temporary file in the same folder, then ``os.replace``.

    The temporary name is ``.<name>.<pid>-<thread>.tmp``; it is created with the usual permissions (0o666 less
    the umask), so the final file has them too, and it is removed if anything fails.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
    tmp.unlink(missing_ok=True)  # left over by a crashed writer with the same pid and thread id
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _check(
    path: Path, vertices: NDArray[np.floating], faces: NDArray[np.integer]
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    if v.ndim != 2 or v.shape[1] != 3 or len(v) == 0:
        raise MeshError(f"{path}: vertices must be a non-empty (n, 3) array, got shape {v.shape}")
    if f.ndim != 2 or f.shape[1] != 3 or len(f) == 0:
        raise MeshError(f"{path}: faces must be a non-empty (m, 3) triangle array, got shape {f.shape}")
    if not np.all(np.isfinite(v)):
        raise MeshError(f"{path}: vertices contain NaN or inf; drop or repair those vertices before writing")
    if f.min() < 0 or f.max() >= len(v):
        raise MeshError(f"{path}: face indices must lie in [0, {len(v) - 1}], found [{f.min()}, {f.max()}]")
    return v, f


def renumber_by_first_appearance(faces: NDArray[np.integer]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Vertex order an STL reader recovers: vertices sorted by first appearance in the face list.

    faces: (m, 3) integer vertex indices. Returns ``order`` (k,) int64, the old index of each new vertex
    (``new_vertices = vertices[order]``, ``new_labels = labels[order]``; vertices on no face are dropped),
    and ``new_faces`` (m, 3) int64 into the new order, so that ``new_vertices[new_faces] == vertices[faces]``.
    Assumes distinct vertices have distinct float32 coordinates (STL cannot tell equal coordinates apart).
    """
    flat = np.asarray(faces, dtype=np.int64).ravel()
    uniq, first, inverse = np.unique(flat, return_index=True, return_inverse=True)
    rank = np.argsort(first, kind="stable")
    new_of_uniq = np.empty_like(rank)
    new_of_uniq[rank] = np.arange(len(rank))
    return uniq[rank], new_of_uniq[inverse].reshape(-1, 3)


def _face_normals(v: NDArray[np.float64], f: NDArray[np.int64]) -> NDArray[np.float64]:
    n = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    norm = np.linalg.norm(n, axis=1, keepdims=True)
    return np.divide(n, norm, out=np.zeros_like(n), where=norm > 0)


def write_stl(path: str | Path, vertices: NDArray[np.floating], faces: NDArray[np.integer], header: str = "") -> None:
    """Write a binary STL.

    vertices: (n, 3) float mm, in whatever frame the caller's scan uses (stored as float32).
    faces: (m, 3) integer indices into ``vertices``; each face is written with its unit normal.
    header: text of the 80-byte header, ASCII-encoded (non-ASCII → ``?``), cut or NUL-padded to 80 bytes.
    """
    path = Path(path)
    v, f = _check(path, vertices, faces)
    records = np.zeros(len(f), dtype=_STL_RECORD)
    records["normal"] = _face_normals(v, f)
    records["corners"] = v[f]
    head = header.encode("ascii", errors="replace")[:80].ljust(80, b"\0")
    write_atomic(path, head + np.uint32(len(f)).astype("<u4").tobytes() + records.tobytes())


def _colors(path: Path, colors: NDArray[np.integer] | None, n: int, what: str) -> NDArray[np.uint8] | None:
    if colors is None:
        return None
    c = np.asarray(colors)
    if c.shape != (n, 3):
        raise MeshError(f"{path}: {what} must have shape ({n}, 3) uint8 RGB, got {c.shape}")
    return c.astype(np.uint8)


def write_ply(
    path: str | Path,
    vertices: NDArray[np.floating],
    faces: NDArray[np.integer],
    comments: Sequence[str] = (),
    colors: NDArray[np.integer] | None = None,
    *,
    obj_info: Sequence[str] = (),
    face_colors: NDArray[np.integer] | None = None,
) -> None:
    """Write a binary little-endian PLY.

    vertices: (n, 3) float mm (stored as float32 ``x y z``).
    faces: (m, 3) integer indices into ``vertices`` (``list uchar int vertex_indices``).
    comments / obj_info: header lines written as ``comment <text>`` / ``obj_info <text>`` in order
        (newlines inside a line are replaced by spaces).
    colors: optional (n, 3) uint8 RGB per vertex (``red green blue``).
    face_colors: optional (m, 3) uint8 RGB per face.
    """
    path = Path(path)
    v, f = _check(path, vertices, faces)
    vc = _colors(path, colors, len(v), "colors")
    fc = _colors(path, face_colors, len(f), "face_colors")
    lines = ["ply", "format binary_little_endian 1.0"]
    lines += [f"comment {' '.join(c.splitlines())}" for c in comments]
    lines += [f"obj_info {' '.join(c.splitlines())}" for c in obj_info]
    lines += [f"element vertex {len(v)}", "property float x", "property float y", "property float z"]
    vfields: list[tuple[str, str] | tuple[str, str, int]] = [("xyz", "<f4", 3)]
    if vc is not None:
        lines += ["property uchar red", "property uchar green", "property uchar blue"]
        vfields.append(("rgb", "u1", 3))
    lines += [f"element face {len(f)}", "property list uchar int vertex_indices"]
    ffields: list[tuple[str, str] | tuple[str, str, int]] = [("n", "u1"), ("idx", "<i4", 3)]
    if fc is not None:
        lines += ["property uchar red", "property uchar green", "property uchar blue"]
        ffields.append(("rgb", "u1", 3))
    lines.append("end_header")
    vrec = np.zeros(len(v), dtype=np.dtype(vfields))
    vrec["xyz"] = v
    if vc is not None:
        vrec["rgb"] = vc
    frec = np.zeros(len(f), dtype=np.dtype(ffields))
    frec["n"] = 3
    frec["idx"] = f
    if fc is not None:
        frec["rgb"] = fc
    head = ("\n".join(lines) + "\n").encode("ascii", errors="replace")
    write_atomic(path, head + vrec.tobytes() + frec.tobytes())


def write_obj(
    path: str | Path, vertices: NDArray[np.floating], faces: NDArray[np.integer], comments: Sequence[str] = ()
) -> None:
    """Write a Wavefront OBJ: ``# <comment>`` lines, ``v x y z`` (shortest round-trip repr), ``f a b c``.

    vertices: (n, 3) float mm, written exactly (reading returns the same float64 values).
    faces: (m, 3) integer 0-based indices into ``vertices``; written 1-based as OBJ requires.
    """
    path = Path(path)
    v, f = _check(path, vertices, faces)
    lines = [f"# {' '.join(c.splitlines())}" for c in comments]
    lines += [f"v {x!r} {y!r} {z!r}" for x, y, z in v.tolist()]
    lines += [f"f {a} {b} {c}" for a, b, c in (f + 1).tolist()]
    write_atomic(path, ("\n".join(lines) + "\n").encode("utf-8"))
