"""Segmentation networks: class maps that round-trip every tooth, output shapes, the background prior, seeded
construction, and pretrained-encoder loading that refuses checkpoints without the asked-for encoder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from toothmcl_data.errors import ConfigError, InputError
from toothmcl_data.fdi import PERMANENT_FDI
from toothmcl_models import segmentation as seg
from toothmcl_models.checkpoint import save_checkpoint
from toothmcl_models.config import tiny

torch.set_num_threads(1)
MODEL = tiny().model


def test_cbct_classes_round_trip_every_permanent_tooth() -> None:
    labels = torch.tensor([[0, *PERMANENT_FDI, 51, -1, 150]])
    classes = seg.fdi_to_classes(labels, seg.cbct_class_table())
    assert classes[0, :33].tolist() == list(range(33))
    assert classes[0, 33:].tolist() == [-100, -100, -100]  # deciduous, unknown, out of range: ignored
    np.testing.assert_array_equal(seg.classes_to_fdi(classes[0, :33]), [0, *PERMANENT_FDI])
    assert seg.CBCT_CLASSES[1] == 11


@pytest.mark.parametrize(("jaw", "quadrants"), [("upper", (1, 2)), ("lower", (3, 4))])
def test_ios_classes_cover_one_jaw(jaw: str, quadrants: tuple[int, int]) -> None:
    table = seg.ios_class_table(jaw)  # type: ignore[arg-type]
    mine = [f for f in PERMANENT_FDI if f // 10 in quadrants]
    theirs = [f for f in PERMANENT_FDI if f // 10 not in quadrants]
    classes = seg.fdi_to_classes(torch.tensor([0, *mine]), table)
    assert sorted(classes.tolist()) == list(range(seg.IOS_CLASSES))
    assert seg.fdi_to_classes(torch.tensor(theirs), table).eq(-100).all()
    np.testing.assert_array_equal(seg.classes_to_fdi(classes, jaw), [0, *mine])  # type: ignore[arg-type]


def test_cbct_segmenter_shape_prior_and_intensity_clip() -> None:
    net = seg.build_segmenter("cbct", MODEL.cbct, MODEL.ios, seed=0).eval()
    assert isinstance(net, seg.CBCTSegmenter)
    image = torch.rand(1, 1, 64, 32, 32) * 2000.0
    with torch.no_grad():
        image[..., :4] = 2500.0
        same = net(image)
        image[..., :4] = 9000.0  # beyond the top of the intensity range: clipped to it
        clipped = net(image)
    assert same.shape == (1, len(seg.CBCT_CLASSES), 64, 32, 32)
    assert torch.equal(same, clipped)
    head = [m for m in net.net.out.modules() if isinstance(m, torch.nn.Conv3d)][-1]
    assert head.bias is not None
    assert head.bias[0].item() == seg.BACKGROUND_BIAS
    assert head.bias[1:].abs().max().item() == 0.0
    with pytest.raises(InputError, match="multiples of 32"):
        net(torch.zeros(1, 1, 32, 32, 20))


def test_ios_segmenter_shapes_and_jaws() -> None:
    net = seg.build_segmenter("ios", MODEL.cbct, MODEL.ios, seed=0, jaws=("lower",)).eval()
    assert isinstance(net, seg.IOSSegmenter)
    points = torch.cat([torch.randn(2, 256, 3) * 10, torch.nn.functional.normalize(torch.randn(2, 256, 3), dim=-1)], -1)
    with torch.no_grad():
        assert net(points, "lower").shape == (2, 256, seg.IOS_CLASSES)
    with pytest.raises(InputError, match=r"has jaws \['lower'\], got a 'upper' scan"):
        net(points, "upper")


def test_build_is_seeded_and_leaves_the_global_generator_alone() -> None:
    torch.manual_seed(99)
    expected = torch.rand(3)
    torch.manual_seed(99)
    a = seg.build_segmenter("ios", MODEL.cbct, MODEL.ios, seed=4)
    assert torch.equal(torch.rand(3), expected)
    b = seg.build_segmenter("ios", MODEL.cbct, MODEL.ios, seed=4)
    c = seg.build_segmenter("ios", MODEL.cbct, MODEL.ios, seed=5)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    with pytest.raises(ConfigError, match="task must be 'cbct' or 'ios'"):
        seg.build_segmenter("teeth", MODEL.cbct, MODEL.ios, seed=0)


def test_pretrained_loading_needs_the_asked_for_encoder(tmp_path: Path) -> None:
    ios_net = seg.build_segmenter("ios", MODEL.cbct, MODEL.ios, seed=1)
    assert isinstance(ios_net, seg.IOSSegmenter)
    weights = {
        f"model.ios_encoders.{jaw}.{k}": v
        for jaw in ("upper", "lower")
        for k, v in ios_net.encoders[jaw].state_dict().items()
    }
    save_checkpoint(tmp_path / "ios-only", 1, {"module": weights, "config": {}})
    fresh = seg.build_segmenter("ios", MODEL.cbct, MODEL.ios, seed=2)
    assert isinstance(fresh, seg.IOSSegmenter)
    loaded = seg.load_pretrained(fresh, tmp_path / "ios-only")
    assert len(loaded) == len(weights)
    for jaw in ("upper", "lower"):
        for k, v in fresh.encoders[jaw].state_dict().items():
            assert torch.equal(v, ios_net.encoders[jaw].state_dict()[k])
    cbct = seg.build_segmenter("cbct", MODEL.cbct, MODEL.ios, seed=0)
    with pytest.raises(InputError, match=r"no 'model.cbct_encoder.swinViT.\*' weights; pass a pretraining checkpoint"):
        seg.load_pretrained(cbct, tmp_path / "ios-only")
    with pytest.raises(InputError, match="expected a CBCTSegmenter or IOSSegmenter"):
        seg.load_pretrained(torch.nn.Linear(2, 2), tmp_path / "ios-only")
