"""Jaw stream: one sample per labelled scan; points are the scan's vertices in the asked-for frame."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.stream.conftest import field
from toothmcl_data.errors import ConfigError
from toothmcl_data.store import open_version
from toothmcl_data.stream.augment import AugmentConfig
from toothmcl_data.stream.dataset import StreamConfig
from toothmcl_data.stream.jaws import JawDataset, canonical_from_scan
from toothmcl_data.types import apply_transform


@pytest.mark.parametrize("frame", ["world", "ios"])
def test_points_are_the_vertices_they_name(stream_store: Path, frame: str) -> None:
    dataset = JawDataset(stream_store, split=None, config=StreamConfig(points=500, seed=2), frame=frame)  # type: ignore[arg-type]
    version = open_version(stream_store)
    assert dataset.samples == [(c, j) for c in version.case_ids() for j in ("upper", "lower")]
    sample = dataset[3]
    case, jaw = field(sample, "case"), field(sample, "jaw")
    assert (case, jaw) == dataset.samples[3]
    mesh = version.ios(case, jaw)
    assert mesh.labels is not None
    index = field(sample, "vertex_index").numpy()
    assert len(np.unique(index)) == 500  # without replacement: the scan has more vertices
    T = version.registration(case, jaw).world_from_ios if frame == "world" else np.eye(4)
    points = field(sample, "points").numpy()
    np.testing.assert_allclose(points[:, :3], apply_transform(T, mesh.vertices[index]), atol=1e-4)
    np.testing.assert_allclose(points[:, 3:], version.ios_normals(case, jaw)[index] @ T[:3, :3].T, atol=1e-5)
    np.testing.assert_array_equal(field(sample, "labels").numpy(), mesh.labels[index])


def test_canonical_frame_is_a_rotation_that_centres_the_scan(stream_store: Path) -> None:
    dataset = JawDataset(stream_store, split=None, config=StreamConfig(points=400), frame="canonical")
    version = open_version(stream_store)
    case, jaw = dataset.samples[0]
    mesh = version.ios(case, jaw)
    T = canonical_from_scan(mesh.vertices, version.ios_normals(case, jaw))
    np.testing.assert_allclose(T[:3, :3] @ T[:3, :3].T, np.eye(3), atol=1e-9)
    assert np.linalg.det(T[:3, :3]) == pytest.approx(1.0)
    np.testing.assert_allclose(apply_transform(T, mesh.vertices).mean(0), 0.0, atol=1e-9)
    points = field(dataset[0], "points").numpy()
    np.testing.assert_allclose(
        points[:, :3], apply_transform(T, mesh.vertices[field(dataset[0], "vertex_index")]), atol=1e-4
    )


def test_augmentation_moves_points_rigidly(stream_store: Path) -> None:
    plain = JawDataset(stream_store, split=None, config=StreamConfig(points=300), frame="ios")[1]
    config = StreamConfig(points=300, augment=AugmentConfig(rotate_deg=30.0, shift_mm=2.0))
    moved = JawDataset(stream_store, split=None, config=config, frame="ios")[1]
    a, b = field(plain, "points").numpy()[:, :3], field(moved, "points").numpy()[:, :3]
    assert np.abs(a - b).max() > 0.5
    da = np.linalg.norm(a[:, None] - a[None, :50], axis=-1)
    db = np.linalg.norm(b[:, None] - b[None, :50], axis=-1)
    np.testing.assert_allclose(da, db, atol=1e-3)  # distances kept: a rigid motion


def test_bad_frame_and_cases_outside_the_split_are_refused(stream_store: Path) -> None:
    with pytest.raises(ConfigError, match="frame must be"):
        JawDataset(stream_store, split=None, frame="scanner")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"cases \['NOPE'\] are not in split"):
        JawDataset(stream_store, split=None, cases=["NOPE"])
    only = JawDataset(stream_store, split=None, cases=["P0001"], jaws=("lower",))
    assert only.samples == [("P0001", "lower")]


def test_canonical_frame_needs_ten_vertices() -> None:
    with pytest.raises(ConfigError, match="≥ 10 vertices"):
        canonical_from_scan(np.zeros((9, 3)), np.zeros((9, 3)))
