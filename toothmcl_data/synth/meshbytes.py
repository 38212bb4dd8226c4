"""Byte-level edits of mesh files written by ``synth.drop``, for the bad inputs of :mod:`synth.faults`.

The writers in :mod:`toothmcl_data.io.meshwrite` refuse empty or NaN meshes, so these faults edit the bytes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from toothmcl_data.errors import InputError


def _ply_header(data: bytes, path: Path) -> tuple[list[str], int]:
    end = data.find(b"end_header\n")
    if end < 0 or not data.startswith(b"ply\n") or b"binary_little_endian" not in data[:end]:
        raise InputError(f"{path}: expected a binary little-endian PLY as written by synth.drop")
    return data[:end].decode("ascii").splitlines(), end + len(b"end_header\n")


def emptied_mesh_bytes(path: Path) -> bytes:
    """The bytes of mesh ``path`` (STL/PLY/OBJ as written by ``synth.drop``) with no vertices and no faces."""
    data = path.read_bytes()
    suffix = path.suffix.lower()
    if suffix == ".stl":
        return data[:80] + np.uint32(0).astype("<u4").tobytes()
    if suffix == ".ply":
        lines, _ = _ply_header(data, path)
        lines = [f"element {ln.split()[1]} 0" if ln.startswith("element ") else ln for ln in lines]
        return ("\n".join([*lines, "end_header"]) + "\n").encode("ascii")
    if suffix == ".obj":
        kept = [ln for ln in data.decode("utf-8").splitlines() if ln.startswith("#")]
        return ("\n".join(kept) + "\n").encode("utf-8")
    raise InputError(f"{path}: cannot empty a mesh of type {suffix!r}; expected .stl, .ply or .obj")


def nan_mesh_bytes(path: Path, rng: np.random.Generator, count: int) -> bytes:
    """The bytes of mesh ``path`` with ``count`` vertices (drawn from ``rng``) set to NaN."""
    data = path.read_bytes()
    suffix = path.suffix.lower()
    if suffix == ".stl":
        record = np.dtype([("normal", "<f4", 3), ("corners", "<f4", (3, 3)), ("attr", "<u2")])
        tris = np.frombuffer(data, dtype=record, offset=84).copy()
        corners = tris["corners"].reshape(-1, 3)
        for pick in rng.choice(len(corners), size=min(count, len(corners)), replace=False):
            corners[np.all(corners == corners[pick], axis=1)] = np.nan
        tris["corners"] = corners.reshape(-1, 3, 3)
        return data[:84] + tris.tobytes()
    if suffix == ".ply":
        lines, start = _ply_header(data, path)
        n_vertices = next(int(ln.split()[2]) for ln in lines if ln.startswith("element vertex"))
        body = np.frombuffer(data, dtype=np.uint8, offset=start)
        # synth.drop writes vertices as float32 x y z only: 12 bytes per vertex.
        xyz = body[: n_vertices * 12].view("<f4").reshape(-1, 3).copy()
        xyz[rng.choice(n_vertices, size=min(count, n_vertices), replace=False)] = np.nan
        return data[:start] + xyz.tobytes() + body[n_vertices * 12 :].tobytes()
    if suffix == ".obj":
        lines = data.decode("utf-8").splitlines()
        rows = [i for i, ln in enumerate(lines) if ln.startswith("v ")]
        for i in rng.choice(len(rows), size=min(count, len(rows)), replace=False):
            lines[rows[int(i)]] = "v nan nan nan"
        return ("\n".join(lines) + "\n").encode("utf-8")
    raise InputError(f"{path}: cannot edit a mesh of type {suffix!r}; expected .stl, .ply or .obj")
