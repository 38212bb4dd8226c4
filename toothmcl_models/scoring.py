"""Scoring fine-tuned segmenters on labelled cases: one prediction against its ground truth (:func:`score_volume`,
:func:`score_mesh`), and the means over held-out cases the bench, the ablation and the tests report
(:func:`score_cbct_cases`: whole-volume sliding window on the native grid; :func:`score_ios_cases`: each jaw scan in
its own frame). Predictions come from :mod:`toothmcl_models.evaluate`, metrics from :mod:`toothmcl_data.metrics`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from toothmcl_data.errors import InputError
from toothmcl_data.metrics import CBCTScores, IOSScores, score_label_maps, score_scan
from toothmcl_data.metrics.cbct import numbering_errors
from toothmcl_data.types import Affine4x4, Mesh, Volume
from toothmcl_models.evaluate import predict_mesh, predict_volume
from toothmcl_models.segmentation import CBCTSegmenter, IOSSegmenter


@dataclass(frozen=True)
class Scored:
    """One scored prediction: which case, and its metrics."""

    case: str
    jaw: str
    scores: CBCTScores | IOSScores

    def summary(self) -> dict[str, Any]:
        if isinstance(self.scores, IOSScores):
            s = self.scores
            return {"case": self.case, "jaw": self.jaw, "TSA": s.TSA, "TLA": s.TLA, "TIR": s.TIR, "mIoU": s.mIoU}
        summary = self.scores.summary
        return {"case": self.case, "jaw": self.jaw, **{k: v for k, v in summary.items() if isinstance(v, int | float)}}


def score_volume(prediction: Volume, truth: Volume, case: str = "") -> Scored:
    """Score an FDI prediction against the FDI truth on the same grid (Dice, HD95 mm, identification)."""
    if prediction.shape != truth.shape or not np.allclose(prediction.affine, truth.affine, atol=1e-4):
        raise InputError(
            f"case {case}: prediction grid {prediction.shape} differs from the truth's {truth.shape} (or its affine); "
            "predict with predict_volume, which writes back on the input's grid"
        )
    return Scored(case, "", score_label_maps(truth.array, prediction.array, truth.spacing, what=case))


def score_mesh(mesh: Mesh, labels: NDArray[np.integer], instances: NDArray[np.integer], case: str = "") -> Scored:
    """Score per-vertex predictions against ``mesh``'s own labels/instances (3DTeethSeg22 rules + mIoU)."""
    if mesh.labels is None or mesh.instances is None:
        raise InputError(f"case {case}: the mesh has no ground-truth labels/instances to score against")
    scores = score_scan(mesh.vertices, mesh.labels, mesh.instances, labels, instances, f"case {case}")
    return Scored(case, mesh.jaw or "", scores)


def foreground_dice(prediction: NDArray[np.integer], truth: NDArray[np.integer]) -> float:
    """Label-blind Dice of "any tooth" (label > 0) between two label maps on the same grid (NaN when both empty)."""
    p, t = np.asarray(prediction) > 0, np.asarray(truth) > 0
    total = int(p.sum()) + int(t.sum())
    return 2.0 * float((p & t).sum()) / total if total else math.nan


def score_cbct_cases(
    net: CBCTSegmenter,
    version: Any,
    cases: list[str],
    *,
    spacing_mm: float,
    roi: tuple[int, int, int],
    breakdown: bool = False,
) -> dict[str, float]:
    """Whole-volume sliding-window predictions on each case's native grid, scored against its label map; means
    over the cases of foreground Dice, mean per-tooth Dice over the GT's FDI teeth, identification and detection
    rates; with ``breakdown`` also ``failed_<kind>``: the fraction of GT teeth not identified per kind
    (``toothmcl_data.metrics.cbct.numbering_errors``: along the arch, left ↔ right, upper ↔ lower, not detected).
    version: an open store version (``toothmcl_data.store.open_version``)."""
    rows = []
    for case in cases:
        cbct, labels = version.cbct(case), version.cbct_labels(case)
        if cbct is None or labels is None:
            raise InputError(f"case {case} has no CBCT or no label map to score against")
        pred = predict_volume(net, cbct, spacing_mm=spacing_mm, roi=roi)
        scored = score_volume(pred, labels, case)
        summary = scored.summary()
        rows.append(
            {
                "foreground_dice": foreground_dice(pred.array, labels.array),
                "tooth_dice": float(summary["mean_dice"]),
                "identification_rate": float(summary["identification_accuracy"]),
                "detection_rate": float(summary["detection_rate"]),
            }
        )
        if breakdown and isinstance(scored.scores, CBCTScores):
            rows[-1] |= {f"failed_{k}": v for k, v in numbering_errors(scored.scores.teeth).items()}
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]} if rows else {}


def score_ios_cases(
    net: IOSSegmenter,
    meshes: list[tuple[str, Mesh]],
    *,
    points: int,
    frame: str,
    seed: int = 0,
    world_from_mesh: list[Affine4x4 | None] | None = None,
) -> dict[str, float]:
    """Predict and score labelled jaw scans ``(case, mesh)`` (``mesh.jaw`` set, labels in its own frame); means over
    the scans of TSA, TIR, TLA (exp(−TLA)) and mIoU. ``frame``: the run's ``segment.frame``; ``world_from_mesh``:
    per scan, used when ``frame`` is not canonical."""
    rows = []
    for i, (case, mesh) in enumerate(meshes):
        if mesh.jaw not in ("upper", "lower"):
            raise InputError(f"case {case}: scan has no jaw; set Mesh.jaw")
        labels, instances = predict_mesh(
            net,
            mesh,
            mesh.jaw,
            points=points,
            rng=np.random.default_rng([seed, i]),
            world_from_mesh=world_from_mesh[i] if world_from_mesh is not None else None,
            frame=frame,
        )
        rows.append(score_mesh(mesh, labels, instances, case).summary())
    return {k.lower(): float(np.nanmean([r[k] for r in rows])) for k in ("TSA", "TIR", "TLA", "mIoU")} if rows else {}
