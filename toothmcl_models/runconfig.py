"""The configuration of a training run: the model side (``ToothMCLConfig``) plus data and run sections.

One YAML file holds all of it, validated on load and stored in every checkpoint::

    model: …, tokens: …, loss: …, optim: …     # ToothMCLConfig sections
    data: {split, crop_shape, spacing_mm, points, batch_size, num_workers, augment: {…} | null, eval_splits}
    run: {seed, log_every, checkpoint_every, threads, eval_every}
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toothmcl_data.configdict import config_from_dict, config_to_dict, preset_path, read_yaml, without_null_sections
from toothmcl_data.errors import ConfigError
from toothmcl_data.stream.augment import AugmentConfig
from toothmcl_data.stream.dataset import StreamConfig
from toothmcl_models.config import CONFIG_DIR, ModelSections, ToothMCLConfig

__all__ = ["CONFIG_DIR", "DataConfig", "PretrainConfig", "RunConfig"]


@dataclass(frozen=True)
class DataConfig:
    """What the loader feeds: the case-level stream of a version's split."""

    split: str | None = "train"
    crop_shape: tuple[int, int, int] = (256, 256, 64)
    spacing_mm: float = 0.3
    points: int = 24_000
    batch_size: int = 2
    """Per rank."""
    num_workers: int = 2
    augment: AugmentConfig | None = field(default_factory=AugmentConfig)
    eval_splits: tuple[str, ...] = ()
    """Held-out splits the run evaluates on (pretraining: tooth retrieval, ``toothmcl_models.retrieval``) before
    the first step, every ``run.eval_every`` steps and after the last; () = no evaluation."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "crop_shape", tuple(int(s) for s in self.crop_shape))
        object.__setattr__(self, "eval_splits", tuple(self.eval_splits))
        if self.batch_size < 1 or self.num_workers < 0:
            raise ConfigError(f"data.batch_size must be ≥ 1 and num_workers ≥ 0, got {self}")
        if self.split not in (None, "train", "val", "test"):
            raise ConfigError(f"data.split must be train, val, test or null, got {self.split!r}")
        bad = [s for s in self.eval_splits if s not in ("train", "val", "test")]
        if bad:
            raise ConfigError(f"data.eval_splits must name train, val or test splits, got {bad}")

    def stream(self, seed: int) -> StreamConfig:
        return StreamConfig(self.crop_shape, self.spacing_mm, self.points, seed, self.augment)


@dataclass(frozen=True)
class RunConfig:
    seed: int = 0
    log_every: int = 1
    checkpoint_every: int = 100
    threads: int = 0
    """Torch intra-op threads per rank (0 = torch's default); fix it for bit-exact CPU resumes."""
    eval_every: int = 0
    """Run the task's evaluation (pretraining: tooth retrieval on held-out patients) every this many steps, besides
    before the first and after the last; 0 = only before and after."""

    def __post_init__(self) -> None:
        if self.log_every < 1 or self.checkpoint_every < 1 or self.threads < 0 or self.eval_every < 0:
            raise ConfigError(
                f"run.log_every and run.checkpoint_every must be ≥ 1, threads and eval_every ≥ 0, got {self}"
            )


@dataclass(frozen=True)
class PretrainFile(ModelSections):
    """The YAML layout of a :class:`PretrainConfig`: the ``ToothMCLConfig`` sections at the top level."""

    data: DataConfig = field(default_factory=DataConfig)
    run: RunConfig = field(default_factory=RunConfig)


@dataclass(frozen=True)
class PretrainConfig:
    toothmcl: ToothMCLConfig = field(default_factory=ToothMCLConfig)
    data: DataConfig = field(default_factory=DataConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def to_dict(self) -> dict[str, Any]:
        t = self.toothmcl
        return config_to_dict(PretrainFile(t.model, t.tokens, t.loss, t.optim, data=self.data, run=self.run))

    @classmethod
    def from_dict(cls, raw: Any, where: str = "config", overrides: Sequence[str] = ()) -> PretrainConfig:
        """Validate a run config dict (``overrides``: ``--set KEY=VALUE`` items); errors name ``where``."""
        f = config_from_dict(PretrainFile, without_null_sections(raw, ("data", "run")), where, overrides)
        return cls(ToothMCLConfig(f.model, f.tokens, f.loss, f.optim), data=f.data, run=f.run)

    @classmethod
    def from_yaml(cls, path: Path, overrides: Sequence[str] = ()) -> PretrainConfig:
        """Read a run config; a bare name (``tiny``, ``cpu``, ``paper``) means ``configs/pretrain_<name>.yaml``."""
        path = preset_path(path, "pretrain", CONFIG_DIR)
        return cls.from_dict(read_yaml(path), str(path), overrides)
