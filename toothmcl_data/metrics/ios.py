"""3DTeethSeg22 challenge metrics for one intraoral scan (one jaw): TSA, TLA, TIR, their mean, and mIoU.

The challenge's numbers are defined by its evaluation script, not by its paper, so this module re-implements
that script's *behaviour* — quirks included — so a score computed here equals the leaderboard's
(abenhamadou/3DTeethSeg22_challenge, ``evaluation/evaluation.py``, commit fd3bbdb). Each quirk we reproduce is
marked ``Quirk (<function it mirrors>)`` below. In short, per scan (one jaw):

- **Teeth** are the non-zero *instances*. A predicted instance whose vertices carry more than one label is
  dropped: its vertices become gingiva (instance 0) before any metric (``calculate_metrics``). A predicted
  instance labelled 0 is still a tooth instance (with label 0). A ground-truth instance carrying two labels is
  an error (the script asserts).
- **Matching**: Hungarian assignment (``scipy.optimize.linear_sum_assignment``) of GT to predicted instance
  centroids (mean of the instance's vertex positions) on Euclidean distance; min(#GT, #pred) pairs
  (``centroids_pred_to_gt_attribution``). Labels play no part in the matching.
- **Tooth size** is a 3-vector, ``sqrt(sum over the tooth's vertices of (x - centroid)²)`` per axis — it grows
  with the square root of the vertex count and depends on the axes of the mesh frame (``compute_tooth_size``).
- **TLA** (reported as ``exp(-TLA)``): mean over GT teeth of ``‖(c_gt − c_pred) / size‖`` (division per axis)
  for matched teeth, ``5 · ‖size‖`` for unmatched ones — not the "5" its docstring promises
  (``calculate_jaw_TLA``).
- **TSA**: ``f1_score(average="micro")`` of tooth-vs-gingiva per vertex, which for one label per vertex equals
  the fraction of vertices whose tooth/gingiva state is right; labels do not enter (``calculate_jaw_TSA``).
- **TIR**: matched pairs with normalised distance ``< 0.5`` and equal labels, divided by the number of *matched
  pairs*, not of GT teeth (``calculate_jaw_TIR``).
- **score** = ``(TSA + exp(-TLA) + TIR) / 3`` per scan; over many scans each metric is averaged over scans
  first, which gives the same mean (``__main__``).

Inputs the script cannot score: with no predicted tooth instance it crashes in ``scipy.spatial.distance.cdist``;
we score that scan as the rest of the script would with an empty matching (every GT tooth takes the TLA
penalty; TIR's division by zero is caught there and gives 0). A GT without teeth raises :class:`MeshError`.

**mIoU** (ours, not the challenge's): for each FDI tooth present in the GT *labels*, the IoU on vertices of
``gt_labels == t`` and ``pred_labels == t`` (raw predicted labels, before the instance clean-up above); the mean
over those teeth. Gingiva does not count; a predicted tooth absent from the GT only lowers the IoU of the GT
teeth whose vertices it takes.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

from toothmcl_data.errors import InputError, MeshError

log = logging.getLogger(__name__)

TIR_THRESHOLD = 0.5
"""A matched tooth counts as identified when its normalised centroid distance is below this (strict ``<``)."""
TLA_MISSING_FACTOR = 5.0
"""An unmatched GT tooth adds ``TLA_MISSING_FACTOR * ‖tooth size‖`` to the TLA sum."""


@dataclass(frozen=True, eq=False)
class ToothInstances:
    """The tooth instances of one labelling of a scan, in ascending instance id.

    ids: (k,) int64 instance ids (≥ 1). labels: (k,) int64 FDI label of each instance.
    centroids: (k, 3) float64 mm, mean vertex position in the mesh's frame.
    sizes: (k, 3) float64, the challenge's per-axis tooth size (see :func:`tooth_size`); NaN for predictions.
    """

    ids: NDArray[np.int64]
    labels: NDArray[np.int64]
    centroids: NDArray[np.float64]
    sizes: NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class IOSScores:
    """The challenge metrics of one scan plus mIoU.

    TSA, TIR, score in [0, 1]; TLA is ``exp(-TLA_raw)`` in [0, 1] (NaN only for degenerate one-vertex teeth);
    mIoU in [0, 1]; iou maps each GT FDI tooth to its vertex IoU. dropped_instances: predicted instance ids
    turned into gingiva because they carried several labels.
    """

    TSA: float
    TLA: float
    TIR: float
    score: float
    mIoU: float  # noqa: N815 — the key users script against
    TLA_raw: float
    gt_teeth: int
    pred_instances: int
    matched: int
    iou: dict[int, float] = field(default_factory=dict)
    dropped_instances: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: NaN becomes None, tooth keys become strings."""
        return {
            "TSA": _finite(self.TSA),
            "TLA": _finite(self.TLA),
            "TIR": _finite(self.TIR),
            "score": _finite(self.score),
            "mIoU": _finite(self.mIoU),
            "TLA_raw": _finite(self.TLA_raw),
            "gt_teeth": self.gt_teeth,
            "pred_instances": self.pred_instances,
            "matched": self.matched,
            "iou": {str(k): _finite(v) for k, v in self.iou.items()},
            "dropped_instances": list(self.dropped_instances),
        }


