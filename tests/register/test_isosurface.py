"""Voxel machinery of the crown surface: morphology, the region near points, strided and sub-grid iso-surfaces."""

from __future__ import annotations

import numpy as np
import pytest

from toothmcl_data.register.isosurface import candidates, iso_surface, morph, near_points


@pytest.mark.parametrize("shape", [(1, 5, 7), (2, 2, 2), (9, 8, 7), (30, 20, 25)])
def test_morphology_matches_scipy(shape: tuple[int, int, int]) -> None:
    from scipy import ndimage

    rng = np.random.default_rng(len(shape) * sum(shape))
    for fraction in (0.03, 0.5, 0.97):
        mask = rng.random(shape) < fraction
        for iterations in (1, 2, 4):
            assert np.array_equal(morph(mask, iterations), ndimage.binary_dilation(mask, iterations=iterations))
            eroded = ndimage.binary_erosion(mask, iterations=iterations)
            assert np.array_equal(morph(mask, iterations, erode=True), eroded)


def _ball(shape: tuple[int, int, int], centre: float, radius: float, sigma: float = 0.8) -> np.ndarray:
    """A bright ball (1000 inside, 0 outside) with a smooth edge of ``sigma`` voxels, float32."""
    r = np.sqrt(((np.indices(shape) - centre) ** 2).sum(axis=0))
    return (1000.0 / (1.0 + np.exp((r - radius) / sigma))).astype(np.float32)


def test_near_points_covers_the_reach_and_little_more() -> None:
    affine = np.diag([0.4, 0.4, 0.4, 1.0])
    affine[:3, 3] = (-10.0, 5.0, 2.0)
    shape = (120, 90, 60)
    rng = np.random.default_rng(3)
    points = affine[:3, 3] + rng.uniform([10, 8, 5], [30, 20, 18], size=(40, 3))
    at, mask = near_points(points, affine, shape, 2.0)
    assert np.all(at >= 0)
    assert np.all(at + mask.shape <= shape)
    idx = np.argwhere(mask) + at
    world = idx * 0.4 + affine[:3, 3]
    # every voxel within 2 mm (per axis) of a point is in; none is farther than 3 blocks (3 × 2 mm) per axis
    inside = np.argwhere(np.ones(shape, dtype=bool))
    near = np.zeros(shape, dtype=bool)
    for p in points:
        lo = np.maximum(np.ceil((p - 2.0 - affine[:3, 3]) / 0.4), 0).astype(int)
        hi = np.minimum(np.floor((p + 2.0 - affine[:3, 3]) / 0.4) + 1, shape).astype(int)
        near[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = True
    full = np.zeros(shape, dtype=bool)
    full[at[0] : at[0] + mask.shape[0], at[1] : at[1] + mask.shape[1], at[2] : at[2] + mask.shape[2]] = mask
    assert np.all(full[near])
    gap = np.abs(world[:, None, :] - points[None, :, :]).max(axis=2).min(axis=1)
    assert gap.max() <= 6.0 + 0.4
    assert len(idx) < 0.5 * len(inside)


def test_a_strided_iso_surface_refined_on_the_full_image_lands_on_the_edge() -> None:
    """A stride-2 iso-surface has about 4 times fewer vertices, a cruder shape; refined along its normals on the
    full-resolution image its points land on the half-way level as well as the full surface's do."""
    image = _ball((48, 48, 48), 23.3, 15.0)
    affine = np.diag([0.4, 0.4, 0.4, 1.0])
    full = candidates(image, affine, 500.0, 1.2)
    coarse = candidates(image, affine, 500.0, 1.2, stride=2)
    assert 3.0 < len(full.points) / len(coarse.points) < 5.0
    for c, least in ((full, 0.98), (coarse, 0.95)):
        assert c.ok.all()
        radius = np.linalg.norm(c.points / 0.4 - 23.3, axis=1) * 0.4
        assert np.abs(radius - 15.0 * 0.4).max() < 0.02  # mm, on a 0.4 mm grid
        centred = c.points / 0.4 - 23.3
        cosine = np.sum(c.normals * centred / np.linalg.norm(centred, axis=1, keepdims=True), axis=1)
        assert cosine.min() > least  # outward (a coarse surface's normals are cruder: measured 0.96)


def test_an_iso_surface_on_a_sub_grid_is_the_same_surface() -> None:
    image = _ball((40, 40, 40), 19.3, 12.0)
    affine = np.diag([0.5, 0.5, 0.5, 1.0])
    affine[:3, 3] = (3.0, -2.0, 7.0)
    mask = np.zeros(image.shape, dtype=bool)
    mask[4:36, 4:36, 4:22] = True
    whole, whole_n = iso_surface(image, affine, 500.0, mask)
    at = np.array([4, 4, 4])
    sub, sub_n = iso_surface(image, affine, 500.0, mask[4:36, 4:36, 4:22], at=at)
    assert len(whole) == len(sub) > 1000
    np.testing.assert_allclose(sub, whole, atol=1e-4)
    np.testing.assert_allclose(sub_n, whole_n, atol=1e-5)
    assert iso_surface(image, affine, 500.0, np.zeros(image.shape, dtype=bool))[0].shape == (0, 3)
    assert iso_surface(image, affine, 2000.0)[0].shape == (0, 3)  # level above the image
