"""Configuration of the synthetic patient generator (frozen, validated, JSON round-trip)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from toothmcl_data.configdict import config_from_dict, config_to_dict
from toothmcl_data.errors import ConfigError


@dataclass(frozen=True)
class SynthConfig:
    """How synthetic patients are drawn and written.

    Geometry is in mm. Probabilities are per patient unless said otherwise.
    """

    spacing_mm: float = 0.4
    """Isotropic CBCT voxel size (mm)."""
    ios_resolution_mm: float = 0.3
    """Grid step of the IOS surface extraction (mm); sets the scan's vertex density."""
    ios_noise_mm: float = 0.02
    """Standard deviation of scan noise along the surface normal (mm), ≈20 µm like an intraoral scanner."""
    cbct_noise: float = 40.0
    """Standard deviation of CBCT intensity noise (scanner units)."""
    cbct_blur_mm: float = 0.25
    """Gaussian blur of the CBCT (sigma, mm), standing for the scanner's point spread."""
    third_molar_probability: float = 0.5
    """Chance that each of the four third molars is present (28–32 teeth per patient)."""
    missing_tooth_probability: float = 0.3
    """Chance that a patient has 1–3 extracted teeth (besides third molars)."""
    implant_probability: float = 0.15
    """Chance that one missing-tooth gap holds an implant with a metal crown."""
    metal_crown_probability: float = 0.15
    """Chance that one natural tooth carries a metal crown (streak artifacts in CBCT)."""
    crowding_probability: float = 0.2
    """Chance of anterior crowding (rotated, displaced incisors and canines)."""
    ios_hole_probability: float = 0.3
    """Chance that a jaw scan has small holes (missed scanner coverage)."""
    nifti_fraction: float = 0.25
    """Fraction of patients whose CBCT is exported as NIfTI instead of a DICOM series."""
    mesh_formats: tuple[str, ...] = ("stl", "ply", "obj")
    """IOS file formats, drawn per patient."""
    field_mm: tuple[float, float, float] | None = None
    """A clinical field of view (x, y, z mm; e.g. 160, 160, 110): the CBCT covers this box around the teeth with
    the head around them (:mod:`toothmcl_data.synth.head`); None: the grid fitted to both jaws."""

    def __post_init__(self) -> None:
        if not 0.1 <= self.spacing_mm <= 2.0:
            raise ConfigError(f"spacing_mm must be in [0.1, 2.0] mm, got {self.spacing_mm}")
        if not 0.05 <= self.ios_resolution_mm <= 1.0:
            raise ConfigError(f"ios_resolution_mm must be in [0.05, 1.0] mm, got {self.ios_resolution_mm}")
        for f in fields(self):
            if f.name.endswith(("_probability", "_fraction")):
                value = getattr(self, f.name)
                if not 0.0 <= value <= 1.0:
                    raise ConfigError(f"{f.name} must be a probability in [0, 1], got {value}")
        if self.ios_noise_mm < 0 or self.cbct_noise < 0 or self.cbct_blur_mm < 0:
            raise ConfigError("noise and blur settings must be ≥ 0")
        if self.field_mm is not None and (
            len(self.field_mm) != 3 or not all(20.0 <= f <= 400.0 for f in self.field_mm)
        ):
            raise ConfigError(f"field_mm must be three sizes in [20, 400] mm (x, y, z), got {self.field_mm}")
        unknown = set(self.mesh_formats) - {"stl", "ply", "obj"}
        if unknown or not self.mesh_formats:
            raise ConfigError(
                f"mesh_formats must be a non-empty subset of ('stl', 'ply', 'obj'), got {self.mesh_formats}"
            )

    def to_dict(self) -> dict[str, Any]:
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], overrides: Sequence[str] = ()) -> SynthConfig:
        return config_from_dict(cls, data, overrides=overrides)
