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
import warnings
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn import functional

from toothmcl_models.config import LossConfig, TokenConfig
from toothmcl_models.tokens import TokenSet, cross_pairs

TERMS = ("cbct", "ios", "cross")


def sigmoid_loss(
    za: Tensor, zb: Tensor, positive: Tensor, valid: Tensor, scale: Tensor, bias: Tensor, rows: Tensor | None = None
) -> Tensor:
    """SigLIP loss with several positives per row.

    za: (n, D), zb: (m, D) float, L2-normalised; positive, valid: (n, m) bool; scale, bias: () float tensors.
    L = −(1/R) Σ_{(i,j) valid} log σ(y_ij (scale · za_i·zb_j + bias)), y = +1 on positives, −1 otherwise, and
    R = number of rows with at least one valid pair (SigLIP normalises by the batch size, i.e. rows) — or
    ``rows`` when given (the count over all ranks when ``za`` is one rank's share of the rows).
    """
    logits = scale * (za @ zb.T) + bias
    sign = positive.to(logits.dtype) * 2.0 - 1.0
    terms = -functional.logsigmoid(sign * logits)
    if rows is None:
        rows = valid.any(dim=1).sum()
    return torch.where(valid, terms, torch.zeros_like(terms)).sum() / rows.clamp(min=1)


def _nce_one_way(logits: Tensor, positive: Tensor, valid: Tensor, anchors_total: Tensor | None) -> Tensor:
    anchors = positive.any(dim=1)
    total = anchors.sum() if anchors_total is None else anchors_total
    if not bool(anchors.any()):
        return logits.sum() * 0.0
    lg, pos, ok = logits[anchors], positive[anchors], valid[anchors]
    lse = torch.logsumexp(lg.masked_fill(~ok, -math.inf), dim=1, keepdim=True)
    log_p = torch.where(pos, lg - lse, torch.zeros_like(lg))
    return -(log_p.sum(1) / pos.sum(1)).sum() / total.clamp(min=1)


def info_nce_loss(
    za: Tensor,
    zb: Tensor,
    positive: Tensor,
    valid: Tensor,
    scale: Tensor,
    *,
    symmetric: bool = True,
    anchors: Tensor | None = None,
) -> Tensor:
    """Multi-positive InfoNCE (SupCon's L_out): each anchor (a row with a positive) averages −log softmax over its
    positives, the softmax running over the anchor's valid pairs; anchors without a positive are skipped; the mean
    runs over anchors (``anchors``: their count over all ranks when ``za`` is one rank's share of the rows).
    ``symmetric`` averages the a→b and b→a directions (one process only). Shapes as in :func:`sigmoid_loss`."""
    logits = scale * (za @ zb.T)
    forward = _nce_one_way(logits, positive, valid, anchors)
    if not symmetric:
        return forward
    return 0.5 * (forward + _nce_one_way(logits.T, positive.T, valid.T, None))


def _world() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def gather_tokens(tokens: TokenSet) -> tuple[TokenSet, int]:
    """All ranks' tokens (rank order) and where this rank's start; embeddings keep their gradient (autograd
    ``all_gather``: each rank's backward sends the gradients of the other ranks' tokens to them). One process:
    ``tokens`` itself and 0. Ranks may hold different token counts."""
    world = _world()
    if world == 1:
        return tokens, 0
    from torch.distributed.nn.functional import all_gather

    count = torch.tensor([tokens.embeddings.shape[0]], device=tokens.embeddings.device)
    counts = [torch.zeros_like(count) for _ in range(world)]
    dist.all_gather(counts, count)
    sizes = [int(c) for c in counts]
    most = max(sizes)

    def pad(x: Tensor) -> Tensor:
        return functional.pad(x, (0, 0) * (x.ndim - 1) + (0, most - x.shape[0]))

    def plain(x: Tensor) -> Tensor:
        parts = [torch.zeros_like(pad(x)) for _ in range(world)]
        dist.all_gather(parts, pad(x).contiguous())
        return torch.cat([p[:n] for p, n in zip(parts, sizes, strict=True)])

    with warnings.catch_warnings():  # torch 2.13 deprecates it for _functional_collectives (no gloo autograd yet)
        warnings.simplefilter("ignore", FutureWarning)
        gathered_z = all_gather(pad(tokens.embeddings))
    embeddings = torch.cat([p[:n] for p, n in zip(gathered_z, sizes, strict=True)])
    rank = dist.get_rank()
    gathered = TokenSet(
        embeddings=embeddings,
        centres=plain(tokens.centres),
        labels=plain(tokens.labels),
        match=plain(tokens.match),
        sample=plain(tokens.sample),
        patient=plain(tokens.patient),
    )
    return gathered, sum(sizes[:rank])


