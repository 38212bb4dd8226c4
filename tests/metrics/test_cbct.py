"""CBCT metrics on the hand-built label map of conftest.py (4×4×4 cubes, spacing 0.5 × 1 × 2 mm).

A cube shifted by one voxel along an axis keeps 3×4×4 = 48 of its 64 voxels: Dice = 2·48 / 128 = 0.75. Its
surface (56 voxels: the cube minus its 2×2×2 core) is then one step away from the GT surface on the leading
face (16 voxels) and on the 4 core voxels of the trailing face, 0 elsewhere: 20 of 56 distances are one step,
so the 95th percentile in both directions is one step: 0.5 mm along i, 1 mm along j, 2 mm along k.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.metrics.conftest import SPACING
from toothmcl_data.errors import InputError, LabelSchemeError
from toothmcl_data.metrics.cbct import hd95, numbering_errors, score_label_maps, surface


def test_perfect_prediction(label_map: np.ndarray) -> None:
    s = score_label_maps(label_map, label_map, SPACING)
    d = s.to_dict()
    assert d["dice"] == {"11": 1.0, "16": 1.0, "21": 1.0}
    assert d["hd95_mm"] == {"11": 0.0, "16": 0.0, "21": 0.0}
    assert (d["mean_dice"], d["mean_hd95_mm"], d["identification_accuracy"], d["detection_rate"]) == (1, 0, 1, 1)
    assert d["gt_teeth"] == 3
    assert d["missed"] == []
    assert d["spurious"] == []
    assert set(d["groups"]) == {"incisor", "molar"}
    assert d["groups"]["incisor"]["gt_teeth"] == 2


@pytest.mark.parametrize(("axis", "expected_mm"), [(0, 0.5), (1, 1.0), (2, 2.0)])
def test_one_voxel_shift_uses_the_spacing(label_map: np.ndarray, axis: int, expected_mm: float) -> None:
    gt = np.where(label_map == 11, 11, 0)
    pred = np.roll(gt, 1, axis=axis)
    s = score_label_maps(gt, pred, SPACING)
    assert s.teeth[0].dice == pytest.approx(0.75)
    assert s.teeth[0].hd95_mm == pytest.approx(expected_mm)
    assert s.teeth[0].identified  # Dice 0.75 > 0.5


def test_surface_of_a_cube() -> None:
    a = np.zeros((6, 6, 6), bool)
    a[1:5, 1:5, 1:5] = True
    assert surface(a).sum() == 64 - 8
    edge = np.ones((3, 3, 3), bool)  # touching the array border: outside counts as background
    assert surface(edge).sum() == 26


def test_swapped_11_21_detected_but_not_identified(label_map: np.ndarray) -> None:
    pred = np.where(label_map == 11, 21, np.where(label_map == 21, 11, label_map))
    s = score_label_maps(label_map, pred, SPACING)
    by = {t.fdi: t for t in s.teeth}
    assert [by[11].dice, by[21].dice, by[16].dice] == [0.0, 0.0, 1.0]
    assert (by[11].best_label, by[11].best_dice) == (21, 1.0)
    # HD95 of tooth 11: GT cube at i 2–5, predicted "11" at i 10–13 → 8 voxels × 0.5 mm = 4 mm, all distances.
    assert by[11].hd95_mm == pytest.approx(4.0)
    assert s.summary["identification_accuracy"] == pytest.approx(1 / 3)
    assert s.summary["detection_rate"] == 1.0
    assert s.groups["incisor"]["mean_dice"] == 0.0
    assert s.groups["molar"]["mean_dice"] == 1.0


def test_missing_and_spurious_teeth(label_map: np.ndarray) -> None:
    pred = label_map.copy()
    pred[pred == 16] = 0
    pred[15:18, 15:18, 15:18] = 31
    s = score_label_maps(label_map, pred, SPACING)
    d = s.to_dict()
    assert d["dice"]["16"] == 0.0
    assert d["hd95_mm"]["16"] is None  # undefined, as MONAI's NaN
    assert d["missed"] == [16]
    assert d["spurious"] == [31]  # listed, not in the means (no GT to score against)
    assert d["mean_dice"] == pytest.approx(2 / 3)
    assert d["mean_hd95_mm"] == 0.0  # over teeth where it is defined
    assert d["groups"]["molar"] == {
        "mean_dice": 0.0,
        "mean_hd95_mm": None,
        "identification_accuracy": 0.0,
        "detection_rate": 0.0,
        "gt_teeth": 1,
    }


def test_empty_prediction(label_map: np.ndarray) -> None:
    s = score_label_maps(label_map, np.zeros_like(label_map), SPACING)
    assert s.summary["mean_dice"] == 0.0
    assert math.isnan(s.summary["mean_hd95_mm"])
    assert s.summary["identification_accuracy"] == 0.0
    assert s.to_dict()["mean_hd95_mm"] is None


def test_hd95_of_empty_masks_is_nan() -> None:
    a = np.zeros((4, 4, 4), bool)
    b = a.copy()
    b[1, 1, 1] = True
    assert math.isnan(hd95(a, b, (1.0, 1.0, 1.0)))
    assert math.isnan(hd95(b, a, (1.0, 1.0, 1.0)))


@pytest.mark.parametrize(
    ("gt", "pred", "error", "message"),
    [
        ("empty", "map", InputError, "ground truth has no tooth label (all background); nothing to score"),
        ("map", "code19", LabelSchemeError, "prediction: 1 value(s) are not FDI tooth codes or 0: [19]"),
        ("map", "small", InputError, "ground truth has shape (20, 20, 20) but prediction (20, 20, 19)"),
        ("flat", "flat", InputError, "expected a 3-D label map [i, j, k], got shape (20, 20)"),
    ],
)
def test_errors(label_map: np.ndarray, gt: str, pred: str, error: type, message: str) -> None:
    bad = label_map.copy()
    bad[0, 0, 0] = 19
    arrays = {
        "map": label_map,
        "empty": np.zeros_like(label_map),
        "code19": bad,
        "small": label_map[:, :, :19],
        "flat": label_map[0],
    }
    with pytest.raises(error) as err:
        score_label_maps(arrays[gt], arrays[pred], SPACING, what="case7")
    assert message in str(err.value)
    assert str(err.value).startswith("case7: ")


def _blobs(rng: np.random.Generator, shape: tuple[int, int, int], codes: list[int]) -> np.ndarray:
    out = np.zeros(shape, dtype=np.int16)
    grid = np.indices(shape).transpose(1, 2, 3, 0)
    for code in codes:
        centre = rng.uniform(4, np.array(shape) - 4)
        radii = rng.uniform(2, 5, size=3)
        out[(((grid - centre) / radii) ** 2).sum(-1) <= 1] = code
    return out


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_dice_and_hd95_match_monai() -> None:
    torch = pytest.importorskip("torch")
    metrics = pytest.importorskip("monai.metrics")
    rng = np.random.default_rng(5)
    codes = [11, 13, 16, 26, 36]
    gt = _blobs(rng, (40, 36, 30), codes)
    pred = gt.copy()
    pred = np.roll(pred, (1, -2, 1), axis=(0, 1, 2))
    pred[_blobs(rng, gt.shape, [1]) == 1] = 0  # carve holes
    pred[:8, :8, :8] = 36  # a wrong blob
    spacing = (0.4, 0.7, 1.3)
    ours = score_label_maps(gt, pred, spacing)
    present = sorted({int(c) for c in np.unique(gt)} - {0})

    def onehot(a: np.ndarray) -> object:
        lut = {c: i + 1 for i, c in enumerate(present)}
        idx = np.vectorize(lambda v: lut.get(int(v), 0))(a)
        t = torch.nn.functional.one_hot(torch.as_tensor(idx, dtype=torch.long), len(present) + 1)
        return t.permute(3, 0, 1, 2)[None].float()

    y_pred, y = onehot(pred), onehot(gt)
    dice = metrics.DiceMetric(include_background=False, reduction="none", ignore_empty=True)(y_pred, y)
    hd = metrics.HausdorffDistanceMetric(include_background=False, percentile=95, reduction="none")(
        y_pred, y, spacing=spacing
    )
    np.testing.assert_allclose([t.dice for t in ours.teeth], dice[0].numpy(), rtol=1e-6)
    np.testing.assert_allclose([t.hd95_mm for t in ours.teeth], hd[0].numpy(), rtol=1e-5)
    assert ours.summary["mean_dice"] == pytest.approx(float(dice.nanmean()), rel=1e-6)
    assert min(t.hd95_mm for t in ours.teeth) > 0.3  # the comparison is not between zeros


def test_numbering_errors_tell_along_the_arch_from_left_right_and_upper_lower(label_map: np.ndarray) -> None:
    # 11 → 21 (other side), 21 → 12 (other side), 16 → 15 (own quadrant: counted wrong along the arch)
    pred = np.select([label_map == 11, label_map == 21, label_map == 16], [21, 12, 15], 0)
    errors = numbering_errors(score_label_maps(label_map, pred, SPACING).teeth)
    assert errors == {"along_arch": 1 / 3, "left_right": 2 / 3, "upper_lower": 0.0, "not_detected": 0.0}
    pred = np.select([label_map == 11, label_map == 21], [41, 21], 0)  # 11 → 41 (other jaw), 16 missed
    errors = numbering_errors(score_label_maps(label_map, pred, SPACING).teeth)
    assert errors == {"along_arch": 0.0, "left_right": 0.0, "upper_lower": 1 / 3, "not_detected": 1 / 3}
    assert numbering_errors(score_label_maps(label_map, label_map, SPACING).teeth) == dict.fromkeys(errors, 0.0)
