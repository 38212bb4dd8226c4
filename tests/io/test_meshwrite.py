"""Mesh writers: round trips through the readers, headers, determinism, atomicity, STL order, Teeth3DS."""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.typing import NDArray

from toothmcl_data.errors import LabelSchemeError, MeshError
from toothmcl_data.io.mesh import read_mesh
from toothmcl_data.io.meshwrite import renumber_by_first_appearance, write_obj, write_ply, write_stl
from toothmcl_data.io.teeth3ds import read_teeth3ds_json, write_teeth3ds_json

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
coords = st.floats(-200.0, 200.0, allow_nan=False, width=64)


def _as_float32(row: tuple[float, float, float]) -> tuple[float, ...]:
    return tuple(float(np.float32(x)) for x in row)


@st.composite
def meshes(draw: st.DrawFn, distinct: bool = False) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """A small random triangle soup: (n, 3) float64 vertices and (m, 3) faces; some vertices may be unused.

    distinct: no two vertices share float32 coordinates (what STL needs to keep them apart).
    """
    rows = st.tuples(coords, coords, coords)
    unique_by = _as_float32 if distinct else None
    vertices = np.array(draw(st.lists(rows, min_size=3, max_size=20, unique_by=unique_by)), dtype=np.float64)
    n = len(vertices)
    faces = draw(arrays(np.int64, (draw(st.integers(1, 25)), 3), elements=st.integers(0, n - 1)))
    return vertices, faces


def _tmp(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / f"t{len(list(tmp_path.iterdir()))}"  # fresh folder per Hypothesis example
    folder.mkdir()
    return folder / name


@SETTINGS
@given(mesh=meshes())
def test_obj_round_trip_is_exact(tmp_path: Path, mesh: tuple[NDArray[np.float64], NDArray[np.int64]]) -> None:
    vertices, faces = mesh
    path = _tmp(tmp_path, "scan.obj")
    write_obj(path, vertices, faces, comments=["exported by X"])
    back = read_mesh(path)
    np.testing.assert_array_equal(back.vertices, vertices)  # every vertex, in order, bit-exact
    np.testing.assert_array_equal(back.faces, faces)
    assert back.meta["header"] == "exported by X"


@SETTINGS
@given(mesh=meshes(), colored=st.booleans())
def test_ply_round_trip_float32(
    tmp_path: Path, mesh: tuple[NDArray[np.float64], NDArray[np.int64]], colored: bool
) -> None:
    vertices, faces = mesh
    path = _tmp(tmp_path, "scan.ply")
    colors = np.arange(len(vertices) * 3).reshape(-1, 3).astype(np.uint8) if colored else None
    write_ply(path, vertices, faces, comments=["a", "b"], colors=colors, obj_info=["c"])
    back = read_mesh(path)
    np.testing.assert_array_equal(back.vertices, vertices.astype(np.float32).astype(np.float64))
    np.testing.assert_array_equal(back.faces, faces)
    assert back.meta["header"] == "a\nb\nc"


@SETTINGS
@given(mesh=meshes(distinct=True))
def test_stl_round_trip_first_appearance(tmp_path: Path, mesh: tuple[NDArray[np.float64], NDArray[np.int64]]) -> None:
    vertices, faces = mesh
    v32 = vertices.astype(np.float32)
    path = _tmp(tmp_path, "scan.stl")
    write_stl(path, vertices, faces, header="Scanner 1.2")
    back = read_mesh(path)
    order, new_faces = renumber_by_first_appearance(faces)
    np.testing.assert_array_equal(back.vertices, v32[order].astype(np.float64))
    np.testing.assert_array_equal(back.faces, new_faces)
    np.testing.assert_array_equal(back.vertices[back.faces], v32[faces].astype(np.float64))
    assert back.meta["header"] == "Scanner 1.2"


def test_renumber_by_first_appearance_by_hand() -> None:
    order, new_faces = renumber_by_first_appearance(np.array([[4, 2, 7], [2, 0, 4], [7, 9, 0]]))
    np.testing.assert_array_equal(order, [4, 2, 7, 0, 9])
    np.testing.assert_array_equal(new_faces, [[0, 1, 2], [1, 3, 0], [2, 4, 3]])


def test_stl_sidecar_order_matches_reader(tmp_path: Path) -> None:
    """The synthetic generator's recipe: renumber, write STL + sidecar, read back with labels in order."""
    rng = np.random.default_rng(0)
    vertices = rng.normal(size=(12, 3)) * 10
    faces = rng.integers(0, 12, size=(15, 3))
    labels = rng.choice([0, 11, 21], size=12)
    order, new_faces = renumber_by_first_appearance(faces)
    write_stl(tmp_path / "p1_upper.stl", vertices[order], new_faces)
    inst = (labels[order] > 0).astype(int)
    write_teeth3ds_json(tmp_path / "p1_upper.json", id_patient="p1", jaw="upper", labels=labels[order], instances=inst)
    mesh = read_mesh(tmp_path / "p1_upper.stl")
    np.testing.assert_array_equal(mesh.labels, labels[order])
    np.testing.assert_array_equal(mesh.vertices, vertices[order].astype(np.float32).astype(np.float64))
    assert (mesh.jaw, mesh.meta["jaw_source"], mesh.meta["labels_source"]) == (
        "upper",
        "sidecar",
        "sidecar:p1_upper.json",
    )


VERTS = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
FACES = np.array([[0, 1, 2]])
WRITERS = {
    "stl": lambda p: write_stl(p, VERTS, FACES, header="name: Doe^Jane"),
    "ply": lambda p: write_ply(p, VERTS, FACES, comments=["Doe^Jane"]),
    "obj": lambda p: write_obj(p, VERTS, FACES, comments=["Doe^Jane"]),
}


@pytest.mark.parametrize("fmt", WRITERS)
def test_writers_are_deterministic_and_leave_no_temp_files(tmp_path: Path, fmt: str) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    WRITERS[fmt](tmp_path / "a" / f"x.{fmt}")
    WRITERS[fmt](tmp_path / "b" / f"x.{fmt}")
    assert (tmp_path / "a" / f"x.{fmt}").read_bytes() == (tmp_path / "b" / f"x.{fmt}").read_bytes()
    assert os.listdir(tmp_path / "a") == [f"x.{fmt}"]
    assert "Doe^Jane" in read_mesh(tmp_path / "a" / f"x.{fmt}").meta["header"]


def test_written_files_get_default_permissions(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    os.umask(umask)
    write_obj(tmp_path / "x.obj", VERTS, FACES)
    assert stat.S_IMODE((tmp_path / "x.obj").stat().st_mode) == 0o666 & ~umask


def test_failed_write_leaves_old_file_and_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "x.obj"
    path.write_text("old")

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_obj(path, VERTS, FACES)
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["x.obj"]


def test_stl_header_is_80_ascii_bytes(tmp_path: Path) -> None:
    write_stl(tmp_path / "long.stl", VERTS, FACES, header="Zoë " + "x" * 100)
    raw = (tmp_path / "long.stl").read_bytes()
    assert raw[:80] == b"Zo? " + b"x" * 76
    assert len(raw) == 84 + 50
    write_stl(tmp_path / "short.stl", VERTS, FACES, header="hi")
    assert (tmp_path / "short.stl").read_bytes()[:80] == b"hi" + b"\0" * 78


def test_ply_header_and_colors_exact(tmp_path: Path) -> None:
    colors = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]], dtype=np.uint8)
    write_ply(tmp_path / "c.ply", VERTS, FACES, comments=["one\ntwo"], colors=colors, obj_info=["scanner Z"])
    text = (tmp_path / "c.ply").read_bytes().split(b"end_header\n")[0].decode()
    assert text.splitlines()[:4] == [
        "ply",
        "format binary_little_endian 1.0",
        "comment one two",
        "obj_info scanner Z",
    ]
    assert "property uchar red" in text


