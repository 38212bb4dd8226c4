"""Downstream FDI segmentation networks, initialised from a pretraining checkpoint or from scratch.

- CBCT: MONAI ``SwinUNETR(use_v2=True)``, background + the 32 permanent FDI teeth (class ``c`` ↔ FDI
  ``CBCT_CLASSES[c]``). Input (B, 1, X, Y, Z) float32 scanner values indexed (i, j, k) as stored (the pretraining
  axis order; no permutation), clipped and scaled exactly as the pretraining encoder does.
- IOS: one Point Transformer encoder + transition-up decoder per jaw, 17 per-jaw classes (``perjaw17``:
  0 gingiva, 1–16 teeth). Input (B, N, 6) float32 xyz mm + unit normal of one jaw, output (B, N, 17) logits.

``load_pretrained`` copies the encoder weights of a ``toothmcl_models.pretrain`` checkpoint
(``state["module"]`` keys ``model.cbct_encoder.swinViT.*`` / ``model.ios_encoders.<jaw>.*``) strictly, after
checking the checkpoint's encoder configuration equals the fine-tuning one.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from toothmcl_data.configdict import config_to_dict
from toothmcl_data.errors import ConfigError, DependencyError, InputError
from toothmcl_data.fdi import PERMANENT_FDI, load_scheme
from toothmcl_data.types import JAWS, Jaw
from toothmcl_models.checkpoint import load_checkpoint
from toothmcl_models.config import CBCTEncoderConfig, IOSEncoderConfig
from toothmcl_models.encoders.cbct import check_crop_shape, normalise_intensity
from toothmcl_models.encoders.ios import PointTransformerEncoder
from toothmcl_models.encoders.ops import Backend, interpolate_features

CBCT_CLASSES: tuple[int, ...] = (0, *PERMANENT_FDI)
"""FDI code of each CBCT output class (index 0 = background)."""
IOS_CLASSES = 17
"""Per-jaw classes (``perjaw17``): 0 gingiva, 1–16 the jaw's teeth."""
BACKGROUND_BIAS = 4.0
"""Initial output bias of CBCT class 0 (the others 0): background starts at probability e⁴ / (e⁴ + 32) ≈ 0.63
instead of 1/33 (RetinaNet's prior-probability init); ~97 % of voxels are background, so training no longer
spends its first steps learning that and finds the teeth sooner (measured on one patient: crop foreground Dice
0.85 vs 0.0–0.5 after 40 steps)."""


def cbct_class_table() -> Tensor:
    """(100,) int64 lookup FDI code → CBCT class index; codes outside the class set (deciduous, −1) → −100."""
    table = torch.full((100,), -100, dtype=torch.int64)
    for index, fdi in enumerate(CBCT_CLASSES):
        table[fdi] = index
    return table


def ios_class_table(jaw: Jaw) -> Tensor:
    """(100,) int64 lookup FDI code → ``perjaw17`` class of ``jaw``; other codes (the other jaw's teeth, −1) → −100."""
    scheme = load_scheme("perjaw17")
    table = torch.full((100,), -100, dtype=torch.int64)
    for code in range(IOS_CLASSES):
        fdi = int(scheme.to_fdi(np.array([code]), jaw)[0])
        table[fdi] = code
    return table


def fdi_to_classes(labels: Tensor, table: Tensor) -> Tensor:
    """Map FDI labels (any shape, int; −1 unknown) to class indices with ``table``; unmapped → −100 (ignored)."""
    index = labels.long()
    valid = (index >= 0) & (index < len(table))
    out = torch.full_like(index, -100)
    out[valid] = table.to(index.device)[index[valid]]
    return out


def classes_to_fdi(classes: Tensor | np.ndarray, jaw: Jaw | None = None) -> np.ndarray:
    """Class indices (any shape) → int16 FDI: CBCT classes when ``jaw`` is None, else ``perjaw17`` of ``jaw``."""
    arr = np.asarray(classes.cpu() if isinstance(classes, Tensor) else classes, dtype=np.int64)
    if jaw is None:
        return np.asarray(CBCT_CLASSES, dtype=np.int16)[arr]
    return load_scheme("perjaw17").to_fdi(arr, jaw)


