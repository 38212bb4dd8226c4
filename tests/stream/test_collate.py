"""Collation: tensors stack on a new batch axis, per-jaw dicts stack per jaw, everything else becomes a list."""

from __future__ import annotations

import pytest
import torch

from toothmcl_data.errors import InputError
from toothmcl_data.stream.collate import collate


def _sample(i: int) -> dict:
    return {
        "cbct": torch.full((1, 2, 2, 2), float(i)),
        "ios": {"upper": torch.full((3, 6), float(i)), "lower": torch.full((4, 6), -float(i))},
        "case": f"P{i}",
        "applied": {"mirror": bool(i % 2)},
    }


def test_stacks_tensors_and_jaws_and_lists_the_rest() -> None:
    batch = collate([_sample(1), _sample(2), _sample(3)])
    assert batch["cbct"].shape == (3, 1, 2, 2, 2)
    assert batch["cbct"][:, 0, 0, 0, 0].tolist() == [1.0, 2.0, 3.0]
    assert batch["ios"]["upper"].shape == (3, 3, 6)
    assert batch["ios"]["lower"][:, 0, 0].tolist() == [-1.0, -2.0, -3.0]
    assert batch["case"] == ["P1", "P2", "P3"]
    assert batch["applied"] == [{"mirror": True}, {"mirror": False}, {"mirror": True}]


def test_refuses_an_empty_batch_and_mixed_jaws() -> None:
    with pytest.raises(InputError, match="empty batch"):
        collate([])
    other = _sample(2)
    del other["ios"]["lower"]
    with pytest.raises(InputError, match="same 'ios' entries"):
        collate([_sample(1), other])
