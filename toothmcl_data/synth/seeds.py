"""Tiny valid input files of every kind the library reads, as the starting points of the fuzzer.

One synthetic patient: a CBCT of (I, J, K) = (12, 10, 4) int16 voxels at 0.5 mm, written as a DICOM series
(one file per slice, explicit VR little endian, with identity in the header and a code sequence) and as NIfTI
(plain and gzipped, RAS on disk, patient name in ``descrip``); an upper-jaw mesh of 30 vertices and 40
triangles (a 6 × 5 grid, mm) as binary STL, binary and ASCII PLY, OBJ and VTP (ASCII, base64 binary and
zlib-compressed appended), each with its Teeth3DS label sidecar (FDI 11 on the right half, gingiva elsewhere;
one label per triangle corner for STL, per vertex otherwise). Same seed, same bytes.
"""

from __future__ import annotations

import base64
import io
import json
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from toothmcl_data.io.meshwrite import write_obj, write_ply, write_stl
from toothmcl_data.io.volume import write_nifti
from toothmcl_data.synth.dicom import write_series
from toothmcl_data.synth.identity import Identity, draw_identity, mesh_comments, phi_strings, stl_header
from toothmcl_data.types import Volume

CBCT_SHAPE = (12, 10, 4)
GRID = (6, 5)
MESH_FORMATS = ("stl", "ply", "ply_ascii", "obj", "vtp_ascii", "vtp_binary", "vtp_appended")


@dataclass(frozen=True)
class Seeds:
    """The seed files. ``dicom``: the slice files' bytes in slice order; ``nifti`` / ``nifti_gz``: one file each;
    ``meshes``: format name (:data:`MESH_FORMATS`) → (file suffix, mesh bytes, sidecar bytes); ``phi``: the
    identity's strings a leak scan looks for."""

    dicom: tuple[bytes, ...]
    nifti: bytes
    nifti_gz: bytes
    meshes: dict[str, tuple[str, bytes, bytes]]
    phi: tuple[str, ...]
    patient_id: str


def _grid_mesh() -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.int16]]:
    """(vertices (30, 3) float64 mm, faces (40, 3) int64, per-vertex FDI labels (30,) int16)."""
    nx, ny = GRID
    xs, ys = np.meshgrid(np.arange(nx, dtype=np.float64), np.arange(ny, dtype=np.float64), indexing="ij")
    z = 0.3 * np.sin(xs) * np.cos(ys)
    vertices = np.stack([xs.ravel() * 2.0, ys.ravel() * 2.0, z.ravel()], axis=1)
    faces = []
    for i in range(nx - 1):
        for j in range(ny - 1):
            a, b, c, d = i * ny + j, (i + 1) * ny + j, (i + 1) * ny + j + 1, i * ny + j + 1
            faces += [(a, b, c), (a, c, d)]
    labels = np.where(vertices[:, 0] >= 6.0, 11, 0).astype(np.int16)
    return vertices, np.asarray(faces, dtype=np.int64), labels


def _sidecar(identity: Identity, labels: NDArray[np.int16]) -> bytes:
    instances = (labels > 0).astype(int)
    doc = {
        "id_patient": identity.patient_id,
        "jaw": "upper",
        "labels": labels.tolist(),
        "instances": instances.tolist(),
    }
    return json.dumps(doc).encode("utf-8")


