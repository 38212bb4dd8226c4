"""Single-process behaviour of the torchrun helpers: CPU device, nested batches moved, metrics unchanged."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from toothmcl_models.distributed import mean_across_ranks, setup_distributed, to_device


def test_single_process_setup(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    rank, world, device = setup_distributed()
    assert (rank, world) == (0, 1)
    assert device.type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_to_device_moves_nested_tensors_and_keeps_the_rest() -> None:
    batch: dict[str, Any] = {"cbct": torch.ones(2), "ios": {"upper": torch.zeros(3)}, "case": ["A", "B"], "n": 3}
    moved = to_device(batch, torch.device("cpu"))
    assert torch.equal(moved["cbct"], batch["cbct"])
    assert torch.equal(moved["ios"]["upper"], batch["ios"]["upper"])
    assert moved["case"] == ["A", "B"]
    assert moved["n"] == 3
    assert mean_across_ranks({"loss": 1.5}, world=1) == {"loss": 1.5}
