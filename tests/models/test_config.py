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


def _shipped() -> list[Path]:
    from toothmcl_models.config import CONFIG_DIR

    return sorted(CONFIG_DIR.glob("*.yaml"))


def test_presets_live_in_yaml_and_every_shipped_preset_loads() -> None:
    from toothmcl_models.ablation import AblationConfig, load_config
    from toothmcl_models.config import preset
    from toothmcl_models.runconfig import PretrainConfig
    from toothmcl_models.segconfig import FinetuneConfig

    loaded: dict[str, object] = {}
    for path in _shipped():
        kind, _, name = path.stem.partition("_")
        if kind == "toothmcl":
            loaded[path.stem] = preset(name)
        elif kind == "pretrain":
            loaded[path.stem] = PretrainConfig.from_yaml(Path(name))
        elif kind == "finetune":
            task, _, name = name.partition("_")
            config = FinetuneConfig.from_yaml(Path(name), task)
            assert config.task == task
            loaded[path.stem] = config
        elif kind == "ablation":
            loaded[path.stem] = load_config(Path(name))
        else:
            raise AssertionError(f"{path.name}: a preset of no known kind")
    assert len(loaded) == len(_shipped()) >= 12
    assert paper() == preset("paper")
    assert paper().tokens.cbct_min_fraction == 0.3
    assert isinstance(loaded["ablation_cpu"], AblationConfig)  # its values live only there (test_ablation.py)
    cpu = loaded["pretrain_cpu"]
    assert isinstance(cpu, PretrainConfig)
    assert cpu.data.crop_shape == (64, 64, 32)
    assert cpu.toothmcl.optim.lr == 0.002


def test_run_configs_round_trip_and_take_overrides() -> None:
    from toothmcl_models.runconfig import PretrainConfig
    from toothmcl_models.segconfig import FinetuneConfig

    pre = PretrainConfig.from_yaml(Path("cpu"), ["optim.lr=0.01", "data.augment=null", "model.ios.blocks=[2, 2, 2]"])
    assert (pre.toothmcl.optim.lr, pre.data.augment, pre.toothmcl.model.ios.blocks) == (0.01, None, (2, 2, 2))
    assert PretrainConfig.from_dict(pre.to_dict()) == pre
    fine = FinetuneConfig.from_yaml(Path("cpu"), "ios", ["segment.jaws=[lower]", "run.seed=4"])
    assert (fine.segment.jaws, fine.run.seed) == (("lower",), 4)
    assert FinetuneConfig.from_dict(fine.to_dict()) == fine
    assert FinetuneConfig.from_dict({"task": "ios", "data": {"points": 512}}).data.augment is None
    with pytest.raises(ConfigError, match=r"finetune_ios_cpu\.yaml: model: unknown key\(s\) \['decoder'\]"):
        FinetuneConfig.from_yaml(Path("cpu"), "ios", ["model.decoder.width=3"])
    with pytest.raises(ConfigError, match=r"pretrain_cpu\.yaml: run\.seed: .*got 'x' \(from --set run\.seed=x\)"):
        PretrainConfig.from_yaml(Path("cpu"), ["run.seed=x"])


def test_unknown_key_in_a_yaml_file_names_file_and_key(tmp_path: Path) -> None:
    from toothmcl_models.runconfig import PretrainConfig

    path = tmp_path / "run.yaml"
    path.write_text("optim: {lr: 0.01, lr_max: 1}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"^{path}: optim: unknown key\(s\) \['lr_max'\]; known keys: .*lr"):
        PretrainConfig.from_yaml(path)
    path.write_text("optim: {lr: fast}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"^{path}: optim\.lr: Input should be a valid number.*got 'fast'$"):
        PretrainConfig.from_yaml(path)


@pytest.mark.parametrize("module", ["pretrain", "finetune"])
def test_set_on_the_training_command_lines_reaches_the_config(
    module: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib

    cli = importlib.import_module(f"toothmcl_models.{module}")
    seen: list[Any] = []

    def fake(store: str, version: str, config: Any, out: Path, **kwargs: Any) -> dict[str, Any]:
        seen.append(config)
        return {"step": 0, "loss": 0.0, "pretrained_tensors": 0}

    monkeypatch.setattr(cli, module, fake)
    task = ["cbct"] if module == "finetune" else []
    common = [*task, "--store", "s", "--config", "tiny", "--out", str(tmp_path)]
    cli.main([*common, "--set", "optim.lr=0.01", "--set", "run.seed=7"])
    assert (seen[0].optim if module == "finetune" else seen[0].toothmcl.optim).lr == 0.01
    assert seen[0].run.seed == 7
    with pytest.raises(ConfigError, match=r"optim: unknown key\(s\) \['lrr'\].*\(from --set optim\.lrr=1\)"):
        cli.main([*common, "--set", "optim.lrr=1"])
