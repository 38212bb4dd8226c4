"""Sigmoid and InfoNCE losses: hand-computed values, gradients to scale and bias, learning on toy tokens."""

from __future__ import annotations

import math

import pytest
import torch

from toothmcl_models.config import LossConfig, TokenConfig
from toothmcl_models.losses import ToothMCLLoss, info_nce_loss, sigmoid_loss
from toothmcl_models.tokens import TokenSet

ZA = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
ZB = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
DIAG = torch.eye(2, dtype=torch.bool)
ALL = torch.ones(2, 2, dtype=torch.bool)


def _nls(x: float) -> float:
    """−log σ(x)."""
    return math.log1p(math.exp(-x))


def test_sigmoid_loss_equals_hand_computation_2x2() -> None:
    # logits = 2·cos − 1 = [[1, 0.2], [−1, 0.6]]; positives on the diagonal
    expected = (_nls(1.0) + _nls(-0.2) + _nls(1.0) + _nls(0.6)) / 2
    got = sigmoid_loss(ZA, ZB, DIAG, ALL, torch.tensor(2.0), torch.tensor(-1.0))
    assert float(got) == pytest.approx(expected, rel=1e-6)
    # a pair outside `valid` contributes nothing
    valid = ALL.clone()
    valid[0, 1] = False
    got = sigmoid_loss(ZA, ZB, DIAG, valid, torch.tensor(2.0), torch.tensor(-1.0))
    assert float(got) == pytest.approx((_nls(1.0) + _nls(1.0) + _nls(0.6)) / 2, rel=1e-6)


def test_info_nce_equals_hand_computation_2x2() -> None:
    # logits = 2·cos = [[2, 1.2], [0, 1.6]]
    rows = (-(2 - math.log(math.exp(2) + math.exp(1.2))) - (1.6 - math.log(1 + math.exp(1.6)))) / 2
    cols = (-(2 - math.log(math.exp(2) + 1)) - (1.6 - math.log(math.exp(1.2) + math.exp(1.6)))) / 2
    got = info_nce_loss(ZA, ZB, DIAG, ALL, torch.tensor(2.0))
    assert float(got) == pytest.approx((rows + cols) / 2, rel=1e-6)
    assert float(info_nce_loss(ZA, ZB, DIAG, ALL, torch.tensor(2.0), symmetric=False)) == pytest.approx(rows)


def _toy_tokens(seed: int, dim: int = 8) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Two patients × 3 teeth × 4 tokens, plus 4 unlabelled tokens: features = tooth prototype + noise."""
    g = torch.Generator().manual_seed(seed)
    protos = torch.randn(3, dim, generator=g)
    labels = torch.tensor([11, 12, 13]).repeat_interleave(4).repeat(2)
    patient = torch.tensor([1, 2]).repeat_interleave(12)
    feats = protos[(labels - 11)] + 0.3 * torch.randn(24, dim, generator=g)
    feats = torch.cat([feats, torch.randn(4, dim, generator=g)])
    labels = torch.cat([labels, torch.zeros(4, dtype=torch.long)])
    patient = torch.cat([patient, torch.tensor([1, 1, 2, 2])])
    return feats, labels, patient, torch.zeros(len(labels), dtype=torch.long)


def _tokenset(emb: torch.Tensor, labels: torch.Tensor, patient: torch.Tensor, sample: torch.Tensor) -> TokenSet:
    return TokenSet(emb, torch.zeros(len(labels), 3, dtype=torch.float64), labels, labels, sample, patient)


@pytest.mark.parametrize("kind", ["sigmoid", "infonce"])
def test_losses_fall_on_separable_toy_tokens_and_reach_scale_and_bias(kind: str) -> None:
    torch.manual_seed(0)
    fc, lc, pc, sc = _toy_tokens(1)
    fi, li, pi, si = _toy_tokens(2)
    proj_c, proj_i = torch.nn.Linear(8, 16), torch.nn.Linear(8, 16)
    criterion = ToothMCLLoss(LossConfig(kind=kind), TokenConfig())  # type: ignore[arg-type]
    params = [*proj_c.parameters(), *proj_i.parameters(), *criterion.parameters()]
    opt = torch.optim.Adam(params, lr=2e-2)
    losses = []
    for step in range(40):
        cb = _tokenset(torch.nn.functional.normalize(proj_c(fc), dim=-1), lc, pc, sc)
        io = _tokenset(torch.nn.functional.normalize(proj_i(fi), dim=-1), li, pi, si)
        out = criterion(cb, io)
        opt.zero_grad()
        out.total.backward()
        if step == 0:
            for term in ("cbct", "ios", "cross"):
                assert float(criterion.log_scale[term].grad.abs()) > 0
                if kind == "sigmoid":
                    assert float(criterion.bias[term].grad.abs()) > 0
            parts = out.parts
            assert parts["loss"] == pytest.approx(parts["loss_cbct"] + parts["loss_ios"] + 0.5 * parts["loss_cross"])
            # same patient and tooth only: 2 patients × 3 teeth × (4·3 ordered intra pairs / 4·4 cross pairs)
            assert parts["positives_cbct"] == 72
            assert parts["positives_cross"] == 96
        opt.step()
        losses.append(float(out.total.detach()))
    assert losses[-1] < 0.5 * losses[0]


def test_temperature_is_initialised_as_the_paper_reads() -> None:
    criterion = ToothMCLLoss(LossConfig(), TokenConfig())
    assert float(criterion.scale("cross").detach()) == pytest.approx(math.sqrt(512))  # τ = 512^-0.5 → scale 1/τ
    assert float(criterion.bias["cross"].detach()) == -10.0  # SigLIP's start
    frozen = ToothMCLLoss(LossConfig(learn_temperature=False, learn_bias=False), TokenConfig())
    assert not any(p.requires_grad for p in frozen.parameters())
