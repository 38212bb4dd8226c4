"""CBCT encoder: MONAI's SwinUNETR-v2 Swin transformer (``SwinUNETR(use_v2=True).swinViT``), unchanged.

Axis order — one order everywhere. The input crop is (B, 1, X, Y, Z) float32 indexed (i, j, k) exactly as the
store's crop arrays (``Volume.array[i, j, k]``, i.e. the nibabel convention with an LPS world), and
``world_from_crop`` maps (i, j, k, 1) to LPS mm. Fine-tuning (issue 8) feeds SwinUNETR the same (i, j, k) order.
The paper's released code permuted CBCT axes differently between pretraining and fine-tuning, so the fine-tuned
network saw its pretrained filters transposed; we never permute: pretraining, fine-tuning and inference all read
the crop as stored.

The module is named ``swinViT`` so ``encoder.swinViT.state_dict()`` loads strictly into
``SwinUNETR(**config.swinunetr_kwargs()).swinViT``.
"""

from __future__ import annotations

import importlib.util

import torch
from torch import Tensor, nn

from toothmcl_data.errors import DependencyError, InputError
from toothmcl_models.config import CBCTEncoderConfig

DIVISOR = 32
"""Each spatial size of a crop must be a multiple of this (SwinUNETR: patch size 2, five halvings)."""


def normalise_intensity(image: Tensor, intensity_range: tuple[float, float] | None) -> Tensor:
    """Clip scanner values to ``intensity_range`` and scale them to [0, 1] (identity when None).

    image: (B, 1, X, Y, Z) float32 scanner values (after RescaleSlope/Intercept), any axis order.
    """
    if intensity_range is None:
        return image
    low, high = intensity_range
    return (image.clamp(low, high) - low) / (high - low)


def check_crop_shape(shape: tuple[int, ...], what: str = "CBCT crop") -> None:
    """Raise :class:`InputError` unless ``shape`` is (B, 1, X, Y, Z) with X, Y, Z multiples of 32."""
    if len(shape) != 5 or shape[1] != 1:
        raise InputError(f"{what} must have shape (B, 1, X, Y, Z), got {tuple(shape)}")
    bad = [s for s in shape[2:] if s % DIVISOR or s == 0]
    if bad:
        raise InputError(
            f"{what}: spatial sizes {tuple(shape[2:])} must be positive multiples of {DIVISOR} "
            f"(SwinUNETR), found {bad}; crop or pad the stream's crop_shape to multiples of {DIVISOR}"
        )


class CBCTEncoder(nn.Module):
    """SwinUNETR-v2 encoder returning its five stage outputs.

    Stage s (0..4) has ``feature_size · 2^s`` channels and stride ``2^(s+1)`` voxels; its token (a, b, c) covers
    crop voxels ``[a·f, (a+1)·f) × [b·f, …) × [c·f, …)`` with f the stride.
    """

    def __init__(self, config: CBCTEncoderConfig) -> None:
        super().__init__()
        missing = [m for m in ("monai", "einops") if importlib.util.find_spec(m) is None]
        if missing:
            raise DependencyError(
                f"the CBCT encoder needs {missing} (MONAI's SwinUNETR); install the models extra: "
                "pip install 'toothmcl[models]'"
            )
        from monai.networks.nets.swin_unetr import MERGING_MODE, SwinTransformer

        self.config = config
        self.swinViT = SwinTransformer(
            in_chans=1,
            embed_dim=config.feature_size,
            window_size=(config.window_size,) * 3,
            patch_size=(2, 2, 2),
            depths=tuple(config.depths),
            num_heads=tuple(config.num_heads),
            mlp_ratio=4.0,
            qkv_bias=True,
            drop_rate=0.0,
            attn_drop_rate=0.0,
            drop_path_rate=config.drop_path_rate,
            norm_layer=nn.LayerNorm,
            patch_norm=False,
            use_checkpoint=config.use_checkpoint,
            spatial_dims=3,
            downsample=MERGING_MODE["merging"],
            use_v2=True,
        )

    def forward(self, image: Tensor, upto: int = 4) -> list[Tensor]:
        """image: (B, 1, X, Y, Z) float32 scanner values, axes (i, j, k) of the crop.

        Returns the stage outputs 0..``upto``: (B, C_s, X/2^(s+1), Y/2^(s+1), Z/2^(s+1)), layer-normalised as
        SwinUNETR uses them. The steps are ``SwinTransformer.forward``'s (v2), stopped after stage ``upto``
        (tested equal to MONAI's own forward).
        """
        check_crop_shape(tuple(image.shape))
        if upto not in range(5):
            raise InputError(f"CBCTEncoder.forward: upto must be a stage 0..4, got {upto}")
        vit = self.swinViT
        x = vit.pos_drop(vit.patch_embed(normalise_intensity(image.float(), self.config.intensity_range)))
        outs = [vit.proj_out(x, True)]
        for stage in range(1, upto + 1):
            x = getattr(vit, f"layers{stage}c")[0](x.contiguous())
            x = getattr(vit, f"layers{stage}")[0](x.contiguous())
            outs.append(vit.proj_out(x, True))
        return outs

    def tokens(self, image: Tensor) -> Tensor:
        """The token stage's features: (B, C, X/f, Y/f, Z/f) for f = ``config.token_stride``."""
        return self.forward(image, upto=self.config.token_stage)[-1]

    def freeze_beyond_token_stage(self) -> list[str]:
        """Stop gradients to the stages deeper than ``token_stage`` (pretraining never runs them, and DDP rejects
        parameters that get no gradient). Returns the frozen module names; they keep their initial weights."""
        names = []
        for stage in range(self.config.token_stage + 1, 5):
            for name in (f"layers{stage}c", f"layers{stage}"):
                getattr(self.swinViT, name).requires_grad_(False)
                names.append(f"swinViT.{name}")
        return names


def token_grid_centres(grid: tuple[int, int, int], stride: int, device: torch.device | None = None) -> Tensor:
    """Crop-index centres of the tokens of a (gx, gy, gz) grid with ``stride`` voxels per token edge.

    Returns (gx·gy·gz, 3) float64 continuous voxel indices (i, j, k), row-major over (a, b, c) — the same order as
    ``features.flatten(2)``; token (a, b, c) is centred at ``a·f + (f − 1)/2`` etc.
    """
    axes = [torch.arange(g, dtype=torch.float64, device=device) * stride + (stride - 1) / 2.0 for g in grid]
    mesh = torch.meshgrid(*axes, indexing="ij")
    return torch.stack([m.reshape(-1) for m in mesh], dim=-1)
