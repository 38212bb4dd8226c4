"""CBCT segmentation stream: labelled CBCT crops of a version's split, with or without a paired IOS.

Unlike :class:`~toothmcl_data.stream.dataset.CaseDataset` (pretraining: needs registered jaws and paired teeth),
this serves every case of the split that has a CBCT and a label map — CBCT-only imports such as ToothFairy2
included. Geometry as in ``dataset``: an LPS-aligned crop of ``crop_shape`` voxels at ``spacing_mm``, indexed
``[i, j, k]`` along +x, +y, +z, ``world_from_crop`` mapping a crop index to LPS mm; scanner values unscaled.

A crop is centred, with probability ``foreground_probability``, on a random tooth voxel (jittered by up to a
quarter of the crop), otherwise anywhere in the volume. Draws come from ``default_rng([seed, epoch, index])``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray

from toothmcl_data.errors import ConfigError
from toothmcl_data.geometry import crop_grid, resample
from toothmcl_data.stream.augment import draw_motion, move_crop
from toothmcl_data.stream.dataset import StreamConfig, _VersionDataset, split_cases
from toothmcl_data.stream.sample import AugmentRecord, VolumeSample

_FOREGROUND_STRIDE = 2
"""Tooth voxels remembered per case: every 2nd voxel along each axis (crop centres need no finer choice)."""


class VolumeDataset(_VersionDataset[VolumeSample]):
    """One sample per labelled CBCT of ``split``: a :class:`~toothmcl_data.stream.sample.VolumeSample` (a CBCT crop,
    its FDI label crop, the augmentation record ``applied``)."""

    def __init__(
        self,
        store: str | Path,
        version: str = "latest",
        split: str | None = "train",
        config: StreamConfig = StreamConfig(),
        *,
        foreground_probability: float = 0.9,
        cases: list[str] | None = None,
    ) -> None:
        """``cases``: restrict to these pseudonyms (e.g. the k labelled cases of an ablation), in this order."""
        super().__init__(store, version, split, config)
        if not 0.0 <= foreground_probability <= 1.0:
            raise ConfigError(f"foreground_probability must be in [0, 1], got {foreground_probability}")
        self.foreground_probability = foreground_probability
        rows = {r["pseudonym"]: r for r in self.version.table("cases").to_pylist()}
        chosen = split_cases(self.version, split)
        labelled = [c for c in chosen if rows.get(c, {}).get("has_cbct") and rows.get(c, {}).get("has_labels")]
        if cases is not None:
            missing = sorted(set(cases) - set(labelled))
            if missing:
                raise ConfigError(
                    f"cases {missing} are not labelled CBCT cases of split {split!r} in version {self.version.id}; "
                    "choose cases with has_cbct and has_labels in the cases table"
                )
            labelled = list(cases)
        self._cases = labelled
        self._foreground: dict[str, NDArray[np.float64]] = {}

    def __len__(self) -> int:
        return len(self._cases)

    @property
    def cases(self) -> list[str]:
        return list(self._cases)

    def _tooth_voxels(self, case: str) -> NDArray[np.float64]:
        """(n, 3) float64 LPS mm of (a subsample of) the case's tooth voxels; cached per worker."""
        if case not in self._foreground:
            labels = self.version.cbct_array(case, "cbct_labels")
            if labels is None:
                raise ConfigError(f"case {case} has no CBCT label map; VolumeDataset needs one")
            s = _FOREGROUND_STRIDE
            sub = np.asarray(labels[::s, ::s, ::s])
            ijk = np.argwhere(sub > 0).astype(np.float64) * s
            affine = np.asarray(labels.attrs["affine"], dtype=np.float64)
            self._foreground[case] = ijk @ affine[:3, :3].T + affine[:3, 3]
        return self._foreground[case]

    def __getitem__(self, index: int) -> VolumeSample:
        case = self._cases[index]
        rng = self._rng(index)
        config = self.config
        cbct = self.version.volume_blocks(case, "cbct")
        label_array = self.version.volume_blocks(case, "cbct_labels")
        if cbct is None or label_array is None:
            raise ConfigError(f"case {case} has no CBCT or no label map; VolumeDataset needs both")
        affine = np.asarray(cbct.array.attrs["affine"], dtype=np.float64)
        teeth = self._tooth_voxels(case)
        extent = np.asarray(config.crop_shape, dtype=np.float64) * config.spacing_mm
        if len(teeth) and rng.random() < self.foreground_probability:
            centre = teeth[int(rng.integers(len(teeth)))] + rng.uniform(-0.25, 0.25, size=3) * extent
        else:
            corners = np.array([[a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)], dtype=np.float64)
            world = (corners * (np.asarray(cbct.shape) - 1)) @ affine[:3, :3].T + affine[:3, 3]
            centre = rng.uniform(world.min(0), world.max(0))
        world_from_crop = crop_grid(centre, config.crop_shape, config.spacing_mm)
        image = resample(cbct, affine, world_from_crop, config.crop_shape, order=1, dtype=np.float32)
        labels = resample(label_array, affine, world_from_crop, config.crop_shape, order=0, dtype=np.int16)
        applied: AugmentRecord = {}
        if config.augment is not None:
            motion, applied = draw_motion(config.augment, rng, centre)
            image, moved = move_crop(image, labels, world_from_crop, motion)
            labels = moved if moved is not None else labels
        return {
            "cbct": torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None],
            "cbct_labels": torch.from_numpy(np.ascontiguousarray(labels)),
            "world_from_crop": torch.from_numpy(world_from_crop),
            "case": case,
            "index": index,
            "applied": applied,
        }