def test_obj_text_format(tmp_path: Path) -> None:
    write_obj(tmp_path / "a.obj", np.array([[0.1, -2.0, 1e-5], [1, 0, 0], [0, 1, 0]]), FACES, comments=["hello"])
    lines = (tmp_path / "a.obj").read_text().splitlines()
    assert lines == ["# hello", "v 0.1 -2.0 1e-05", "v 1.0 0.0 0.0", "v 0.0 1.0 0.0", "f 1 2 3"]


WRITE_ERRORS = {
    "nan": (np.array([[np.nan, 0, 0], [1, 0, 0], [0, 1, 0]]), FACES, "vertices contain NaN or inf"),
    "index": (VERTS, np.array([[0, 1, 3]]), "face indices must lie in [0, 2], found [0, 3]"),
    "no-faces": (
        VERTS,
        np.zeros((0, 3), int),
        "faces must be a non-empty (m, 3) triangle array, got shape (0, 3)",
    ),
    "shape": (VERTS[:, :2], FACES, "vertices must be a non-empty (n, 3) array, got shape (3, 2)"),
}


@pytest.mark.parametrize(("vertices", "faces", "message"), WRITE_ERRORS.values(), ids=WRITE_ERRORS.keys())
@pytest.mark.parametrize("writer", [write_stl, write_ply, write_obj])
def test_writer_errors(
    tmp_path: Path,
    writer: Callable[[Path, NDArray[np.float64], NDArray[np.int64]], None],
    vertices: NDArray[np.float64],
    faces: NDArray[np.int64],
    message: str,
) -> None:
    with pytest.raises(MeshError, match=re.escape(message)):
        writer(tmp_path / "bad.x", vertices, faces)
    assert not list(tmp_path.iterdir())


@SETTINGS
@given(labels=st.lists(st.sampled_from([0, 11, 18, 21, 28]), min_size=0, max_size=30))
def test_teeth3ds_round_trip(tmp_path: Path, labels: list[int]) -> None:
    path = _tmp(tmp_path, "s.json")
    inst = [0 if x == 0 else 1 + [11, 18, 21, 28].index(x) for x in labels]
    write_teeth3ds_json(path, id_patient="ABC", jaw="upper", labels=np.array(labels), instances=np.array(inst))
    t = read_teeth3ds_json(path)
    assert (t.id_patient, t.jaw, t.labels.dtype, t.instances.dtype) == ("ABC", "upper", np.int16, np.int16)
    np.testing.assert_array_equal(t.labels, labels)
    np.testing.assert_array_equal(t.instances, inst)
    assert list(json.loads(path.read_text())) == ["id_patient", "jaw", "labels", "instances"]


def test_teeth3ds_writer_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(MeshError, match=re.escape("labels has 2 entries but instances has 1")):
        write_teeth3ds_json(
            tmp_path / "a.json",
            id_patient="p",
            jaw="upper",
            labels=np.array([0, 11]),
            instances=np.array([0]),
        )
    bad_jaw: Any = "left"
    with pytest.raises(MeshError, match=re.escape("jaw must be 'upper' or 'lower', got 'left'")):
        write_teeth3ds_json(
            tmp_path / "a.json", id_patient="p", jaw=bad_jaw, labels=np.array([0]), instances=np.array([0])
        )
    with pytest.raises(LabelSchemeError, match="99"):
        write_teeth3ds_json(
            tmp_path / "a.json", id_patient="p", jaw="upper", labels=np.array([99]), instances=np.array([1])
        )
    assert not list(tmp_path.iterdir())
