"""The one vertex-normal definition (geometry.vertex_normals): area-weighted, unit, float64, in the mesh's frame."""

from __future__ import annotations

import numpy as np
import trimesh

from toothmcl_data.geometry import crop_grid, vertex_normals

# vertex 0 is shared by a large face in z = 0 (cross product (0, 0, 4)) and a small one in x = 0 ((1, 0, 0))
VERTICES = np.array([[0.0, 0, 0], [2, 0, 0], [0, 2, 0], [0, 1, 0], [0, 0, 1], [5, 5, 5]])
FACES = np.array([[0, 1, 2], [0, 3, 4]])


def test_normals_are_area_weighted_unit_float64_and_zero_off_the_mesh() -> None:
    n = vertex_normals(VERTICES, FACES)
    assert n.dtype == np.float64
    assert n.shape == (6, 3)
    np.testing.assert_allclose(n[0], np.array([1.0, 0.0, 4.0]) / np.sqrt(17.0), atol=1e-15)
    np.testing.assert_allclose(n[1], [0.0, 0.0, 1.0])
    np.testing.assert_allclose(n[4], [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(n[5], [0.0, 0.0, 0.0])  # on no face
    # angle weighting (trimesh) gives vertex 0 a different direction: both faces meet it at 90°
    angle = trimesh.Trimesh(VERTICES, FACES, process=False).vertex_normals[0]
    np.testing.assert_allclose(angle, np.array([1.0, 0.0, 1.0]) / np.sqrt(2.0), atol=1e-12)


def test_a_subset_of_vertices_gets_the_same_rows() -> None:
    rng = np.random.default_rng(4)
    mesh = trimesh.creation.icosphere(subdivisions=2)
    v = np.asarray(mesh.vertices) * rng.uniform(5, 8, size=3)
    f = np.asarray(mesh.faces)
    full = vertex_normals(v, f)
    index = rng.choice(len(v), size=17, replace=False)
    np.testing.assert_array_equal(vertex_normals(v, f, index), full[index])
    np.testing.assert_allclose(np.linalg.norm(full, axis=1), 1.0)
    assert np.all(np.einsum("ij,ij->i", full, v) > 0)  # counter-clockwise winding seen from outside: outward


def test_rotating_the_mesh_rotates_the_normals() -> None:
    mesh = trimesh.creation.icosphere(subdivisions=1)
    v, f = np.asarray(mesh.vertices) * [3.0, 4.0, 5.0], np.asarray(mesh.faces)
    c, s = np.cos(0.7), np.sin(0.7)
    R = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(vertex_normals(v @ R.T, f), vertex_normals(v, f) @ R.T, atol=1e-12)


def test_crop_grid_centres_the_voxels_on_the_point_and_matches_pairing() -> None:
    from toothmcl_data.pair.teeth import crop_affine

    centre = np.array([10.0, -4.0, 2.5])
    grid = crop_grid(centre, (5, 4, 3), 0.5)
    np.testing.assert_array_equal(grid[:3, :3], 0.5 * np.eye(3))
    np.testing.assert_allclose(grid[:3, 3], [9.0, -4.75, 2.0])
    middle = grid @ np.array([2.0, 1.5, 1.0, 1.0])
    np.testing.assert_allclose(middle[:3], centre)
    np.testing.assert_array_equal(grid, crop_affine(centre, (5, 4, 3), 0.5))  # pairing cuts the same grid
