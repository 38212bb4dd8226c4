"""CBCT tooth segmentation metrics on FDI label maps: Dice and HD95 per tooth, identification, tooth groups.

Definitions (both label maps on the same voxel grid, FDI codes, 0 = background):

- **Dice** of tooth ``t``: ``2|G∩P| / (|G|+|P|)`` with ``G = gt == t``, ``P = pred == t``. Reported for every
  tooth in the GT; a GT tooth the prediction misses has Dice 0. A tooth only in the prediction (*spurious*) has
  no Dice and is listed apart. **mean Dice** is the mean over GT teeth. This is MONAI's
  ``DiceMetric(include_background=False, ignore_empty=True)`` on one-hot labels (empty GT → NaN, left out).
- **HD95** (mm): MONAI's ``HausdorffDistanceMetric(percentile=95, include_background=False)`` *with*
  ``spacing=volume spacing`` (without it MONAI reports voxels). Surface of a mask = the mask minus its binary
  erosion by the 6-neighbourhood, outside the array counting as background; distances from every surface voxel
  of one mask to the nearest surface voxel of the other, Euclidean in mm with the voxel spacing (an exact
  distance transform of the other surface); the 95th percentile with linear interpolation of each direction;
  the larger of the two. Undefined (NaN, JSON ``null``) when the tooth is empty in GT or in prediction, as in
  MONAI; **mean HD95** is over teeth where it is defined.
- **Identification**: GT tooth ``t`` is *identified* when ``Dice(t) > 0.5``. That implies the predicted label
  covering most of the GT tooth is ``t`` (it covers more than half of it), so it reads "the predicted tooth
  matched to this GT tooth carries the right FDI". **identification accuracy** = identified / GT teeth.
  **detection rate** is the label-blind version: the best-overlapping predicted tooth label ``l`` (any FDI) has
  ``Dice(gt == t, pred == l) > 0.5``; detection − identification = found but numbered wrong (e.g. 11 ↔ 21).
- **Groups** (incisor, canine, premolar, molar, from :func:`toothmcl_data.fdi.tooth`): the same means over
  the GT teeth of each group.

An empty prediction gives Dice 0 and no HD95 for every GT tooth; an empty GT is an error (nothing to score).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from toothmcl_data.errors import InputError, LabelSchemeError
from toothmcl_data.fdi import ALL_TEETH, tooth
from toothmcl_data.types import Spacing, ToothType

TOOTH_GROUPS: tuple[ToothType, ...] = ("incisor", "canine", "premolar", "molar")
DETECTION_DICE = 0.5
"""Dice above which a GT tooth counts as detected / identified (strict ``>``)."""
HD_PERCENTILE = 95.0
_MAX_CODE = max(ALL_TEETH)


@dataclass(frozen=True)
class ToothScore:
    """One GT tooth: Dice with the same FDI in the prediction, HD95 in mm (NaN if either mask is empty),
    voxel counts, the predicted label overlapping it most (0 if none) with that label's Dice."""

    fdi: int
    dice: float
    hd95_mm: float
    gt_voxels: int
    pred_voxels: int
    best_label: int
    best_dice: float

    @property
    def identified(self) -> bool:
        return self.dice > DETECTION_DICE

    @property
    def detected(self) -> bool:
        return self.best_dice > DETECTION_DICE


