"""IOS segmentation stream: one sample per (case, jaw) scan of a version's split, with per-point FDI labels.

Points are drawn from the scan's vertices (``points`` per sample, without replacement when the scan has
enough) with their unit normals. Frame: ``"world"`` moves the scan into the CBCT's LPS world by the case's
registration when it has one whose QC verdict the stream trusts (``StreamConfig.verdicts``) and keeps the scan's
own frame otherwise (IOS-only imports such as Teeth3DS have no registration; a failed one is wrong); ``"ios"``
always keeps the scan's own frame; ``"canonical"`` moves it into the jaw's canonical frame computed from the scan
alone (:func:`canonical_from_scan`), so a scan at any pose looks the same. Draws come from
``default_rng([seed, epoch, index])``; augmentation (``config.augment``) moves points and normals rigidly about
the scan's centroid.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import torch
from numpy.typing import NDArray

from toothmcl_data.errors import ConfigError
from toothmcl_data.geometry import sample_vertices
from toothmcl_data.stream.augment import draw_motion, move_points
from toothmcl_data.stream.dataset import StreamConfig, _VersionDataset, split_cases
from toothmcl_data.stream.sample import AugmentRecord, JawSample
from toothmcl_data.types import JAWS, Affine4x4, Jaw, apply_transform

Frame = Literal["world", "ios", "canonical"]


def canonical_from_scan(xyz: NDArray[np.floating], normals: NDArray[np.floating]) -> Affine4x4:
    """``canonical_from_scan`` (4, 4): a proper rigid motion (det +1, no mirror) into the jaw's canonical frame.

    xyz: (n, 3) mm vertices of one jaw scan in any frame; normals: (n, 3) their outward unit normals, same frame.
    Canonical frame: origin at the vertex centroid; z (occlusal axis) = the direction of least vertex variance
    (the arch is flat), signed so that the summed normals point along +z (an intraoral scan is open at its base,
    so its normals add up towards the crowns); y (antero-posterior) = the in-plane principal axis along which
    the arch's two halves differ most in lateral spread (a U: wide between the molars, narrow at the incisors),
    signed towards the narrow (incisor) end; x = y × z. Computed from the scan alone, so a scan at any pose
    gets the same canonical coordinates (up to its sampling), and being a rotation it never swaps the patient's
    left and right. Raises :class:`ConfigError` for fewer than 10 vertices.
    """
    xyz = np.asarray(xyz, dtype=np.float64)
    if len(xyz) < 10:
        raise ConfigError(f"a jaw scan needs ≥ 10 vertices for its canonical frame, got {len(xyz)}")
    centre = xyz.mean(0)
    centred = xyz - centre
    _, vectors = np.linalg.eigh(centred.T @ centred)  # ascending variance
    up = vectors[:, 0]
    if float(np.asarray(normals, dtype=np.float64).sum(0) @ up) < 0:
        up = -up
    candidates: list[tuple[float, NDArray[np.float64]]] = []
    for axis, other in ((vectors[:, 1], vectors[:, 2]), (vectors[:, 2], vectors[:, 1])):
        along, across = centred @ axis, centred @ other
        front = along > np.median(along)
        gap = float(across[~front].std() - across[front].std())  # > 0: the + end is the narrow one
        candidates.append((gap, axis if gap > 0 else -axis))
    _, forward = max(candidates, key=lambda c: abs(c[0]))  # the first on a tie, as before
    right = np.cross(forward, up)
    rotation = np.stack([right, forward, up])  # rows: canonical axes in scan coordinates
    out = np.eye(4)
    out[:3, :3] = rotation
    out[:3, 3] = -rotation @ centre
    return out


class JawDataset(_VersionDataset[JawSample]):
    """One sample per labelled jaw scan of ``split``: a :class:`~toothmcl_data.stream.sample.JawSample` (points in
    the frame above, their FDI labels and vertex indices, the augmentation record ``applied``, whose motion is in
    that same frame)."""

    def __init__(
        self,
        store: str | Path,
        version: str = "latest",
        split: str | None = "train",
        config: StreamConfig = StreamConfig(),
        *,
        jaws: tuple[Jaw, ...] = JAWS,
        frame: Frame = "world",
        cases: list[str] | None = None,
    ) -> None:
        """``cases``: restrict to these pseudonyms (e.g. an ablation's k labelled cases)."""
        super().__init__(store, version, split, config)
        if frame not in ("world", "ios", "canonical"):
            raise ConfigError(f"frame must be 'world', 'ios' or 'canonical', got {frame!r}")
        self.frame = frame
        labelled = {
            (r["pseudonym"], r["jaw"])
            for r in self.version.table("scans").to_pylist()
            if r["modality"] == "ios" and r["labelled"]
        }
        registered = self.version.registered(config.verdicts)
        chosen = split_cases(self.version, split)
        if cases is not None:
            missing = sorted(set(cases) - set(chosen))
            if missing:
                raise ConfigError(f"cases {missing} are not in split {split!r} of version {self.version.id}")
            chosen = list(cases)
        self._samples = [(c, j) for c in chosen for j in jaws if (c, j) in labelled]
        self._registered = registered

    def __len__(self) -> int:
        return len(self._samples)

    @property
    def samples(self) -> list[tuple[str, Jaw]]:
        return list(self._samples)

    def __getitem__(self, index: int) -> JawSample:
        case, jaw = self._samples[index]
        rng = self._rng(index)
        mesh = self.version.ios(case, jaw)
        normals = self.version.ios_normals(case, jaw).astype(np.float64)
        xyz = mesh.vertices
        T: Affine4x4 | None = None
        if self.frame == "world" and (case, jaw) in self._registered:
            T = self.version.registration(case, jaw).world_from_ios
        elif self.frame == "canonical":
            T = canonical_from_scan(xyz, normals)
        if T is not None:
            xyz = apply_transform(T, xyz)
            normals = normals @ T[:3, :3].T
        pick = sample_vertices(len(xyz), self.config.points, rng)
        points = np.concatenate([xyz[pick], normals[pick]], axis=1).astype(np.float32)
        if mesh.labels is None:
            raise ConfigError(f"case {case} {jaw} scan has no labels; JawDataset needs labelled scans")
        labels = mesh.labels[pick].astype(np.int64)
        applied: AugmentRecord = {}
        if self.config.augment is not None:
            motion, applied = draw_motion(self.config.augment, rng, points[:, :3].astype(np.float64).mean(0))
            points, moved = move_points(points, labels, motion)
            labels = moved if moved is not None else labels
        return {
            "points": torch.from_numpy(points),
            "labels": torch.from_numpy(labels),
            "vertex_index": torch.from_numpy(pick.astype(np.int64)),
            "jaw": jaw,
            "case": case,
            "index": index,
            "applied": applied,
        }
