"""LR schedule per optimiser step, atomic checkpoints, metrics CSV that survives a resume."""

from __future__ import annotations

import csv
import itertools
import math
from pathlib import Path

import pytest
import torch

from toothmcl_data.errors import InputError, InputNotFoundError
from toothmcl_models.checkpoint import load_checkpoint, save_checkpoint
from toothmcl_models.runlog import RunLog
from toothmcl_models.schedule import warmup_cosine, warmup_cosine_factor


def test_schedule_is_stepped_per_optimiser_step() -> None:
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([param], lr=1e-3)
    sched = warmup_cosine(opt, warmup_steps=5, total_steps=105)
    lrs = []
    for _ in range(105):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(1e-3 / 5)
    assert lrs[4] == pytest.approx(1e-3)  # warmup ends after 5 optimiser steps, not 5 epochs
    assert lrs[55] == pytest.approx(1e-3 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert lrs[-1] < 1e-5
    assert all(a >= b for a, b in itertools.pairwise(lrs[4:]))


def test_factor_floor() -> None:
    assert warmup_cosine_factor(1000, warmup_steps=1, total_steps=10, min_factor=0.1) == pytest.approx(0.1)


def test_checkpoint_round_trip_and_errors(tmp_path: Path) -> None:
    save_checkpoint(tmp_path, 3, {"model": {"w": torch.ones(2)}, "config": {"a": 1}})
    save_checkpoint(tmp_path, 7, {"model": {"w": torch.full((2,), 7.0)}, "config": {"a": 1}})
    latest = load_checkpoint(tmp_path)
    assert latest["step"] == 7
    assert torch.equal(latest["model"]["w"], torch.full((2,), 7.0))
    assert load_checkpoint(tmp_path / "step-00000003.pt")["step"] == 3
    assert not list(tmp_path.glob(".*.tmp"))
    with pytest.raises(InputNotFoundError, match="no checkpoint here"):
        load_checkpoint(tmp_path / "nope")
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="not a readable toothmcl checkpoint"):
        load_checkpoint(tmp_path / "bad.pt")


def test_runlog_resume_drops_rows_after_the_checkpoint(tmp_path: Path) -> None:
    with RunLog(tmp_path) as log:
        for step in range(6):
            log.log(step, {"loss": float(10 - step)})
    with RunLog(tmp_path, resume_step=3) as log:
        for step in range(4, 6):
            log.log(step, {"loss": float(10 - step)})
    with (tmp_path / "metrics.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["step"]) for r in rows] == [0, 1, 2, 3, 4, 5]
    assert [float(r["loss"]) for r in rows] == [10, 9, 8, 7, 6, 5]