class CBCTSegmenter(nn.Module):
    """SwinUNETR-v2 whose ``net.swinViT`` has exactly the pretraining CBCT encoder's parameters."""

    def __init__(self, encoder: CBCTEncoderConfig, num_classes: int = len(CBCT_CLASSES)) -> None:
        super().__init__()
        if importlib.util.find_spec("monai") is None:
            raise DependencyError(
                "CBCT segmentation needs MONAI; install the models extra: pip install 'toothmcl[models]'"
            )
        from monai.networks.nets import SwinUNETR

        self.encoder_config, self.num_classes = encoder, num_classes
        self.net = SwinUNETR(in_channels=1, out_channels=num_classes, **encoder.swinunetr_kwargs())
        head = [m for m in self.net.out.modules() if isinstance(m, nn.Conv3d)][-1]
        with torch.no_grad():
            if head.bias is not None:
                head.bias.zero_()
                head.bias[0] = BACKGROUND_BIAS

    def forward(self, image: Tensor) -> Tensor:
        """image: (B, 1, X, Y, Z) float32 scanner values, X, Y, Z multiples of 32 → (B, K, X, Y, Z) logits."""
        check_crop_shape(tuple(image.shape), "CBCT segmentation input")
        return self.net(normalise_intensity(image.float(), self.encoder_config.intensity_range))


class PointDecoder(nn.Module):
    """Point Transformer transition-up: from the deepest level back to the input points, with skip connections.

    Before upsampling, every deepest-level point gets the jaw's global context added: an MLP of the max- and
    mean-pooled deepest features (PointNet's global feature). The encoder's neighbourhoods are local (k nearest of
    64 points ≈ 2–3 teeth), and FDI numbering is a property of the whole arch (which tooth counts from the midline,
    where the midline is when teeth are missing): measured, without it the errors were shifts by one along the
    arch and across the midline (31 ↔ 41).
    """

    def __init__(self, planes: Sequence[int], num_classes: int) -> None:
        super().__init__()
        deep = planes[-1]
        self.context = nn.Sequential(nn.Linear(2 * deep, deep), nn.ReLU(), nn.Linear(deep, deep))
        self.context_norm = nn.LayerNorm(deep)
        self.up = nn.ModuleList(nn.Linear(planes[i], planes[i - 1]) for i in range(1, len(planes)))
        self.skip = nn.ModuleList(nn.Linear(planes[i - 1], planes[i - 1]) for i in range(1, len(planes)))
        self.norm = nn.ModuleList(nn.LayerNorm(planes[i - 1]) for i in range(1, len(planes)))
        self.head = nn.Sequential(nn.Linear(planes[0], planes[0]), nn.ReLU(), nn.Linear(planes[0], num_classes))

    def forward(self, levels: Sequence[Any], backend: Backend = "auto") -> Tensor:
        """levels: the encoder's ``PointPyramid.levels`` (level 0 = the input points) → (B, N, K) logits."""
        x = levels[-1].features
        pooled = torch.cat([x.max(dim=1).values, x.mean(dim=1)], dim=-1)  # (B, 2C)
        x = torch.relu(self.context_norm(x + self.context(pooled).unsqueeze(1)))
        for i in range(len(levels) - 1, 0, -1):
            fine = levels[i - 1]
            up = interpolate_features(levels[i].xyz_world, self.up[i - 1](x), fine.xyz_world, backend=backend)
            x = torch.relu(self.norm[i - 1](up + self.skip[i - 1](fine.features)))
        return self.head(x)


