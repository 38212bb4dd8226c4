"""Fixtures for fine-tuning tests: a two-case store and a fake pretraining checkpoint of the tiny model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.store.conftest import records
from toothmcl_data.store import publish
from toothmcl_models.checkpoint import save_checkpoint
from toothmcl_models.model import build
from toothmcl_models.pretrain import Pretrainer
from toothmcl_models.runconfig import PretrainConfig

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def seg_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("finetune") / "store"
    publish(path, records(2), message="two coarse synthetic patients")
    return path


@pytest.fixture(scope="session")
def pretrain_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pretraining run folder whose checkpoint holds the tiny model drawn from seed 123 (not trained)."""
    config = PretrainConfig.from_yaml(Path("tiny"))
    model, loss = build(config.toothmcl, seed=123)
    folder = tmp_path_factory.mktemp("pretrain")
    save_checkpoint(
        folder / "checkpoints", 1, {"module": Pretrainer(model, loss).state_dict(), "config": config.to_dict()}
    )
    return folder / "checkpoints"
