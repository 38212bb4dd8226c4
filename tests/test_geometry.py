"""Geometry shared by every stage: the one vertex-normal definition (area-weighted, unit, float64, in the mesh's
frame), the crop grid and the crop resampling (fill, nearest vs linear, block reads, dtype), vertex sampling and
the farthest-point sample.

That training and inference see identical normals for the same mesh (store-written normals read by the stream vs
``toothmcl_models.evaluate``) is checked end to end in ``tests/finetune/test_normals.py``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import trimesh
import zarr
from scipy import ndimage

from toothmcl_data.geometry import crop_grid, farthest_point_indices, resample, sample_vertices, vertex_normals
from toothmcl_data.types import Volume, apply_transform

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


def test_crop_grid_centres_the_voxels_on_the_point() -> None:
    centre = np.array([10.0, -4.0, 2.5])
    grid = crop_grid(centre, (5, 4, 3), 0.5)
    np.testing.assert_array_equal(grid[:3, :3], 0.5 * np.eye(3))
    np.testing.assert_allclose(grid[:3, 3], [9.0, -4.75, 2.0])
    middle = grid @ np.array([2.0, 1.5, 1.0, 1.0])
    np.testing.assert_allclose(middle[:3], centre)


def _lps(origin: tuple[float, float, float], spacing: float) -> np.ndarray:
    affine = np.diag([spacing, spacing, spacing, 1.0])
    affine[:3, 3] = origin
    return affine


def test_a_crop_on_the_volumes_own_grid_is_its_voxels() -> None:
    rng = np.random.default_rng(0)
    vol = Volume(rng.integers(0, 3000, size=(30, 30, 30)).astype(np.int16), _lps((-10.0, 5.0, 2.0), 0.5))
    centre = vol.world_from_index(np.array([[15.0, 14.0, 13.0]]))[0]
    T = crop_grid(centre, (11, 11, 11), 0.5)
    for fill in ("lowest", 0.0):  # "lowest" interpolates (at whole voxels), a value fill reads the block
        crop = resample(vol.array, vol.affine, T, (11, 11, 11), order=1, fill=fill, dtype=np.int16)
        np.testing.assert_array_equal(crop, vol.array[10:21, 9:20, 8:19])  # centre (15, 14, 13) = crop index 5
    far = crop_grid(np.array([500.0, 0, 0]), (4, 4, 4), 0.5)
    assert not resample(vol.array, vol.affine, far, (4, 4, 4), order=0, dtype=np.int16).any()
    assert not resample(vol.array, vol.affine, far, (4, 4, 4), order=1, fill="lowest").any()  # nothing near: 0


def _by_map_coordinates(vol: Volume, world_from_crop: np.ndarray, shape: tuple[int, int, int], order: int) -> Any:
    """The reference: every crop voxel's index in the volume, sampled by scipy on the whole volume (mode
    "constant"; outside: 0 for nearest, the volume's minimum for linear, computed in float32 and rounded)."""
    ijk = np.stack(np.meshgrid(*[np.arange(n, dtype=np.float64) for n in shape], indexing="ij"), axis=-1)
    index = apply_transform(np.linalg.inv(vol.affine) @ world_from_crop, ijk.reshape(-1, 3)).T
    data = np.asarray(vol.array)
    out = ndimage.map_coordinates(
        data if order == 0 else data.astype(np.float32), index, order=order, mode="constant",
        cval=0.0 if order == 0 else float(data.min()),
    )  # fmt: skip
    return np.asarray(np.rint(out).reshape(shape), dtype=np.int16)


@pytest.mark.parametrize("order", [1, 0])
@pytest.mark.parametrize("frame", ["lps", "flipped_swapped", "oblique"])
def test_resample_matches_scipy_on_every_path(frame: str, order: int) -> None:
    """Axis-aligned crops (flips and swaps included: interpolated one axis at a time) and oblique ones (scipy's
    affine_transform) give the values scipy's map_coordinates gives on the full index grid, at fractional
    positions, off-grid spacing and past the edge."""
    rng = np.random.default_rng(3)
    data = rng.integers(0, 5, (18, 20, 22)) if order == 0 else rng.integers(-999, 3000, (18, 20, 22))
    if order == 1:
        data[::2, ::2, ::2] = -1000  # every block resample reads holds the volume's minimum (its "lowest")
    R = {
        "lps": np.eye(3),
        "flipped_swapped": np.array([[0.0, -1, 0], [1, 0, 0], [0, 0, -1]]),
        "oblique": np.array([[np.cos(0.3), -np.sin(0.3), 0], [np.sin(0.3), np.cos(0.3), 0], [0, 0, 1.0]]),
    }[frame]
    affine = np.eye(4)
    affine[:3, :3] = R * np.array([0.4, 0.45, 0.5])
    affine[:3, 3] = [3.0, -7.0, 11.0]
    vol = Volume(data.astype(np.int16), affine)
    centre = vol.world_from_index(np.array([[9.3, 9.7, 10.2]]))[0]
    fill = 0.0 if order == 0 else "lowest"
    for shape, spacing, shift in (((9, 10, 13), 0.3, 0.0), ((12, 7, 9), 0.37, 2.9)):
        T = crop_grid(centre + shift, shape, spacing)  # the second crop runs past the volume's edge
        got = resample(vol.array, vol.affine, T, shape, order=order, fill=fill, dtype=np.int16)
        assert got.dtype == np.int16
        np.testing.assert_array_equal(got, _by_map_coordinates(vol, T, shape, order))


