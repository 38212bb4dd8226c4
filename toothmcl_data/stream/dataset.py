"""PyTorch datasets that read a published version directly (no export step).

Two granularities over one version and split:

- :class:`PairDataset` — one sample per paired tooth, from the stacked pair arrays;
- :class:`CaseDataset` — one sample per patient: a CBCT crop resampled to a set spacing (default 256×256×64 at
  0.3 mm, as in the paper) with its label crop, and each IOS jaw as N points (xyz + normal) moved into the CBCT
  world frame by its registration, with per-point FDI labels.

Geometry is the store's: LPS world mm, crops indexed ``[i, j, k]`` along +x, +y, +z, ``world_from_crop`` maps a crop
index to world mm. The same axis order is used for pretraining and fine-tuning (the paper's code permuted axes
differently in the two). CBCT values stay the scanner's (float32); the model clips and scales them (paper:
``[0, 2500] / 2500``), so training and inference on raw volumes normalise the same way. Label crops are int16
FDI (a quarter of int64's bytes through the loader and pinned memory; consumers call ``.long()`` on the device).
Crops are cut by :func:`toothmcl_data.geometry.resample` from the store's
:class:`~toothmcl_data.store.blocks.BlockReader` (only the chunks a crop touches are read; a crop on the volume's own
grid is read, not resampled).

Every random draw (crop centre, point subset, augmentation) comes from ``default_rng([seed, epoch, index])``, so a
sample does not depend on which worker or rank loads it, and a resumed run sees the same samples.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from numpy.typing import NDArray
from torch.utils.data import Dataset

from toothmcl_data.configdict import config_from_dict, config_to_dict
from toothmcl_data.errors import ConfigError
from toothmcl_data.fdi.teeth import tooth
from toothmcl_data.geometry import crop_grid, resample, sample_vertices
from toothmcl_data.store import open_version
from toothmcl_data.stream.augment import AugmentConfig, augment_pair, draw_motion, move_crop, move_points
from toothmcl_data.stream.sample import AugmentRecord, CaseSample, PairSample
from toothmcl_data.types import JAWS, Jaw, apply_transform


@dataclass(frozen=True)
class StreamConfig:
    """What a sample looks like."""

    crop_shape: tuple[int, int, int] = (256, 256, 64)
    """Case-level CBCT crop, voxels along (x, y, z)."""
    spacing_mm: float = 0.3
    """Case-level crop spacing (mm); pair crops keep the spacing they were published with."""
    points: int = 24_000
    """IOS points per jaw (case level) or per tooth (pair level: at most the published count)."""
    seed: int = 0
    augment: AugmentConfig | None = None
    """None: no augmentation (evaluation)."""
    verdicts: tuple[str, ...] = ("pass", "review")
    """QC verdicts of the registrations a stream trusts: a scan is placed in the CBCT's world, and its teeth's
    pairs are streamed, only when its jaw's verdict is one of these (``("pass",)``: leave the jaws QC sent to
    review out too). A failed registration is never used: its case is published for inspection, its transform
    is wrong."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "crop_shape", tuple(int(s) for s in self.crop_shape))
        object.__setattr__(self, "verdicts", tuple(str(v) for v in self.verdicts))
        if not self.verdicts or not set(self.verdicts) <= {"pass", "review"}:
            raise ConfigError(
                "verdicts must be 'pass' and/or 'review' (a failed registration is never streamed), "
                f"got {self.verdicts}"
            )
        if len(self.crop_shape) != 3 or min(self.crop_shape) < 8:
            raise ConfigError(f"crop_shape must be three sizes ≥ 8 voxels, got {self.crop_shape}")
        if self.spacing_mm <= 0 or self.points < 1:
            raise ConfigError(f"spacing_mm and points must be positive, got {self}")

    def to_dict(self) -> dict[str, Any]:
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StreamConfig:
        return config_from_dict(cls, data)


def split_cases(version: Any, split: str | None) -> list[str]:
    """Pseudonyms of ``split`` (``"train"``, ``"val"``, ``"test"``; None = all) in the version, sorted."""
    cases = version.case_ids()
    if split is None:
        return cases
    if split not in {"train", "val", "test"}:
        raise ConfigError(f"split must be 'train', 'val', 'test' or None, got {split!r}")
    table = version.table("splits").to_pylist()
    chosen = sorted(r["pseudonym"] for r in table if r["split"] == split)
    return [c for c in chosen if c in set(cases)]


