"""Mesh readers, label sources and jaw decision (io.mesh), Teeth3DS sidecars and Slicer markups."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import numpy as np
import pytest

from toothmcl_data.errors import InputError, InputNotFoundError, LabelSchemeError, MeshError
from toothmcl_data.fdi import load_color_table
from toothmcl_data.io.markups import read_fcsv
from toothmcl_data.io.mesh import read_mesh
from toothmcl_data.io.meshformats import READERS, merge_stl_corners
from toothmcl_data.io.meshlabels import jaw_from_labels, jaw_from_name, vertex_labels_from_faces
from toothmcl_data.io.meshwrite import write_obj, write_ply, write_stl
from toothmcl_data.io.teeth3ds import read_teeth3ds_json, write_teeth3ds_json

SQUARE = np.array([[0.0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]])
TWO_TRIS = np.array([[0, 1, 2], [0, 2, 3]])


def _vtp(point_labels: str = "", cell_labels: str = "") -> str:
    """An ASCII VTP of the unit square (two triangles) with optional label arrays."""
    pdata = f'<DataArray type="Int32" Name="Label" format="ascii">{point_labels}</DataArray>' if point_labels else ""
    cdata = f'<DataArray type="Float32" Name="labels" format="ascii">{cell_labels}</DataArray>' if cell_labels else ""
    return (
        '<VTKFile type="PolyData" version="0.1" byte_order="LittleEndian"><PolyData>'
        '<Piece NumberOfPoints="4" NumberOfPolys="2">'
        f"<PointData>{pdata}</PointData><CellData>{cdata}</CellData>"
        '<Points><DataArray type="Float64" NumberOfComponents="3" format="ascii">'
        "0 0 0 1 0 0 1 1 0 0 1 0</DataArray></Points>"
        '<Polys><DataArray type="Int32" Name="connectivity" format="ascii">0 1 2 0 2 3</DataArray>'
        '<DataArray type="Int32" Name="offsets" format="ascii">3 6</DataArray></Polys>'
        "</Piece></PolyData></VTKFile>"
    )


# --- format readers -------------------------------------------------------------------------------


def test_ascii_stl_merges_corners_in_order_of_first_appearance(tmp_path: Path) -> None:
    facets = [((1, 1, 0), (0, 0, 0), (1, 0, 0)), ((1, 1, 0), (0, 1, 0), (0, 0, 0))]
    body = "".join(
        "facet normal 0 0 1\n outer loop\n"
        + "".join(f"  vertex {x} {y} {z}\n" for x, y, z in tri)
        + " endloop\nendfacet\n"
        for tri in facets
    )
    path = tmp_path / "scan.STL"  # suffix is matched case-insensitively
    path.write_text(f"solid Patient Jane Doe\n{body}endsolid\n")
    mesh = read_mesh(path)
    np.testing.assert_array_equal(mesh.vertices, [[1, 1, 0], [0, 0, 0], [1, 0, 0], [0, 1, 0]])
    np.testing.assert_array_equal(mesh.faces, [[0, 1, 2], [0, 3, 1]])
    assert mesh.meta["header"] == "Patient Jane Doe"
    assert (mesh.meta["format"], mesh.frame, mesh.labels, mesh.jaw) == ("stl", "ios:scan", None, None)


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ([11, 11, 0, 0], [11, 11, 0, 0]),  # one label per merged vertex (first-appearance order)
        ([11, 11, 0, 11, 0, 0], [11, 11, 0, 0]),  # one per triangle corner (what trimesh process=False sees)
    ],
)
def test_stl_sidecar_per_vertex_or_per_corner(tmp_path: Path, labels: list[int], expected: list[int]) -> None:
    # Faces [0, 1, 2] and [0, 2, 3] of SQUARE; STL stores 6 corners, merged back to 4 vertices in order.
    path = tmp_path / "lower.stl"
    write_stl(path, SQUARE, TWO_TRIS)
    write_teeth3ds_json(
        path.with_suffix(".json"), id_patient="x", jaw="upper", labels=labels, instances=[0] * len(labels)
    )
    mesh = read_mesh(path)
    assert mesh.labels is not None
    np.testing.assert_array_equal(mesh.labels, expected)


def test_stl_per_corner_sidecar_must_agree_at_shared_vertices(tmp_path: Path) -> None:
    path = tmp_path / "upper.stl"
    write_stl(path, SQUARE, TWO_TRIS)
    corners = [11, 11, 0, 21, 0, 0]  # vertex 0 is 11 in face 0 and 21 in face 1
    write_teeth3ds_json(path.with_suffix(".json"), id_patient="x", jaw="upper", labels=corners, instances=[0] * 6)
    with pytest.raises(MeshError, match=r"different labels to the corners of one vertex \(vertex 0, face 0\)"):
        read_mesh(path)


def test_merge_stl_corners_exact_equality_and_signed_zero() -> None:
    corners = np.array([[[0.0, 0, 0], [1, 0, 0], [0, 1, 0]], [[-0.0, 0, 0], [0, 1, 0], [1e-12, 0, 0]]])
    vertices, faces = merge_stl_corners(corners)
    np.testing.assert_array_equal(vertices, [[0, 0, 0], [1, 0, 0], [0, 1, 0], [1e-12, 0, 0]])
    np.testing.assert_array_equal(faces, [[0, 1, 2], [0, 2, 3]])


def test_binary_stl_starting_with_solid_is_read_as_binary(tmp_path: Path) -> None:
    write_stl(tmp_path / "a.stl", SQUARE, TWO_TRIS, header="solid but binary")
    mesh = read_mesh(tmp_path / "a.stl")
    assert mesh.vertices.shape == (4, 3)
    assert mesh.meta["header"] == "solid but binary"


def test_ascii_ply_keeps_order_and_reads_comments(tmp_path: Path) -> None:
    path = tmp_path / "p.ply"
    path.write_text(
        "ply\nformat ascii 1.0\ncomment Patient: Doe\nobj_info Scanner Q\nelement vertex 4\n"
        "property float x\nproperty float y\nproperty float z\nelement face 2\n"
        "property list uchar int vertex_indices\nend_header\n"
        "3 0 0\n0 0 0\n2 0 0\n1 1 0\n3 3 2 1\n3 0 3 1\n"
    )
    mesh = read_mesh(path)
    np.testing.assert_array_equal(mesh.vertices[:, 0], [3, 0, 2, 1])
    np.testing.assert_array_equal(mesh.faces, [[3, 2, 1], [0, 3, 1]])
    assert mesh.meta["header"] == "Patient: Doe\nScanner Q"


def test_obj_polygons_negative_indices_and_header(tmp_path: Path) -> None:
    path = tmp_path / "o.obj"
    path.write_text(
        "# made by ScanApp\nmtllib jane_doe.mtl\no JaneDoe\nv 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\n"
        "vt 0 0\nvn 0 0 1\nf 1/1/1 2/1/1 3/1/1 4/1/1\nf -4 -2 -1\n"
    )
    mesh = read_mesh(path)
    np.testing.assert_array_equal(mesh.faces, [[0, 1, 2], [0, 2, 3], [0, 2, 3]])
    assert mesh.meta["header"] == "made by ScanApp\nmtllib jane_doe.mtl\no JaneDoe"


def test_obj_vertex_colours_as_fdi_labels(tmp_path: Path) -> None:
    rgb = load_color_table("fdi_colors").colors_for(np.array([0, 11, 11, 21])) / 255.0
    rows = zip(SQUARE.tolist(), rgb.tolist(), strict=True)
    lines = [f"v {x} {y} {z} {r!r} {g!r} {b!r}" for (x, y, z), (r, g, b) in rows]
    (tmp_path / "c.obj").write_text("\n".join([*lines, "f 1 2 3", "f 1 3 4"]) + "\n")
    np.testing.assert_array_equal(read_mesh(tmp_path / "c.obj", scheme="fdi_colors").labels, [0, 11, 11, 21])
    assert read_mesh(tmp_path / "c.obj").labels is None


def test_readers_registry() -> None:
    assert list(READERS) == [".stl", ".ply", ".obj", ".vtp"]


# --- labels ---------------------------------------------------------------------------------------


def test_sidecar_beside_mesh_and_explicit_override(tmp_path: Path) -> None:
    write_obj(tmp_path / "scan.obj", SQUARE, TWO_TRIS)
    write_teeth3ds_json(
        tmp_path / "scan.json",
        id_patient="p",
        jaw="lower",
        labels=np.array([0, 31, 31, 0]),
        instances=np.array([0, 1, 1, 0]),
    )
    mesh = read_mesh(tmp_path / "scan.obj")
    np.testing.assert_array_equal(mesh.labels, [0, 31, 31, 0])
    np.testing.assert_array_equal(mesh.instances, [0, 1, 1, 0])
    assert (mesh.jaw, mesh.meta["jaw_source"], mesh.meta["labels_source"]) == (
        "lower",
        "sidecar",
        "sidecar:scan.json",
    )
    write_teeth3ds_json(
        tmp_path / "other.json",
        id_patient="p",
        jaw="upper",
        labels=np.array([11, 0, 0, 0]),
        instances=np.array([1, 0, 0, 0]),
    )
    mesh = read_mesh(tmp_path / "scan.obj", labels=tmp_path / "other.json")
    np.testing.assert_array_equal(mesh.labels, [11, 0, 0, 0])
    assert mesh.meta["labels_source"] == "sidecar:other.json"


def test_sidecar_wins_over_labels_inside_vtp(tmp_path: Path) -> None:
    (tmp_path / "s.vtp").write_text(_vtp(cell_labels="8 9"))
    write_teeth3ds_json(
        tmp_path / "s.json",
        id_patient="p",
        jaw="upper",
        labels=np.array([0, 0, 0, 0]),
        instances=np.array([0, 0, 0, 0]),
    )
    mesh = read_mesh(tmp_path / "s.vtp", scheme="universal")
    assert mesh.face_labels is None
    np.testing.assert_array_equal(mesh.labels, [0, 0, 0, 0])


def test_geometry_only_skips_sidecar_and_labels_in_the_file(tmp_path: Path) -> None:
    (tmp_path / "s_upper.vtp").write_text(_vtp(cell_labels="8 9"))  # labels without a scheme: read_mesh refuses
    (tmp_path / "s_upper.json").write_text('{"id_patient": "p", "jaw": "lower", "labels": [0], "instances": [0]}')
    with pytest.raises(MeshError, match="label sidecar"):
        read_mesh(tmp_path / "s_upper.vtp")
    mesh = read_mesh(tmp_path / "s_upper.vtp", read_labels=False)
    assert (mesh.labels, mesh.face_labels, mesh.instances) == (None, None, None)
    assert (mesh.jaw, mesh.meta["jaw_source"], mesh.meta["labels_source"]) == ("upper", "filename", "not read")
    np.testing.assert_array_equal(mesh.vertices, SQUARE)


def test_vtp_point_labels_and_per_jaw_scheme_uses_filename_jaw(tmp_path: Path) -> None:
    (tmp_path / "case3_LowerJaw.vtp").write_text(_vtp(point_labels="0 1 9 9", cell_labels="1 9"))
    mesh = read_mesh(tmp_path / "case3_LowerJaw.vtp", scheme="perjaw17")
    np.testing.assert_array_equal(mesh.labels, [0, 31, 41, 41])  # from the point array, not the vote
    np.testing.assert_array_equal(mesh.face_labels, [31, 41])
    assert (mesh.jaw, mesh.meta["jaw_source"]) == ("lower", "labels")


def test_fdi_colors_from_ply_vertex_and_face_colours(tmp_path: Path) -> None:
    table = load_color_table("fdi_colors")
    labels = np.array([0, 11, 11, 21])
    write_ply(tmp_path / "v.ply", SQUARE, TWO_TRIS, colors=table.colors_for(labels))
    mesh = read_mesh(tmp_path / "v.ply", scheme="fdi_colors")
    np.testing.assert_array_equal(mesh.labels, labels)
    assert (mesh.face_labels, mesh.meta["labels_source"]) == (None, "vertex_colors")
    write_ply(tmp_path / "f.ply", SQUARE, TWO_TRIS, face_colors=table.colors_for(np.array([11, 0])))
    mesh = read_mesh(tmp_path / "f.ply", scheme="fdi_colors")
    np.testing.assert_array_equal(mesh.face_labels, [11, 0])
    np.testing.assert_array_equal(mesh.labels, [11, 11, 11, 0])  # vertex 0 and 2: 11 vs 0 tie → tooth
    assert read_mesh(tmp_path / "v.ply").labels is None  # colours are texture unless scheme says otherwise


VOTES = {
    "majority": ([[0, 1, 2], [0, 2, 3], [0, 3, 1]], [11, 21, 21], 4, [21, 11, 11, 21]),
    "tooth-beats-gingiva": ([[0, 1, 2], [0, 2, 3]], [0, 12], 4, [12, 0, 12, 12]),
    "smallest-fdi": ([[0, 1, 2], [0, 2, 3]], [22, 12], 5, [12, 22, 12, 12, -1]),
    "gingiva-beats-unknown": ([[0, 1, 2], [0, 2, 3]], [-1, 0], 4, [0, -1, 0, 0]),
}


@pytest.mark.parametrize(("faces", "face_labels", "n", "expected"), VOTES.values(), ids=VOTES.keys())
def test_vertex_labels_from_faces(faces: list[list[int]], face_labels: list[int], n: int, expected: list[int]) -> None:
    out = vertex_labels_from_faces(np.array(face_labels), np.array(faces), n)
    assert out.dtype == np.int16
    np.testing.assert_array_equal(out, expected)


# --- jaw ------------------------------------------------------------------------------------------

NAMES = {
    "01A6GW4A_upper": "upper",
    "UpperJaw": "upper",
    "LowerJawScan": "lower",
    "MAXILLA-2": "upper",
    "p7_mandibular": "lower",
    "flower": None,
    "upper_lower": None,
    "scan_01": None,
    "Mustermann_Oberkiefer": "upper",
    "UNTERKIEFER": "lower",
    "Arcada_Superior": "upper",
    "arcata-inferiore": "lower",
    "mandíbula": "lower",
    "Maxillaire_2024": "upper",
    "onderkaak": "lower",
}


@pytest.mark.parametrize(("name", "expected"), NAMES.items())
def test_jaw_from_name(name: str, expected: str | None) -> None:
    assert jaw_from_name(name) == expected


@pytest.mark.parametrize(
    ("labels", "expected"),
    [([0, 11, 27], "upper"), ([0, 31, 48], "lower"), ([0, 55], "upper"), ([11, 31], None), ([0, -1], None)],
)
def test_jaw_from_labels(labels: list[int], expected: str | None) -> None:
    assert jaw_from_labels(np.array(labels)) == expected


def test_jaw_sources_in_priority_order(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "a_upper.vtp").write_text(_vtp(cell_labels="18 18"))  # Universal 18 = FDI 37, lower
    with caplog.at_level(logging.WARNING):
        mesh = read_mesh(tmp_path / "a_upper.vtp", scheme="universal", jaw="upper")
    assert (mesh.jaw, mesh.meta["jaw_source"]) == ("upper", "argument")
    assert mesh.meta["jaw_conflict"] == "argument says upper, labels say lower"
    assert "labels are 'lower' teeth" in caplog.text
    assert read_mesh(tmp_path / "a_upper.vtp", scheme="universal").meta["jaw_source"] == "labels"
    write_obj(tmp_path / "b_upper.obj", SQUARE, TWO_TRIS)
    assert (
        read_mesh(tmp_path / "b_upper.obj").jaw,
        read_mesh(tmp_path / "b_upper.obj").meta["jaw_source"],
    ) == (
        "upper",
        "filename",
    )
    write_obj(tmp_path / "c.obj", SQUARE, TWO_TRIS)
    mesh = read_mesh(tmp_path / "c.obj", frame="ios:scan-9")
    assert (mesh.jaw, mesh.meta["jaw_source"], mesh.frame) == (None, "unknown", "ios:scan-9")


# --- errors ---------------------------------------------------------------------------------------

READ_ERRORS = {
    "suffix": (
        "m.off",
        "OFF",
        MeshError,
        "unsupported mesh suffix '.off'; supported: .stl, .ply, .obj, .vtp",
    ),
    "missing": ("none.obj", None, InputNotFoundError, "mesh file not found; check the path"),
    "empty": (
        "e.obj",
        "# nothing\n",
        MeshError,
        "mesh is empty (found 0 vertices and 0 faces, expected at least",
    ),
    "nan": (
        "n.obj",
        "v 0 0 0\nv nan 0 0\nv 0 1 0\nf 1 2 3\n",
        MeshError,
        "1 vertices have NaN or inf coordinates (first: vertex 1), expected finite mm",
    ),
    "index": (
        "i.obj",
        "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 9\n",
        MeshError,
        "face indices must lie in [0, 2], found [0, 8]; the file is corrupt or truncated",
    ),
    "obj-syntax": ("s.obj", "v 0 0 zero\n", MeshError, "s.obj:1: cannot parse a 'v' line"),
    "obj-arity": ("a.obj", "v 0 0 0 1\nv 1 2\n", MeshError, "a.obj:2: 2 numbers on a 'v' line, expected x y z"),
    "not-stl": (
        "t.stl",
        "garbage bytes here",
        MeshError,
        "not an STL: binary STL needs at least 84 bytes, found 18",
    ),
    "ply-header": (
        "h.ply",
        "ply\nformat ascii 1.0\n",
        MeshError,
        "not a PLY (expected 'ply' … 'end_header' header)",
    ),
    "no-scheme": (
        "l.vtp",
        _vtp(cell_labels="8 9"),
        MeshError,
        "holds tooth labels (cell array 'labels') but no scheme was given; pass scheme='universal'",
    ),
}


@pytest.mark.parametrize(("name", "content", "error", "message"), READ_ERRORS.values(), ids=READ_ERRORS.keys())
def test_read_errors(tmp_path: Path, name: str, content: str | None, error: type[Exception], message: str) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(error, match=re.escape(message)) as info:
        read_mesh(path)
    assert str(path) in str(info.value)


def test_label_errors(tmp_path: Path) -> None:
    (tmp_path / "f.vtp").write_text(_vtp(cell_labels="8 8.5"))
    with pytest.raises(MeshError, match=re.escape("cell array 'labels' must hold integer tooth codes")):
        read_mesh(tmp_path / "f.vtp", scheme="universal")
    (tmp_path / "u.vtp").write_text(_vtp(cell_labels="8 77"))
    with pytest.raises(LabelSchemeError, match=re.escape(f"{tmp_path / 'u.vtp'}: cell array 'labels': ")):
        read_mesh(tmp_path / "u.vtp", scheme="universal")
    write_obj(tmp_path / "m.obj", SQUARE, TWO_TRIS)
    write_teeth3ds_json(
        tmp_path / "m.json", id_patient="p", jaw="upper", labels=np.zeros(3, int), instances=np.zeros(3, int)
    )
    with pytest.raises(MeshError, match=re.escape("has 3 labels but the mesh has 4 vertices; the sidecar must list")):
        read_mesh(tmp_path / "m.obj")
    with pytest.raises(InputError, match=re.escape("jaw must be 'upper', 'lower' or None, got 'left'")):
        read_mesh(tmp_path / "m.obj", jaw="left")  # type: ignore[arg-type]


SIDECAR_ERRORS = {
    "not-json": ("{", MeshError, "not valid UTF-8 JSON"),
    "not-object": (
        "[1, 2]",
        MeshError,
        "expected a JSON object with keys ['id_patient', 'jaw', 'labels', 'instances'], found list",
    ),
    "missing": ('{"id_patient": "a", "jaw": "upper"}', MeshError, "missing key(s) ['labels', 'instances']"),
    "id": (
        '{"id_patient": 5, "jaw": "upper", "labels": [], "instances": []}',
        MeshError,
        "'id_patient' must be a string, found int",
    ),
    "jaw": (
        '{"id_patient": "a", "jaw": "top", "labels": [], "instances": []}',
        MeshError,
        "'jaw' must be 'upper' or 'lower', found 'top'",
    ),
    "floats": (
        '{"id_patient": "a", "jaw": "upper", "labels": [1.5], "instances": [0]}',
        MeshError,
        "'labels' must be a list of integers",
    ),
    "lengths": (
        '{"id_patient": "a", "jaw": "upper", "labels": [0, 11], "instances": [0]}',
        MeshError,
        "'labels' has 2 entries but 'instances' has 1",
    ),
    "code": (
        '{"id_patient": "a", "jaw": "upper", "labels": [0, 99], "instances": [0, 1]}',
        LabelSchemeError,
        "99",
    ),
}


@pytest.mark.parametrize(("text", "error", "message"), SIDECAR_ERRORS.values(), ids=SIDECAR_ERRORS.keys())
def test_teeth3ds_sidecar_errors(tmp_path: Path, text: str, error: type[Exception], message: str) -> None:
    path = tmp_path / "s.json"
    path.write_text(text)
    with pytest.raises(error, match=re.escape(message)) as info:
        read_teeth3ds_json(path)
    assert str(info.value).startswith(str(path))


def test_teeth3ds_reads_real_layout(tmp_path: Path) -> None:
    path = tmp_path / "01A6GW4A_lower.json"
    path.write_text(
        json.dumps({"id_patient": "01A6GW4A", "jaw": "lower", "labels": [0, 36, 47], "instances": [0, 2, 5]})
    )
    t = read_teeth3ds_json(path)
    assert (t.id_patient, t.jaw, t.labels.tolist(), t.instances.tolist()) == (
        "01A6GW4A",
        "lower",
        [0, 36, 47],
        [0, 2, 5],
    )


# --- markups --------------------------------------------------------------------------------------

FCSV_BODY = (
    "vtkMRMLMarkupsFiducialNode_0,1.5,-2,3,0,0,0,1,1,1,1,A,,\nvtkMRMLMarkupsFiducialNode_1,0,4,-5,0,0,0,1,1,1,1,B,,\n"
)
FCSV_COLUMNS = "# columns = id,x,y,z,ow,ox,oy,oz,vis,sel,lock,label,desc,associatedNodeID\n"


@pytest.mark.parametrize(
    ("system", "expected"),
    [
        ("RAS", [[-1.5, 2, 3], [0, -4, -5]]),
        ("0", [[-1.5, 2, 3], [0, -4, -5]]),
        ("LPS", [[1.5, -2, 3], [0, 4, -5]]),
        ("1", [[1.5, -2, 3], [0, 4, -5]]),
    ],
)
def test_read_fcsv_frames(tmp_path: Path, system: str, expected: list[list[float]]) -> None:
    path = tmp_path / "m.fcsv"
    path.write_text(f"# Markups fiducial file version = 4.10\n# CoordinateSystem = {system}\n{FCSV_COLUMNS}{FCSV_BODY}")
    labels, points = read_fcsv(path)
    assert labels == ["A", "B"]
    np.testing.assert_array_equal(points, expected)


def test_read_fcsv_defaults_to_ras_with_warning_and_custom_columns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "m.fcsv"
    path.write_text("# columns = label,z,y,x\ntip,3,2,1\n")
    with caplog.at_level(logging.WARNING):
        labels, points = read_fcsv(path)
    assert (labels, points.tolist()) == (["tip"], [[-1.0, -2.0, 3.0]])
    assert "no '# CoordinateSystem' line" in caplog.text


FCSV_ERRORS = {
    "system": (
        f"# CoordinateSystem = IJK\n{FCSV_BODY}",
        "CoordinateSystem must be RAS, LPS, 0 or 1, found 'IJK'",
    ),
    "empty": ("# CoordinateSystem = RAS\n", "no landmarks found"),
    "columns": ("# columns = id,x,y\n1,2,3\n", "'# columns' lacks ['z', 'label']"),
    "number": (
        "# CoordinateSystem = LPS\nid,1,two,3,0,0,0,1,1,1,1,A,,\n",
        "a landmark line does not match columns",
    ),
}


@pytest.mark.parametrize(("text", "message"), FCSV_ERRORS.values(), ids=FCSV_ERRORS.keys())
def test_read_fcsv_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.fcsv"
    path.write_text(text)
    with pytest.raises(InputError, match=re.escape(message)) as info:
        read_fcsv(path)
    assert str(info.value).startswith(str(path))


def test_teeth3ds_keeps_primary_teeth(tmp_path: Path) -> None:
    """A mixed dentition (FDI 51–85 beside permanent teeth) reads as it is, never mapped onto permanent codes."""
    path = tmp_path / "child_lower.json"
    path.write_text(
        json.dumps({"id_patient": "c", "jaw": "lower", "labels": [0, 36, 75, 84], "instances": [0, 1, 2, 3]})
    )
    assert read_teeth3ds_json(path).labels.tolist() == [0, 36, 75, 84]