def _sum_across_ranks(value: Tensor) -> Tensor:
    if _world() > 1:
        value = value.detach().clone()
        dist.all_reduce(value)
    return value


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

    def _term(self, name: str, rows: _Side, cols: _Side, offset: int | None) -> tuple[Tensor, Tensor]:
        """One direction of one term — this rank's ``rows`` against all ranks' ``cols`` (rows are cols
        ``offset …`` when both are one modality: self-pairs dropped) — and its positive count.

        Only the blocks that hold valid pairs are computed: labelled rows × all columns and, when unlabelled
        tokens are negatives, unlabelled rows × labelled columns (pairs of two unlabelled tokens never count) —
        7× fewer logits than the full matrix at the tiny preset's ~8 % labelled CBCT tokens, same loss."""
        za, zb = rows.z.float(), cols.z.float()
        lab_r, lab_c = rows.labels > 0, cols.labels > 0
        idx_r, idx_c = torch.arange(len(lab_r), device=za.device), torch.arange(len(lab_c), device=za.device)
        blocks = [(idx_r[lab_r], idx_c if self.unlabelled == "negatives" else idx_c[lab_c])]
        if self.unlabelled == "negatives":
            blocks.append((idx_r[~lab_r], idx_c[lab_c]))
        kind, world = self.config.kind, _world()
        losses, has_valid, n_pos = [], torch.zeros_like(lab_r), za.new_zeros((), dtype=torch.long)
        for r, c in blocks if kind == "sigmoid" else blocks[:1]:
            pos, val = cross_pairs(rows.labels[r], rows.patient[r], cols.labels[c], cols.patient[c], self.unlabelled)
            if offset is not None:
                own = (offset + r)[:, None] == c[None, :]
                pos, val = pos & ~own, val & ~own
            n_pos = n_pos + pos.sum()
            has_valid[r] |= val.any(1) if kind == "sigmoid" else pos.any(1)
            one = torch.ones((), device=za.device, dtype=torch.long)  # sums here, normalised below
            if kind == "sigmoid":
                losses.append(sigmoid_loss(za[r], zb[c], pos, val, self.scale(name), self.bias[name], one))
            else:
                losses.append(info_nce_loss(za[r], zb[c], pos, val, self.scale(name), symmetric=False, anchors=one))
        count = _sum_across_ranks(has_valid.sum()).clamp(min=1)  # rows with a valid pair / anchors, all ranks
        return world * torch.stack(losses).sum() / count, n_pos

    def forward(self, cbct: TokenSet, ios: TokenSet) -> LossOutput:
        """The loss of this rank's tokens against every rank's (one process: the whole batch).

        Under DDP each rank's rows meet all ranks' columns (:func:`gather_tokens`), scaled so that DDP's mean over
        ranks is the loss — and the gradient — of the global batch in one process. Positive counts are global.
        """
        c = self.config
        all_c, off_c = gather_tokens(cbct)
        all_i, off_i = gather_tokens(ios)
        here_c, every_c = _Side.of(cbct, cbct.labels), _Side.of(all_c, all_c.labels)
        here_i, every_i = _Side.of(ios, ios.labels), _Side.of(all_i, all_i.labels)
        l_c, pos_c = self._term("cbct", here_c, every_c, off_c)
        l_i, pos_i = self._term("ios", here_i, every_i, off_i)
        match_c, match_i = _Side.of(cbct, cbct.match), _Side.of(all_i, all_i.match)
        l_x, pos_x = self._term("cross", match_c, match_i, None)  # every (CBCT, IOS) pair once
        if c.kind == "infonce":  # symmetric: CBCT → IOS over CBCT anchors, IOS → CBCT over IOS anchors
            back, _ = self._term("cross", _Side.of(ios, ios.match), _Side.of(all_c, all_c.match), None)
            l_x = 0.5 * (l_x + back)
        total = c.intra_cbct_weight * l_c + c.intra_ios_weight * l_i + c.cross_weight * l_x
        parts = {
            "loss": float(total.detach()),
            "loss_cbct": float(l_c.detach()),
            "loss_ios": float(l_i.detach()),
            "loss_cross": float(l_x.detach()),
            # global counts (ordered pairs), the same on every rank
            "positives_cbct": float(_sum_across_ranks(pos_c)),
            "positives_ios": float(_sum_across_ranks(pos_i)),
            "positives_cross": float(_sum_across_ranks(pos_x)),
            "labelled_cbct_tokens": float(_sum_across_ranks((cbct.labels > 0).sum())),
        }
        for t in TERMS:
            parts[f"scale_{t}"] = float(self.scale(t).detach())
            parts[f"bias_{t}"] = float(self.bias[t].detach())
        return LossOutput(total, parts)


@dataclass(frozen=True, eq=False)
class _Side:
    """One side of a term: embeddings (n, D), the tooth each token is paired by (n,), patient ids (n,)."""

    z: Tensor
    labels: Tensor
    patient: Tensor

    @classmethod
    def of(cls, tokens: TokenSet, labels: Tensor) -> _Side:
        return cls(tokens.embeddings, labels, tokens.patient)
