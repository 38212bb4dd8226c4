"""Volume stream: labelled CBCT crops, label crops sampled nearest-neighbour from the stored label map."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.stream.conftest import field
from toothmcl_data.errors import ConfigError
from toothmcl_data.store import open_version
from toothmcl_data.stream.dataset import StreamConfig
from toothmcl_data.stream.volumes import VolumeDataset
from toothmcl_data.types import apply_transform

SHAPE = (12, 10, 8)


def _grid(shape: tuple[int, int, int]) -> np.ndarray:
    return np.stack(np.meshgrid(*(np.arange(n) for n in shape), indexing="ij"), -1).reshape(-1, 3).astype(float)


def test_label_crop_is_the_label_map_at_the_nearest_voxel(stream_store: Path) -> None:
    config = StreamConfig(crop_shape=SHAPE, spacing_mm=0.9, seed=4)
    dataset = VolumeDataset(stream_store, split=None, config=config, foreground_probability=1.0)
    version = open_version(stream_store)
    assert dataset.cases == version.case_ids()
    for index in range(len(dataset)):
        sample = dataset[index]
        labels = version.cbct_labels(field(sample, "case"))
        assert labels is not None
        world_from_crop = field(sample, "world_from_crop").numpy()
        np.testing.assert_allclose(world_from_crop[:3, :3], np.eye(3) * 0.9)
        src = apply_transform(np.linalg.inv(labels.affine) @ world_from_crop, _grid(SHAPE))
        ijk = np.rint(src).astype(int)
        inside = np.all((ijk >= 0) & (ijk < np.array(labels.shape)), axis=1)
        expected = np.zeros(len(src), dtype=np.int16)
        expected[inside] = labels.array[tuple(ijk[inside].T)]
        got = field(sample, "cbct_labels").numpy().reshape(-1)
        assert np.mean(got == expected) > 0.99  # nearest-neighbour ties at exactly .5 may go either way
        assert (got > 0).any()  # foreground_probability 1: the crop holds a tooth
        assert tuple(field(sample, "cbct").shape) == (1, *SHAPE)


def test_background_crops_lie_in_the_volume_and_draws_repeat(stream_store: Path) -> None:
    config = StreamConfig(crop_shape=SHAPE, spacing_mm=1.2, seed=4)
    a = VolumeDataset(stream_store, split=None, config=config, foreground_probability=0.0)
    b = VolumeDataset(stream_store, split=None, config=config, foreground_probability=0.0)
    version = open_version(stream_store)
    volume = version.cbct(field(a[0], "case"))
    assert volume is not None
    centre = apply_transform(field(a[0], "world_from_crop").numpy(), ((np.array(SHAPE) - 1) / 2)[None])
    ijk = apply_transform(np.linalg.inv(volume.affine), centre)[0]
    assert np.all((ijk >= -1e-6) & (ijk <= np.array(volume.shape) - 1 + 1e-6))
    np.testing.assert_array_equal(field(a[0], "cbct").numpy(), field(b[0], "cbct").numpy())
    a.set_epoch(1)
    assert not np.array_equal(field(a[0], "world_from_crop").numpy(), field(b[0], "world_from_crop").numpy())


def test_bad_arguments_are_refused(stream_store: Path) -> None:
    with pytest.raises(ConfigError, match=r"foreground_probability must be in \[0, 1\]"):
        VolumeDataset(stream_store, split=None, foreground_probability=1.5)
    with pytest.raises(ConfigError, match="are not labelled CBCT cases"):
        VolumeDataset(stream_store, split=None, cases=["P0009"])
    assert VolumeDataset(stream_store, split=None, cases=["P0001"]).cases == ["P0001"]


def test_mirrored_crop_flips_patient_left_right_and_swaps_the_fdi_quadrants(stream_store: Path) -> None:
    """A mirror (finetune_cbct_cpu.yaml draws one half the time) flips the crop along LPS x, the patient's
    left-right axis, and renames every tooth to its mirror, so quadrant 1 (patient right, −x in LPS) stays on the
    −x side of quadrant 2 — the numbering a network learns from mirrored crops is the true one."""
    from toothmcl_data.fdi import mirror_labels
    from toothmcl_data.stream.augment import AugmentConfig

    shape = (64, 48, 32)  # at 2 mm: the whole coarse synthetic arch, both sides
    mirror = AugmentConfig(rotate_deg=0.0, shift_mm=0.0, mirror_probability=1.0, intensity_scale=0.0, noise_std=0.0)
    plain = VolumeDataset(
        stream_store,
        split=None,
        config=StreamConfig(crop_shape=shape, spacing_mm=2.0, seed=3),
        foreground_probability=1.0,
    )
    mirrored = VolumeDataset(
        stream_store,
        split=None,
        config=StreamConfig(crop_shape=shape, spacing_mm=2.0, seed=3, augment=mirror),
        foreground_probability=1.0,
    )
    a, b = plain[0], mirrored[0]
    np.testing.assert_array_equal(field(a, "world_from_crop").numpy(), field(b, "world_from_crop").numpy())
    image, labels = field(a, "cbct").numpy()[0], field(a, "cbct_labels").numpy()
    np.testing.assert_allclose(field(b, "cbct").numpy()[0], image[::-1], atol=1e-3)  # flipped along i = LPS x only
    moved = field(b, "cbct_labels").numpy()
    np.testing.assert_array_equal(moved, mirror_labels(labels[::-1]))
    for crop in (labels, moved):
        x = np.argwhere(crop > 0)[:, 0]
        quadrant = crop[crop > 0] // 10
        assert (quadrant == 1).any()
        assert (quadrant == 2).any()
        assert x[quadrant == 1].mean() < x[quadrant == 2].mean()  # patient right (quadrant 1) at −x in LPS
