"""Configuration of the ToothMCL model, its tokens, losses and optimiser: frozen, validated, YAML round-trip.

The field defaults are the paper's setting (ToothMCL, arXiv 2509.07923: SwinUNETR-v2 encoder with feature size
48, Point Transformer IOS encoder, 512-d shared space, sigmoid loss with the logit temperature initialised at
512^-0.5, λ = 0.5; the sigmoid bias starts at SigLIP's −10, not the paper's 0); values the paper does not state
are our choices and are marked so in the field docs. Presets live only in YAML beside this module
(``configs/toothmcl_<name>.yaml``: :func:`tiny` for CPU tests, :func:`paper`), loaded by :func:`preset`;
loading and validation go through :mod:`toothmcl_data.configdict`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from toothmcl_data.configdict import config_from_dict, config_from_yaml, config_to_dict, read_yaml
from toothmcl_data.errors import ConfigError

CONFIG_DIR = Path(__file__).parent / "configs"
"""The YAML presets: ``toothmcl_<name>.yaml`` (model side), ``pretrain_<name>.yaml``,
``finetune_<task>_<name>.yaml``, ``ablation_<name>.yaml``."""


def _positive_ints(name: str, values: tuple[int, ...], length: int | None = None) -> None:
    if length is not None and len(values) != length:
        raise ConfigError(f"{name} must have {length} entries, got {len(values)}: {list(values)}")
    if not values or any((not isinstance(v, int)) or v < 1 for v in values):
        raise ConfigError(f"{name} must be positive integers, got {list(values)}")


@dataclass(frozen=True)
class CBCTEncoderConfig:
    """MONAI SwinUNETR-v2 encoder (``SwinUNETR(...).swinViT``) and which stage becomes tokens.

    Input crops are (B, 1, X, Y, Z) float32 indexed (i, j, k) in the store's crop order, each of X, Y, Z divisible
    by 32 (SwinUNETR's requirement, so fine-tuning can use the same crops).
    """

    feature_size: int = 48
    """Embedding width of stage 0 (48 in the paper; must be divisible by 12)."""
    depths: tuple[int, ...] = (2, 2, 2, 2)
    num_heads: tuple[int, ...] = (3, 6, 12, 24)
    window_size: int = 7
    drop_path_rate: float = 0.0
    use_checkpoint: bool = False
    """Gradient checkpointing inside the Swin blocks (memory for time)."""
    token_stage: int = 4
    """Which ``swinViT`` output becomes tokens: 0..4, stride 2^(stage+1) voxels; 4 = deepest (16·feature_size)."""
    intensity_range: tuple[float, float] | None = (0.0, 2500.0)
    """Scanner values clipped to this range and scaled to [0, 1] inside the model (the paper's [0, 2500] / 2500);
    None = input used as given. Inside the model so that pretraining, fine-tuning and inference on raw volumes
    normalise the same way (the store keeps raw int16 values after rescale)."""

    def __post_init__(self) -> None:
        if self.feature_size < 12 or self.feature_size % 12:
            raise ConfigError(f"cbct.feature_size must be a positive multiple of 12, got {self.feature_size}")
        _positive_ints("cbct.depths", self.depths, 4)
        _positive_ints("cbct.num_heads", self.num_heads, 4)
        for stage, heads in enumerate(self.num_heads):
            if (self.feature_size * 2**stage) % heads:
                raise ConfigError(
                    f"cbct.num_heads[{stage}]={heads} must divide the stage width {self.feature_size * 2**stage}"
                )
        if self.window_size < 1:
            raise ConfigError(f"cbct.window_size must be ≥ 1, got {self.window_size}")
        if not 0.0 <= self.drop_path_rate < 1.0:
            raise ConfigError(f"cbct.drop_path_rate must be in [0, 1), got {self.drop_path_rate}")
        if self.token_stage not in range(5):
            raise ConfigError(f"cbct.token_stage must be 0..4, got {self.token_stage}")
        if self.intensity_range is not None and (
            len(self.intensity_range) != 2 or not self.intensity_range[0] < self.intensity_range[1]
        ):
            raise ConfigError(f"cbct.intensity_range must be (low, high) with low < high, got {self.intensity_range}")

    @property
    def token_stride(self) -> int:
        """Voxels per token edge at ``token_stage``."""
        return int(2 ** (self.token_stage + 1))

    @property
    def token_channels(self) -> int:
        return int(self.feature_size * 2**self.token_stage)

    def swinunetr_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``monai.networks.nets.SwinUNETR`` whose ``swinViT`` matches this encoder.

        ``SwinUNETR(in_channels=1, out_channels=K, **config.swinunetr_kwargs())`` then
        ``net.swinViT.load_state_dict(encoder.swinViT.state_dict())`` (strict) starts fine-tuning from pretraining.
        """
        return {
            "feature_size": self.feature_size,
            "depths": tuple(self.depths),
            "num_heads": tuple(self.num_heads),
            "window_size": self.window_size,
            "dropout_path_rate": self.drop_path_rate,
            "use_checkpoint": self.use_checkpoint,
            "use_v2": True,
            "spatial_dims": 3,
        }


@dataclass(frozen=True)
class IOSEncoderConfig:
    """Point Transformer (Zhao et al. 2021) encoder of one jaw: (B, N, 6) xyz + normal → per-level features."""

    planes: tuple[int, ...] = (32, 64, 128, 256, 512)
    blocks: tuple[int, ...] = (2, 3, 4, 6, 3)
    strides: tuple[int, ...] = (1, 4, 4, 4, 4)
    neighbours: tuple[int, ...] = (8, 16, 16, 16, 16)
    share_planes: int = 8
    coord_scale_mm: float = 10.0
    """Coordinates enter the network as (xyz − centroid) / coord_scale_mm (our choice; recorded in the output)."""
    token_stage: int = -1
    """Which level's points become tokens (-1 = deepest)."""
    token_group_size: int = 64
    """Input points per token group (kNN around the token centre) whose labels vote for the token's tooth."""
    shared_jaws: bool = False
    """One encoder for both jaws (True) or one per jaw (False, as the paper)."""

    def __post_init__(self) -> None:
        n = len(self.planes)
        _positive_ints("ios.planes", self.planes)
        _positive_ints("ios.blocks", self.blocks, n)
        _positive_ints("ios.strides", self.strides, n)
        _positive_ints("ios.neighbours", self.neighbours, n)
        if self.strides[0] != 1:
            raise ConfigError(f"ios.strides[0] must be 1 (the first level keeps every point), got {self.strides[0]}")
        bad = [p for p in self.planes if p % self.share_planes]
        if self.share_planes < 1 or bad:
            raise ConfigError(f"ios.share_planes={self.share_planes} must divide every width in ios.planes, not {bad}")
        if self.coord_scale_mm <= 0:
            raise ConfigError(f"ios.coord_scale_mm must be > 0, got {self.coord_scale_mm}")
        if not -n <= self.token_stage < n:
            raise ConfigError(
                f"ios.token_stage must index one of the {n} levels (-{n}..{n - 1}), got {self.token_stage}"
            )
        if self.token_group_size < 1:
            raise ConfigError(f"ios.token_group_size must be ≥ 1, got {self.token_group_size}")

    @property
    def token_level(self) -> int:
        return self.token_stage % len(self.planes)

    def points_at(self, n_points: int) -> list[int]:
        """Points per level for an input of ``n_points``."""
        out = []
        for s in self.strides:
            n_points = n_points // s
            out.append(n_points)
        return out


@dataclass(frozen=True)
class TokenConfig:
    """How tokens get tooth labels and cross-modal partners."""

    cbct_min_fraction: float = 0.5
    """A CBCT token is labelled with its most frequent tooth if that tooth fills ≥ this fraction of its patch."""
    ios_min_fraction: float = 0.5
    """An IOS token is labelled with its group's most frequent tooth if that tooth holds ≥ this fraction of points."""
    match_tolerance_mm: float = 1.5
    """An IOS token centre matches the CBCT tooth containing it, or the nearest within this distance (mm)."""
    unlabelled: Literal["negatives", "exclude"] = "negatives"
    """Tokens without a tooth: 'negatives' = negatives to every tooth token (pairs of two unlabelled tokens are
    ignored); 'exclude' = left out of every pair."""

    def __post_init__(self) -> None:
        for name in ("cbct_min_fraction", "ios_min_fraction"):
            value = getattr(self, name)
            if not 0.0 < value <= 1.0:
                raise ConfigError(f"tokens.{name} must be in (0, 1], got {value}")
        if self.match_tolerance_mm < 0:
            raise ConfigError(f"tokens.match_tolerance_mm must be ≥ 0 mm, got {self.match_tolerance_mm}")
        if self.unlabelled not in ("negatives", "exclude"):
            raise ConfigError(f"tokens.unlabelled must be 'negatives' or 'exclude', got {self.unlabelled!r}")


@dataclass(frozen=True)
class ModelConfig:
    cbct: CBCTEncoderConfig = field(default_factory=CBCTEncoderConfig)
    ios: IOSEncoderConfig = field(default_factory=IOSEncoderConfig)
    embed_dim: int = 512
    """Width of the shared token space (the paper's 512, implied by its 512^-0.5 initialisation)."""
    head_hidden: int = 1024
    """Hidden width of the two-layer projection heads (our choice)."""
    cbct_token_fusion: bool = True
    """CBCT token features = the token stage's output concatenated with every deeper stage's, upsampled (nearest)
    to the token grid (our choice). Tokens keep the fine stage's resolution (enough of them land on a tooth) and
    get the deep stages' context, and every stage of the encoder trains — so fine-tuning loads a pretrained
    encoder, not one 6.5 % trained and the rest at random init (stages beyond the token stage are frozen
    otherwise). No effect at ``token_stage`` 4."""

    def __post_init__(self) -> None:
        if self.embed_dim < 1 or self.head_hidden < 1:
            raise ConfigError(f"embed_dim and head_hidden must be ≥ 1, got {self.embed_dim}, {self.head_hidden}")


@dataclass(frozen=True)
class LossConfig:
    kind: Literal["sigmoid", "infonce"] = "sigmoid"
    cross_weight: float = 0.5
    """λ in total = intra CBCT + intra IOS + λ · cross."""
    intra_cbct_weight: float = 1.0
    intra_ios_weight: float = 1.0
    init_temperature: float = 512**-0.5
    """The paper's 512^-0.5 read as a *temperature* τ: logits = cos / τ, i.e. scale = 1/τ = √512 ≈ 22.6. (Read
    as the scale itself, logits would be cos · 0.044 ∈ [−0.044, 0.044] and every sigmoid ≈ 0.5: no signal.)"""
    init_bias: float = -10.0
    """Initial logit bias of the sigmoid loss: SigLIP's −10 (our choice; the paper starts at 0). Each anchor has
    a few positives among hundreds of negatives; at bias 0 the negatives' loss dominates the first steps and
    pushes every embedding apart, at −10 every pair starts as a confident negative and positives are learned."""
    learn_temperature: bool = True
    learn_bias: bool = True
    max_scale: float = 100.0
    """Upper clamp of the logit scale 1/τ (CLIP's guard against collapse)."""

    def __post_init__(self) -> None:
        if self.kind not in ("sigmoid", "infonce"):
            raise ConfigError(f"loss.kind must be 'sigmoid' or 'infonce', got {self.kind!r}")
        for name in ("cross_weight", "intra_cbct_weight", "intra_ios_weight"):
            if getattr(self, name) < 0:
                raise ConfigError(f"loss.{name} must be ≥ 0, got {getattr(self, name)}")
        if not (self.init_temperature > 0 and 1.0 / self.init_temperature <= self.max_scale):
            raise ConfigError(
                f"loss.init_temperature must be > 0 with 1/init_temperature ≤ max_scale={self.max_scale}, "
                f"got {self.init_temperature}"
            )


@dataclass(frozen=True)
class OptimConfig:
    """AdamW with linear warm-up then cosine decay, stepped per optimiser step (our defaults)."""

    lr: float = 1e-4
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 500
    total_steps: int = 20000
    min_lr_ratio: float = 0.01
    grad_clip: float = 1.0
    """Max global gradient norm; 0 = no clipping."""
    amp: bool = True
    """Autocast on GPU in ``amp_dtype`` (ignored on CPU, which trains in float32)."""
    amp_dtype: Literal["bfloat16", "float16"] = "bfloat16"
    """bfloat16 (no loss scaling needed) or float16 (with a GradScaler, for GPUs without bfloat16)."""
    accumulate: int = 1
    """Micro-batches per optimiser step (gradient accumulation): the effective batch is accumulate × batch_size ×
    ranks; the schedule counts optimiser steps."""

    def __post_init__(self) -> None:
        if self.lr <= 0 or self.weight_decay < 0 or self.grad_clip < 0:
            raise ConfigError(f"optim: lr must be > 0, weight_decay and grad_clip ≥ 0, got {self}")
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise ConfigError(f"optim.betas must be two values in [0, 1), got {self.betas}")
        if not 0 <= self.warmup_steps < self.total_steps:
            raise ConfigError(
                f"optim.warmup_steps must be in [0, total_steps={self.total_steps}), got {self.warmup_steps}"
            )
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ConfigError(f"optim.min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        if self.amp_dtype not in ("bfloat16", "float16"):
            raise ConfigError(f"optim.amp_dtype must be 'bfloat16' or 'float16', got {self.amp_dtype!r}")
        if not isinstance(self.accumulate, int) or self.accumulate < 1:
            raise ConfigError(f"optim.accumulate must be an integer ≥ 1, got {self.accumulate!r}")


@dataclass(frozen=True)
class ModelSections:
    """The model-side sections: those of a :class:`ToothMCLConfig`, and the top of a pretraining YAML."""

    model: ModelConfig = field(default_factory=ModelConfig)
    tokens: TokenConfig = field(default_factory=TokenConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)


@dataclass(frozen=True)
class ToothMCLConfig(ModelSections):
    """Everything the model side needs: model, tokens, loss, optimiser."""

    def to_dict(self) -> dict[str, Any]:
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, data: Any, where: str = "config", overrides: Sequence[str] = ()) -> ToothMCLConfig:
        return config_from_dict(cls, data, where, overrides)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_yaml(cls, text: str | Path, overrides: Sequence[str] = ()) -> ToothMCLConfig:
        """Parse YAML text, or read a ``.yaml`` file when given a Path."""
        if isinstance(text, Path):
            return config_from_yaml(cls, text, overrides)
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise ConfigError(f"config: not valid YAML ({err}); fix the syntax") from err
        return config_from_dict(cls, data, "config", overrides)


@functools.cache
def preset(name: str) -> ToothMCLConfig:
    """The model-side preset ``configs/toothmcl_<name>.yaml`` (``tiny``, ``paper``)."""
    path = CONFIG_DIR / f"toothmcl_{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem.removeprefix("toothmcl_") for p in CONFIG_DIR.glob("toothmcl_*.yaml"))
        raise ConfigError(f"{path}: no model preset {name!r}; known: {known}")
    return ToothMCLConfig.from_dict(read_yaml(path), str(path))


def paper() -> ToothMCLConfig:
    """The paper's configuration (``configs/toothmcl_paper.yaml``; values it does not state are our defaults)."""
    return preset("paper")


def tiny() -> ToothMCLConfig:
    """CPU-test sized (``configs/toothmcl_tiny.yaml``): for crops like 64×64×32 and 1024 points per jaw."""
    return preset("tiny")


PRESETS = {"paper": paper, "tiny": tiny}
