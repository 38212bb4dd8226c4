"""Configuration of tooth-level pairing: crop size and spacing, points per tooth, the gates that decide which IOS
vertex belongs to which CBCT tooth, and the field-of-view tolerance (frozen, validated, dict round-trip)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from toothmcl_data.configdict import config_from_dict, config_to_dict, require_positive
from toothmcl_data.errors import ConfigError


@dataclass(frozen=True)
class PairConfig:
    """How teeth are cut out and paired. Sizes in mm; array sizes are fixed for every tooth."""

    crop_mm: tuple[float, float, float] = (16.0, 16.0, 32.0)
    """Physical size of a CBCT crop along LPS x, y, z (a molar with its roots fits)."""
    spacing_mm: float = 0.3
    """Isotropic voxel size of the crops."""
    points: int = 1024
    """IOS points per tooth (xyz + normal)."""
    surface_gate_mm: float = 0.35
    """An IOS vertex takes a CBCT tooth's label when it lies within this distance of that tooth's surface."""
    project_mm: float = 6.0
    """Without a CBCT label map, tooth voxels within this distance of a labelled IOS crown take its label."""
    min_agreement: float = 0.6
    """An IOS tooth is consistent when at least this fraction of its points sit on the CBCT tooth of its number."""
    min_vertices: int = 30
    """A tooth needs at least this many IOS vertices to be paired."""
    fov_tolerance_mm: float = 0.2
    """A registered crown vertex lies outside the CBCT field of view when it is more than this beyond the grid
    (voxel centres ± half a voxel); a tooth with such vertices is cut by the field of view (``cut_by_fov``), one
    with all of them beyond it lies outside (``outside_fov``); neither is paired. On synthetic patients, whose
    ground truth judges crowns on 0.5 mm samples, crowns it calls inside reached up to 0.17 mm past the grid
    (true registration, 0.4 and 0.8 mm voxels) and cut ones 0.6 mm or more, except 4 at 0.8 mm (0.11-0.29 mm;
    the three below 0.2 mm are paired): the truth's own sampling blurs the last 0.25 mm."""

    def __post_init__(self) -> None:
        if len(self.crop_mm) != 3 or any(not c > 0 for c in self.crop_mm):
            raise ConfigError(f"PairConfig.crop_mm must be three sizes > 0 mm, got {self.crop_mm}")
        require_positive(self, "spacing_mm", "points", "surface_gate_mm", "project_mm", "min_vertices")
        if not self.fov_tolerance_mm >= 0:
            raise ConfigError(f"PairConfig.fov_tolerance_mm must be ≥ 0 mm, got {self.fov_tolerance_mm}")
        if not 0.0 < self.min_agreement <= 1.0:
            raise ConfigError(f"PairConfig.min_agreement must be in (0, 1], got {self.min_agreement}")

    @property
    def crop_shape(self) -> tuple[int, int, int]:
        """Voxels of every crop along x, y, z."""
        x, y, z = (max(1, round(c / self.spacing_mm)) for c in self.crop_mm)
        return x, y, z

    def to_dict(self) -> dict[str, Any]:
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], overrides: Sequence[str] = ()) -> PairConfig:
        return config_from_dict(cls, data, overrides=overrides)
