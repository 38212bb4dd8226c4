"""Model/loss/optimiser configuration: presets, YAML round-trip, validation messages."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from toothmcl_data.errors import ConfigError
from toothmcl_models.config import PRESETS, CBCTEncoderConfig, ToothMCLConfig, paper, tiny


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_round_trip_through_yaml(name: str, tmp_path: Path) -> None:
    config = PRESETS[name]()
    assert ToothMCLConfig.from_yaml(config.to_yaml()) == config
    assert ToothMCLConfig.from_dict(config.to_dict()) == config
    path = tmp_path / "c.yaml"
    path.write_text(config.to_yaml(), encoding="utf-8")
    assert ToothMCLConfig.from_yaml(path) == config


def test_paper_preset_values() -> None:
    c = paper()
    assert c.model.cbct.feature_size == 48
    assert c.model.embed_dim == 512
    assert c.loss.kind == "sigmoid"
    assert c.loss.cross_weight == 0.5
    assert c.loss.init_bias == -10.0
    assert c.loss.init_temperature == pytest.approx(512**-0.5)
    assert c.model.cbct.token_stride == 32
    assert c.model.cbct.token_channels == 768
    assert c.model.cbct.swinunetr_kwargs()["use_v2"] is True
    assert tiny().model.cbct.feature_size == 12


def _with(section: str, **changes: Any) -> dict[str, Any]:
    d = tiny().to_dict()
    target = d
    for key in section.split("."):
        target = target[key]
    target.update(changes)
    return d


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_with("model.cbct", feature_size=20), "cbct.feature_size must be a positive multiple of 12, got 20"),
        (_with("model.cbct", token_stage=5), "cbct.token_stage must be 0..4, got 5"),
        (_with("model.cbct", num_heads=[5, 2, 3, 6]), "cbct.num_heads[0]=5 must divide the stage width 12"),
        (_with("model.cbct", intensity_range=[10, 0]), "intensity_range must be (low, high) with low < high"),
        (_with("model.ios", strides=[2, 4, 4]), "ios.strides[0] must be 1"),
        (_with("model.ios", blocks=[1, 1]), "ios.blocks must have 3 entries, got 2"),
        (_with("model.ios", share_planes=5), "ios.share_planes=5 must divide every width"),
        (_with("tokens", unlabelled="ignore"), "tokens.unlabelled must be 'negatives' or 'exclude'"),
        (_with("tokens", cbct_min_fraction=0.0), "tokens.cbct_min_fraction must be in (0, 1]"),
        (_with("loss", kind="triplet"), "loss.kind must be 'sigmoid' or 'infonce', got 'triplet'"),
        (_with("loss", init_temperature=0.001), "1/init_temperature ≤ max_scale=100.0"),
        (_with("optim", warmup_steps=200), "optim.warmup_steps must be in [0, total_steps=100), got 200"),
        (_with("model", depth=3), "config.model: unknown key(s) ['depth']; known keys:"),
        ({"model": 3}, "config.model: expected a mapping, got int"),
    ],
)
def test_invalid_configs_are_rejected_with_the_reason(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        ToothMCLConfig.from_dict(data)
    assert message in str(err.value)


def test_bad_yaml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("model: [1, 2\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad\.yaml: not valid YAML"):
        ToothMCLConfig.from_yaml(path)


def test_swinunetr_kwargs_follow_the_config() -> None:
    kw = CBCTEncoderConfig(feature_size=24, window_size=5).swinunetr_kwargs()
    assert kw["feature_size"] == 24
    assert kw["window_size"] == 5
    assert kw["depths"] == (2, 2, 2, 2)
    assert math.isclose(CBCTEncoderConfig().token_stride, 32)
