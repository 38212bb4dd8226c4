"""Contrastive losses over token sets with many positives per anchor: sigmoid (SigLIP-style) and InfoNCE.

Both take L2-normalised embeddings and two (n, m) bool masks: ``positive`` (same patient, same tooth) and
``valid`` (pairs that enter the loss; ``positive`` ⊆ ``valid``). Pairs outside ``valid`` — self-pairs, and pairs
of two tokens without a tooth (``TokenConfig.unlabelled``) — contribute nothing.

The total (``ToothMCLLoss``) is  intra CBCT + intra IOS + λ · cross  (λ = ``LossConfig.cross_weight``, 0.5), each
term with its own learnable logit scale (and, for the sigmoid loss, bias).

Temperature vs scale: the paper initialises "the temperature" at 512^-0.5. We read it as the temperature τ, so
the logit *scale* t = 1/τ = √512 ≈ 22.6 (logits = t · cos + b); we learn log t (clamped to t ≤ max_scale). Were
512^-0.5 the scale itself, cosine logits would lie in ±0.044 and every sigmoid would start at 0.5 ± 0.01.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional

from toothmcl_models.config import LossConfig, TokenConfig
from toothmcl_models.tokens import TokenSet, cross_modal_pairs, intra_pairs

TERMS = ("cbct", "ios", "cross")


def sigmoid_loss(za: Tensor, zb: Tensor, positive: Tensor, valid: Tensor, scale: Tensor, bias: Tensor) -> Tensor:
    """SigLIP loss with several positives per row.

    za: (n, D), zb: (m, D) float, L2-normalised; positive, valid: (n, m) bool; scale, bias: () float tensors.
    L = −(1/R) Σ_{(i,j) valid} log σ(y_ij (scale · za_i·zb_j + bias)), y = +1 on positives, −1 otherwise, and
    R = number of rows with at least one valid pair (SigLIP normalises by the batch size, i.e. rows).
    """
    logits = scale * (za @ zb.T) + bias
    sign = positive.to(logits.dtype) * 2.0 - 1.0
    terms = -functional.logsigmoid(sign * logits)
    rows = valid.any(dim=1).sum().clamp(min=1)
    return torch.where(valid, terms, torch.zeros_like(terms)).sum() / rows


def _nce_one_way(logits: Tensor, positive: Tensor, valid: Tensor) -> Tensor:
    anchors = positive.any(dim=1)
    if not bool(anchors.any()):
        return logits.sum() * 0.0
    lg, pos, ok = logits[anchors], positive[anchors], valid[anchors]
    lse = torch.logsumexp(lg.masked_fill(~ok, -math.inf), dim=1, keepdim=True)
    log_p = torch.where(pos, lg - lse, torch.zeros_like(lg))
    return -(log_p.sum(1) / pos.sum(1)).mean()


def info_nce_loss(
    za: Tensor, zb: Tensor, positive: Tensor, valid: Tensor, scale: Tensor, *, symmetric: bool = True
) -> Tensor:
    """Multi-positive InfoNCE (SupCon's L_out): each anchor averages −log softmax over its positives, the softmax
    running over the anchor's valid pairs; anchors without a positive are skipped. ``symmetric`` averages the
    a→b and b→a directions (cross-modal). Shapes as in :func:`sigmoid_loss`."""
    logits = scale * (za @ zb.T)
    forward = _nce_one_way(logits, positive, valid)
    if not symmetric:
        return forward
    return 0.5 * (forward + _nce_one_way(logits.T, positive.T, valid.T))


@dataclass(frozen=True, eq=False)
class LossOutput:
    """total: () float tensor to back-propagate; parts: detached per-term losses, scales and positive counts."""

    total: Tensor
    parts: dict[str, float]


class ToothMCLLoss(nn.Module):
    """intra CBCT + intra IOS + λ · cross, with a learnable logit scale (and bias) per term."""

    def __init__(self, config: LossConfig, tokens: TokenConfig) -> None:
        super().__init__()
        self.config, self.unlabelled = config, tokens.unlabelled
        init = math.log(1.0 / config.init_temperature)
        self.log_scale = nn.ParameterDict(
            {t: nn.Parameter(torch.tensor(init), requires_grad=config.learn_temperature) for t in TERMS}
        )
        self.bias = nn.ParameterDict(
            {t: nn.Parameter(torch.tensor(float(config.init_bias)), requires_grad=config.learn_bias) for t in TERMS}
        )

    def scale(self, term: str) -> Tensor:
        """The logit scale 1/τ of ``term`` (exp of the learned log, clamped to ``max_scale``)."""
        return self.log_scale[term].exp().clamp(max=self.config.max_scale)

    def term(self, name: str, za: Tensor, zb: Tensor, positive: Tensor, valid: Tensor) -> Tensor:
        za, zb = za.float(), zb.float()
        if self.config.kind == "sigmoid":
            return sigmoid_loss(za, zb, positive, valid, self.scale(name), self.bias[name])
        return info_nce_loss(za, zb, positive, valid, self.scale(name), symmetric=name == "cross")

    def forward(self, cbct: TokenSet, ios: TokenSet) -> LossOutput:
        c = self.config
        pos_c, val_c = intra_pairs(cbct.labels, cbct.patient, self.unlabelled)
        pos_i, val_i = intra_pairs(ios.labels, ios.patient, self.unlabelled)
        pos_x, val_x = cross_modal_pairs(cbct, ios, self.unlabelled)
        l_c = self.term("cbct", cbct.embeddings, cbct.embeddings, pos_c, val_c)
        l_i = self.term("ios", ios.embeddings, ios.embeddings, pos_i, val_i)
        l_x = self.term("cross", cbct.embeddings, ios.embeddings, pos_x, val_x)
        total = c.intra_cbct_weight * l_c + c.intra_ios_weight * l_i + c.cross_weight * l_x
        parts = {
            "loss": float(total.detach()),
            "loss_cbct": float(l_c.detach()),
            "loss_ios": float(l_i.detach()),
            "loss_cross": float(l_x.detach()),
            "positives_cbct": float(pos_c.sum()),
            "positives_ios": float(pos_i.sum()),
            "positives_cross": float(pos_x.sum()),
        }
        for t in TERMS:
            parts[f"scale_{t}"] = float(self.scale(t).detach())
            parts[f"bias_{t}"] = float(self.bias[t].detach())
        return LossOutput(total, parts)
