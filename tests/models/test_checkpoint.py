"""Checkpoints: a save → restore round trip gives back identical tensors, optimiser and RNG states; checkpoints
of another run or not written by toothmcl are refused with a message that says so."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from toothmcl_data.errors import ConfigError, InputError, InputNotFoundError
from toothmcl_models.checkpoint import (
    LATEST,
    load_checkpoint,
    restore_training,
    save_checkpoint,
    training_state,
)


def _trained(seed: int) -> tuple[nn.Sequential, torch.optim.Optimizer]:
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    opt = torch.optim.AdamW(net.parameters(), lr=1e-2)
    for _ in range(3):
        loss = net(torch.randn(5, 4)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net, opt


def test_round_trip_restores_identical_tensors_optimiser_and_rng(tmp_path: Path) -> None:
    config = {"lr": 1e-2, "model": {"width": 8}}
    net, opt = _trained(0)
    save_checkpoint(tmp_path, 12, training_state(config, module=net, optimizer=opt))
    after_save = torch.rand(4)  # what the run would have drawn next
    fresh, fresh_opt = _trained(1)
    assert not torch.equal(fresh.state_dict()["0.weight"], net.state_dict()["0.weight"])
    step = restore_training(tmp_path, config, module=fresh, optimizer=fresh_opt)
    assert step == 12
    for (name, a), b in zip(net.state_dict().items(), fresh.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    saved, restored = opt.state_dict()["state"], fresh_opt.state_dict()["state"]
    assert saved.keys() == restored.keys()
    for k in saved:
        assert torch.equal(saved[k]["exp_avg"], restored[k]["exp_avg"])
        assert torch.equal(saved[k]["exp_avg_sq"], restored[k]["exp_avg_sq"])
    assert torch.equal(torch.rand(4), after_save)  # the generator continues where the checkpoint left it
    step_file = load_checkpoint(tmp_path / "step-00000012.pt")
    latest = load_checkpoint(tmp_path / LATEST)
    assert step_file["step"] == latest["step"] == 12
    assert torch.equal(step_file["module"]["0.weight"], latest["module"]["0.weight"])


def test_a_checkpoint_of_another_config_is_refused(tmp_path: Path) -> None:
    net, _ = _trained(0)
    save_checkpoint(tmp_path, 1, training_state({"task": "cbct"}, module=net))
    other, _ = _trained(1)
    before = other.state_dict()["0.weight"].clone()
    with pytest.raises(ConfigError, match="written with another config; resume with the same one"):
        restore_training(tmp_path, {"task": "ios"}, module=other)
    assert torch.equal(other.state_dict()["0.weight"], before)  # refused before anything was loaded


def test_a_file_without_a_step_is_not_a_toothmcl_checkpoint(tmp_path: Path) -> None:
    torch.save({"module": {}}, tmp_path / "foreign.pt")
    with pytest.raises(InputError, match="has no 'step'; it was not written by toothmcl"):
        load_checkpoint(tmp_path / "foreign.pt")
    (tmp_path / "run").mkdir()
    torch.save({"step": 1}, tmp_path / "run" / "step-00000001.pt")
    with pytest.raises(InputNotFoundError, match=f"run folder with {LATEST}"):
        load_checkpoint(tmp_path / "run")
