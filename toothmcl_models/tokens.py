"""Tokens and their teeth: labels under each token, world positions, and positive pairs from geometry.

Both modalities live in one frame — the CBCT crop's LPS world (mm); the data pipeline has already mapped IOS points
into it through the registration. So:

- a CBCT token's tooth is the most frequent tooth of the label crop under its patch (0 when no tooth fills
  ``min_fraction`` of the patch);
- an IOS token's own tooth is the most frequent per-point FDI label of its group (the ``group_size`` input points
  nearest its centre; 0 likewise), and its *cross-modal* tooth is looked up in the CBCT label crop at its centre
  (the tooth containing the centre, else the nearest tooth voxel within ``tolerance_mm``, else 0);
- positives are pairs of tokens of the same patient and the same tooth (never "same index").

Label convention for tokens: int64 FDI code of a tooth, or 0 = no tooth (background, gingiva, unknown, ambiguous).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from toothmcl_data.errors import InputError
from toothmcl_models.encoders.ops import gather_points, knn

Unlabelled = Literal["negatives", "exclude"]


@dataclass(frozen=True, eq=False)
class TokenSet:
    """The tokens of one modality for a whole batch, flattened over samples (T tokens in all).

    embeddings: (T, D) float, L2-normalised projections into the shared space.
    centres: (T, 3) float64 LPS world mm of each token's centre (the CBCT crop's world).
    labels: (T,) int64 own-modality tooth (CBCT: label crop under the patch; IOS: per-point labels), 0 = none.
    match: (T,) int64 tooth used for cross-modal pairing (CBCT: = labels; IOS: CBCT label crop at the centre).
    sample: (T,) int64 batch index; patient: (T,) int64 patient id (:func:`patient_ids`).
    """

    embeddings: Tensor
    centres: Tensor
    labels: Tensor
    match: Tensor
    sample: Tensor
    patient: Tensor


def patient_ids(cases: Sequence[str]) -> Tensor:
    """Stable int64 ids (BLAKE2b of the case pseudonym), equal across processes and runs. → (B,) int64."""
    ids = [int.from_bytes(hashlib.blake2b(c.encode(), digest_size=8).digest(), "little") >> 1 for c in cases]
    return torch.tensor(ids, dtype=torch.int64)


def majority_tooth(votes: Tensor, min_fraction: float) -> Tensor:
    """The most frequent tooth among ``votes`` if it holds ≥ ``min_fraction`` of them, else 0.

    votes: (..., V) int FDI labels (≤ 0 = not a tooth). Ties go to the lower FDI code. → (...) int64.
    """
    votes = votes.long()
    teeth = torch.unique(votes[votes > 0])
    out = torch.zeros(votes.shape[:-1], dtype=torch.int64, device=votes.device)
    if teeth.numel() == 0:
        return out
    counts = torch.stack([(votes == t).sum(-1) for t in teeth.tolist()], dim=-1)  # (..., U)
    best_count, best = counts.max(dim=-1)  # first maximum = lowest code (unique() is sorted)
    need = math.ceil(min_fraction * votes.shape[-1] - 1e-9)
    return torch.where(best_count >= need, teeth[best], out)


def cbct_patch_labels(label_crop: Tensor, stride: int, min_fraction: float) -> Tensor:
    """Tooth under each token patch.

    label_crop: (B, X, Y, Z) int FDI label crop, axes (i, j, k), X, Y, Z multiples of ``stride``.
    Returns (B, T) int64 with T = (X/f)(Y/f)(Z/f) in row-major (a, b, c) order — ``features.flatten(2)``'s order.
    """
    b, x, y, z = label_crop.shape
    f = stride
    if x % f or y % f or z % f:
        raise InputError(f"label crop {tuple(label_crop.shape)}: spatial sizes must be multiples of the stride {f}")
    p = label_crop.reshape(b, x // f, f, y // f, f, z // f, f).permute(0, 1, 3, 5, 2, 4, 6)
    return majority_tooth(p.reshape(b, -1, f**3), min_fraction)


def crop_to_world(world_from_crop: Tensor, ijk: Tensor) -> Tensor:
    """Map crop indices to world. world_from_crop: (B, 4, 4); ijk: (B, T, 3) voxel indices → (B, T, 3) float64 mm."""
    a = world_from_crop.double()
    return ijk.double() @ a[:, :3, :3].transpose(1, 2) + a[:, None, :3, 3]


def ios_group_labels(
    points_world: Tensor, point_labels: Tensor, centres: Tensor, group_size: int, min_fraction: float
) -> Tensor:
    """Tooth of each IOS token group.

    points_world: (B, N, 3) float mm; point_labels: (B, N) int FDI (0 gingiva, −1 unknown); centres: (B, M, 3)
    float mm, same frame. Each group = the ``group_size`` points nearest its centre. → (B, M) int64.
    """
    _, nbr = knn(centres.float(), points_world.float(), min(group_size, points_world.shape[1]))
    votes = gather_points(point_labels.long().unsqueeze(-1), nbr).squeeze(-1)
    return majority_tooth(votes, min_fraction)


def tooth_at_points(label_crop: Tensor, world_from_crop: Tensor, points: Tensor, tolerance_mm: float) -> Tensor:
    """The CBCT tooth at each world point: the tooth of the voxel containing it, else of the nearest tooth voxel
    centre within ``tolerance_mm`` (ties: first in a fixed scan order), else 0.

    label_crop: (X, Y, Z) int FDI, axes (i, j, k); world_from_crop: (4, 4) float64 (i, j, k, 1) → LPS mm;
    points: (P, 3) float LPS mm. Returns (P,) int64.
    """
    a = world_from_crop.double().to(points.device)
    ijk = (points.double() - a[:3, 3]) @ torch.linalg.inv(a[:3, :3]).T  # continuous voxel indices
    spacing = a[:3, :3].norm(dim=0)
    reach = [math.ceil(tolerance_mm / float(s)) for s in spacing]
    axes = [torch.arange(-r, r + 1, device=points.device) for r in reach]
    offsets = torch.stack([m.reshape(-1) for m in torch.meshgrid(*axes, indexing="ij")], -1)  # (K, 3)
    shape = torch.tensor(label_crop.shape, device=points.device)
    labels = label_crop.to(points.device).long()
    out = torch.zeros(points.shape[0], dtype=torch.int64, device=points.device)
    step = max(1, (1 << 21) // offsets.shape[0])
    for s in range(0, points.shape[0], step):
        part = ijk[s : s + step]
        base = part.round().long()
        cand = base.unsqueeze(1) + offsets  # (p, K, 3)
        inside = ((cand >= 0) & (cand < shape)).all(-1)
        c = cand.clamp(min=torch.zeros_like(shape), max=shape - 1)
        lab = labels[c[..., 0], c[..., 1], c[..., 2]]
        lab = torch.where(inside, lab, torch.zeros_like(lab))
        dist = ((cand.double() - part.unsqueeze(1)) @ a[:3, :3].T).norm(dim=-1)
        dist = torch.where(lab > 0, dist, torch.full_like(dist, math.inf))
        centre_in = ((base >= 0) & (base < shape)).all(-1)
        b = base.clamp(min=torch.zeros_like(shape), max=shape - 1)
        own = torch.where(centre_in, labels[b[:, 0], b[:, 1], b[:, 2]], torch.zeros_like(centre_in, dtype=torch.long))
        best_d, best = dist.min(dim=1)
        near = torch.where(best_d <= tolerance_mm, lab.gather(1, best[:, None]).squeeze(1), torch.zeros_like(own))
        out[s : s + step] = torch.where(own > 0, own, near)
    return out


def _valid(labelled_a: Tensor, labelled_b: Tensor, unlabelled: Unlabelled) -> Tensor:
    if unlabelled == "exclude":
        return labelled_a[:, None] & labelled_b[None, :]
    if unlabelled == "negatives":
        return labelled_a[:, None] | labelled_b[None, :]
    raise InputError(f"unlabelled must be 'negatives' or 'exclude', got {unlabelled!r}")


def cross_pairs(
    labels_a: Tensor, patient_a: Tensor, labels_b: Tensor, patient_b: Tensor, unlabelled: Unlabelled = "negatives"
) -> tuple[Tensor, Tensor]:
    """Positive and valid pairs between two token sets.

    labels_*: (Ta,), (Tb,) int64 teeth (0 = none); patient_*: same shapes, int64 ids.
    Returns ``(positive, valid)``, both (Ta, Tb) bool: positive iff same patient and same tooth (> 0); valid marks
    the pairs that enter the loss (see ``TokenConfig.unlabelled``); positive ⊆ valid.
    """
    la, lb = labels_a > 0, labels_b > 0
    positive = (labels_a[:, None] == labels_b[None, :]) & (patient_a[:, None] == patient_b[None, :])
    positive &= la[:, None] & lb[None, :]
    return positive, _valid(la, lb, unlabelled)


def intra_pairs(labels: Tensor, patient: Tensor, unlabelled: Unlabelled = "negatives") -> tuple[Tensor, Tensor]:
    """Like :func:`cross_pairs` of a token set with itself, without the self-pairs (diagonal)."""
    positive, valid = cross_pairs(labels, patient, labels, patient, unlabelled)
    eye = torch.eye(labels.shape[0], dtype=torch.bool, device=labels.device)
    return positive & ~eye, valid & ~eye


def cross_modal_pairs(cbct: TokenSet, ios: TokenSet, unlabelled: Unlabelled = "negatives") -> tuple[Tensor, Tensor]:
    """(positive, valid) (Tc, Ti) bool between CBCT and IOS tokens, by each token's geometric tooth (``match``)."""
    return cross_pairs(cbct.match, cbct.patient, ios.match, ios.patient, unlabelled)


def tooth_centroids(label_crop: Tensor, world_from_crop: Tensor) -> dict[int, Tensor]:
    """World centroid of every tooth in a label crop: {FDI: (3,) float64 LPS mm}.

    label_crop: (X, Y, Z) int FDI, axes (i, j, k); world_from_crop: (4, 4) float64.
    """
    out: dict[int, Tensor] = {}
    for t in torch.unique(label_crop[label_crop > 0]).tolist():
        ijk = torch.nonzero(label_crop == t).double().mean(0)
        out[int(t)] = crop_to_world(world_from_crop[None], ijk[None, None])[0, 0]
    return out
