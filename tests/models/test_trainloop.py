"""The one training loop: weight-decay groups, drop_last that cannot starve a rank, accumulation, evaluation rows,
fine-tuning under torchrun like pretraining (slow)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from tests.models.conftest import csv_rows, published
from toothmcl_data.stream.order import ResumableSampler
from toothmcl_models.config import OptimConfig
from toothmcl_models.runconfig import DataConfig, RunConfig
from toothmcl_models.schedule import param_groups
from toothmcl_models.trainloop import drop_last, train_loop

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def seg_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return published(tmp_path_factory, "loop", 2)


def test_no_weight_decay_on_scalars_norms_and_biases() -> None:
    from toothmcl_models.config import tiny
    from toothmcl_models.model import build
    from toothmcl_models.pretrain import Pretrainer

    model, loss = build(tiny(), seed=0)
    module = Pretrainer(model, loss)
    decay, plain = param_groups(module, 0.05)
    assert decay["weight_decay"] == 0.05
    assert plain["weight_decay"] == 0.0
    plain_ids = {id(p) for p in plain["params"]}
    names = {n for n, p in module.named_parameters() if id(p) in plain_ids}
    assert {"loss.log_scale.cross", "loss.bias.cross", "loss.bias.cbct"} <= names
    assert any(n.endswith("norm1.weight") for n in names)
    assert any(n.endswith(".bias") for n in names)
    assert all(p.ndim >= 2 for p in decay["params"])
    n_trainable = sum(1 for p in module.parameters() if p.requires_grad)
    assert len(decay["params"]) + len(plain["params"]) == n_trainable


@pytest.mark.parametrize(("n", "world", "batch", "expected"), [(3, 2, 2, True), (3, 2, 4, False), (1, 1, 2, False)])
def test_drop_last_only_when_every_rank_has_a_full_batch(n: int, world: int, batch: int, expected: bool) -> None:
    for rank in range(world):
        assert drop_last(ResumableSampler(n, seed=0, rank=rank, world_size=world), batch) is expected


class _Toy(nn.Module):
    """y = w·x regression on a dataset of scalars; batch → (loss, parts)."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Linear(1, 1)

    def forward(self, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        x = batch["x"].float()[:, None]
        loss = ((self.w(x) - 3.0 * x) ** 2).mean()
        return loss, {"mse": loss.detach(), "train_mode": torch.tensor(float(self.training))}


class _Scalars(torch.utils.data.Dataset[dict[str, Any]]):
    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"x": torch.tensor(float(i + 1)), "case": f"c{i}", "index": i}


def test_small_dataset_accumulation_evaluation_and_resume(tmp_path: Path) -> None:
    optim = OptimConfig(lr=1e-2, warmup_steps=1, total_steps=6, accumulate=2, grad_clip=1.0)
    data = DataConfig(batch_size=4, num_workers=0, augment=None)  # 3 samples < batch 4: must not spin
    run = RunConfig(seed=1, checkpoint_every=1, threads=1, eval_every=3)
    seen_modes: list[bool] = []

    def evaluate(module: nn.Module, device: torch.device) -> dict[str, float]:
        seen_modes.append(module.training)
        assert isinstance(module, _Toy)
        return {"w": float(module.w.weight)}

    def run_once(out: Path, **kw: Any) -> dict[str, Any]:
        torch.manual_seed(0)
        model = _Toy()
        return train_loop(
            model, _Scalars(3), optim=optim, data=data, run=run, out=out, config={"toy": 1}, evaluate=evaluate, **kw
        )

    last = run_once(tmp_path / "a")
    assert last["step"] == 6
    assert last["train_mode"] == 1.0
    assert seen_modes
    assert not any(seen_modes)
    rows = csv_rows(tmp_path / "a" / "metrics.csv")
    assert [r["step"] for r in rows] == ["0", "1", "2", "3", "4", "5", "6"]
    assert rows[0]["eval_w"]
    assert not rows[0]["loss"]
    assert rows[3]["eval_w"]
    assert rows[6]["eval_w"]
    assert not rows[2]["eval_w"]
    seen = csv_rows(tmp_path / "a" / "seen-rank0.csv")
    assert len(seen) == 6 * 2 * 3  # 2 micro-batches of the whole (3-sample) epoch per optimiser step
    assert {r["epoch"] for r in seen} == {str(e) for e in range(12)}
    run_once(tmp_path / "b", max_steps=2)
    run_once(tmp_path / "b", resume=True)
    resumed = csv_rows(tmp_path / "b" / "metrics.csv")
    assert resumed[2]["eval_w"]  # the interrupted run evaluated where it stopped; training rows are identical:
    assert [{k: v for k, v in r.items() if k != "eval_w"} for r in resumed] == [
        {k: v for k, v in r.items() if k != "eval_w"} for r in rows
    ]


def test_finetune_ios_resume_is_bit_identical(tmp_path: Path, seg_store: Path) -> None:
    from toothmcl_models.finetune import finetune
    from toothmcl_models.segconfig import FinetuneConfig

    config = FinetuneConfig.from_yaml(Path("tiny"), "ios")
    config = replace(config, optim=replace(config.optim, total_steps=8))
    finetune(str(seg_store), "latest", config, tmp_path / "a", max_steps=3)
    finetune(str(seg_store), "latest", config, tmp_path / "b", max_steps=2)
    finetune(str(seg_store), "latest", config, tmp_path / "b", resume=True, max_steps=3)
    assert csv_rows(tmp_path / "a" / "metrics.csv") == csv_rows(tmp_path / "b" / "metrics.csv")
    assert csv_rows(tmp_path / "a" / "seen-rank0.csv") == csv_rows(tmp_path / "b" / "seen-rank0.csv")


@pytest.mark.slow
@pytest.mark.parametrize("task", ["cbct", "ios"])
def test_torchrun_two_process_finetuning(task: str, seg_store: Path, tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]
    cmd += ["-m", "toothmcl_models.finetune", task, "--store", str(seg_store), "--config", "tiny"]
    cmd += ["--out", str(tmp_path / "run"), "--max-steps", "3"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = csv_rows(tmp_path / "run" / "metrics.csv")
    assert [r["step"] for r in rows] == ["1", "2", "3"]
    ranks = [csv_rows(tmp_path / "run" / f"seen-rank{r}.csv") for r in (0, 1)]
    assert all(len(r) > 0 for r in ranks)
    assert (tmp_path / "run" / "checkpoints" / "latest.pt").exists()
