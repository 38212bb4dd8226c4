"""Domain types shared by every stage.

Conventions (decided once, tested everywhere):

- World frame inside the library is **LPS, millimetres** (DICOM's own): +x patient Left, +y Posterior,
  +z Superior. Files in RAS (NIfTI, 3D Slicer) are converted on read and on write.
- ``Volume.array`` is indexed ``[i, j, k]``; ``Volume.affine`` maps ``(i, j, k, 1)`` to LPS world mm.
- Meshes: ``vertices (n, 3) float64 mm`` in a named frame, ``faces (m, 3) int32``, ``labels (n,) int16`` in FDI
  (0 = gingiva, -1 = unknown), ``instances (n,) int16`` (0 = gingiva, 1.. = one tooth each). Vertex order is
  sacred: readers never merge or reorder vertices (except STL, see ``io.mesh``).
- Transforms are 4×4 float64 named ``dst_from_src`` and applied as ``x_dst = T @ x_src``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from toothmcl_data.errors import InputError

Affine4x4 = NDArray[np.float64]
"""A (4, 4) float64 homogeneous transform, ``dst_from_src``."""

Spacing = tuple[float, float, float]
"""Voxel size in mm along the array axes (i, j, k)."""

Frame = Literal["LPS", "RAS"]
Jaw = Literal["upper", "lower"]
Side = Literal["right", "left"]
ToothType = Literal["incisor", "canine", "premolar", "molar"]

JAWS: tuple[Jaw, Jaw] = ("upper", "lower")
LPS_FROM_RAS: Affine4x4 = np.diag([-1.0, -1.0, 1.0, 1.0])
"""Flip x and y: converts RAS world mm to LPS world mm (and back: it is its own inverse)."""


def apply_transform(T: NDArray[np.floating[Any]], points: NDArray[np.floating[Any]]) -> NDArray[np.float64]:
    """Apply ``T`` (4, 4) to ``points`` (n, 3) mm and return (n, 3) float64 in T's destination frame."""
    pts = np.asarray(points, dtype=np.float64)
    return pts @ T[:3, :3].T + T[:3, 3]


def _check_affine(affine: NDArray[np.float64], what: str) -> None:
    if affine.shape != (4, 4) or not np.all(np.isfinite(affine)):
        raise InputError(f"{what}: affine must be a finite 4×4 matrix, got shape {affine.shape}")
    if not np.allclose(affine[3], [0.0, 0.0, 0.0, 1.0]):
        raise InputError(f"{what}: affine's last row must be [0, 0, 0, 1], got {affine[3].tolist()}")
    if abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        raise InputError(f"{what}: affine is singular (zero voxel size?)")


@dataclass(frozen=True, eq=False)
class Volume:
    """A 3D image in LPS world space.

    array: (I, J, K) image, indexed ``[i, j, k]``; CBCT intensities are the scanner's values after
        RescaleSlope/Intercept (int16), label maps are FDI codes (uint8/int16, 0 = background).
    affine: (4, 4) float64, LPS world mm from voxel index ``(i, j, k, 1)``.
    """

    array: NDArray[Any]
    affine: Affine4x4

    def __post_init__(self) -> None:
        if self.array.ndim != 3:
            raise InputError(f"Volume.array must be 3-D [i, j, k], got shape {self.array.shape}")
        object.__setattr__(self, "affine", np.asarray(self.affine, dtype=np.float64))
        _check_affine(self.affine, "Volume")

    @property
    def shape(self) -> tuple[int, int, int]:
        i, j, k = self.array.shape
        return int(i), int(j), int(k)

    @property
    def spacing(self) -> Spacing:
        """Voxel size in mm along i, j, k (column norms of the affine)."""
        s = np.linalg.norm(self.affine[:3, :3], axis=0)
        return float(s[0]), float(s[1]), float(s[2])

    def world_from_index(self, ijk: NDArray[Any]) -> NDArray[np.float64]:
        """(n, 3) voxel indices → (n, 3) LPS world mm."""
        return apply_transform(self.affine, ijk)

    def index_from_world(self, xyz: NDArray[Any]) -> NDArray[np.float64]:
        """(n, 3) LPS world mm → (n, 3) fractional voxel indices."""
        return apply_transform(np.linalg.inv(self.affine), xyz)


