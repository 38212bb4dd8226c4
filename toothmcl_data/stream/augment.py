"""Augmentations of a paired sample, applied to both modalities with one geometry.

A geometric augmentation is a rigid (or mirrored) *motion* ``M`` (4, 4) of the anatomy in LPS world mm about the
crop centre. The crop grid stays where it is (``world_from_crop`` unchanged); the CBCT content is resampled so that
the voxel at world position ``y`` shows what was at ``M⁻¹ y``, and the IOS points and normals move by ``M``. So a
moved sample's IOS points still lie on its CBCT teeth — the property the paper's code lost by rotating the volume
about a different axis than the points. A mirror (patient left ↔ right) also swaps FDI labels (11 ↔ 21 …) in both
modalities, since a mirrored tooth 11 *is* a tooth 21.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from scipy.spatial.transform import Rotation

from toothmcl_data.errors import ConfigError
from toothmcl_data.fdi import mirror_labels
from toothmcl_data.stream.sample import AugmentRecord
from toothmcl_data.types import Affine4x4, apply_transform


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges of the random augmentations (0 disables one)."""

    rotate_deg: float = 15.0
    """Maximum rotation angle about a random axis through the crop centre (degrees)."""
    shift_mm: float = 1.5
    """Maximum translation per axis (mm)."""
    mirror_probability: float = 0.0
    """Chance of a patient left ↔ right mirror (labels swapped to their mirror teeth)."""
    intensity_scale: float = 0.1
    """Maximum relative change of CBCT contrast (multiplicative, around the crop mean)."""
    noise_std: float = 25.0
    """Standard deviation of Gaussian noise added to the CBCT (scanner units)."""

    def __post_init__(self) -> None:
        if self.rotate_deg < 0 or self.shift_mm < 0 or self.intensity_scale < 0 or self.noise_std < 0:
            raise ConfigError(f"augmentation ranges must be ≥ 0, got {self}")
        if not 0.0 <= self.mirror_probability <= 1.0:
            raise ConfigError(f"mirror_probability must be in [0, 1], got {self.mirror_probability}")

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def crop_centre(world_from_crop: Affine4x4, shape: tuple[int, ...]) -> NDArray[np.float64]:
    """(3,) LPS world mm of the centre of a crop of ``shape`` (X, Y, Z)."""
    return apply_transform(world_from_crop, ((np.asarray(shape[:3], dtype=np.float64) - 1) / 2)[None])[0]


def draw_motion(
    config: AugmentConfig, rng: np.random.Generator, centre: NDArray[np.float64]
) -> tuple[Affine4x4, AugmentRecord]:
    """A random motion (4, 4) about ``centre`` (3,) LPS mm, and the record of what was drawn: ``rotate_deg``,
    ``axis``, ``shift_mm``, ``mirror``, ``centre_mm`` and the ``motion`` itself as nested lists
    (:class:`~toothmcl_data.stream.sample.AugmentRecord`)."""
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    angle = rng.uniform(-config.rotate_deg, config.rotate_deg)
    shift = rng.uniform(-config.shift_mm, config.shift_mm, size=3)
    mirror = bool(rng.random() < config.mirror_probability)
    linear = Rotation.from_rotvec(np.radians(angle) * axis).as_matrix()
    if mirror:
        linear = linear @ np.diag([-1.0, 1.0, 1.0])  # LPS x is patient left-right
    motion = np.eye(4)
    motion[:3, :3] = linear
    motion[:3, 3] = centre - linear @ centre + shift
    applied: AugmentRecord = {
        "rotate_deg": float(angle),
        "axis": axis.tolist(),
        "shift_mm": shift.tolist(),
        "mirror": mirror,
        "centre_mm": np.asarray(centre, dtype=np.float64).tolist(),
        "motion": motion.tolist(),
    }
    return motion, applied


def move_crop(
    image: NDArray[np.floating], labels: NDArray[np.integer] | None, world_from_crop: Affine4x4, motion: Affine4x4
) -> tuple[NDArray[np.float32], NDArray[np.int16] | None]:
    """Resample the crop content moved by ``motion`` on the same grid.

    image: (X, Y, Z) float, linear interpolation; labels: (X, Y, Z) FDI, nearest neighbour (mirrored when the
    motion mirrors), returned int16. Outside the original crop: image edge value, label 0.
    """
    crop_from_world = np.linalg.inv(world_from_crop)
    src_from_dst = crop_from_world @ np.linalg.inv(motion) @ world_from_crop
    matrix, offset = src_from_dst[:3, :3], src_from_dst[:3, 3]
    moved = ndimage.affine_transform(
        np.asarray(image, dtype=np.float32), matrix, offset, order=1, mode="nearest", output=np.float32
    )
    if labels is None:
        return moved, None
    moved_labels = ndimage.affine_transform(np.asarray(labels, dtype=np.int16), matrix, offset, order=0, cval=0)
    if np.linalg.det(motion[:3, :3]) < 0:
        moved_labels = mirror_labels(moved_labels).astype(np.int16)
    return moved, moved_labels


def move_points(
    points: NDArray[np.floating], labels: NDArray[np.integer] | None, motion: Affine4x4
) -> tuple[NDArray[np.float32], NDArray[np.int64] | None]:
    """Move (N, 6) xyz (LPS mm) + unit normals by ``motion``; mirror FDI ``labels`` (N,) when it mirrors."""
    pts = np.asarray(points, dtype=np.float64)
    xyz = apply_transform(motion, pts[:, :3])
    normals = pts[:, 3:6] @ motion[:3, :3].T
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    out = np.concatenate([xyz, normals], axis=1).astype(np.float32)
    if labels is None:
        return out, None
    moved = np.asarray(labels, dtype=np.int64)
    if np.linalg.det(motion[:3, :3]) < 0:
        moved = mirror_labels(moved).astype(np.int64)
    return out, moved


def augment_pair(
    image: NDArray[np.floating],
    labels: NDArray[np.integer],
    points: NDArray[np.floating],
    point_labels: NDArray[np.integer],
    world_from_crop: Affine4x4,
    config: AugmentConfig,
    rng: np.random.Generator,
) -> tuple[NDArray[np.float32], NDArray[np.int16], NDArray[np.float32], NDArray[np.int64], AugmentRecord]:
    """Apply one random motion to both modalities, then intensity changes to the (normalised) CBCT.

    image (X, Y, Z) float32 CBCT scanner values; labels (X, Y, Z) FDI; points (N, 6) LPS mm + normals; point_labels
    (N,) FDI. Returns the moved arrays (labels int16, point labels int64) and the record of what was applied.
    """
    motion, applied = draw_motion(config, rng, crop_centre(world_from_crop, image.shape))
    moved, moved_labels = move_crop(image, labels, world_from_crop, motion)
    moved_points, moved_point_labels = move_points(points, point_labels, motion)
    scale = 1.0 + rng.uniform(-config.intensity_scale, config.intensity_scale)
    mean = float(moved.mean())
    moved = (moved - mean) * scale + mean
    if config.noise_std > 0:
        moved = moved + rng.normal(0.0, config.noise_std, size=moved.shape).astype(np.float32)
    applied["intensity_scale"] = float(scale)
    applied["noise_std"] = config.noise_std
    if moved_labels is None or moved_point_labels is None:
        raise ConfigError("augment_pair needs labels for both modalities")
    return moved.astype(np.float32), moved_labels, moved_points, moved_point_labels, applied
