"""VTK XML PolyData reader: tiny hand-written files in every encoding, and the real Mesh_Labeler scan."""

from __future__ import annotations

import base64
import re
import zlib
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from toothmcl_data.errors import MeshError
from toothmcl_data.io.markups import read_fcsv
from toothmcl_data.io.mesh import read_mesh
from toothmcl_data.io.vtp import read_vtp
from toothmcl_data.types import LPS_FROM_RAS, Mesh, apply_transform

Scan = tuple[Mesh, list[str], NDArray[np.float64]]
FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "ios"
SCAN = FIXTURES / "Mesh_Labeler_Example_01.vtp"
UR1 = FIXTURES / "Mesh_Labeler_Example_01_UR1.fcsv"

# Six points; cells: one vertex cell, a triangle, a quad (fan → 2 triangles), a triangle.
POINTS = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [2, 0, 0], [2, 1, 0], [1, 2, 0.5]], dtype=np.float32)
POLY_CONN = np.array([0, 1, 2, 1, 3, 4, 2, 2, 4, 5], dtype=np.int64)
POLY_OFFSETS = np.array([3, 7, 10], dtype=np.int64)
CELL_LABELS = np.array([3, 8, 9, 0], dtype=np.float32)  # first value belongs to the vertex cell
EXPECTED_TRIS = np.array([[0, 1, 2], [1, 3, 4], [1, 4, 2], [2, 4, 5]])
EXPECTED_LABELS = np.array([8, 9, 9, 0], dtype=np.float32)
VTK_TYPES = {"f4": "Float32", "f8": "Float64", "i8": "Int64", "i4": "Int32", "u1": "UInt8"}


def _block(arr: NDArray[np.generic], header: str, order: str, compress: bool) -> tuple[bytes, bytes]:
    """(header bytes, data bytes) of one VTK binary block; compressed in 16-byte blocks to get several."""
    data = arr.astype(arr.dtype.newbyteorder(">" if order == ">" else "<")).tobytes()
    hdt = np.dtype(order + ("u4" if header == "UInt32" else "u8"))
    if not compress:
        return np.array([len(data)], hdt).tobytes(), data
    chunks = [data[i : i + 16] for i in range(0, len(data), 16)]
    packed = [zlib.compress(c) for c in chunks]
    last = len(chunks[-1]) if len(chunks[-1]) != 16 else 0
    return np.array([len(chunks), 16, last, *map(len, packed)], hdt).tobytes(), b"".join(packed)


def make_vtp(
    fmt: str, *, header: str = "UInt32", order: str = "<", compress: bool = False, single_stream: bool = False
) -> bytes:
    """A VTP document holding the small mesh above; fmt is ascii, binary, appended-raw or appended-base64."""
    arrays: list[tuple[str, str, NDArray[np.generic], int]] = [
        ("CellData", "Label", CELL_LABELS, 1),
        ("Points", "Points", POINTS, 3),
        ("Verts", "connectivity", np.array([5], np.int64), 1),
        ("Verts", "offsets", np.array([1], np.int64), 1),
        ("Polys", "connectivity", POLY_CONN, 1),
        ("Polys", "offsets", POLY_OFFSETS, 1),
    ]
    sections: dict[str, list[str]] = {}
    appended = b""
    for section, name, arr, ncomp in arrays:
        attrs = f'type="{VTK_TYPES[arr.dtype.str[1:]]}" Name="{name}" NumberOfComponents="{ncomp}"'
        if fmt == "ascii":
            body, tag = " ".join(str(x) for x in arr.ravel().tolist()), f'{attrs} format="ascii"'
        else:
            head, data = _block(arr, header, order, compress)
            enc = (  # VTK itself base64-encodes the header apart from the data
                base64.b64encode(head + data) if single_stream else base64.b64encode(head) + base64.b64encode(data)
            )
            if fmt == "binary":
                body, tag = enc.decode(), f'{attrs} format="binary"'
            else:
                body, tag = "", f'{attrs} format="appended" offset="{len(appended)}"'
                appended += (head + data) if fmt == "appended-raw" else enc
        sections.setdefault(section, []).append(f"<DataArray {tag}>{body}</DataArray>")
    byte_order = "BigEndian" if order == ">" else "LittleEndian"
    comp = ' compressor="vtkZLibDataCompressor"' if compress else ""
    doc = (
        f'<?xml version="1.0"?>\n<VTKFile type="PolyData" version="1.0" byte_order="{byte_order}" '
        f'header_type="{header}"{comp}>\n<PolyData>\n<FieldData><DataArray type="String" Name="note" '
        f'NumberOfTuples="1" format="ascii">104 105 0</DataArray></FieldData>\n'
        '<Piece NumberOfPoints="6" NumberOfVerts="1" NumberOfLines="0" NumberOfStrips="0" '
        'NumberOfPolys="3">\n'
        + "".join(f"<{s}>{''.join(v)}</{s}>\n" for s, v in sections.items())
        + "</Piece>\n</PolyData>\n"
    )
    out = doc.encode()
    if fmt.startswith("appended"):
        encoding = "raw" if fmt == "appended-raw" else "base64"
        out += f'<AppendedData encoding="{encoding}">\n   _'.encode() + appended + b"\n</AppendedData>\n"
    return out + b"</VTKFile>\n"