def _finite(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


def tooth_size(points: NDArray[np.floating]) -> NDArray[np.float64]:
    """The challenge's tooth size of ``points`` (n, 3) float mm: a (3,) float64 vector.

    Quirk (``compute_tooth_size``): the sum of squared deviations runs over the *points* (axis 0), so the size
    is ``sqrt(n) × per-axis standard deviation`` — it depends on the vertex count and the frame's axes.
    """
    pts = np.asarray(points, dtype=np.float64)
    return np.sqrt(np.sum((pts.mean(axis=0) - pts) ** 2, axis=0))


def _check_inputs(vertices: NDArray[Any], arrays: dict[str, NDArray[Any]]) -> NDArray[np.float64]:
    v = np.asarray(vertices, dtype=np.float64)
    if v.ndim != 2 or v.shape[1] != 3:
        raise InputError(f"vertices must be (n, 3) mm, got shape {v.shape}")
    for name, arr in arrays.items():
        if np.shape(arr) != (len(v),):
            raise MeshError(
                f"{name} has shape {np.shape(arr)} but the mesh has {len(v)} vertices; "
                "labels and instances need one entry per mesh vertex, in the mesh's vertex order"
            )
    return v


def gt_teeth(
    vertices: NDArray[np.floating], labels: NDArray[np.integer], instances: NDArray[np.integer], what: str = "GT"
) -> ToothInstances:
    """The ground truth's tooth instances with centroids and sizes.

    vertices: (n, 3) float mm, the mesh's frame. labels: (n,) int FDI per vertex. instances: (n,) int
    (0 = gingiva). Raises MeshError when an instance carries several labels (the script's ``assert``) or when
    there is no tooth instance (the script crashes on it).
    """
    v = _check_inputs(vertices, {f"{what} labels": labels, f"{what} instances": instances})
    lab, inst = np.asarray(labels, dtype=np.int64), np.asarray(instances, dtype=np.int64)
    ids = np.unique(inst)
    ids = ids[ids != 0]
    if ids.size == 0:
        raise MeshError(
            f"{what}: no tooth instance (every vertex has instance 0); the 3DTeethSeg22 evaluation cannot score a "
            "scan without teeth — exclude it, or check that the sidecar's 'instances' are filled"
        )
    tooth_labels, centroids, sizes = [], [], []
    for i in ids:
        sel = inst == i
        codes = np.unique(lab[sel])
        if len(codes) != 1:
            raise MeshError(
                f"{what}: instance {int(i)} carries {len(codes)} labels {codes.tolist()}, expected exactly one "
                "(the challenge's evaluation asserts this on the ground truth); fix the ground-truth sidecar"
            )
        pts = v[sel]
        tooth_labels.append(int(codes[0]))
        centroids.append(pts.mean(axis=0))
        sizes.append(tooth_size(pts))
    return ToothInstances(ids.astype(np.int64), np.array(tooth_labels), np.array(centroids), np.array(sizes))


def pred_teeth(
    vertices: NDArray[np.floating], labels: NDArray[np.integer], instances: NDArray[np.integer]
) -> tuple[ToothInstances, NDArray[np.int64], tuple[int, ...]]:
    """The prediction's tooth instances after the challenge's clean-up.

    vertices: (n, 3) float mm. labels: (n,) int FDI per vertex. instances: (n,) int (0 = gingiva).
    Returns (teeth, cleaned (n,) int64 instances, ids of dropped instances).

    Quirk (``calculate_metrics``): an instance whose vertices carry more than one label is set to instance 0
    (gingiva) — it is no tooth for TSA, TLA or TIR; an instance whose single label is 0 stays a tooth instance.
    """
    v = _check_inputs(vertices, {"prediction labels": labels, "prediction instances": instances})
    lab, inst = np.asarray(labels, dtype=np.int64), np.asarray(instances, dtype=np.int64).copy()
    ids = np.unique(inst)
    ids = ids[ids != 0]
    kept, tooth_labels, centroids, dropped = [], [], [], []
    for i in ids:
        sel = inst == i
        codes = np.unique(lab[sel])
        if len(codes) == 1:
            kept.append(int(i))
            tooth_labels.append(int(codes[0]))
            centroids.append(v[sel].mean(axis=0))
        else:
            dropped.append(int(i))
            inst[sel] = 0
    if dropped:
        log.info("prediction instances %s carry several labels: scored as gingiva", dropped)
    if not kept and np.any(lab != 0):
        log.warning("prediction labels teeth but has no tooth instance: the challenge metrics see no tooth")
    teeth = ToothInstances(
        np.array(kept, dtype=np.int64),
        np.array(tooth_labels, dtype=np.int64),
        np.array(centroids, dtype=np.float64).reshape(-1, 3),
        np.full((len(kept), 3), np.nan),
    )
    return teeth, inst, tuple(dropped)


def match_teeth(gt: ToothInstances, pred: ToothInstances) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Hungarian matching of GT to predicted tooth centroids on Euclidean distance.

    Returns (gt_index, pred_index), each (min(#GT, #pred),) positions into ``gt`` and ``pred``.
    Mirrors ``centroids_pred_to_gt_attribution``: both sides in ascending instance id (the script's dict order,
    which decides ties); an empty prediction gives an empty matching (where the script's ``cdist`` crashes).
    """
    if len(gt) == 0 or len(pred) == 0:
        empty = np.zeros(0, dtype=np.intp)
        return empty, empty
    rows, cols = linear_sum_assignment(cdist(gt.centroids, pred.centroids))
    return rows.astype(np.intp), cols.astype(np.intp)


def _normalised_distances(
    gt: ToothInstances, pred: ToothInstances, rows: NDArray[np.intp], cols: NDArray[np.intp]
) -> NDArray[np.float64]:
    # Per-axis division by the GT tooth size, then the Euclidean norm (calculate_jaw_TLA / calculate_jaw_TIR);
    # numpy's inf/NaN for a zero size component are kept, as in the script.
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.linalg.norm((gt.centroids[rows] - pred.centroids[cols]) / gt.sizes[rows], axis=1)


def tla_raw(gt: ToothInstances, pred: ToothInstances, rows: NDArray[np.intp], cols: NDArray[np.intp]) -> float:
    """The challenge's TLA before ``exp(-·)``: mean over GT teeth of the normalised centroid distance.

    Quirk (``calculate_jaw_TLA``): an unmatched GT tooth adds ``5 · ‖size‖`` (size in mm·√n), not 5.
    """
    total = float(np.sum(_normalised_distances(gt, pred, rows, cols)))
    unmatched = np.setdiff1d(np.arange(len(gt)), rows)
    total += float(np.sum(TLA_MISSING_FACTOR * np.linalg.norm(gt.sizes[unmatched], axis=1)))
    return total / len(gt)


def tir(gt: ToothInstances, pred: ToothInstances, rows: NDArray[np.intp], cols: NDArray[np.intp]) -> float:
    """The challenge's TIR: identified matched pairs / matched pairs.

    Quirk (``calculate_jaw_TIR``): the denominator is the number of matched pairs, so missing teeth do not lower
    it; with no pair the script's ZeroDivisionError is caught and gives 0.
    """
    if len(rows) == 0:
        return 0.0
    dist = _normalised_distances(gt, pred, rows, cols)
    hits = (dist < TIR_THRESHOLD) & (gt.labels[rows] == pred.labels[cols])
    return float(np.count_nonzero(hits)) / len(rows)


def tsa(gt_instances: NDArray[np.integer], pred_instances: NDArray[np.integer]) -> float:
    """The challenge's TSA from (n,) int instance arrays (0 = gingiva), prediction already cleaned.

    Quirk (``calculate_jaw_TSA``): micro-averaged F1 over the two classes tooth/gingiva, which equals the
    fraction of vertices whose tooth-or-gingiva state matches.
    """
    g = np.asarray(gt_instances) != 0
    p = np.asarray(pred_instances) != 0
    return float(np.count_nonzero(g == p)) / len(g) if len(g) else 0.0


def tooth_iou(gt_labels: NDArray[np.integer], pred_labels: NDArray[np.integer]) -> dict[int, float]:
    """Vertex IoU per FDI tooth present in ``gt_labels`` (n,) int FDI; ``pred_labels`` (n,) int FDI."""
    g, p = np.asarray(gt_labels, dtype=np.int64), np.asarray(pred_labels, dtype=np.int64)
    out = {}
    for t in np.unique(g):
        if t <= 0:
            continue
        a, b = g == t, p == t
        out[int(t)] = float(np.count_nonzero(a & b)) / float(np.count_nonzero(a | b))
    return out


def score_scan(
    vertices: NDArray[np.floating],
    gt_labels: NDArray[np.integer],
    gt_instances: NDArray[np.integer],
    pred_labels: NDArray[np.integer],
    pred_instances: NDArray[np.integer],
    what: str = "GT",
) -> IOSScores:
    """Score one scan (one jaw) as the 3DTeethSeg22 evaluation does, plus mIoU.

    vertices: (n, 3) float mm, the scan's vertices in its own frame (the frame's axes matter: see
    :func:`tooth_size`). gt_labels, pred_labels: (n,) int FDI per vertex (0 = gingiva). gt_instances,
    pred_instances: (n,) int per vertex (0 = gingiva, k ≥ 1 = one tooth). All in the mesh's vertex order.
    what: names the ground truth (e.g. its file) in error messages.
    """
    gt = gt_teeth(vertices, gt_labels, gt_instances, what)
    pred, cleaned, dropped = pred_teeth(vertices, pred_labels, pred_instances)
    rows, cols = match_teeth(gt, pred)
    raw = tla_raw(gt, pred, rows, cols)
    tla = math.exp(-raw) if not math.isnan(raw) else math.nan
    tsa_value = tsa(gt_instances, cleaned)
    tir_value = tir(gt, pred, rows, cols)
    iou = tooth_iou(gt_labels, pred_labels)
    return IOSScores(
        TSA=tsa_value,
        TLA=tla,
        TIR=tir_value,
        score=(tsa_value + tla + tir_value) / 3.0,
        mIoU=float(np.mean(list(iou.values()))) if iou else math.nan,
        TLA_raw=raw,
        gt_teeth=len(gt),
        pred_instances=len(pred),
        matched=len(rows),
        iou=iou,
        dropped_instances=dropped,
    )
