"""Batch stream samples: tensors stack along a new batch axis, per-jaw dicts stack per jaw, the rest are lists."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from toothmcl_data.errors import InputError


def collate(samples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Collate samples of one dataset (same keys; per-jaw dicts with the same jaws), e.g. the typed samples of
    :mod:`toothmcl_data.stream.sample`: tensors [...] → [B, ...], per-jaw tensors likewise per jaw, anything else
    (``case``, ``index``, the augmentation records ``applied`` …) → a list of B values."""
    if not samples:
        raise InputError("cannot collate an empty batch")
    out: dict[str, Any] = {}
    for key, first in samples[0].items():
        values = [s[key] for s in samples]
        if isinstance(first, torch.Tensor):
            out[key] = torch.stack(values)
        elif isinstance(first, dict) and first and all(isinstance(v, torch.Tensor) for v in first.values()):
            jaws = set(first)
            if any(set(v) != jaws for v in values):
                raise InputError(
                    f"samples of one batch must have the same {key!r} entries, got {[sorted(v) for v in values]}"
                )
            out[key] = {jaw: torch.stack([v[jaw] for v in values]) for jaw in first}
        else:
            out[key] = values
    return out