class IOSSegmenter(nn.Module):
    """Per-jaw Point Transformer encoder (as pretrained) + decoder; ``forward(points, jaw)``."""

    def __init__(
        self,
        encoder: IOSEncoderConfig,
        jaws: Sequence[Jaw] = JAWS,
        num_classes: int = IOS_CLASSES,
        backend: Backend = "auto",
    ) -> None:
        super().__init__()
        self.encoder_config, self.backend = encoder, backend
        self.encoders = nn.ModuleDict({jaw: PointTransformerEncoder(encoder, backend=backend) for jaw in jaws})
        self.decoders = nn.ModuleDict({jaw: PointDecoder(encoder.planes, num_classes) for jaw in jaws})

    def forward(self, points: Tensor, jaw: str) -> Tensor:
        """points: (B, N, 6) float32 xyz mm (any one frame) + unit normal, one jaw → (B, N, 17) logits."""
        if jaw not in self.encoders:
            raise InputError(f"IOS segmenter has jaws {list(self.encoders)}, got a {jaw!r} scan")
        pyramid = self.encoders[jaw](points)
        return self.decoders[jaw](pyramid.levels, self.backend)


def build_segmenter(
    task: str, cbct: CBCTEncoderConfig, ios: IOSEncoderConfig, *, seed: int, jaws: Sequence[Jaw] = JAWS
) -> nn.Module:
    """A fresh network for ``task`` (``"cbct"`` / ``"ios"``) with weights drawn from ``seed``; the caller's global
    RNG state is restored afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if task == "cbct":
            return CBCTSegmenter(cbct)
        if task == "ios":
            return IOSSegmenter(ios, jaws)
    raise ConfigError(f"task must be 'cbct' or 'ios', got {task!r}")


def _sub_state(state: Mapping[str, Tensor], prefix: str) -> dict[str, Tensor]:
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


_ARCHITECTURE = {
    "cbct": ("feature_size", "depths", "num_heads", "window_size"),
    "ios": ("planes", "blocks", "strides", "neighbours", "share_planes", "coord_scale_mm"),
}


def _check_architecture(checkpoint: Path, part: str, theirs: Mapping[str, Any] | None, config: object) -> None:
    """Raise :class:`ConfigError` when the pretrained encoder's shape-defining fields differ from ``config``'s."""
    if theirs is None:
        return
    ours = config_to_dict(config)
    differ = {k: (theirs.get(k), ours[k]) for k in _ARCHITECTURE[part] if theirs.get(k) != ours[k]}
    if differ:
        raise ConfigError(
            f"{checkpoint}: pretrained {part.upper()} encoder differs from the fine-tuning config in "
            f"{ {k: f'{a} (checkpoint) vs {b}' for k, (a, b) in differ.items()} }; fine-tune with the pretraining "
            f"run's model.{part} section"
        )


def load_pretrained(model: nn.Module, checkpoint: Path) -> list[str]:
    """Copy the pretrained encoder(s) of a pretraining ``checkpoint`` (file or run folder) into ``model``.

    Returns the names of the loaded parameters/buffers (in ``model``'s naming). Raises :class:`ConfigError` when
    the checkpoint's encoder config differs from the model's, :class:`InputError` when it holds no such encoder.
    """
    state = load_checkpoint(checkpoint)
    weights: Mapping[str, Tensor] = state.get("module", {})
    model_cfg = (state.get("config") or {}).get("model", {})
    if isinstance(model, CBCTSegmenter):
        _check_architecture(checkpoint, "cbct", model_cfg.get("cbct"), model.encoder_config)
        sub = _sub_state(weights, "model.cbct_encoder.swinViT.")
        if not sub:
            raise InputError(f"{checkpoint}: no 'model.cbct_encoder.swinViT.*' weights; pass a pretraining checkpoint")
        model.net.swinViT.load_state_dict(sub, strict=True)
        return [f"net.swinViT.{k}" for k in sub]
    if isinstance(model, IOSSegmenter):
        _check_architecture(checkpoint, "ios", model_cfg.get("ios"), model.encoder_config)
        loaded = []
        for jaw, encoder in model.encoders.items():
            sub = _sub_state(weights, f"model.ios_encoders.{jaw}.")
            if not sub:
                raise InputError(
                    f"{checkpoint}: no 'model.ios_encoders.{jaw}.*' weights; pass a pretraining checkpoint"
                )
            encoder.load_state_dict(sub, strict=True)
            loaded += [f"encoders.{jaw}.{k}" for k in sub]
        return loaded
    raise InputError(f"load_pretrained: expected a CBCTSegmenter or IOSSegmenter, got {type(model).__name__}")
