"""Pair and case streams read exactly what was published: crops are the stored voxels, points the registered
vertices, and every draw is a function of (seed, epoch, index)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch
from scipy.spatial import cKDTree

from tests.stream.conftest import field
from toothmcl_data.errors import ConfigError
from toothmcl_data.fdi.teeth import tooth
from toothmcl_data.store import open_version
from toothmcl_data.stream.augment import AugmentConfig
from toothmcl_data.stream.dataset import (
    CaseDataset,
    PairDataset,
    StreamConfig,
    split_cases,
)
from toothmcl_data.types import apply_transform


def test_pair_sample_is_the_stored_pair(stream_store: Path) -> None:
    dataset = PairDataset(stream_store, split=None, config=StreamConfig(points=10, seed=3))
    version = open_version(stream_store)
    assert len(dataset) == len(version.pairs()) == len(version.table("pairs"))
    for index in (0, len(dataset) - 1):
        sample = dataset[index]
        slot = int(version.pairs().slots[index])
        stored = version.pairs().read(slot)
        cbct = field(sample, "cbct")
        assert cbct.dtype == torch.float32
        assert tuple(cbct.shape) == (1, *stored["cbct_crop"].shape)
        np.testing.assert_array_equal(cbct[0].numpy(), stored["cbct_crop"].astype(np.float32))
        np.testing.assert_array_equal(field(sample, "cbct_labels").numpy(), stored["label_crop"])
        np.testing.assert_array_equal(field(sample, "world_from_crop").numpy(), stored["world_from_crop"])
        points = field(sample, "ios").numpy()
        assert points.shape == (10, 6)
        rows = [np.flatnonzero((stored["ios_points"] == p).all(axis=1)) for p in points]
        assert all(len(r) >= 1 for r in rows)  # every drawn point is one of the stored points
        assert field(sample, "fdi") == stored["fdi"]
        assert field(sample, "ios_labels").tolist() == [stored["fdi"]] * 10
        case = version.case_ids()[stored["case_index"]]
        assert field(sample, "case") == case


def test_pair_draws_depend_on_seed_epoch_and_index_only(stream_store: Path) -> None:
    config = StreamConfig(points=8, seed=5)
    a, b = PairDataset(stream_store, split=None, config=config), PairDataset(stream_store, split=None, config=config)
    first = field(a[4], "ios").numpy()
    np.testing.assert_array_equal(field(b[4], "ios").numpy(), first)
    a.set_epoch(1)
    assert not np.array_equal(field(a[4], "ios").numpy(), first)
    a.set_epoch(0)
    np.testing.assert_array_equal(field(a[4], "ios").numpy(), first)


def test_pair_augmentation_keeps_its_record(stream_store: Path) -> None:
    config = StreamConfig(points=16, augment=AugmentConfig(rotate_deg=20.0, shift_mm=1.0))
    sample = PairDataset(stream_store, split=None, config=config)[0]
    applied = field(sample, "applied")
    assert abs(applied["rotate_deg"]) > 0.0
    plain = PairDataset(stream_store, split=None, config=StreamConfig(points=16))[0]
    assert not np.array_equal(field(sample, "cbct").numpy(), field(plain, "cbct").numpy())


def test_pair_split_filters_cases(stream_store: Path) -> None:
    version = open_version(stream_store)
    splits = {r["pseudonym"]: r["split"] for r in version.table("splits").to_pylist()}
    pairs = version.table("pairs").to_pylist()
    for split in ("train", "val", "test"):
        dataset = PairDataset(stream_store, split=split, config=StreamConfig(points=4))
        assert len(dataset) == sum(splits[r["pseudonym"]] == split for r in pairs)
        if len(dataset):
            assert splits[field(dataset[len(dataset) - 1], "case")] == split


def test_case_sample_on_the_volume_grid_is_the_stored_block(stream_store: Path) -> None:
    config = StreamConfig(crop_shape=(16, 12, 8), spacing_mm=1.2, points=200, seed=1)
    dataset = CaseDataset(stream_store, split=None, config=config)
    version = open_version(stream_store)
    assert [field(dataset[i], "case") for i in range(len(dataset))] == version.case_ids()
    sample = dataset[1]
    case = field(sample, "case")
    volume, labels = version.cbct(case), version.cbct_labels(case)
    assert volume is not None
    assert labels is not None
    world_from_crop = field(sample, "world_from_crop").numpy()
    lo = apply_transform(np.linalg.inv(volume.affine), world_from_crop[:3, 3][None])[0]
    np.testing.assert_allclose(lo, np.rint(lo), atol=1e-6)  # snapped onto the volume's voxels
    lo = np.rint(lo).astype(int)
    expected = np.zeros(config.crop_shape, dtype=np.float32)
    expected_labels = np.zeros(config.crop_shape, dtype=np.int16)
    src = tuple(slice(max(a, 0), min(a + s, n)) for a, s, n in zip(lo, config.crop_shape, volume.shape, strict=True))
    dst = tuple(slice(s.start - a, s.stop - a) for s, a in zip(src, lo, strict=True))
    expected[dst] = volume.array[src]
    expected_labels[dst] = labels.array[src]
    np.testing.assert_array_equal(field(sample, "cbct")[0].numpy(), expected)
    np.testing.assert_array_equal(field(sample, "cbct_labels").numpy(), expected_labels)
    assert (expected_labels > 0).any()  # centred on a tooth


def test_case_points_are_registered_vertices_with_their_labels(stream_store: Path) -> None:
    dataset = CaseDataset(stream_store, split=None, config=StreamConfig(crop_shape=(8, 8, 8), points=300))
    version = open_version(stream_store)
    sample = dataset[0]
    case = field(sample, "case")
    for jaw in ("upper", "lower"):
        mesh = version.ios(case, jaw)
        assert mesh.labels is not None
        T = version.registration(case, jaw).world_from_ios
        world = apply_transform(T, mesh.vertices)
        points = field(sample, "ios")[jaw].numpy()
        assert points.shape == (300, 6)
        d, idx = cKDTree(world).query(points[:, :3].astype(np.float64))
        assert d.max() < 1e-4  # float32 of the registered vertex
        np.testing.assert_array_equal(field(sample, "ios_labels")[jaw].numpy(), mesh.labels[idx])
        normals = version.ios_normals(case, jaw)[idx] @ T[:3, :3].T
        np.testing.assert_allclose(points[:, 3:], normals, atol=1e-5)


def test_case_dataset_needs_the_asked_for_jaws(stream_store: Path) -> None:
    assert len(CaseDataset(stream_store, split=None, config=StreamConfig(crop_shape=(8, 8, 8)), jaws=("upper",))) == 2


def test_split_cases_reads_the_splits_table() -> None:
    class Version:
        def case_ids(self) -> list[str]:
            return ["A", "B", "C"]

        def table(self, name: str) -> pa.Table:
            assert name == "splits"
            return pa.table({"pseudonym": ["C", "A", "B", "Z"], "split": ["val", "val", "train", "val"]})

    assert split_cases(Version(), "val") == ["A", "C"]  # sorted, and only cases of the version
    assert split_cases(Version(), None) == ["A", "B", "C"]
    with pytest.raises(ConfigError, match="split must be"):
        split_cases(Version(), "holdout")


@pytest.mark.parametrize(
    ("kwargs", "message"), [({"crop_shape": (8, 8)}, "three sizes"), ({"spacing_mm": 0.0}, "must be positive")]
)
def test_stream_config_validation_and_round_trip(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        StreamConfig(**kwargs)
    config = StreamConfig(crop_shape=(32, 16, 8), augment=AugmentConfig(mirror_probability=0.5))
    assert StreamConfig.from_dict(config.to_dict()) == config


@pytest.fixture(scope="module")
def verdict_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """P0000 passes both jaws; P0001's lower registration failed (its transform 40 mm off); P0002's upper went to
    review. Every case keeps its tooth pairs (as a hand-made record may), so only the verdicts can tell them."""
    from dataclasses import replace

    from tests.store.conftest import records
    from toothmcl_data.store import publish

    moved = np.eye(4)
    moved[:3, 3] = (40.0, 0.0, 0.0)
    out = []
    for record in records(3):
        regs = dict(record.registrations)
        if record.pseudonym == "P0001":
            regs["lower"] = replace(regs["lower"], world_from_ios=moved @ regs["lower"].world_from_ios, verdict="fail")
        if record.pseudonym == "P0002":
            regs["upper"] = replace(regs["upper"], verdict="review")
        out.append(replace(record, registrations=regs))
    path = tmp_path_factory.mktemp("verdicts") / "store"
    publish(path, out, message="one failed and one reviewed jaw")
    return path


def _pair_jaws(dataset: PairDataset) -> set[tuple[str, str]]:
    arrays = dataset.version.pairs()
    fdi = arrays.index["fdi"]
    return {(dataset._case_of[s], tooth(int(fdi[s])).jaw) for s in dataset._slots}


def test_streams_never_use_a_failed_registration(verdict_store: Path) -> None:
    from toothmcl_data.stream.jaws import JawDataset

    config = StreamConfig(crop_shape=(8, 8, 8), points=50)
    cases = CaseDataset(verdict_store, split=None, config=config)
    assert cases._cases == ["P0000", "P0002"]  # P0001's lower jaw failed: no case sample places it
    assert ("P0001", "lower") not in _pair_jaws(PairDataset(verdict_store, split=None, config=config))
    assert ("P0002", "upper") in _pair_jaws(PairDataset(verdict_store, split=None, config=config))
    jaws = JawDataset(verdict_store, split=None, config=config, cases=["P0001"])
    version = open_version(verdict_store)
    for i, (case, jaw) in enumerate(jaws.samples):
        sample = jaws[i]
        mesh = version.ios(case, jaw)
        T = version.registration(case, jaw).world_from_ios if jaw == "upper" else np.eye(4)  # failed: scan frame
        expected = apply_transform(T, mesh.vertices[field(sample, "vertex_index")])
        np.testing.assert_allclose(field(sample, "points").numpy()[:, :3], expected, atol=1e-4)


def test_streams_can_leave_reviewed_jaws_out(verdict_store: Path) -> None:
    config = StreamConfig(crop_shape=(8, 8, 8), points=50, verdicts=("pass",))
    assert CaseDataset(verdict_store, split=None, config=config)._cases == ["P0000"]
    pair_jaws = _pair_jaws(PairDataset(verdict_store, split=None, config=config))
    assert ("P0002", "upper") not in pair_jaws
    assert ("P0002", "lower") in pair_jaws
    with pytest.raises(ConfigError, match="never streamed"):
        StreamConfig(verdicts=("pass", "fail"))
