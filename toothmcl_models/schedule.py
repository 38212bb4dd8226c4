"""Learning-rate schedule: linear warmup then cosine decay, stepped once per optimiser step.

The paper's code stepped its scheduler per epoch while computing the schedule in steps, so the learning rate
moved ~100× too slowly; here the schedule is a pure function of the optimiser step, tested against its formula.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from toothmcl_models.config import OptimConfig


def warmup_cosine_factor(step: int, *, warmup_steps: int, total_steps: int, min_factor: float = 0.0) -> float:
    """Multiplier of the base learning rate at optimiser ``step`` (0-based)."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_factor + (1.0 - min_factor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def warmup_cosine(optimizer: Optimizer, *, warmup_steps: int, total_steps: int, min_factor: float = 0.0) -> LambdaLR:
    """A scheduler to call ``.step()`` after every ``optimizer.step()``."""
    return LambdaLR(
        optimizer,
        lambda step: warmup_cosine_factor(
            step, warmup_steps=warmup_steps, total_steps=total_steps, min_factor=min_factor
        ),
    )


NO_DECAY_SUFFIXES = ("relative_position_bias_table", "position_embedding", "pos_embed")
"""Parameters by name that take no weight decay besides every ≤ 1-d one (biases, norm scales, scalars)."""


def param_groups(module: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW parameter groups of ``module``'s trainable parameters: weights with ``weight_decay``; biases, norm
    weights, learnable scalars (the contrastive loss's scale and bias) and position tables without (decaying them
    pulls the logit scale and bias towards 0 and the norms towards 0, which is not regularisation)."""
    decay: list[nn.Parameter] = []
    plain: list[nn.Parameter] = []
    for name, p in module.named_parameters():
        if not p.requires_grad:
            continue
        (plain if p.ndim <= 1 or name.endswith(NO_DECAY_SUFFIXES) else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": plain, "weight_decay": 0.0}]


def adamw_warmup_cosine(module: nn.Module, optim: OptimConfig) -> tuple[torch.optim.AdamW, LambdaLR]:
    """The optimiser (over :func:`param_groups`) and schedule every training entry point uses."""
    optimizer = torch.optim.AdamW(param_groups(module, optim.weight_decay), lr=optim.lr, betas=optim.betas)
    scheduler = warmup_cosine(
        optimizer, warmup_steps=optim.warmup_steps, total_steps=optim.total_steps, min_factor=optim.min_lr_ratio
    )
    return optimizer, scheduler