@dataclass(frozen=True)
class CBCTScores:
    """Scores of one CBCT label map: per GT tooth (ascending FDI), spurious predicted teeth, summaries."""

    teeth: tuple[ToothScore, ...]
    spurious: tuple[int, ...] = ()
    spacing: Spacing = (1.0, 1.0, 1.0)
    summary: dict[str, float | int] = field(default_factory=dict)
    groups: dict[str, dict[str, float | int]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: summary keys at the top, ``dice``/``hd95_mm`` per FDI, per group; NaN becomes None."""
        return {
            **{k: _finite(v) for k, v in self.summary.items()},
            "dice": {str(t.fdi): _finite(t.dice) for t in self.teeth},
            "hd95_mm": {str(t.fdi): _finite(t.hd95_mm) for t in self.teeth},
            "identified": [t.fdi for t in self.teeth if t.identified],
            "missed": [t.fdi for t in self.teeth if t.pred_voxels == 0],
            "spurious": list(self.spurious),
            "groups": {g: {k: _finite(v) for k, v in d.items()} for g, d in self.groups.items()},
            "spacing_mm": list(self.spacing),
        }


def _finite(x: float | int) -> float | int | None:
    if isinstance(x, int):
        return x
    return None if math.isnan(x) else float(x)


def _nanmean(values: list[float]) -> float:
    vals = [v for v in values if not math.isnan(v)]
    return float(np.mean(vals)) if vals else math.nan


def _bad_codes(what: str, bad: list[int]) -> LabelSchemeError:
    return LabelSchemeError(
        f"{what}: {len(bad)} value(s) are not FDI tooth codes or 0: {bad[:8]}; convert the labels to FDI "
        "first (pass scheme=..., e.g. 'toothfairy2', or `--scheme` on the command line)"
    )


def check_label_map(labels: NDArray[Any], what: str) -> NDArray[np.integer]:
    """Return ``labels`` (I, J, K) as an integer array after checking values lie in 0..85 (FDI's range).

    Whether each present code is a tooth is checked from the voxel counts (:func:`score_label_maps`), which
    avoids sorting the volume.
    """
    arr = np.asarray(labels)
    if arr.ndim != 3:
        raise InputError(f"{what}: expected a 3-D label map [i, j, k], got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.mod(arr, 1) == 0):
            raise LabelSchemeError(f"{what}: label map holds non-integer values; expected FDI codes")
        arr = arr.astype(np.int64)
    if arr.size and (int(arr.min()) < 0 or int(arr.max()) > _MAX_CODE):
        raise _bad_codes(what, np.unique(arr[(arr < 0) | (arr > _MAX_CODE)]).tolist())
    return arr


def surface(mask: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """Surface voxels of ``mask`` (any-shape bool): the mask minus its erosion by the 6-neighbourhood, with
    everything outside the array counting as background (MONAI ``get_mask_edges``)."""
    return mask & ~ndimage.binary_erosion(mask, border_value=0)


def hd95(gt_mask: NDArray[np.bool_], pred_mask: NDArray[np.bool_], spacing: Spacing) -> float:
    """Symmetric 95th-percentile Hausdorff distance in mm between two masks (I, J, K) bool on one grid.

    spacing: voxel size in mm along i, j, k. NaN when either mask is empty. Works on the masks' common bounding
    box padded by one background voxel, which changes neither surfaces nor distances.
    """
    both = gt_mask | pred_mask
    if not gt_mask.any() or not pred_mask.any():
        return math.nan
    box = ndimage.find_objects(both.astype(np.int8))[0]
    g = np.pad(gt_mask[box], 1)
    p = np.pad(pred_mask[box], 1)
    sg, sp = surface(g), surface(p)
    to_gt = ndimage.distance_transform_edt(~sg, sampling=spacing)
    to_pred = ndimage.distance_transform_edt(~sp, sampling=spacing)
    return float(max(np.percentile(to_gt[sp], HD_PERCENTILE), np.percentile(to_pred[sg], HD_PERCENTILE)))


def overlap_counts(gt: NDArray[np.integer], pred: NDArray[np.integer]) -> NDArray[np.int64]:
    """Confusion counts: ``(C, C)`` int64, entry ``[a, b]`` = voxels with gt ``a`` and pred ``b``; C = max FDI + 1.

    gt, pred: (I, J, K) integer FDI label maps with values in 0..85 (:func:`check_label_map`).
    """
    size = _MAX_CODE + 1
    pairs = (gt.astype(np.intp) * size + pred).ravel()
    return np.bincount(pairs, minlength=size * size).reshape(size, size).astype(np.int64)


def score_label_maps(gt: NDArray[Any], pred: NDArray[Any], spacing: Spacing, what: str = "") -> CBCTScores:
    """Score a predicted FDI label map against the GT on the same grid (definitions in the module docstring).

    gt, pred: (I, J, K) int FDI label maps indexed [i, j, k], 0 = background, same shape and grid.
    spacing: voxel size in mm along i, j, k (e.g. :attr:`Volume.spacing`).
    """
    where = f"{what}: " if what else ""
    g = check_label_map(gt, f"{where}ground truth")
    p = check_label_map(pred, f"{where}prediction")
    if g.shape != p.shape:
        raise InputError(f"{where}ground truth has shape {g.shape} but prediction {p.shape}; they must share a grid")
    overlap = overlap_counts(g, p)
    gt_count, pred_count = overlap.sum(axis=1), overlap.sum(axis=0)
    for counts, name in ((gt_count, "ground truth"), (pred_count, "prediction")):
        bad = [int(c) for c in np.flatnonzero(counts) if c != 0 and c not in ALL_TEETH]
        if bad:
            raise _bad_codes(f"{where}{name}", bad)
    gt_n = {int(t): int(gt_count[t]) for t in np.flatnonzero(gt_count) if t != 0}
    pred_n = {int(t): int(pred_count[t]) for t in np.flatnonzero(pred_count) if t != 0}
    if not gt_n:
        raise InputError(f"{where}ground truth has no tooth label (all background); nothing to score")
    g_boxes, p_boxes = ndimage.find_objects(g), ndimage.find_objects(p)
    teeth = []
    for t, n_gt in sorted(gt_n.items()):
        n_pred = pred_n.get(t, 0)
        dice = 2.0 * float(overlap[t, t]) / (n_gt + n_pred)
        best_label, best_dice = 0, 0.0
        for b in np.flatnonzero(overlap[t]):
            if b != 0 and (d := 2.0 * float(overlap[t, b]) / (n_gt + pred_n[int(b)])) > best_dice:
                best_label, best_dice = int(b), d
        hd = math.nan
        if n_pred:
            box = _union_box(g_boxes[t - 1], p_boxes[t - 1])
            hd = hd95(g[box] == t, p[box] == t, spacing)
        teeth.append(ToothScore(int(t), dice, hd, int(n_gt), int(n_pred), int(best_label), best_dice))
    spurious = tuple(int(t) for t in sorted(set(pred_n) - set(gt_n)))
    return CBCTScores(
        teeth=tuple(teeth),
        spurious=spurious,
        spacing=(float(spacing[0]), float(spacing[1]), float(spacing[2])),
        summary=_summary(teeth),
        groups={
            group: _summary(members)
            for group in TOOTH_GROUPS
            if (members := [s for s in teeth if tooth(s.fdi).type == group])
        },
    )


def _union_box(a: tuple[slice, ...] | None, b: tuple[slice, ...] | None) -> tuple[slice, ...]:
    boxes = [x for x in (a, b) if x is not None]
    return tuple(slice(min(x[d].start for x in boxes), max(x[d].stop for x in boxes)) for d in range(len(boxes[0])))


def _summary(teeth: list[ToothScore]) -> dict[str, float | int]:
    return {
        "mean_dice": float(np.mean([t.dice for t in teeth])),
        "mean_hd95_mm": _nanmean([t.hd95_mm for t in teeth]),
        "identification_accuracy": float(np.mean([t.identified for t in teeth])),
        "detection_rate": float(np.mean([t.detected for t in teeth])),
        "gt_teeth": len(teeth),
    }


NUMBERING_ERRORS = ("along_arch", "left_right", "upper_lower", "not_detected")
"""Kinds of identification failure, see :func:`numbering_errors`."""


def numbering_errors(teeth: tuple[ToothScore, ...] | list[ToothScore]) -> dict[str, float]:
    """Why GT teeth were not identified: fraction of ``teeth`` (from :func:`score_label_maps`) per kind.

    A tooth found (detected) under another number ``l`` is ``along_arch`` when ``l`` is in its own quadrant (a
    neighbour's number: counted wrong along the arch), ``left_right`` when ``l`` is on the other side of the same
    jaw (quadrants 1 ↔ 2, 3 ↔ 4), ``upper_lower`` when ``l`` is in the other jaw; ``not_detected`` when no predicted
    label covers it with Dice > 0.5. The four fractions plus the identification rate sum to 1.
    """
    counts = dict.fromkeys(NUMBERING_ERRORS, 0)
    for t in teeth:
        if t.identified:
            continue
        if not t.detected:
            counts["not_detected"] += 1
            continue
        (jaw, side), (jaw_l, side_l) = _jaw_side(t.fdi), _jaw_side(t.best_label)
        counts["upper_lower" if jaw != jaw_l else "left_right" if side != side_l else "along_arch"] += 1
    return {k: v / len(teeth) if teeth else math.nan for k, v in counts.items()}


def _jaw_side(fdi: int) -> tuple[int, int]:
    """(0 upper / 1 lower, 0 patient right / 1 left) of an FDI tooth code; deciduous quadrants 5–8 as 1–4."""
    q = (fdi // 10 - 1) % 4 + 1
    return (q - 1) // 2, int(q in (2, 3))