@dataclass(frozen=True, eq=False)
class Mesh:
    """A triangle surface, e.g. one intraoral-scan jaw.

    vertices: (n, 3) float64 mm in ``frame`` (``"ios:<scan-id>"`` for a scanner's own frame, ``"world"`` for LPS
        world space).
    faces: (m, 3) int32 vertex indices.
    labels: (n,) int16 FDI per vertex (0 = gingiva, -1 = unknown), or None when unlabelled.
    instances: (n,) int16 per vertex (0 = gingiva, k ≥ 1 = one tooth), or None.
    face_labels: (m,) int16 FDI per face when the source labelled faces (VTP cell data, face colours), or None.
    jaw: which jaw the scan shows, when known.
    """

    vertices: NDArray[np.float64]
    faces: NDArray[np.int32]
    frame: str = "world"
    labels: NDArray[np.int16] | None = None
    instances: NDArray[np.int16] | None = None
    face_labels: NDArray[np.int16] | None = None
    jaw: Jaw | None = None
    meta: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        v = np.asarray(self.vertices, dtype=np.float64)
        f = np.asarray(self.faces, dtype=np.int32)
        if v.ndim != 2 or v.shape[1] != 3:
            raise InputError(f"Mesh.vertices must be (n, 3), got {v.shape}")
        if f.ndim != 2 or f.shape[1] != 3:
            raise InputError(f"Mesh.faces must be (m, 3) triangles, got {f.shape}")
        object.__setattr__(self, "vertices", v)
        object.__setattr__(self, "faces", f)
        n, m = len(v), len(f)
        for name, expected in (("labels", n), ("instances", n), ("face_labels", m)):
            arr = getattr(self, name)
            if arr is None:
                continue
            arr = np.asarray(arr, dtype=np.int16)
            if arr.shape != (expected,):
                raise InputError(f"Mesh.{name} must have shape ({expected},) to match the mesh, got {arr.shape}")
            object.__setattr__(self, name, arr)


Verdict = Literal["pass", "review", "fail"]


@dataclass(frozen=True, eq=False)
class Case:
    """One de-identified patient: the only patient key downstream is ``pseudonym``.

    cbct: int16 scanner values, LPS; None when the patient has no readable CBCT.
    cbct_labels: FDI label map on the CBCT grid (uint8/int16), or None.
    ios: per jaw, the scan in its own frame ``"ios:<pseudonym>:<jaw>"`` with FDI labels when known.
    sources: role (``"cbct"``, ``"ios:upper"`` …) → sha256 of the raw input file(s) it came from.
    """

    pseudonym: str
    cbct: Volume | None
    cbct_labels: Volume | None
    ios: dict[Jaw, Mesh]
    sources: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class Registration:
    """One IOS jaw registered into its CBCT's LPS world space, with quality control.

    world_from_ios: (4, 4) float64 rigid transform, IOS-frame mm → CBCT LPS world mm.
    rms_mm / p95_mm: surface residuals of the crown points used (mm); inlier_fraction in [0, 1];
    per_tooth_mm: FDI → RMS residual of that tooth's crown (mm); flags: findings such as
    ``"swap:11-21"`` or ``"mirror"``; verdict: from thresholds in the registration config.
    """

    jaw: Jaw
    world_from_ios: Affine4x4
    rms_mm: float
    p95_mm: float
    inlier_fraction: float
    per_tooth_mm: dict[int, float]
    verdict: Verdict
    flags: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class ToothPair:
    """One FDI tooth seen in both modalities, in CBCT LPS world space.

    cbct_crop: (X, Y, Z) int16 scanner values, a fixed physical size around the tooth resampled to a fixed
        spacing, axes aligned with LPS (index order i → x, j → y, k → z).
    label_crop: (X, Y, Z) int16 FDI label map on the same grid.
    world_from_crop: (4, 4) float64, crop voxel index → LPS world mm.
    ios_points: (N, 6) float32, xyz (LPS world mm) and unit normal of N points sampled on this tooth's crown.
    """

    case: str
    fdi: int
    cbct_crop: NDArray[np.int16]
    label_crop: NDArray[np.int16]
    world_from_crop: Affine4x4
    ios_points: NDArray[np.float32]
    flags: tuple[str, ...] = ()
