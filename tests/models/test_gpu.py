"""One step of pretraining and of both fine-tunings on CUDA through the shared loop (bfloat16 autocast, and
float16 with its GradScaler). Skipped where no CUDA device is present."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Literal

import pytest
import torch

from tests.models.conftest import published

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return published(tmp_path_factory, "gpu", 2)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_pretraining_step_on_cuda(store: Path, tmp_path: Path, dtype: Literal["bfloat16", "float16"]) -> None:
    from toothmcl_models.pretrain import pretrain
    from toothmcl_models.runconfig import PretrainConfig

    config = PretrainConfig.from_yaml(Path("tiny"))
    optim = replace(config.toothmcl.optim, amp_dtype=dtype)
    config = replace(config, toothmcl=replace(config.toothmcl, optim=optim))
    last = pretrain(str(store), "latest", config, tmp_path / "run", max_steps=2)
    assert last["step"] == 2
    assert math.isfinite(last["loss"])
    assert last["positives_cross"] > 0


@pytest.mark.parametrize("task", ["cbct", "ios"])
def test_finetuning_step_on_cuda(store: Path, tmp_path: Path, task: str) -> None:
    from toothmcl_models.finetune import finetune
    from toothmcl_models.segconfig import FinetuneConfig

    config = FinetuneConfig.from_yaml(Path("tiny"), task)
    last = finetune(str(store), "latest", config, tmp_path / "run", max_steps=2)
    assert last["step"] == 2
    assert math.isfinite(last["loss"])
