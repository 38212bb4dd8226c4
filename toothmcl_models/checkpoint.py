"""Checkpoints that resume a run exactly: model, optimiser, scheduler, AMP scaler, sampler and RNG states, config.

Written atomically (temporary file + rename) by rank 0 only; ``latest.pt`` always names a complete checkpoint.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import torch

from toothmcl_data.errors import ConfigError, InputError, InputNotFoundError

LATEST = "latest.pt"


def save_checkpoint(folder: Path, step: int, state: dict[str, Any]) -> Path:
    """Write ``state`` as ``folder/step-<step>.pt`` and point ``folder/latest.pt`` at the same bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"step-{step:08d}.pt"
    tmp = folder / f".{path.name}.{os.getpid()}.tmp"
    torch.save({"step": step, **state}, tmp)
    os.replace(tmp, path)
    tmp_latest = folder / f".{LATEST}.{os.getpid()}.tmp"
    torch.save({"step": step, **state}, tmp_latest)
    os.replace(tmp_latest, folder / LATEST)
    return path


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (a file, or a folder holding ``latest.pt``)."""
    if path.is_dir():
        path = path / LATEST
    if not path.is_file():
        raise InputNotFoundError(f"{path}: no checkpoint here; pass a step-*.pt file or a run folder with {LATEST}")
    try:
        state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=False)
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError) as err:
        raise InputError(f"{path}: not a readable toothmcl checkpoint ({err}); pick an earlier step-*.pt") from err
    if "step" not in state:
        raise InputError(f"{path}: checkpoint has no 'step'; it was not written by toothmcl")
    return state


def rng_state() -> dict[str, Any]:
    """Torch CPU (and CUDA) generator states, for exact resume of anything drawn from the default generators."""
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def training_state(config: dict[str, Any], **parts: Any) -> dict[str, Any]:
    """What a run saves for exact resume: each part's ``state_dict()`` under its name (module, optimizer,
    scheduler, scaler, sampler …), the RNG states and the run's config."""
    return {**{name: part.state_dict() for name, part in parts.items()}, "rng": rng_state(), "config": config}


def restore_training(folder: Path, config: dict[str, Any], **parts: Any) -> int:
    """Restore ``parts`` (as saved by :func:`training_state`) and the RNG states from ``folder``'s latest
    checkpoint; returns its step. The checkpoint must have been written with the same ``config``."""
    state = load_checkpoint(folder)
    if state["config"] != config:
        raise ConfigError(f"{folder}: checkpoint was written with another config; resume with the same one")
    for name, part in parts.items():
        part.load_state_dict(state[name])
    restore_rng_state(state["rng"])
    return int(state["step"])
