"""Learning-rate schedule: linear warmup then cosine decay, stepped once per optimiser step.

The paper's code stepped its scheduler per epoch while computing the schedule in steps, so the learning rate
moved ~100× too slowly; here the schedule is a pure function of the optimiser step, tested against its formula.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
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


def adamw_warmup_cosine(params: Iterable[torch.nn.Parameter], optim: OptimConfig) -> tuple[torch.optim.AdamW, LambdaLR]:
    """The optimiser and schedule every training entry point uses, from one ``OptimConfig``."""
    optimizer = torch.optim.AdamW(params, lr=optim.lr, betas=optim.betas, weight_decay=optim.weight_decay)
    scheduler = warmup_cosine(
        optimizer, warmup_steps=optim.warmup_steps, total_steps=optim.total_steps, min_factor=optim.min_lr_ratio
    )
    return optimizer, scheduler
