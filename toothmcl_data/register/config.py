"""Configuration of CBCT↔IOS registration and tooth-level pairing (frozen, validated, dict round-trip)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, TypeVar

from toothmcl_data.errors import ConfigError

_C = TypeVar("_C", "RegisterConfig", "PairConfig")


def _from_dict(cls: type[_C], data: dict[str, Any]) -> _C:
    names = {f.name for f in fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} keys {sorted(unknown)}; known: {sorted(names)}")
    values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    return cls(**values)


def _positive(obj: object, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        if not value > 0:
            raise ConfigError(f"{type(obj).__name__}.{name} must be > 0, got {value}")


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
        _positive(self, "ios_points", "init_points", "init_angles", "icp_iterations", "profile_mm")
        _positive(
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
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RegisterConfig:
        return _from_dict(cls, data)


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
        _positive(self, "spacing_mm", "points", "surface_gate_mm", "project_mm", "min_vertices")
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
        d = asdict(self)
        d["crop_mm"] = list(self.crop_mm)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PairConfig:
        return _from_dict(cls, data)
