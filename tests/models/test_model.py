"""The whole model on a synthetic two-patient batch: token counts, labels, positions, gradients, determinism."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
import torch

from toothmcl_data.errors import InputError
from toothmcl_models.config import tiny
from toothmcl_models.model import ModelOutput, ToothMCL, build
from toothmcl_models.tokens import cbct_patch_labels, tooth_at_points


def test_build_is_deterministic_and_leaves_global_rng_alone() -> None:
    before = torch.random.get_rng_state()
    a, la = build(tiny(), seed=3)
    assert torch.equal(torch.random.get_rng_state(), before)
    b, lb = build(tiny(), seed=3)
    c, _ = build(tiny(), seed=4)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    assert la.state_dict().keys() == lb.state_dict().keys()


def test_tokens_of_a_synthetic_batch(synth_batch: dict[str, Any], synth_tokens: ModelOutput) -> None:
    cb, io = synth_tokens.cbct, synth_tokens.ios
    # CBCT: a 96×64×32 crop at stride 4 → 24·16·8 tokens per sample; IOS: 1024 → 256 → 64 points per jaw
    n = 24 * 16 * 8
    assert cb.embeddings.shape == (2 * n, 32)
    assert io.embeddings.shape == (2 * 2 * 64, 32)
    torch.testing.assert_close(cb.embeddings.norm(dim=-1), torch.ones(2 * n))
    torch.testing.assert_close(io.embeddings.norm(dim=-1), torch.ones(256))
    expected = cbct_patch_labels(synth_batch["cbct_labels"], 4, tiny().tokens.cbct_min_fraction).reshape(-1)
    assert torch.equal(cb.labels, expected)
    assert torch.equal(cb.match, cb.labels)
    assert 100 < int((cb.labels > 0).sum()) < 2 * n
    assert cb.sample.tolist() == [0] * n + [1] * n
    assert cb.patient[0] != cb.patient[-1]
    # first token: voxel (1.5, 1.5, 1.5) of sample 0's crop, in world mm
    wfc = synth_batch["world_from_crop"][0]
    torch.testing.assert_close(cb.centres[0], wfc[:3, :3] @ torch.full((3,), 1.5, dtype=torch.float64) + wfc[:3, 3])
    # IOS token centres are input points (world mm), and their `match` is the label map at that point
    upper0 = synth_batch["ios"]["upper"][0, :, :3].double()
    assert bool((torch.cdist(io.centres[:64], upper0).min(1).values < 1e-4).all())
    lookup = tooth_at_points(synth_batch["cbct_labels"][0], wfc, io.centres[:64], tiny().tokens.match_tolerance_mm)
    assert torch.equal(io.match[:64], lookup)
    assert set(io.labels.tolist()) <= {0} | {10 * q + t for q in range(1, 5) for t in range(1, 9)}


def test_one_training_step_reaches_every_part(synth_batch: dict[str, Any]) -> None:
    model, criterion = build(tiny(), seed=0)
    out = criterion(*_tokens(model, synth_batch))
    out.total.backward()
    assert torch.isfinite(out.total)
    for name, module in [
        ("cbct", model.cbct_encoder),
        ("upper", model.ios_encoders["upper"]),
        ("lower", model.ios_encoders["lower"]),
        ("heads", model.cbct_head),
        ("loss", criterion),
    ]:
        grads = [p.grad for p in module.parameters() if p.requires_grad]  # deeper Swin stages are frozen
        assert grads, name
        assert all(g is not None for g in grads), name
        assert sum(float(g.abs().sum()) for g in grads if g is not None) > 0, name


def test_swin_stages_past_the_token_stage_are_frozen_without_fusion() -> None:
    config = replace(tiny(), model=replace(tiny().model, cbct_token_fusion=False))  # token_stage 1
    model, _ = build(config, 0)
    assert model.frozen == [f"swinViT.layers{s}{c}" for s in (2, 3, 4) for c in ("c", "")]
    assert not any(p.requires_grad for p in model.cbct_encoder.swinViT.layers4.parameters())
    assert all(p.requires_grad for p in model.cbct_encoder.swinViT.layers1.parameters())
    assert model.cbct_head.net[0].in_features == 24


def test_fused_tokens_train_the_whole_cbct_encoder(synth_batch: dict[str, Any]) -> None:
    model, criterion = build(tiny(), 0)
    assert model.frozen == []
    assert model.cbct_head.net[0].in_features == 12 * (2 + 4 + 8 + 16)  # stages 1..4 concatenated
    out = criterion(*_tokens(model, synth_batch))
    out.total.backward()
    params = list(model.cbct_encoder.parameters())
    assert all(p.requires_grad for p in params)
    reached = sum(p.numel() for p in params if p.grad is not None and bool(p.grad.abs().sum() > 0))
    assert reached > 0.95 * sum(p.numel() for p in params)  # was 6.5 % at token stage 2 without fusion


def test_ios_levels_past_the_token_level_are_frozen() -> None:
    config = tiny()
    mid = replace(config, model=replace(config.model, ios=replace(config.model.ios, token_stage=1)))
    model, _ = build(mid, 0)
    assert model.frozen[-2:] == ["ios_encoders.*.downs.2", "ios_encoders.*.stages.2"]
    assert not any(p.requires_grad for p in model.ios_encoders["upper"].downs[2].parameters())  # type: ignore[index, union-attr]
    assert model.ios_head.net[0].in_features == 32


def _tokens(model: ToothMCL, batch: dict[str, Any]) -> tuple[Any, Any]:
    out = model(batch)
    return out.cbct, out.ios


def test_shared_jaw_encoder_halves_the_ios_parameters() -> None:
    config = tiny()
    shared = replace(config, model=replace(config.model, ios=replace(config.model.ios, shared_jaws=True)))
    n_sep = sum(p.numel() for p in build(config, 0)[0].ios_encoders.parameters())
    n_shared = sum(p.numel() for p in build(shared, 0)[0].ios_encoders.parameters())
    assert n_sep == 2 * n_shared


@pytest.mark.parametrize(
    ("drop", "message"),
    [("case", "model batch is missing key(s) ['case']"), ("ios", "missing key(s) ['ios']")],
)
def test_bad_batches_are_named(synth_batch: dict[str, Any], drop: str, message: str) -> None:
    batch = {k: v for k, v in synth_batch.items() if k != drop}
    model, _ = build(tiny(), 0)
    with pytest.raises(InputError) as err:
        model(batch)
    assert message in str(err.value)
