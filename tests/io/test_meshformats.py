"""The per-format mesh readers (io.meshformats): geometry, colours and header text as stored, before labels."""

from __future__ import annotations

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
