"""Segmentation loss: class-weighted cross-entropy + soft Dice over classes, with ignored targets (−100)."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional

IGNORE = -100


def class_weights(num_classes: int, background_weight: float, device: torch.device | None = None) -> Tensor | None:
    """(K,) float32 CE weights: class 0 (background / gingiva) ``background_weight``, every other class 1;
    None when ``background_weight`` is 1 (plain CE)."""
    if background_weight == 1.0:
        return None
    weights = torch.ones(num_classes, dtype=torch.float32, device=device)
    weights[0] = background_weight
    return weights


def dice_ce_loss(
    logits: Tensor,
    target: Tensor,
    *,
    dice_weight: float = 1.0,
    ce_weight: float = 1.0,
    background_weight: float = 1.0,
    foreground_weight: float = 0.0,
    smooth: float = 1e-5,
) -> tuple[Tensor, dict[str, Tensor]]:
    """``ce_weight · CE + dice_weight · (1 − mean soft Dice) + foreground_weight · (1 − foreground soft Dice)``.

    logits: (B, K, ...) float, any spatial layout (voxels (X, Y, Z) or points (N,)); target: (B, ...) int64 class
    indices, −100 = ignored (left out of both terms). CE weighs class 0 by ``background_weight`` (the others by 1;
    a weighted mean, as ``torch.nn.functional.cross_entropy(weight=…)``): with teeth ~3 % of CBCT voxels an
    unweighted CE first learns "all background". Soft Dice per class over the whole batch, averaged over the
    foreground classes (≥ 1) present in the target — background Dice is ~1 and would only dilute the teeth's —
    or over all present classes when only background is there. Foreground soft Dice: of "any tooth" (1 − the
    class-0 probability) vs target > 0 — a label-blind term that finds the teeth before they are numbered
    (nnU-Net's region-based habit). Returns (total, parts).
    """
    weight = class_weights(logits.shape[1], background_weight, logits.device)
    ce = functional.cross_entropy(logits.float(), target, weight=weight, ignore_index=IGNORE)
    if not torch.isfinite(ce):  # every target ignored
        ce = logits.sum() * 0.0
    valid = target != IGNORE
    probs = torch.softmax(logits.float(), dim=1) * valid.unsqueeze(1)
    onehot = functional.one_hot(target.clamp_min(0), logits.shape[1]).movedim(-1, 1).float() * valid.unsqueeze(1)
    dims = [0, *range(2, logits.ndim)]
    inter = (probs * onehot).sum(dims)
    denom = probs.sum(dims) + onehot.sum(dims)
    dice = (2 * inter + smooth) / (denom + smooth)
    present = onehot.sum(dims) > 0
    foreground = present.clone()
    foreground[0] = False
    chosen = foreground if bool(foreground.any()) else present
    dice_loss = 1.0 - dice[chosen].mean() if bool(chosen.any()) else logits.sum() * 0.0
    total = ce_weight * ce + dice_weight * dice_loss
    parts = {"ce": ce.detach(), "dice_loss": dice_loss.detach()}
    if foreground_weight > 0:
        fg_prob = probs[:, 1:].sum(1)
        fg_true = ((target > 0) & valid).float()
        fg_loss = 1.0 - (2 * (fg_prob * fg_true).sum() + smooth) / (fg_prob.sum() + fg_true.sum() + smooth)
        total = total + foreground_weight * fg_loss
        parts["foreground_dice_loss"] = fg_loss.detach()
    return total, parts