SampleT = TypeVar("SampleT")
"""The sample type of a dataset (one of :mod:`toothmcl_data.stream.sample`)."""


class _VersionDataset(Dataset[SampleT]):
    def __init__(self, store: str | Path, version: str, split: str | None, config: StreamConfig) -> None:
        self.version = open_version(store, version)
        self.split = split
        self.config = config
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Augmentations and crop positions of ``epoch`` (call before creating the epoch's loader iterator)."""
        self.epoch = epoch

    def _rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.config.seed, self.epoch, index])


class PairDataset(_VersionDataset[PairSample]):
    """One sample per paired tooth of ``split``: a :class:`~toothmcl_data.stream.sample.PairSample` (the tooth's
    published CBCT crop, its crown points, the augmentation record ``applied``)."""

    def __init__(
        self,
        store: str | Path,
        version: str = "latest",
        split: str | None = "train",
        config: StreamConfig = StreamConfig(),
    ) -> None:
        super().__init__(store, version, split, config)
        arrays = self.version.pairs()
        slots = arrays.slots
        cases = self.version.table("cases").column("pseudonym").to_pylist()
        keep = set(split_cases(self.version, split))
        index = arrays.index
        case_index = index["case_index"][slots] if len(slots) else np.zeros(0, dtype=np.int64)
        fdi = index["fdi"][slots] if len(slots) else np.zeros(0, dtype=np.int64)
        trusted = self.version.registered(config.verdicts)
        self._slots = [
            int(s)
            for s, c, f in zip(slots, case_index, fdi, strict=True)
            if cases[int(c)] in keep and (cases[int(c)], tooth(int(f)).jaw) in trusted
        ]
        self._case_of = {int(s): cases[int(c)] for s, c in zip(slots, case_index, strict=True)}

    def __len__(self) -> int:
        return len(self._slots)

    def __getitem__(self, index: int) -> PairSample:
        slot = self._slots[index]
        pair = self.version.pairs().read(slot)
        image = np.asarray(pair["cbct_crop"], dtype=np.float32)
        labels = np.asarray(pair["label_crop"], dtype=np.int16)
        points = np.asarray(pair["ios_points"], dtype=np.float32)
        world_from_crop = np.asarray(pair["world_from_crop"], dtype=np.float64)
        fdi = int(pair["fdi"])
        rng = self._rng(index)
        if self.config.points < len(points):
            points = points[sample_vertices(len(points), self.config.points, rng)]
        point_labels = np.full(len(points), fdi, dtype=np.int64)
        applied: AugmentRecord = {}
        if self.config.augment is not None:
            image, labels, points, point_labels, applied = augment_pair(
                image, labels, points, point_labels, world_from_crop, self.config.augment, rng
            )
            fdi = int(point_labels[0])
        return {
            "cbct": torch.from_numpy(np.ascontiguousarray(image))[None],
            "cbct_labels": torch.from_numpy(np.ascontiguousarray(labels)),
            "ios": torch.from_numpy(points),
            "ios_labels": torch.from_numpy(point_labels),
            "world_from_crop": torch.from_numpy(world_from_crop),
            "fdi": fdi,
            "case": self._case_of[slot],
            "index": index,
            "applied": applied,
        }


