"""Encoders: shapes, SwinUNETR weight compatibility, Point Transformer permutation symmetry."""

from __future__ import annotations

import pytest
import torch
from monai.networks.nets import SwinUNETR

from toothmcl_data.errors import InputError
from toothmcl_models.config import tiny
from toothmcl_models.encoders.cbct import CBCTEncoder, normalise_intensity
from toothmcl_models.encoders.ios import PointTransformerEncoder
from toothmcl_models.encoders.ops import gather_points


def _image(seed: int, shape: tuple[int, ...] = (2, 1, 64, 64, 32)) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed)) * 3000.0


def _points(seed: int, b: int = 2, n: int = 512) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    xyz = torch.randn(b, n, 3, generator=g) * 12.0 + torch.tensor([5.0, -30.0, 40.0])
    normals = torch.nn.functional.normalize(torch.randn(b, n, 3, generator=g), dim=-1)
    return torch.cat([xyz, normals], -1)


def test_cbct_encoder_stage_shapes() -> None:
    config = tiny().model.cbct
    outs = CBCTEncoder(config)(_image(0))
    shapes = [tuple(o.shape) for o in outs]
    assert shapes == [(2, 12 * 2**s, 64 // 2 ** (s + 1), 64 // 2 ** (s + 1), 32 // 2 ** (s + 1)) for s in range(5)]
    assert config.token_stride == 4
    assert config.token_channels == 24


def test_cbct_weights_load_strictly_into_monai_swinunetr() -> None:
    config = tiny().model.cbct
    torch.manual_seed(0)
    encoder = CBCTEncoder(config).eval()
    net = SwinUNETR(in_channels=1, out_channels=5, **config.swinunetr_kwargs()).eval()
    result = net.swinViT.load_state_dict(encoder.swinViT.state_dict(), strict=True)
    assert not result.missing_keys
    assert not result.unexpected_keys
    image = _image(1, (1, 1, 64, 64, 32))
    with torch.no_grad():
        ours = encoder(image)
        theirs = net.swinViT(normalise_intensity(image, config.intensity_range), net.normalize)
        assert net(normalise_intensity(image, config.intensity_range)).shape == (1, 5, 64, 64, 32)
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ((1, 1, 64, 64, 30), "must be positive multiples of 32 (SwinUNETR), found [30]"),
        ((1, 2, 64, 64, 32), "must have shape (B, 1, X, Y, Z), got (1, 2, 64, 64, 32)"),
    ],
)
def test_cbct_encoder_rejects_bad_crops(shape: tuple[int, ...], message: str) -> None:
    with pytest.raises(InputError) as err:
        CBCTEncoder(tiny().model.cbct)(torch.zeros(shape))
    assert message in str(err.value)


def test_point_transformer_levels_and_parents() -> None:
    config = tiny().model.ios
    pts = _points(0)
    pyramid = PointTransformerEncoder(config)(pts)
    assert [tuple(lv.features.shape) for lv in pyramid.levels] == [(2, 512, 16), (2, 128, 32), (2, 32, 64)]
    torch.testing.assert_close(pyramid.levels[0].xyz_world, pts[..., :3])
    for prev, level in zip(pyramid.levels, pyramid.levels[1:], strict=False):
        assert level.parent is not None
        torch.testing.assert_close(level.xyz_world, gather_points(prev.xyz_world, level.parent))
    torch.testing.assert_close(pyramid.centre, pts[..., :3].mean(1, keepdim=True))
    assert pyramid.scale_mm == config.coord_scale_mm


def test_point_transformer_is_permutation_equivariant_and_tokens_invariant() -> None:
    torch.manual_seed(0)
    encoder = PointTransformerEncoder(tiny().model.ios).eval()
    pts = _points(1)
    perm = torch.randperm(512, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        a, b = encoder(pts), encoder(pts[:, perm])
    # per-point features follow the points
    torch.testing.assert_close(b.levels[0].features, a.levels[0].features[:, perm], atol=1e-5, rtol=1e-5)
    # pooled tokens: the same centres with the same features, whatever the input order
    torch.testing.assert_close(b.levels[-1].xyz_world, a.levels[-1].xyz_world, atol=0, rtol=0)
    torch.testing.assert_close(b.levels[-1].features, a.levels[-1].features, atol=1e-5, rtol=1e-5)
    # and they are not trivially constant
    assert float(a.levels[-1].features.std(1).mean()) > 1e-3


def test_point_transformer_rejects_bad_input() -> None:
    encoder = PointTransformerEncoder(tiny().model.ios)
    with pytest.raises(InputError, match=r"must have shape \(B, N, 6\)"):
        encoder(torch.zeros(1, 100, 3))
    with pytest.raises(InputError, match="too small for strides"):
        encoder(torch.zeros(1, 20, 6))
