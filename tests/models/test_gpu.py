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


def test_paper_presets_one_step_each_on_cuda(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``bench/gpu.py`` on the paper presets (feature-48 Swin on 256×256×64 crops at 0.3 mm, 24,000 points per jaw,
    bf16): one timed step of pretraining and both fine-tunings, with memory, throughput and (known GPUs) MFU."""
    from tests.models.test_bench_gpu import run_json

    report = run_json(["--set", "steps=1", "--set", "warmup=1", "--out", str(tmp_path)], capsys)
    assert report["preset"] == "paper"
    for task in ("pretrain", "cbct", "ios"):
        r = report[task]
        assert r["loss_finite"], task
        assert r["peak_memory_gib"] > 0.1, task
        assert r["flops_per_step_per_rank"] > 1e11, task
        if report["peak_tflops"] is not None:
            assert 0.0 < r["mfu"] < 1.0, task
    assert report["cbct"]["crop_shape"] == [256, 256, 64]
    assert report["ios"]["points_per_jaw"] == 24000
