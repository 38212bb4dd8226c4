"""The configuration of a fine-tuning run: task, encoder architecture, segmentation options, optimiser, data, run.

One YAML file (``configs/finetune_<task>_<name>.yaml``), validated on load and stored in every checkpoint::

    task: cbct | ios
    model: {cbct: {…}, ios: {…}}        # encoder sections as in pretraining (must match a --init checkpoint)
    segment: {output_scheme, dice_weight, ce_weight, background_weight, foreground_weight,
               foreground_probability, jaws, frame, cases}
    optim: {…}                           # as pretraining's
    data: {split, crop_shape, spacing_mm, points, batch_size, num_workers, augment}
    run: {seed, log_every, checkpoint_every, threads}
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from toothmcl_data.configdict import (
    apply_overrides,
    config_from_dict,
    config_to_dict,
    preset_path,
    read_yaml,
    without_null_sections,
)
from toothmcl_data.errors import ConfigError
from toothmcl_data.types import JAWS, Jaw
from toothmcl_models.config import CONFIG_DIR, CBCTEncoderConfig, IOSEncoderConfig, OptimConfig
from toothmcl_models.runconfig import DataConfig, RunConfig

Task = Literal["cbct", "ios"]


@dataclass(frozen=True)
class SegmentConfig:
    """Segmentation options."""

    output_scheme: str = "fdi"
    """Codes written in CBCT predictions: ``fdi`` or ``toothfairy2`` (its tooth ids; classes are the 32 teeth)."""
    dice_weight: float = 1.0
    ce_weight: float = 1.0
    background_weight: float = 1.0
    """CE weight of class 0 (CBCT background, IOS gingiva); the teeth weigh 1. Below 1 against class imbalance."""
    foreground_weight: float = 0.0
    """Weight of a label-blind "any tooth vs class 0" soft Dice term (0 = off)."""
    foreground_probability: float = 0.9
    """CBCT: fraction of crops centred on a tooth voxel."""
    jaws: tuple[Jaw, ...] = JAWS
    """IOS: the jaws trained (one encoder + decoder each)."""
    frame: Literal["world", "ios", "canonical"] = "world"
    """IOS: points in the CBCT world when registered (as pretrained), always in the scan's own frame, or in the
    jaw's canonical frame computed from the scan alone (``stream.jaws.canonical_from_scan``; works on scans at
    any pose, as users have them; inference must use the same frame)."""
    cases: tuple[str, ...] | None = None
    """Train only on these labelled cases (e.g. the k cases of an ablation); None = the whole split."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "jaws", tuple(self.jaws))
        if self.cases is not None:
            object.__setattr__(self, "cases", tuple(self.cases))
        if self.output_scheme not in ("fdi", "toothfairy2"):
            raise ConfigError(f"segment.output_scheme must be 'fdi' or 'toothfairy2', got {self.output_scheme!r}")
        if self.dice_weight < 0 or self.ce_weight < 0 or self.dice_weight + self.ce_weight == 0:
            raise ConfigError(f"segment.dice_weight and ce_weight must be ≥ 0 and not both 0, got {self}")
        if not self.jaws or any(j not in JAWS for j in self.jaws):
            raise ConfigError(f"segment.jaws must be a non-empty subset of {list(JAWS)}, got {list(self.jaws)}")
        if self.frame not in ("world", "ios", "canonical"):
            raise ConfigError(f"segment.frame must be 'world', 'ios' or 'canonical', got {self.frame!r}")
        if self.foreground_weight < 0:
            raise ConfigError(f"segment.foreground_weight must be ≥ 0, got {self.foreground_weight}")
        if not 0.0 < self.background_weight <= 1.0:
            raise ConfigError(f"segment.background_weight must be in (0, 1], got {self.background_weight}")


@dataclass(frozen=True)
class EncoderSections:
    """The ``model`` section of a fine-tuning YAML: the encoders' architecture."""

    cbct: CBCTEncoderConfig = field(default_factory=CBCTEncoderConfig)
    ios: IOSEncoderConfig = field(default_factory=IOSEncoderConfig)


def _no_augment() -> DataConfig:
    return DataConfig(augment=None)


@dataclass(frozen=True)
class TrainingSections:
    """The sections of a fine-tuning run besides task and encoders (the config's and its YAML layout's)."""

    segment: SegmentConfig = field(default_factory=SegmentConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: DataConfig = field(default_factory=_no_augment)
    run: RunConfig = field(default_factory=RunConfig)


@dataclass(frozen=True)
class FinetuneFile(TrainingSections):
    """The YAML layout of a :class:`FinetuneConfig` (encoders under ``model``)."""

    task: Task = "cbct"
    model: EncoderSections = field(default_factory=EncoderSections)


@dataclass(frozen=True)
class FinetuneConfig(TrainingSections):
    """Task, encoder architecture (as pretraining's ``model.cbct`` / ``model.ios``) and the training sections."""

    task: Task = "cbct"
    cbct: CBCTEncoderConfig = field(default_factory=CBCTEncoderConfig)
    ios: IOSEncoderConfig = field(default_factory=IOSEncoderConfig)

    def __post_init__(self) -> None:
        if self.task not in ("cbct", "ios"):
            raise ConfigError(f"task must be 'cbct' or 'ios', got {self.task!r}")

    def to_dict(self) -> dict[str, Any]:
        """The YAML layout, in the order of the files: task, model, segment, optim, data, run."""
        sections = {name: getattr(self, name) for name in ("segment", "optim", "data", "run")}
        d = config_to_dict(FinetuneFile(task=self.task, model=EncoderSections(self.cbct, self.ios), **sections))
        return {"task": d.pop("task"), "model": d.pop("model"), **d}

    @classmethod
    def from_dict(cls, raw: Any, where: str = "config", overrides: Sequence[str] = ()) -> FinetuneConfig:
        """Validate a run config dict (``overrides``: ``--set KEY=VALUE`` items); errors name ``where``. Without
        an ``augment`` entry, fine-tuning data is not augmented."""
        raw = without_null_sections(apply_overrides(raw, overrides), ("model", "segment", "optim", "data", "run"))
        if isinstance(raw, dict) and isinstance(raw.get("data"), dict) and "augment" not in raw["data"]:
            raw["data"] = {**raw["data"], "augment": None}
        f = config_from_dict(FinetuneFile, raw, where, overrides)  # (overrides again: idempotent; named in errors)
        return cls(f.segment, f.optim, f.data, f.run, task=f.task, cbct=f.model.cbct, ios=f.model.ios)

    @classmethod
    def from_yaml(cls, path: Path, task: str | None = None, overrides: Sequence[str] = ()) -> FinetuneConfig:
        """Read a run config; a bare name (``tiny``, ``cpu``) means ``configs/finetune_<task>_<name>.yaml``."""
        path = preset_path(path, f"finetune_{task}" if task is not None else "finetune", CONFIG_DIR)
        config = cls.from_dict(read_yaml(path), str(path), overrides)
        if task is not None and config.task != task:
            raise ConfigError(f"{path}: config is for task {config.task!r} but {task!r} was asked for")
        return config
