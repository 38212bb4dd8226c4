"""Cross-modal tooth retrieval: top-1 from pooled tooth embeddings, the CLI's JSON, the evaluation in pretraining."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch.nn import functional

from tests.store.conftest import records
from toothmcl_data.store import publish
from toothmcl_models.checkpoint import save_checkpoint
from toothmcl_models.evaluate import main as evaluate_main
from toothmcl_models.model import build
from toothmcl_models.pretrain import Pretrainer
from toothmcl_models.retrieval import _top1, load_pretrained_model
from toothmcl_models.runconfig import PretrainConfig


def test_top1_both_ways() -> None:
    g = torch.Generator().manual_seed(0)
    teeth = [11, 12, 13, 21, 22]
    base = functional.normalize(torch.randn(5, 8, generator=g), dim=1)
    cbct = dict(zip(teeth, base, strict=True))
    ios = {f: functional.normalize(v + 0.05 * torch.randn(8, generator=g), dim=0) for f, v in cbct.items()}
    assert _top1(cbct, ios) == (5, 5, 5)
    shuffled = dict(zip(teeth, [ios[f] for f in [12, 13, 21, 22, 11]], strict=True))
    assert _top1(cbct, shuffled) == (0, 0, 5)
    assert _top1(cbct, {11: ios[11], 99: ios[12]}) == (0, 0, 0)  # fewer than 2 shared teeth: no question asked


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("retrieval")
    publish(folder / "store", records(1), message="one coarse synthetic patient")
    config = PretrainConfig.from_yaml(Path("tiny"))
    model, loss = build(config.toothmcl, seed=5)
    save_checkpoint(
        folder / "run" / "checkpoints", 1, {"module": Pretrainer(model, loss).state_dict(), "config": config.to_dict()}
    )
    return folder / "store", folder / "run"


def test_cli_prints_the_retrieval_json(run: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    store, checkpoint = run
    args = ["retrieval", "--store", str(store), "--checkpoint", str(checkpoint), "--split", "train,val,test"]
    evaluate_main([*args, "--draws", "1", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"cbct_to_ios_top1", "ios_to_cbct_top1", "n_teeth"}
    assert out["n_teeth"] >= 10  # one patient, both jaws, teeth in both modalities
    assert 0.0 <= out["cbct_to_ios_top1"] <= 1.0
    assert 0.0 <= out["ios_to_cbct_top1"] <= 1.0
    trained, _ = load_pretrained_model(checkpoint)
    untrained, _ = load_pretrained_model(checkpoint, weights=False)
    key = "cbct_head.net.0.weight"
    assert not torch.equal(trained.state_dict()[key], untrained.state_dict()[key])  # seed 5 vs the config's 0