def test_linear_is_exact_on_a_ramp_and_fill_is_the_value_outside() -> None:
    i, j, k = np.meshgrid(np.arange(20), np.arange(18), np.arange(16), indexing="ij")
    ramp = (i + 2.0 * j + 3.0 * k).astype(np.float32)
    affine = _lps((-5.0, 3.0, 1.0), 0.8)
    world_from_crop = crop_grid(apply_transform(affine, np.array([[9.3, 8.7, 7.1]]))[0], (6, 5, 4), 0.5)
    out = resample(ramp, affine, world_from_crop, (6, 5, 4), order=1, dtype=np.float32)
    crop_ijk = np.stack(np.meshgrid(*(np.arange(n) for n in (6, 5, 4)), indexing="ij"), -1).reshape(-1, 3)
    src = apply_transform(np.linalg.inv(affine) @ world_from_crop, crop_ijk.astype(float))
    np.testing.assert_allclose(out.ravel(), src @ [1.0, 2.0, 3.0], atol=1e-3)
    far = crop_grid(np.array([500.0, 500.0, 500.0]), (6, 5, 4), 0.5)
    assert not resample(ramp, affine, far, (6, 5, 4), order=1).any()
    np.testing.assert_array_equal(resample(ramp, affine, far, (6, 5, 4), order=1, fill=-7.0), -7.0)


@pytest.mark.parametrize("rotation", ["aligned", "oblique"])
def test_fill_lowest_is_the_lowest_value_near_the_crop(rotation: str) -> None:
    data = np.full((20, 20, 20), 100, dtype=np.int16)
    data[:4] = -1000  # far from the crop: not its fill
    data[15:, 10, 10] = 40  # next to the crop: the lowest near it
    affine = _lps((0.0, 0.0, 0.0), 1.0)
    if rotation == "oblique":
        c, s = np.cos(0.2), np.sin(0.2)
        affine[:3, :3] = np.array([[1.0, 0, 0], [0, c, -s], [0, s, c]])
    centre = apply_transform(affine, np.array([[19.0, 10.0, 10.0]]))[0]  # half the crop lies beyond i = 19
    T = crop_grid(centre, (6, 4, 4), 1.0)
    lowest = resample(data, affine, T, (6, 4, 4), order=1, fill="lowest")
    assert lowest.dtype == np.int16
    np.testing.assert_array_equal(lowest[4:], 40)  # crop i 4, 5 → volume i 20, 21: outside
    assert lowest[:3].min() >= 40
    np.testing.assert_array_equal(resample(data, affine, T, (6, 4, 4), order=1, fill=-5.0)[4:], -5)


def test_nearest_takes_one_voxel_and_linear_rounds_integers_half_to_even() -> None:
    data = np.array([1, 2, -1, -2, 3, 4], dtype=np.int16).reshape(6, 1, 1)
    data = np.repeat(np.repeat(data, 3, axis=1), 3, axis=2)
    affine = _lps((0.0, 0.0, 0.0), 1.0)
    T = affine.copy()
    T[0, 3] = 0.5  # crop voxel i at volume index i + 0.5: halfway between two voxels
    shape = (5, 3, 3)
    near = resample(data, affine, T, shape, order=0)
    np.testing.assert_array_equal(near[:, 1, 1], [2, -1, -2, 3, 4])  # halfway: the higher index
    linear = resample(data, affine, T, shape, order=1)
    np.testing.assert_array_equal(linear[:, 1, 1], [2, 0, -2, 0, 4])  # 1.5, 0.5, -1.5, 0.5, 3.5
    as_float = resample(data, affine, T, shape, order=1, dtype=np.float32)
    assert as_float.dtype == np.float32
    np.testing.assert_array_equal(as_float, linear)  # an integer volume's samples stay integers
    exact = resample(data.astype(np.float64), affine, T, shape, order=1)
    np.testing.assert_array_equal(exact[:, 1, 1], [1.5, 0.5, -1.5, 0.5, 3.5])


