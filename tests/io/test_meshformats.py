"""The per-format mesh readers (io.meshformats): geometry, colours and header text as stored, before labels."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from toothmcl_data.errors import MeshError
from toothmcl_data.io.meshformats import READERS, MeshFile, merge_stl_corners, read_obj, read_ply, read_stl
from toothmcl_data.io.meshwrite import write_stl


def test_readers_cover_the_four_suffixes() -> None:
    assert sorted(READERS) == [".obj", ".ply", ".stl", ".vtp"]


def test_merge_stl_corners_keeps_first_appearance_and_folds_negative_zero() -> None:
    corners = np.array([[[1, 0, 0], [-0.0, 0, 0], [0, 1, 0]], [[0, 1, 0], [0, 0, 0], [1, 1, 0]]])
    vertices, faces = merge_stl_corners(corners)
    np.testing.assert_array_equal(vertices, [[1, 0, 0], [0, 0, 0], [0, 1, 0], [1, 1, 0]])
    np.testing.assert_array_equal(faces, [[0, 1, 2], [2, 1, 3]])
    assert vertices.dtype == np.float64
    assert faces.dtype == np.int64


def test_merge_stl_corners_float32_equals_the_float64_merge() -> None:
    rng = np.random.default_rng(3)
    grid = rng.integers(-3, 4, size=(400, 3, 3)).astype(np.float32) * np.float32(0.1)  # many repeated corners
    grid[rng.random(grid.shape) < 0.05] = -0.0
    grid[0, 0] = [0.1, 0.2, 0.3]
    grid[1, 0] = [0.1, 0.2, np.nextafter(np.float32(0.3), np.float32(1))]  # same x, y; z one ulp apart
    v32, f32 = merge_stl_corners(grid)
    v64, f64 = merge_stl_corners(grid.astype(np.float64))
    np.testing.assert_array_equal(v32, v64)
    np.testing.assert_array_equal(f32, f64)
    assert v32.dtype == np.float64
    assert f32.dtype == np.int64
    assert len(v32) < 3 * len(grid)
    assert not np.any(np.signbit(v32) & (v32 == 0))
    np.testing.assert_array_equal(v32[f32], grid.astype(np.float64) + 0.0)  # every corner where it was


def test_binary_stl_round_trip_returns_a_mesh_file(tmp_path: Path) -> None:
    vertices = np.array([[0.0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]])
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    path = tmp_path / "a.stl"
    write_stl(path, vertices, faces)
    m = read_stl(path)
    assert isinstance(m, MeshFile)
    np.testing.assert_array_equal(m.vertices, vertices)
    np.testing.assert_array_equal(m.faces, faces)


def test_obj_fan_splits_polygons_reads_negative_indices_and_colours(tmp_path: Path) -> None:
    path = tmp_path / "q.obj"
    path.write_text(
        "# scanner X\no jaw\nv 0 0 0 1 0 0\nv 1 0 0 0 1 0\nv 1 1 0 0 0 1\nv 0 1 0 1 1 1\nf 1 2 3 -1\n",
        encoding="utf-8",
    )
    m = read_obj(path)
    np.testing.assert_array_equal(m.faces, [[0, 1, 2], [0, 2, 3]])
    assert m.vertex_colors is not None
    np.testing.assert_array_equal(m.vertex_colors[:2], [[255, 0, 0], [0, 255, 0]])
    assert m.header == ["scanner X", "o jaw"]


def test_ply_with_counts_the_body_cannot_hold_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.ply"
    header = "ply\nformat binary_little_endian 1.0\nelement vertex 1000000\nproperty float x\nend_header\n"
    path.write_bytes(header.encode() + b"\0" * 12)
    with pytest.raises(MeshError, match="truncated or its counts are wrong"):
        read_ply(path)


def _obj_text(rng: np.random.Generator, *, colours: bool = False, slashes: bool = False, quads: bool = False) -> str:
    """A small scanner-like OBJ: comments and object lines, ``v`` rows, then ``f`` rows."""
    v = rng.normal(0.0, 20.0, size=(40, 3))
    rows = ["# Patient: Doe^Jane", "# exported by ScanApp 5.1", "mtllib doe.mtl", "o Jane Doe"]
    for x in v.tolist():
        rgb = " ".join(repr(c) for c in rng.random(3).tolist()) if colours else ""
        rows.append(f"v {x[0]!r} {x[1]!r} {x[2]!r} {rgb}".rstrip())
    rows += ["g arch", "usemtl gum"]
    for _ in range(60):
        corners = rng.choice(40, size=4 if quads and rng.random() < 0.5 else 3, replace=False) + 1
        rows.append("f " + " ".join(f"{c}/{c}/{c}" if slashes else str(c) for c in corners))
    return "\n".join(rows) + "\n"


def _same_file(a: MeshFile, b: MeshFile) -> None:
    for name in ("vertices", "faces", "vertex_colors"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        if x is not None:
            np.testing.assert_array_equal(x, y)
            assert (x.dtype, x.shape) == (y.dtype, y.shape), name
    assert a.header == b.header


OBJ_VARIANTS = {
    "plain": lambda rng: _obj_text(rng),
    "colours": lambda rng: _obj_text(rng, colours=True),
    "v/vt/vn and quads": lambda rng: _obj_text(rng, slashes=True, quads=True),
    "windows line breaks": lambda rng: _obj_text(rng).replace("\n", "\r\n"),
    "no final line break": lambda rng: _obj_text(rng).rstrip("\n"),
    "w coordinate": lambda rng: re.sub(r"^(v .*)$", r"\1 1.0", _obj_text(rng), flags=re.MULTILINE),
    "interleaved objects": lambda rng: _obj_text(rng) + "o second\nv 1 2 3\nv 4 5 6\nv 7 8 9\nf 41 42 43\n",
    "tabs and spaces": lambda rng: _obj_text(rng).replace("f ", "f  ").replace(" 1 ", " 1\t"),
    "indented": lambda rng: _obj_text(rng).replace("\nv ", "\n  v "),
    "relative indices": lambda rng: _obj_text(rng) + "f -1 -2 -3\n",
    "some rows coloured": lambda rng: _obj_text(rng) + "v 1 2 3 0.5 0.5 0.5\n",
    "non-ASCII comment": lambda rng: "# Müller Zoë\n" + _obj_text(rng),
    "line separator in a comment": lambda rng: "# a\u2028v 1 2 3\n" + _obj_text(rng),
    "form feed in a comment": lambda rng: "# a\x0cv 1 2 3\n" + _obj_text(rng),
    "bare keywords": lambda rng: "v\nf\no\n" + _obj_text(rng),
    "non-breaking space before a vertex": lambda rng: _obj_text(rng) + "\xa0v 1 2 3\n",
    "unit separator before a comment": lambda rng: "\x1f# made by X\n" + _obj_text(rng),
}
COLUMN_VARIANTS = {"plain", "colours", "v/vt/vn and quads", "windows line breaks", "no final line break"}
COLUMN_VARIANTS |= {"w coordinate", "interleaved objects", "non-ASCII comment", "bare keywords"}


@pytest.mark.parametrize("variant", sorted(OBJ_VARIANTS))
def test_obj_column_reader_gives_the_line_readers_arrays(tmp_path: Path, variant: str) -> None:
    """The numpy reader of a scanner's OBJ gives exactly what the line-by-line reader gives (vertices bit for
    bit, faces, colours, header text); files it does not take (indented lines, relative indices, rows of
    unequal number counts, tabs, other line breaks) go to the line reader, so read_obj gives the same for all."""
    from toothmcl_data.io.meshformats import _obj_columns, _obj_lines

    text = OBJ_VARIANTS[variant](np.random.default_rng(len(variant)))
    path = tmp_path / "scan.obj"
    path.write_bytes(text.encode("utf-8"))
    lines = _obj_lines(path, text)
    _same_file(read_obj(path), lines)
    columns = _obj_columns(text.replace("\r\n", "\n").encode("utf-8"))
    assert (columns is not None) == (variant in COLUMN_VARIANTS)
    if columns is not None:
        _same_file(columns, lines)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("v 0 0 0\nv 1 0 0\nv 0 1 x\nf 1 2 3\n", "s.obj:3: cannot parse a 'v' line"),
        ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3.5\n", "s.obj:4: cannot parse an 'f' line"),
        ("v 0 0 0\nv 1 0 0\nv 0 1\nf 1 2 3\n", "s.obj:3: 2 numbers on a 'v' line"),
        ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf /1 2 3\n", "s.obj:4: cannot parse an 'f' line"),
    ],
)
def test_an_obj_the_column_reader_cannot_read_is_refused_naming_its_line(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "s.obj"
    path.write_text(text)
    with pytest.raises(MeshError, match=message):
        read_obj(path)
