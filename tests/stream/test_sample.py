"""Typed samples: every stream dataset returns the fields, dtypes and shapes its sample type documents, and keeps
the augmentation record, enough to undo the augmentation."""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_type_hints

import numpy as np
import pytest
import torch

from toothmcl_data.errors import InputError
from toothmcl_data.stream.augment import AugmentConfig
from toothmcl_data.stream.collate import collate
from toothmcl_data.stream.dataset import CaseDataset, PairDataset, StreamConfig
from toothmcl_data.stream.jaws import JawDataset
from toothmcl_data.stream.sample import (
    FIELDS,
    AugmentRecord,
    CaseSample,
    JawSample,
    Kind,
    PairSample,
    VolumeSample,
    check_sample,
)
from toothmcl_data.stream.volumes import VolumeDataset
from toothmcl_data.types import apply_transform

CROP = (12, 10, 8)
AUGMENT = AugmentConfig(rotate_deg=20.0, shift_mm=1.0, mirror_probability=1.0)
GEOMETRIC = {"rotate_deg", "axis", "shift_mm", "mirror", "centre_mm", "motion"}


def _datasets(store: Path, augment: AugmentConfig | None) -> dict[Kind, Any]:
    config = StreamConfig(crop_shape=CROP, spacing_mm=0.9, points=64, seed=1, augment=augment)
    return {
        "pair": PairDataset(store, split=None, config=config),
        "case": CaseDataset(store, split=None, config=config),
        "volume": VolumeDataset(store, split=None, config=config),
        "jaw": JawDataset(store, split=None, config=config),
    }


def test_the_documented_fields_are_the_typed_fields() -> None:
    types: dict[Kind, type] = {"pair": PairSample, "case": CaseSample, "volume": VolumeSample, "jaw": JawSample}
    for kind, sample_type in types.items():
        assert set(get_type_hints(sample_type)) == set(FIELDS[kind]), kind


@pytest.mark.parametrize("augment", [None, AUGMENT], ids=["plain", "augmented"])
def test_every_dataset_returns_its_documented_sample(stream_store: Path, augment: AugmentConfig | None) -> None:
    for kind, dataset in _datasets(stream_store, augment).items():
        sample = dataset[0]
        sizes = check_sample(sample, kind)
        if kind in ("pair", "case", "volume"):
            assert sample["cbct"].dtype == torch.float32
            assert sample["cbct_labels"].dtype == torch.int16
        if kind in ("case", "volume"):
            assert (sizes["X"], sizes["Y"], sizes["Z"]) == CROP
        if kind == "case":
            assert sizes["N[upper]"] == sizes["N[lower]"] == 64
        if kind == "jaw":
            assert sizes["N"] == 64
        applied = sample["applied"]
        if augment is None:
            assert applied == {}, kind
            continue
        assert set(applied) >= GEOMETRIC, kind
        assert applied["mirror"] is True  # mirror_probability 1
        motion = np.asarray(applied["motion"])
        assert motion.shape == (4, 4)
        assert np.linalg.det(motion[:3, :3]) == pytest.approx(-1.0)  # a rotation after a mirror
        centre = np.asarray(applied["centre_mm"])  # the centre moves by the shift only
        np.testing.assert_allclose(apply_transform(motion, centre[None])[0], centre + applied["shift_mm"], atol=1e-9)
        if kind == "pair":
            assert {"intensity_scale", "noise_std"} <= set(applied)
        batch = collate([sample, dataset[min(1, len(dataset) - 1)]])
        assert len(batch["applied"]) == 2
        assert batch["applied"][0] == applied


def test_the_record_undoes_a_jaw_augmentation(stream_store: Path) -> None:
    plain = _datasets(stream_store, None)["jaw"][2]
    moved = _datasets(stream_store, AUGMENT)["jaw"][2]
    np.testing.assert_array_equal(moved["vertex_index"].numpy(), plain["vertex_index"].numpy())  # same points drawn
    back = np.linalg.inv(np.asarray(moved["applied"]["motion"]))
    points = moved["points"].numpy().astype(np.float64)
    np.testing.assert_allclose(apply_transform(back, points[:, :3]), plain["points"][:, :3].numpy(), atol=1e-3)
    np.testing.assert_allclose(points[:, 3:] @ back[:3, :3].T, plain["points"][:, 3:].numpy(), atol=1e-4)
    assert not np.array_equal(moved["labels"].numpy(), plain["labels"].numpy())  # the mirror swapped FDI sides


def test_check_sample_names_what_is_wrong() -> None:
    record: AugmentRecord = {}
    sample: VolumeSample = {
        "cbct": torch.zeros((1, 4, 4, 4)),
        "cbct_labels": torch.zeros((4, 4, 4), dtype=torch.int16),
        "world_from_crop": torch.eye(4, dtype=torch.float64),
        "case": "P0",
        "index": 0,
        "applied": record,
    }
    assert check_sample(sample, "volume") == {"X": 4, "Y": 4, "Z": 4}
    with pytest.raises(InputError, match=r"'cbct_labels'.*expected dtype torch.int16, got torch.int64"):
        check_sample({**sample, "cbct_labels": torch.zeros((4, 4, 4), dtype=torch.int64)}, "volume")
    with pytest.raises(InputError, match=r"'cbct_labels'.*with X = 4, got \(5, 4, 4\)"):
        check_sample({**sample, "cbct_labels": torch.zeros((5, 4, 4), dtype=torch.int16)}, "volume")
    with pytest.raises(InputError, match="expected fields"):
        check_sample({k: v for k, v in sample.items() if k != "applied"}, "volume")
    with pytest.raises(InputError, match="expected str, got int"):
        check_sample({**sample, "case": 3}, "volume")