class CaseDataset(_VersionDataset[CaseSample]):
    """One sample per patient of ``split`` (patients with a CBCT and at least one registered jaw): a
    :class:`~toothmcl_data.stream.sample.CaseSample` (a CBCT crop, each jaw's points in the CBCT's world, the
    augmentation record ``applied``). The crop is centred on a tooth drawn from the case's paired teeth
    (jittered), so it holds teeth of both modalities.
    """

    def __init__(
        self,
        store: str | Path,
        version: str = "latest",
        split: str | None = "train",
        config: StreamConfig = StreamConfig(),
        *,
        jaws: tuple[Jaw, ...] = JAWS,
    ) -> None:
        """``jaws``: only cases with all these jaws registered (verdict in ``config.verdicts``) are sampled
        (pretraining needs both)."""
        super().__init__(store, version, split, config)
        self.jaws = jaws
        trusted = self.version.registered(config.verdicts)
        with_reg = {case for case in self.version.case_ids() if all((case, jaw) in trusted for jaw in jaws)}
        # Crop centres: the paired teeth's crowns (registered IOS crown centroids, LPS mm), so a crop holds the
        # crowns of both modalities — where the CBCT's tooth labels are when they were transferred from the scans.
        # Without them (older stores), the centres of the teeth's published crops (which lie towards the roots).
        arrays = self.version.pairs()
        cases = self.version.table("cases").column("pseudonym").to_pylist()
        self._centres: dict[str, list[NDArray[np.float64]]] = {}
        for row in self.version.table("teeth").to_pylist():
            if row.get("paired") and row.get("centroid_ios_mm") is not None:
                centre = np.asarray(row["centroid_ios_mm"], dtype=np.float64)
                self._centres.setdefault(row["pseudonym"], []).append(centre)
        if len(arrays.slots) and not self._centres:
            index = arrays.index
            shape = np.asarray(arrays.cbct_crop.shape[1:], dtype=np.float64)
            for slot in arrays.slots:
                centre = apply_transform(index["world_from_crop"][slot], ((shape - 1) / 2)[None])[0]
                self._centres.setdefault(cases[int(index["case_index"][slot])], []).append(centre)
        self._cases = [c for c in split_cases(self.version, split) if c in with_reg and c in self._centres]

    def __len__(self) -> int:
        return len(self._cases)

    def __getitem__(self, index: int) -> CaseSample:
        case = self._cases[index]
        rng = self._rng(index)
        config = self.config
        centres = np.asarray(self._centres[case], dtype=np.float64)
        centre = centres[int(rng.integers(len(centres)))] + rng.uniform(-4.0, 4.0, size=3)
        world_from_crop = crop_grid(centre, config.crop_shape, config.spacing_mm)
        cbct = self.version.volume_blocks(case, "cbct")
        if cbct is None:
            raise ConfigError(f"case {case} has no CBCT; CaseDataset needs one")
        affine = np.asarray(cbct.array.attrs["affine"], dtype=np.float64)
        if np.allclose(affine[:3, :3], np.diag([config.spacing_mm] * 3), atol=1e-6):
            # Same grid as the volume: snap the crop onto its voxels so it is read, not resampled.
            origin = np.rint(apply_transform(np.linalg.inv(affine), world_from_crop[:3, 3][None]))
            world_from_crop = world_from_crop.copy()
            world_from_crop[:3, 3] = apply_transform(affine, origin)[0]
        image = resample(cbct, affine, world_from_crop, config.crop_shape, order=1, dtype=np.float32)
        label_array = self.version.volume_blocks(case, "cbct_labels")
        if label_array is None:
            labels = np.full(config.crop_shape, -1, dtype=np.int16)
        else:
            labels = resample(label_array, affine, world_from_crop, config.crop_shape, order=0, dtype=np.int16)
        ios: dict[str, torch.Tensor] = {}
        ios_labels: dict[str, torch.Tensor] = {}
        motion = None
        applied: AugmentRecord = {}
        if config.augment is not None:
            motion, applied = draw_motion(config.augment, rng, centre)
            image, moved = move_crop(image, labels, world_from_crop, motion)
            labels = moved if moved is not None else labels
        for jaw in self.jaws:
            registration = self.version.registration(case, jaw)
            mesh = self.version.ios(case, jaw)
            normals = self.version.ios_normals(case, jaw).astype(np.float64)
            T = registration.world_from_ios
            xyz = apply_transform(T, mesh.vertices)
            nrm = normals @ T[:3, :3].T
            pick = sample_vertices(len(xyz), config.points, rng)
            points = np.concatenate([xyz[pick], nrm[pick]], axis=1).astype(np.float32)
            point_labels = (mesh.labels[pick] if mesh.labels is not None else np.full(len(pick), -1)).astype(np.int64)
            if motion is not None:
                points, moved_labels = move_points(points, point_labels, motion)
                point_labels = moved_labels if moved_labels is not None else point_labels
            ios[jaw] = torch.from_numpy(points)
            ios_labels[jaw] = torch.from_numpy(point_labels)
        return {
            "cbct": torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None],
            "cbct_labels": torch.from_numpy(np.ascontiguousarray(labels)),
            "ios": ios,
            "ios_labels": ios_labels,
            "world_from_crop": torch.from_numpy(world_from_crop),
            "case": case,
            "index": index,
            "applied": applied,
        }
