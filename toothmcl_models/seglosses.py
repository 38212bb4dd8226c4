"""Segmentation loss: cross-entropy + soft Dice over classes, with ignored targets (−100)."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional

IGNORE = -100


def dice_ce_loss(
    logits: Tensor, target: Tensor, *, dice_weight: float = 1.0, ce_weight: float = 1.0, smooth: float = 1e-5
) -> tuple[Tensor, dict[str, Tensor]]:
    """``ce_weight · CE + dice_weight · (1 − mean soft Dice)``.

    logits: (B, K, ...) float, any spatial layout (voxels (X, Y, Z) or points (N,)); target: (B, ...) int64 class
    indices, −100 = ignored (left out of both terms). Soft Dice per class over the whole batch, averaged over the
    classes present in the target (as MONAI's ``DiceLoss(batch=True)`` on those classes). Returns (total, parts).
    """
    ce = functional.cross_entropy(logits.float(), target, ignore_index=IGNORE)
    valid = target != IGNORE
    probs = torch.softmax(logits.float(), dim=1) * valid.unsqueeze(1)
    onehot = functional.one_hot(target.clamp_min(0), logits.shape[1]).movedim(-1, 1).float() * valid.unsqueeze(1)
    dims = [0, *range(2, logits.ndim)]
    inter = (probs * onehot).sum(dims)
    denom = probs.sum(dims) + onehot.sum(dims)
    dice = (2 * inter + smooth) / (denom + smooth)
    present = onehot.sum(dims) > 0
    dice_loss = 1.0 - dice[present].mean() if bool(present.any()) else logits.sum() * 0.0
    total = ce_weight * ce + dice_weight * dice_loss
    return total, {"ce": ce.detach(), "dice_loss": dice_loss.detach()}
