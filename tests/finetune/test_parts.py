"""Fine-tuning parts: the loss, the config file, the ablation's synthetic store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from toothmcl_data.errors import ConfigError
from toothmcl_data.store import publish
from toothmcl_data.stream.dataset import CaseDataset
from toothmcl_data.synth.config import SynthConfig
from toothmcl_data.synth.patient import make_patient
from toothmcl_data.synth.record import synth_record
from toothmcl_models.ablation import CPU, finetune_config, pretrain_config
from toothmcl_models.segconfig import FinetuneConfig
from toothmcl_models.seglosses import dice_ce_loss


def test_dice_ce_is_near_zero_for_a_confident_right_answer_and_ignores_minus_100() -> None:
    target = torch.tensor([[0, 1, 2, 1, -100]])
    logits = torch.nn.functional.one_hot(target.clamp_min(0), 3).movedim(-1, 1).float() * 50.0
    logits[0, :, 4] = torch.tensor([0.0, 0.0, 50.0])  # wrong, but ignored
    total, parts = dice_ce_loss(logits, target)
    assert float(total) < 1e-4
    assert float(parts["dice_loss"]) < 1e-4
    wrong = logits.roll(1, dims=1)
    assert float(dice_ce_loss(wrong, target)[0]) > 10.0


def test_finetune_config_round_trips() -> None:
    for task in ("cbct", "ios"):
        config = FinetuneConfig.from_yaml(Path("tiny"), task)
        assert FinetuneConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"task": "mri"}, "task must be 'cbct' or 'ios'"),
        ({"model": {"pet": {}}}, r"config\.model: unknown key\(s\) \['pet'\]; known keys: \['cbct', 'ios'\]"),
        ({"segment": {"jaws": ["middle"]}}, r"config\.segment\.jaws\[0\] must be 'upper' or 'lower', got 'middle'"),
        ({"segment": {"output_scheme": "universal"}}, "output_scheme must be 'fdi' or 'toothfairy2'"),
        ({"data": {"crop": 3}}, r"config\.data: unknown key\(s\) \['crop'\]; known keys: .* \(DataConfig\)"),
        (
            {"extra": 1},
            r"config: unknown key\(s\) \['extra'\]; known keys: \['data', 'model', 'optim', 'run', 'segment', 'task'\]",
        ),
    ],
)
def test_finetune_config_errors(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        FinetuneConfig.from_dict(raw)


def test_wrong_task_config_is_refused() -> None:
    with pytest.raises(ConfigError, match="config is for task 'ios' but 'cbct' was asked for"):
        FinetuneConfig.from_yaml(Path(__file__).parents[2] / "toothmcl_models/configs/finetune_ios_tiny.yaml", "cbct")


def test_ablation_store_feeds_pretraining_and_configs_share_the_encoders(tmp_path: Path) -> None:
    patient = make_patient(SynthConfig(spacing_mm=1.2, ios_resolution_mm=1.0), np.random.default_rng(5), index=5)
    record = synth_record(patient, "PRE005")
    assert len(record.pairs) >= 20
    assert set(record.registrations) == {"upper", "lower"}
    publish(tmp_path / "store", [record], message="one")
    pre = pretrain_config(CPU)
    dataset = CaseDataset(tmp_path / "store", "latest", None, pre.data.stream(0))
    sample = dataset[0]
    assert sample["cbct"].shape == (1, *pre.data.crop_shape)
    assert (sample["cbct_labels"] > 0).any()
    for task in ("cbct", "ios"):
        ft = finetune_config(CPU, task, pre, seed=1, cases=["A"])
        assert ft.cbct == pre.toothmcl.model.cbct
        assert ft.ios == pre.toothmcl.model.ios
        assert ft.segment.cases == ("A",)
        assert ft.run.seed == 1