CASES = {
    "ascii": {"fmt": "ascii"},
    "binary-uint32": {"fmt": "binary"},
    "binary-one-base64-stream": {"fmt": "binary", "single_stream": True},
    "binary-uint64-bigendian": {"fmt": "binary", "header": "UInt64", "order": ">"},
    "binary-zlib": {"fmt": "binary", "compress": True},
    "appended-raw": {"fmt": "appended-raw"},
    "appended-raw-zlib-uint64": {"fmt": "appended-raw", "compress": True, "header": "UInt64"},
    "appended-raw-bigendian": {"fmt": "appended-raw", "order": ">"},
    "appended-base64-zlib": {"fmt": "appended-base64", "compress": True},
    "appended-base64-uint64": {"fmt": "appended-base64", "header": "UInt64"},
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_tiny_vtp_every_encoding(tmp_path: Path, case: dict[str, object]) -> None:
    path = tmp_path / "tiny.vtp"
    path.write_bytes(make_vtp(**case))  # type: ignore[arg-type]
    d = read_vtp(path)
    np.testing.assert_array_equal(d.points, POINTS.astype(np.float64))
    np.testing.assert_array_equal(d.triangles, EXPECTED_TRIS)
    np.testing.assert_array_equal(d.cell_data["Label"], EXPECTED_LABELS)  # vertex cell dropped, quad repeated
    assert d.field_data == {"note": "hi"}


def test_tiny_vtp_through_read_mesh(tmp_path: Path) -> None:
    path = tmp_path / "case7.vtp"
    path.write_bytes(make_vtp("appended-raw", compress=True))
    mesh = read_mesh(path, scheme="universal")
    np.testing.assert_array_equal(mesh.face_labels, [11, 21, 21, 0])
    # Vertex 1: faces 11, 21, 21 → 21. Vertex 2: 11, 21, 0 tie → tooth, smallest FDI → 11. Vertex 5: 0.
    np.testing.assert_array_equal(mesh.labels, [11, 21, 11, 21, 21, 0])
    assert (mesh.jaw, mesh.meta["jaw_source"], mesh.meta["header"]) == ("upper", "labels", "note: hi")
    assert mesh.meta["labels_source"] == "cell_array:Label"


VTP_ERRORS = {
    "not-polydata": (b'<VTKFile type="UnstructuredGrid"></VTKFile>', 'expected <VTKFile type="PolyData">'),
    "bad-xml": (b"<VTKFile type=", "not well-formed XML"),
    "strips": (
        make_vtp("ascii").replace(b'NumberOfStrips="0"', b'NumberOfStrips="1"'),
        "triangle strips are not supported; convert them with vtkTriangleFilter",
    ),
    "lz4": (
        make_vtp("binary").replace(b'header_type="UInt32"', b'header_type="UInt32" compressor="vtkLZ4DataCompressor"'),
        "compressor 'vtkLZ4DataCompressor' is not supported",
    ),
    "offsets": (make_vtp("ascii").replace(b"3 7 10", b"3 7 9"), "<Polys> offsets do not partition"),
    "truncated-appended": (make_vtp("appended-raw")[:-40], "<AppendedData> is truncated"),
    "bad-type": (
        make_vtp("ascii").replace(b'"Float32" Name="Label"', b'"Float16" Name="Label"'),
        "DataArray 'Label' has type 'Float16'",
    ),
}


@pytest.mark.parametrize(("content", "message"), VTP_ERRORS.values(), ids=VTP_ERRORS.keys())
def test_vtp_errors_name_file_and_problem(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.vtp"
    path.write_bytes(content)
    with pytest.raises(MeshError, match=re.escape(message)) as info:
        read_vtp(path)
    assert str(info.value).startswith(str(path))


# --- the real scan -----------------------------------------------------------------------------------------


def _point_triangle_distance(p: NDArray[np.float64], tri: NDArray[np.float64]) -> NDArray[np.float64]:
    """Exact distance (m,) from point p (3,) to each triangle tri (m, 3, 3)."""
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    n = np.cross(b - a, c - a)
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    foot = p - np.einsum("ij,ij->i", p - a, n)[:, None] * n
    inside = np.ones(len(tri), dtype=bool)
    for u, v in ((a, b), (b, c), (c, a)):
        inside &= np.einsum("ij,ij->i", np.cross(v - u, foot - u), n) >= 0
    best = np.where(inside, np.linalg.norm(p - foot, axis=1), np.inf)
    for u, v in ((a, b), (b, c), (c, a)):
        t = np.clip(np.einsum("ij,ij->i", p - u, v - u) / np.einsum("ij,ij->i", v - u, v - u), 0, 1)
        best = np.minimum(best, np.linalg.norm(p - (u + t[:, None] * (v - u)), axis=1))
    return best


@pytest.fixture(scope="module")
def scan_and_landmarks() -> Scan:
    if not SCAN.is_file() or not UR1.is_file():
        pytest.skip(f"real fixtures not found under {FIXTURES} (../shared is absent in this checkout)")
    names, lps = read_fcsv(UR1)
    return read_mesh(SCAN, scheme="universal"), names, lps


def test_fixture_loads_in_fdi(scan_and_landmarks: Scan) -> None:
    mesh = scan_and_landmarks[0]
    assert mesh.face_labels is not None
    assert mesh.labels is not None
    assert mesh.vertices.shape == (50_643, 3)
    assert mesh.faces.shape == (99_999, 3)
    expected = {0, *range(11, 18), *range(21, 28)}  # FDI 17–11 and 21–27
    assert set(np.unique(mesh.face_labels).tolist()) == expected
    assert set(np.unique(mesh.labels).tolist()) == expected
    assert (mesh.jaw, mesh.meta["jaw_source"]) == ("upper", "labels")
    assert mesh.frame == "ios:Mesh_Labeler_Example_01"


def test_fixture_landmarks_lie_on_ur1(
    scan_and_landmarks: Scan,
) -> None:
    """Slicer 4.10 took the model's raw coordinates as RAS: the landmarks' RAS values match them directly."""
    mesh, names, lps = scan_and_landmarks
    assert names == ["DCP", "MCP", "PGP", "LGP"]
    raw = apply_transform(LPS_FROM_RAS, lps)  # back to the file's RAS values = mesh coordinates
    tris = mesh.vertices[mesh.faces]
    face_labels = mesh.face_labels
    assert face_labels is not None
    for name, p in zip(names, raw, strict=True):
        d = _point_triangle_distance(p, tris)
        nearest = int(np.argmin(d))
        assert d[nearest] < 0.5, f"{name} is {d[nearest]:.2f} mm from the surface"
        assert face_labels[nearest] in (11, 0), f"{name} nearest face is FDI {face_labels[nearest]}"
        assert face_labels[nearest] != 21
        near = face_labels[d < 1.0]
        assert np.count_nonzero(near == 11) > np.count_nonzero(near == 21), f"{name} lies nearer UL1 than UR1"
    # The other pairing (raw coordinates read as LPS) puts the landmarks far off the scan.
    for p in lps:
        assert _point_triangle_distance(p, tris).min() > 10.0
