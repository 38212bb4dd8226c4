"""Pretraining on a published version: exact resume, world-size independent samples, loss falls (slow)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.models.conftest import csv_rows, published
from toothmcl_models.pretrain import pretrain
from toothmcl_models.runconfig import CONFIG_DIR, PretrainConfig

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return published(tmp_path_factory, "pretrain", 4)


def _coarse_config(folder: Path) -> Path:
    """The tiny preset with stage-2 CBCT tokens (8× fewer): the sample-order tests need speed, not positives."""
    raw = yaml.safe_load((CONFIG_DIR / "pretrain_tiny.yaml").read_text())
    raw["model"]["cbct"]["token_stage"] = 2
    raw["tokens"]["cbct_min_fraction"] = 0.3
    path = folder / "coarse.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _torchrun(store: Path, out: Path, steps: int, nproc: int, config: str = "tiny") -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={nproc}",
        "-m",
        "toothmcl_models.pretrain",
        "--store",
        str(store),
        "--config",
        config,
        "--out",
        str(out),
        "--max-steps",
        str(steps),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_stop_and_resume_reproduces_the_uninterrupted_losses(store: Path, tmp_path: Path) -> None:
    config = PretrainConfig.from_yaml(Path("tiny"))
    pretrain(str(store), "latest", config, tmp_path / "a", max_steps=4)
    pretrain(str(store), "latest", config, tmp_path / "b", max_steps=3)  # stops mid-epoch 1
    pretrain(str(store), "latest", config, tmp_path / "b", max_steps=4, resume=True)
    a, b = csv_rows(tmp_path / "a" / "metrics.csv"), csv_rows(tmp_path / "b" / "metrics.csv")
    assert [r["step"] for r in b] == ["1", "2", "3", "4"]
    for row in a:  # issue 13: ≥ 100 CBCT and cross-modal positive pairs per step with the tiny preset
        assert float(row["positives_cbct"]) >= 100, row
        assert float(row["positives_cross"]) >= 100, row
    assert a == b  # every metric, bit for bit (CSV holds repr of the floats)
    assert csv_rows(tmp_path / "a" / "seen-rank0.csv") == csv_rows(tmp_path / "b" / "seen-rank0.csv")


def test_one_and_two_ranks_see_the_same_samples_in_the_same_global_order(store: Path, tmp_path: Path) -> None:
    coarse = _coarse_config(tmp_path)
    _torchrun(store, tmp_path / "two", steps=2, nproc=2, config=str(coarse))  # 2 ranks × batch 2: 1 step per epoch
    pretrain(str(store), "latest", PretrainConfig.from_yaml(coarse), tmp_path / "one", max_steps=4)
    one = csv_rows(tmp_path / "one" / "seen-rank0.csv")
    ranks = [csv_rows(tmp_path / "two" / f"seen-rank{r}.csv") for r in (0, 1)]
    for epoch in ("0", "1"):
        single = [r["index"] for r in one if r["epoch"] == epoch]
        r0 = [r["index"] for r in ranks[0] if r["epoch"] == epoch]
        r1 = [r["index"] for r in ranks[1] if r["epoch"] == epoch]
        assert not set(r0) & set(r1)  # disjoint parts
        interleaved = [x for pair in zip(r0, r1, strict=True) for x in pair]
        assert interleaved == single  # same set, same global order
    metrics = csv_rows(tmp_path / "two" / "metrics.csv")
    assert len(metrics) == 2
    assert all(float(r["positives_cross"]) > 0 for r in metrics)  # geometry found cross-modal positives


@pytest.mark.slow
def test_two_process_gloo_run_loss_falls(store: Path, tmp_path: Path) -> None:
    _torchrun(store, tmp_path / "run", steps=40, nproc=2)
    losses = [float(r["loss"]) for r in csv_rows(tmp_path / "run" / "metrics.csv")]
    assert len(losses) == 40
    assert sum(losses[-8:]) / 8 < 0.7 * sum(losses[:8]) / 8
    assert (tmp_path / "run" / "checkpoints" / "latest.pt").exists()
