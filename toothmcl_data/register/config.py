"""Configuration of CBCT↔IOS registration (frozen, validated, dict round-trip); pairing's own is
:class:`toothmcl_data.pair.config.PairConfig`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from toothmcl_data.configdict import config_from_dict, config_to_dict, require_positive
from toothmcl_data.errors import ConfigError


@dataclass(frozen=True)
class RegisterConfig:
    """How one IOS jaw is registered into its CBCT. Distances in mm."""

    ios_points: int = 3000
    """IOS points sampled (farthest-point sampling, deterministic) per jaw for the fit."""
    profile_mm: float = 1.2
    """Half-length of the intensity profile along each CBCT surface normal used to place the surface at the
    half-way level between the tooth and the tissue beside it."""
    init_points: int = 600
    """Points per cloud used to score the start hypotheses of the multi-hypothesis search."""
    init_angles: int = 12
    """In-plane rotations tried per flip of the arch normal in the multi-hypothesis search."""
    icp_iterations: int = 40
    """Maximum robust point-to-plane ICP iterations."""
    icp_start_mm: float = 4.0
    """Correspondence gate of the first ICP iteration; it shrinks to ``icp_final_mm``."""
    icp_final_mm: float = 0.4
    """Correspondence gate of the last ICP iterations (Tukey biweight cut-off)."""
    icp_tolerance: float = 1e-7
    """Stop when the update moves no point by more than this (mm)."""
    normal_agreement: float = 0.5
    """Minimum |cos| between IOS and CBCT normals for a correspondence."""
    inlier_mm: float = 0.25
    """A crown point closer than this to the CBCT tooth surface counts as an inlier (scaled like the distance
    thresholds for coarse voxels)."""
    coverage_mm: float = 0.5
    """A CBCT crown sample is covered when a registered IOS vertex lies within this distance."""
    reference_spacing_mm: float = 0.4
    """CBCT voxel size the distance thresholds below hold at; they grow in proportion for coarser voxels."""
    pass_rms_mm: float = 0.15
    pass_p95_mm: float = 0.3
    pass_inlier_fraction: float = 0.85
    pass_coverage: float = 0.6
    review_rms_mm: float = 0.3
    review_p95_mm: float = 0.7
    review_inlier_fraction: float = 0.6
    review_coverage: float = 0.3
    """Verdict thresholds: ``pass`` when all pass_* hold, ``review`` when all review_* hold, else ``fail``.
    Coverage is the fraction of the CBCT crown surface with an IOS point within ``inlier_mm``."""

    def __post_init__(self) -> None:
        require_positive(self, "ios_points", "init_points", "init_angles", "icp_iterations", "profile_mm")
        require_positive(
            self, "icp_start_mm", "icp_final_mm", "icp_tolerance", "inlier_mm", "coverage_mm", "reference_spacing_mm"
        )
        if self.icp_final_mm > self.icp_start_mm:
            raise ConfigError(
                f"RegisterConfig.icp_final_mm ({self.icp_final_mm}) must be ≤ icp_start_mm ({self.icp_start_mm})"
            )
        if not 0.0 <= self.normal_agreement < 1.0:
            raise ConfigError(f"RegisterConfig.normal_agreement must be in [0, 1), got {self.normal_agreement}")
        for kind in ("rms_mm", "p95_mm", "inlier_fraction", "coverage"):
            good, ok = getattr(self, f"pass_{kind}"), getattr(self, f"review_{kind}")
            lenient = ok >= good if kind.endswith("mm") else ok <= good
            if not lenient:
                raise ConfigError(
                    f"RegisterConfig.review_{kind} ({ok}) must be at least as lenient as pass_{kind} ({good})"
                )

    def to_dict(self) -> dict[str, Any]:
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], overrides: Sequence[str] = ()) -> RegisterConfig:
        return config_from_dict(cls, data, overrides=overrides)
