"""Fine-tuning: the loss falls, pretrained encoders really load, runs resume exactly."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from toothmcl_data.errors import ConfigError
from toothmcl_data.stream.collate import collate
from toothmcl_data.stream.jaws import JawDataset
from toothmcl_data.stream.volumes import VolumeDataset
from toothmcl_models.checkpoint import load_checkpoint
from toothmcl_models.config import CBCTEncoderConfig
from toothmcl_models.finetune import SegmentationStep, finetune, make_dataset
from toothmcl_models.segconfig import FinetuneConfig
from toothmcl_models.segmentation import (
    CBCTSegmenter,
    IOSSegmenter,
    build_segmenter,
    classes_to_fdi,
    ios_class_table,
    load_pretrained,
)


def _config(task: str) -> FinetuneConfig:
    return FinetuneConfig.from_yaml(Path("tiny"), task)


def _losses_on_one_batch(config: FinetuneConfig, batch: dict, steps: int) -> list[float]:
    net = build_segmenter(config.task, config.cbct, config.ios, seed=0)
    step = SegmentationStep(net, config)
    opt = torch.optim.AdamW(step.parameters(), lr=3e-3)
    losses = []
    for _ in range(steps):
        loss, _ = step(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses


def test_a_few_cbct_steps_reduce_the_loss(seg_store: Path) -> None:
    tiny = _config("cbct")
    config = replace(tiny, data=replace(tiny.data, crop_shape=(64, 32, 32), spacing_mm=1.2))
    dataset = make_dataset(str(seg_store), "latest", config)
    assert isinstance(dataset, VolumeDataset)
    assert len(dataset) == 2
    batch = collate([dataset[1]])
    assert batch["cbct"].shape == (1, 1, 64, 32, 32)
    assert (batch["cbct_labels"] > 0).sum() > 500
    losses = _losses_on_one_batch(config, batch, 5)
    assert losses[-1] < 0.9 * losses[0], losses


def test_a_few_ios_steps_reduce_the_loss(seg_store: Path) -> None:
    config = _config("ios")
    dataset = make_dataset(str(seg_store), "latest", config)
    assert isinstance(dataset, JawDataset)
    assert len(dataset) == 4
    batch = collate([dataset[i] for i in range(4)])
    assert batch["points"].shape == (4, 1024, 6)
    assert batch["jaw"] == ["upper", "lower", "upper", "lower"]
    losses = _losses_on_one_batch(config, batch, 10)
    assert losses[-1] < 0.9 * losses[0], losses


def test_pretrained_init_copies_the_encoder_weights(pretrain_checkpoint: Path) -> None:
    weights = load_checkpoint(pretrain_checkpoint)["module"]
    cbct = _config("cbct")
    net = build_segmenter("cbct", cbct.cbct, cbct.ios, seed=0)
    assert isinstance(net, CBCTSegmenter)
    key = "layers1.0.blocks.0.attn.qkv.weight"
    assert not torch.equal(net.net.swinViT.state_dict()[key], weights[f"model.cbct_encoder.swinViT.{key}"])
    loaded = load_pretrained(net, pretrain_checkpoint)
    assert len(loaded) == len(net.net.swinViT.state_dict())
    for name, tensor in net.net.swinViT.state_dict().items():
        assert torch.equal(tensor, weights[f"model.cbct_encoder.swinViT.{name}"]), name
    ios = _config("ios")
    seg = build_segmenter("ios", ios.cbct, ios.ios, seed=0)
    assert isinstance(seg, IOSSegmenter)
    load_pretrained(seg, pretrain_checkpoint)
    for jaw in ("upper", "lower"):
        for name, tensor in seg.encoders[jaw].state_dict().items():
            assert torch.equal(tensor, weights[f"model.ios_encoders.{jaw}.{name}"]), (jaw, name)


def test_pretrained_init_refuses_another_architecture(pretrain_checkpoint: Path) -> None:
    net = CBCTSegmenter(CBCTEncoderConfig(feature_size=24, depths=(1, 1, 1, 1), num_heads=(1, 2, 3, 6)))
    with pytest.raises(ConfigError, match=r"feature_size.*12 \(checkpoint\) vs 24"):
        load_pretrained(net, pretrain_checkpoint)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_ios_run_from_pretrained_resumes_exactly(seg_store: Path, pretrain_checkpoint: Path, tmp_path: Path) -> None:
    config = _config("ios")
    a = finetune(str(seg_store), "latest", config, tmp_path / "a", init=pretrain_checkpoint, max_steps=4)
    assert a["pretrained_tensors"] > 0
    assert a["step"] == 4
    finetune(str(seg_store), "latest", config, tmp_path / "b", init=pretrain_checkpoint, max_steps=2)
    finetune(str(seg_store), "latest", config, tmp_path / "b", resume=True, max_steps=4)
    la = [float(r["loss"]) for r in _rows(tmp_path / "a" / "metrics.csv")]
    lb = [float(r["loss"]) for r in _rows(tmp_path / "b" / "metrics.csv")]
    assert len(la) == 4
    assert la == pytest.approx(lb, rel=1e-5)
    state = load_checkpoint(tmp_path / "b" / "checkpoints")
    assert state["step"] == 4
    assert state["task"] == "ios"


def test_class_maps_round_trip() -> None:
    table = ios_class_table("lower")
    assert table[41].item() == 9
    assert table[31].item() == 1
    assert table[11].item() == -100
    np.testing.assert_array_equal(classes_to_fdi(np.array([0, 1, 32])), [0, 11, 48])
    np.testing.assert_array_equal(classes_to_fdi(np.array([0, 9, 16]), "upper"), [0, 21, 28])
