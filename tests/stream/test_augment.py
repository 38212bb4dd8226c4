"""Augmentations move both modalities together: a moved sample's IOS points still lie on its CBCT tooth."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from tests.conftest import FDI, ToothSample
from toothmcl_data.errors import ConfigError
from toothmcl_data.stream.augment import AugmentConfig, augment_pair, draw_motion, move_crop, move_points
from toothmcl_data.types import apply_transform


def _on_tooth(labels: np.ndarray, points: np.ndarray, world_from_crop: np.ndarray, fdi: int) -> float:
    """Fraction of points within 1 voxel of a voxel labelled ``fdi``."""
    near = ndimage.binary_dilation(labels == fdi, iterations=1)
    idx = np.rint(apply_transform(np.linalg.inv(world_from_crop), points[:, :3])).astype(int)
    inside = np.all((idx >= 0) & (idx < np.array(labels.shape)), axis=1)
    return float(near[tuple(idx[inside].T)].sum() / len(points))


def test_points_stay_on_their_tooth_after_rotation(tooth_sample: ToothSample) -> None:
    image, labels, points, point_labels, A = tooth_sample
    assert _on_tooth(labels, points, A, FDI) > 0.97
    config = AugmentConfig(rotate_deg=35.0, shift_mm=2.0)
    for seed in range(3):
        img, lab, pts, plab, applied = augment_pair(
            image, labels, points, point_labels, A, config, np.random.default_rng(seed)
        )
        assert abs(applied["rotate_deg"]) > 1.0
        assert img.shape == image.shape
        assert _on_tooth(lab, pts, A, FDI) > 0.95
        assert set(np.unique(plab)) == {FDI}
        np.testing.assert_allclose(np.linalg.norm(pts[:, 3:], axis=1), 1.0, atol=1e-5)


def test_the_papers_bug_is_caught(tooth_sample: ToothSample) -> None:
    """Rotating the volume about another axis than the points (the released code's defect) breaks the pairing."""
    image, labels, points, _, A = tooth_sample
    centre = apply_transform(A, np.array([[31.5, 31.5, 31.5]]))[0]
    motion, _ = draw_motion(AugmentConfig(rotate_deg=35.0, shift_mm=0.0), np.random.default_rng(1), centre)
    _, moved_labels = move_crop(image, labels, A, motion)
    wrong = np.eye(4)  # the points rotated about the same centre the other way (axes mixed up)
    wrong[:3, :3] = motion[:3, :3].T
    wrong[:3, 3] = centre - wrong[:3, :3] @ centre
    bad_points, _ = move_points(points, None, wrong)
    assert moved_labels is not None
    assert _on_tooth(moved_labels, bad_points, A, FDI) < 0.6


def test_mirror_swaps_left_and_right_in_both_modalities(tooth_sample: ToothSample) -> None:
    image, labels, points, point_labels, A = tooth_sample
    config = AugmentConfig(rotate_deg=0.0, shift_mm=0.0, mirror_probability=1.0)
    _, lab, pts, plab, applied = augment_pair(image, labels, points, point_labels, A, config, np.random.default_rng(0))
    assert applied["mirror"] is True
    assert set(np.unique(plab)) == {26}
    assert 26 in np.unique(lab)
    assert FDI not in np.unique(lab)
    assert _on_tooth(lab, pts, A, 26) > 0.95


def test_config_validation() -> None:
    with pytest.raises(ConfigError, match="mirror_probability"):
        AugmentConfig(mirror_probability=2.0)
    with pytest.raises(ConfigError, match="≥ 0"):
        AugmentConfig(rotate_deg=-1.0)
