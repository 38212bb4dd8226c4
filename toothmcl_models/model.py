"""ToothMCL: the CBCT and IOS encoders with projection heads, turning a batch into labelled, positioned tokens.

A batch is the collated case-level stream sample (``toothmcl_data.stream``), all in the CBCT crop's LPS world:

- ``cbct``: (B, 1, X, Y, Z) float32 scanner values, axes (i, j, k) of the crop (see ``encoders.cbct``);
- ``cbct_labels``: (B, X, Y, Z) int FDI label crop on the same grid (0 = not a tooth);
- ``world_from_crop``: (B, 4, 4) float64, (i, j, k, 1) → LPS mm;
- ``ios``: {"upper", "lower"}: (B, N, 6) float32 xyz (LPS mm, registered into the CBCT world) + unit normal;
- ``ios_labels``: {"upper", "lower"}: (B, N) int per-point FDI (0 gingiva, −1 unknown);
- ``case``: B case pseudonyms (patient identity for positives).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional

from toothmcl_data.errors import InputError
from toothmcl_data.types import JAWS
from toothmcl_models.config import ModelConfig, TokenConfig, ToothMCLConfig
from toothmcl_models.encoders.cbct import CBCTEncoder, token_grid_centres
from toothmcl_models.encoders.ios import PointTransformerEncoder
from toothmcl_models.encoders.ops import Backend
from toothmcl_models.losses import ToothMCLLoss
from toothmcl_models.tokens import (
    TokenSet,
    cbct_patch_labels,
    crop_to_world,
    ios_group_labels,
    patient_ids,
    tooth_at_points,
)

BATCH_KEYS = ("cbct", "cbct_labels", "world_from_crop", "ios", "ios_labels", "case")


class ProjectionHead(nn.Module):
    """Linear → GELU → Linear, then L2 normalisation: (..., C) → (..., D) unit vectors."""

    def __init__(self, c_in: int, hidden: int, c_out: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(c_in, hidden), nn.GELU(), nn.Linear(hidden, c_out))

    def forward(self, x: Tensor) -> Tensor:
        return functional.normalize(self.net(x), dim=-1)


@dataclass(frozen=True, eq=False)
class ModelOutput:
    cbct: TokenSet
    ios: TokenSet


class ToothMCL(nn.Module):
    """Two encoders (CBCT; IOS, one per jaw unless ``ios.shared_jaws``) and their projection heads.

    With ``cbct_token_fusion`` every CBCT stage feeds the tokens and trains; without it, CBCT stages deeper than
    ``cbct.token_stage`` are neither run nor trained. IOS levels deeper than ``ios.token_stage`` are neither run
    nor trained. ``frozen`` names the untrained modules.
    """

    def __init__(self, config: ModelConfig, tokens: TokenConfig, backend: Backend = "auto") -> None:
        super().__init__()
        self.config, self.token_config = config, tokens
        self.cbct_encoder = CBCTEncoder(config.cbct)
        self.frozen = [] if config.cbct_token_fusion else self.cbct_encoder.freeze_beyond_token_stage()
        if config.ios.shared_jaws:
            shared = PointTransformerEncoder(config.ios, backend=backend)
            self.ios_encoders = nn.ModuleDict({jaw: shared for jaw in JAWS})
        else:
            encoders: dict[str, nn.Module] = {jaw: PointTransformerEncoder(config.ios, backend=backend) for jaw in JAWS}
            self.ios_encoders = nn.ModuleDict(encoders)
        for jaw in JAWS:
            frozen_ios = self.ios_encoders[jaw].freeze_beyond(config.ios.token_level)  # type: ignore[operator]
        self.frozen += [f"ios_encoders.*.{name}" for name in frozen_ios]
        self.cbct_head = ProjectionHead(cbct_token_channels(config), config.head_hidden, config.embed_dim)
        ios_channels = config.ios.planes[config.ios.token_level]
        self.ios_head = ProjectionHead(ios_channels, config.head_hidden, config.embed_dim)

    def cbct_features(self, image: Tensor) -> Tensor:
        """Token features (B, C, X/f, Y/f, Z/f) of a crop (B, 1, X, Y, Z), f = ``cbct.token_stride``: the token
        stage's output, with the deeper stages' upsampled and concatenated when ``cbct_token_fusion``."""
        stage = self.config.cbct.token_stage
        if not self.config.cbct_token_fusion:
            return self.cbct_encoder.tokens(image)
        outs = self.cbct_encoder(image, upto=4)[stage:]
        grid = outs[0].shape[2:]
        return torch.cat([outs[0], *(functional.interpolate(o, size=grid, mode="nearest") for o in outs[1:])], 1)

    def cbct_tokens(self, image: Tensor, label_crop: Tensor, world_from_crop: Tensor, patient: Tensor) -> TokenSet:
        """image (B, 1, X, Y, Z) float32; label_crop (B, X, Y, Z) int; world_from_crop (B, 4, 4); patient (B,)."""
        feats = self.cbct_features(image)  # (B, C, gx, gy, gz)
        b, _, gx, gy, gz = feats.shape
        stride = self.config.cbct.token_stride
        emb = self.cbct_head(feats.flatten(2).transpose(1, 2))  # (B, T, D)
        ijk = token_grid_centres((gx, gy, gz), stride, device=image.device)
        centres = crop_to_world(world_from_crop.to(image.device), ijk.expand(b, -1, -1))
        labels = cbct_patch_labels(label_crop.to(image.device), stride, self.token_config.cbct_min_fraction)
        t = emb.shape[1]
        sample = torch.arange(b, device=image.device).repeat_interleave(t)
        return TokenSet(
            embeddings=emb.reshape(b * t, -1),
            centres=centres.reshape(b * t, 3),
            labels=labels.reshape(-1),
            match=labels.reshape(-1),
            sample=sample,
            patient=patient.to(image.device)[sample],
        )

    def ios_tokens(
        self,
        points: Mapping[str, Tensor],
        point_labels: Mapping[str, Tensor],
        label_crop: Tensor,
        world_from_crop: Tensor,
        patient: Tensor,
    ) -> TokenSet:
        """points {jaw: (B, N, 6)}; point_labels {jaw: (B, N) int}; label_crop, world_from_crop, patient as CBCT."""
        cfg, tok = self.config.ios, self.token_config
        parts: list[TokenSet] = []
        for jaw in JAWS:
            pts = points[jaw]
            pyramid = self.ios_encoders[jaw](pts, upto=cfg.token_level)
            level = pyramid.levels[-1]
            b, m, _ = level.xyz_world.shape
            emb = self.ios_head(level.features)
            votes = point_labels[jaw].to(pts.device)
            labels = ios_group_labels(pts[..., :3], votes, level.xyz_world, cfg.token_group_size, tok.ios_min_fraction)
            match = torch.stack(
                [
                    tooth_at_points(label_crop[i], world_from_crop[i], level.xyz_world[i], tok.match_tolerance_mm)
                    for i in range(b)
                ]
            ).to(pts.device)
            sample = torch.arange(b, device=pts.device).repeat_interleave(m)
            parts.append(
                TokenSet(
                    embeddings=emb.reshape(b * m, -1),
                    centres=level.xyz_world.double().reshape(b * m, 3),
                    labels=labels.reshape(-1),
                    match=match.reshape(-1),
                    sample=sample,
                    patient=patient.to(pts.device)[sample],
                )
            )
        return concat_tokens(parts)

    def forward(self, batch: Mapping[str, Any]) -> ModelOutput:
        """Tokens of both modalities for a collated batch (keys: see module doc)."""
        missing = [k for k in BATCH_KEYS if k not in batch]
        if missing:
            raise InputError(f"model batch is missing key(s) {missing}; expected {list(BATCH_KEYS)} (stream sample)")
        image = batch["cbct"]
        patient = patient_ids(_cases(batch["case"], image.shape[0]))
        wfc = torch.as_tensor(batch["world_from_crop"], dtype=torch.float64)
        if wfc.shape != (image.shape[0], 4, 4):
            raise InputError(f"world_from_crop must be (B, 4, 4) with B={image.shape[0]}, got {tuple(wfc.shape)}")
        labels = batch["cbct_labels"]
        if tuple(labels.shape) != (image.shape[0], *image.shape[2:]):
            raise InputError(
                f"cbct_labels must be (B, X, Y, Z) = {(image.shape[0], *image.shape[2:])}, got {tuple(labels.shape)}"
            )
        cbct = self.cbct_tokens(image, labels, wfc, patient)
        ios = self.ios_tokens(batch["ios"], batch["ios_labels"], labels, wfc, patient)
        return ModelOutput(cbct, ios)


def cbct_token_channels(config: ModelConfig) -> int:
    """Channels of a CBCT token feature (:meth:`ToothMCL.cbct_features`)."""
    cbct = config.cbct
    stages = range(cbct.token_stage, 5) if config.cbct_token_fusion else [cbct.token_stage]
    return sum(cbct.feature_size * 2**s for s in stages)


def _cases(cases: Any, b: int) -> Sequence[str]:
    if isinstance(cases, str) or len(cases) != b:
        raise InputError(f"batch['case'] must be a sequence of {b} case pseudonyms, got {cases!r}")
    return [str(c) for c in cases]


def concat_tokens(parts: Sequence[TokenSet]) -> TokenSet:
    """Concatenate token sets along the token axis."""
    return TokenSet(
        embeddings=torch.cat([p.embeddings for p in parts]),
        centres=torch.cat([p.centres for p in parts]),
        labels=torch.cat([p.labels for p in parts]),
        match=torch.cat([p.match for p in parts]),
        sample=torch.cat([p.sample for p in parts]),
        patient=torch.cat([p.patient for p in parts]),
    )


def build(config: ToothMCLConfig, seed: int, backend: Backend = "auto") -> tuple[ToothMCL, ToothMCLLoss]:
    """Model and loss with weights drawn from ``seed`` (same seed → identical weights).

    torch initialisers draw from the global generator, so this runs them inside ``torch.random.fork_rng``: the
    caller's global RNG state is restored afterwards (no global seeding leaks out of the library).
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = ToothMCL(config.model, config.tokens, backend=backend)
        loss = ToothMCLLoss(config.loss, config.tokens)
    return model, loss
