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

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import yaml

from toothmcl_data.errors import ConfigError
from toothmcl_data.stream.augment import AugmentConfig
from toothmcl_data.types import JAWS, Jaw
from toothmcl_models.config import CBCTEncoderConfig, IOSEncoderConfig, OptimConfig, _from_dict, _lists
from toothmcl_models.runconfig import CONFIG_DIR, DataConfig, RunConfig

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
class FinetuneConfig:
    task: Task = "cbct"
    cbct: CBCTEncoderConfig = field(default_factory=CBCTEncoderConfig)
    ios: IOSEncoderConfig = field(default_factory=IOSEncoderConfig)
    segment: SegmentConfig = field(default_factory=SegmentConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: DataConfig = field(default_factory=lambda: DataConfig(augment=None))
    run: RunConfig = field(default_factory=RunConfig)

    def __post_init__(self) -> None:
        if self.task not in ("cbct", "ios"):
            raise ConfigError(f"task must be 'cbct' or 'ios', got {self.task!r}")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = _lists(
            {
                "task": self.task,
                "model": {"cbct": asdict(self.cbct), "ios": asdict(self.ios)},
                "segment": asdict(self.segment),
                "optim": asdict(self.optim),
                "data": asdict(self.data),
                "run": asdict(self.run),
            }
        )
        return out

    @classmethod
    def from_dict(cls, raw: Any, where: str = "config") -> FinetuneConfig:
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: expected a mapping with task/model/segment/optim/data/run sections")
        unknown = sorted(set(raw) - {"task", "model", "segment", "optim", "data", "run"})
        if unknown:
            raise ConfigError(f"{where}: unknown section(s) {unknown}; known: task, model, segment, optim, data, run")
        model = dict(raw.get("model") or {})
        bad = sorted(set(model) - {"cbct", "ios"})
        if bad:
            raise ConfigError(f"{where}: unknown model section(s) {bad}; known: cbct, ios")
        data = dict(raw.get("data") or {})
        run = dict(raw.get("run") or {})
        segment = dict(raw.get("segment") or {})
        for section, kind in ((data, DataConfig), (run, RunConfig), (segment, SegmentConfig)):
            extra = set(section) - {f.name for f in fields(kind)}
            if extra:
                raise ConfigError(f"{where}: unknown {kind.__name__} keys {sorted(extra)}")
        if data.get("augment") is not None:
            data["augment"] = AugmentConfig(**data["augment"])
        else:
            data["augment"] = None
        try:
            return cls(
                task=raw.get("task", "cbct"),
                cbct=_from_dict(CBCTEncoderConfig, model.get("cbct") or {}, f"{where}.model.cbct"),
                ios=_from_dict(IOSEncoderConfig, model.get("ios") or {}, f"{where}.model.ios"),
                segment=SegmentConfig(**segment),
                optim=_from_dict(OptimConfig, raw.get("optim") or {}, f"{where}.optim"),
                data=DataConfig(**data),
                run=RunConfig(**run),
            )
        except TypeError as err:
            raise ConfigError(f"{where}: {err}") from err

    @classmethod
    def from_yaml(cls, path: Path, task: str | None = None) -> FinetuneConfig:
        """Read a run config; a bare name (``tiny``) means ``configs/finetune_<task>_<name>.yaml`` here."""
        named = CONFIG_DIR / f"finetune_{task}_{path}.yaml"
        if not path.exists() and task is not None and named.exists():
            path = named
        if not path.is_file():
            raise ConfigError(f"{path}: no such config file; pass a YAML path or 'tiny'")
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not valid YAML ({err}); fix the syntax") from err
        config = cls.from_dict(raw, str(path))
        if task is not None and config.task != task:
            raise ConfigError(f"{path}: config is for task {config.task!r} but {task!r} was asked for")
        return config