class _Reader:
    """A block reader (the store's BlockReader's interface): records the blocks asked for; 9 outside itself."""

    def __init__(self, data: np.ndarray) -> None:
        self.data, self.shape, self.dtype = data, data.shape, data.dtype
        self.asked: list[tuple[tuple[int, ...], tuple[int, ...], Any]] = []

    def read(self, lo: tuple[int, ...], shape: tuple[int, ...], dtype: Any = None) -> np.ndarray:
        self.asked.append((lo, shape, dtype))
        out = np.full(shape, 9, dtype=self.dtype if dtype is None else dtype)
        src = tuple(slice(max(a, 0), min(a + n, m)) for a, n, m in zip(lo, shape, self.shape, strict=True))
        out[tuple(slice(s.start - a, s.stop - a) for s, a in zip(src, lo, strict=True))] = self.data[src]
        return out


def test_only_the_block_a_crop_covers_is_read() -> None:
    data = np.random.default_rng(5).integers(1, 500, (40, 40, 40)).astype(np.int16)
    affine = _lps((2.0, -3.0, 4.0), 0.4)
    reader = _Reader(data)
    # on the volume's own grid, reaching past its end: one block of the crop's shape, read as the asked dtype
    T = affine.copy()
    T[:3, 3] = apply_transform(affine, np.array([[30.0, 5.0, 7.0]]))[0]
    block = resample(reader, affine, T, (16, 8, 4), order=1, dtype=np.float32)
    assert reader.asked == [((30, 5, 7), (16, 8, 4), np.float32)]
    assert block.dtype == np.float32
    np.testing.assert_array_equal(block[:10], data[30:40, 5:13, 7:11])
    np.testing.assert_array_equal(block[10:], 0.0)  # the fill, not the reader's own outside value
    # resampled: the crop's footprint and a voxel each side, no more; the same values as from the array itself
    reader.asked.clear()
    T = crop_grid(apply_transform(affine, np.array([[20.3, 20.6, 20.1]]))[0], (8, 8, 8), 0.3)
    got = resample(reader, affine, T, (8, 8, 8), order=1)
    ((lo, shape, _),) = reader.asked
    assert all(a >= 16 for a in lo)
    assert all(a + n <= 26 for a, n in zip(lo, shape, strict=True))
    np.testing.assert_array_equal(got, resample(data, affine, T, (8, 8, 8), order=1))
    stored = zarr.create_array(store={}, shape=data.shape, chunks=(16, 16, 16), dtype=data.dtype)
    stored[...] = data
    np.testing.assert_array_equal(
        resample(stored, affine, T, (8, 8, 8), order=0), resample(data, affine, T, (8, 8, 8), order=0)
    )


def test_result_dtype_is_asked_for_or_the_sources() -> None:
    data = np.arange(1000, dtype=np.uint8).reshape(10, 10, 10)
    affine = _lps((0.0, 0.0, 0.0), 1.0)
    T = crop_grid(np.array([4.3, 4.5, 4.1]), (4, 4, 4), 0.7)
    assert resample(data, affine, T, (4, 4, 4), order=0).dtype == np.uint8
    labels = resample(data, affine, T, (4, 4, 4), order=0, dtype=np.int16)
    assert labels.dtype == np.int16
    np.testing.assert_array_equal(labels, resample(data, affine, T, (4, 4, 4), order=0).astype(np.int16))


def test_sample_vertices_draws_sorted_subsets_the_same_way_everywhere() -> None:
    pick = sample_vertices(100, 30, np.random.default_rng(7))
    assert pick.dtype == np.int64
    assert np.all(np.diff(pick) > 0)  # sorted, no repeats
    assert 0 <= pick[0] <= pick[-1] < 100
    again = np.random.default_rng(7)
    np.testing.assert_array_equal(pick, np.sort(again.choice(100, size=30, replace=False)))  # a seed's draw
    many = sample_vertices(10, 25, np.random.default_rng(7))
    assert len(many) == 25  # with replacement
    assert np.all(np.diff(many) >= 0)
    assert len(np.unique(many)) <= 10
    assert not np.array_equal(pick, sample_vertices(100, 30, np.random.default_rng(8)))


def test_farthest_point_sample_is_spread_deterministic_and_nested() -> None:
    rng = np.random.default_rng(2)
    points = np.concatenate([rng.normal(0, 0.1, (500, 3)), [[10.0, 0, 0]], rng.normal(0, 0.1, (499, 3))])
    pick = farthest_point_indices(points, 20)
    assert pick.dtype == np.intp
    assert len(np.unique(pick)) == 20
    assert 500 in pick[:2]  # the far outlier is the first or the second point
    np.testing.assert_array_equal(farthest_point_indices(points, 5), pick[:5])  # a prefix is a sample too
    np.testing.assert_array_equal(farthest_point_indices(points, 20, h=3), pick)  # the default below 10,000
    np.testing.assert_array_equal(farthest_point_indices(points[:7], 20), np.arange(7))  # m ≤ n: all, in order