def _vtp(
    vertices: NDArray[np.float64], faces: NDArray[np.int64], labels: NDArray[np.int16], mode: str, note: str
) -> bytes:
    """VTK XML PolyData with a ``Label`` point array and a string field ``note``; ``mode``: ascii, binary
    (inline base64, uncompressed) or appended (raw, zlib-compressed blocks)."""
    arrays = [
        ("Points", "Float64", 3, vertices.astype("<f8")),
        ("connectivity", "Int64", 1, faces.ravel().astype("<i8")),
        ("offsets", "Int64", 1, (3 * np.arange(1, len(faces) + 1)).astype("<i8")),
        ("Label", "Int32", 1, labels.astype("<i4")),
    ]
    appended = b""
    xml: dict[str, str] = {}
    for name, vtk, ncomp, arr in arrays:
        attrs = f'type="{vtk}" Name="{name}" NumberOfComponents="{ncomp}"'
        if mode == "ascii":
            body = " ".join(repr(float(x)) if vtk.startswith("Float") else str(int(x)) for x in arr.ravel())
            xml[name] = f'<DataArray {attrs} format="ascii">{body}</DataArray>'
        elif mode == "binary":
            raw = arr.tobytes()
            text = base64.b64encode(np.uint32(len(raw)).tobytes() + raw).decode("ascii")
            xml[name] = f'<DataArray {attrs} format="binary">{text}</DataArray>'
        else:
            raw = zlib.compress(arr.tobytes())
            block = np.asarray([1, arr.nbytes, arr.nbytes, len(raw)], dtype="<u4").tobytes() + raw
            xml[name] = f'<DataArray {attrs} format="appended" offset="{len(appended)}"/>'
            appended += block
    note_bytes = np.frombuffer(note.encode("utf-8") + b"\0", dtype=np.uint8)
    values = " ".join(map(str, note_bytes))
    field = f'<DataArray type="String" Name="note" NumberOfTuples="1" format="ascii">{values}</DataArray>'
    compressor = ' compressor="vtkZLibDataCompressor"' if mode == "appended" else ""
    doc = (
        f'<?xml version="1.0"?>\n<VTKFile type="PolyData" version="1.0" byte_order="LittleEndian" '
        f'header_type="UInt32"{compressor}>\n<PolyData>\n<FieldData>{field}</FieldData>\n'
        f'<Piece NumberOfPoints="{len(vertices)}" NumberOfPolys="{len(faces)}">\n'
        f'<PointData Scalars="Label">{xml["Label"]}</PointData>\n<Points>{xml["Points"]}</Points>\n'
        f"<Polys>{xml['connectivity']}{xml['offsets']}</Polys>\n</Piece>\n</PolyData>\n"
    ).encode()
    if mode == "appended":
        doc += b'<AppendedData encoding="raw">_' + appended + b"</AppendedData>\n"
    return doc + b"</VTKFile>\n"


def _ascii_ply(vertices: NDArray[np.float64], faces: NDArray[np.int64], comments: tuple[str, ...]) -> bytes:
    lines = ["ply", "format ascii 1.0", *(f"comment {c}" for c in comments)]
    lines += [f"element vertex {len(vertices)}", "property float x", "property float y", "property float z"]
    lines += [f"element face {len(faces)}", "property list uchar int vertex_indices", "end_header"]
    lines += [" ".join(repr(float(c)) for c in v) for v in vertices]
    lines += ["3 " + " ".join(str(int(i)) for i in f) for f in faces]
    return ("\n".join(lines) + "\n").encode("ascii")


def make_seeds(tmp: Path, seed: int = 0) -> Seeds:
    """Write and read back the seed files (``tmp`` is a scratch folder); deterministic for a given ``seed``."""
    rng = np.random.default_rng(seed)
    identity = draw_identity(rng, "P0001")
    array = rng.integers(-1000, 3000, size=CBCT_SHAPE).astype(np.int16)
    volume = Volume(array, np.diag([0.5, 0.5, 0.5, 1.0]))
    written = write_series(tmp / "dicom", volume, identity, rng)
    dicom = tuple(Path(p).read_bytes() for p in written.paths)
    descrip = f"{identity.family} {identity.patient_id}"[:80]
    write_nifti(tmp / "cbct.nii", volume, descrip=descrip.encode("ascii", "replace").decode("ascii"))
    write_nifti(tmp / "cbct.nii.gz", volume, descrip=descrip.encode("ascii", "replace").decode("ascii"))
    vertices, faces, labels = _grid_mesh()
    comments = mesh_comments(identity, "upper")
    side = _sidecar(identity, labels)
    corner_side = _sidecar(identity, labels[faces.ravel()])
    write_stl(tmp / "upper.stl", vertices, faces, header=stl_header(identity, "upper"))
    write_ply(tmp / "upper.ply", vertices, faces, comments=comments)
    write_obj(tmp / "upper.obj", vertices, faces, comments=comments)
    note = comments[0]
    meshes = {
        "stl": (".stl", (tmp / "upper.stl").read_bytes(), corner_side),
        "ply": (".ply", (tmp / "upper.ply").read_bytes(), side),
        "ply_ascii": (".ply", _ascii_ply(vertices, faces, comments), side),
        "obj": (".obj", (tmp / "upper.obj").read_bytes(), side),
        "vtp_ascii": (".vtp", _vtp(vertices, faces, labels, "ascii", note), side),
        "vtp_binary": (".vtp", _vtp(vertices, faces, labels, "binary", note), side),
        "vtp_appended": (".vtp", _vtp(vertices, faces, labels, "appended", note), side),
    }
    buffer = io.BytesIO((tmp / "cbct.nii").read_bytes())
    return Seeds(
        dicom=dicom,
        nifti=buffer.getvalue(),
        nifti_gz=(tmp / "cbct.nii.gz").read_bytes(),
        meshes=meshes,
        phi=tuple(phi_strings(identity)),
        patient_id=identity.patient_id,
    )
