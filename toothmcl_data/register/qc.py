"""Quality control of one registered jaw: surface residuals, inliers, crown coverage, a verdict."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from toothmcl_data.register.config import RegisterConfig
from toothmcl_data.register.icp import Target, match
from toothmcl_data.types import Verdict, apply_transform

PLANE_GATE_MM = 1.0
"""Within this distance of the nearest CBCT surface sample the residual is the point-to-plane distance (the
samples are ~0.3 mm apart); beyond it, the plain distance."""


@dataclass(frozen=True)
class JawQC:
    """Residual statistics of one registered jaw (mm), the inlier fraction and the crown coverage in [0, 1]."""

    rms_mm: float
    p95_mm: float
    inlier_fraction: float
    coverage: float
    per_tooth_mm: dict[int, float]


def residuals(
    target: Target, points: NDArray[np.float64], normals: NDArray[np.float64] | None, normal_agreement: float
) -> tuple[NDArray[np.float64], NDArray[np.intp]]:
    """Per point (m,) residual mm to the CBCT crown surface and the index of the matched target sample.

    points: (m, 3) LPS world mm (already registered); normals: (m, 3) unit LPS or None.
    """
    m = match(target, points, normals, normal_agreement)
    near = (m.distance < PLANE_GATE_MM) & m.agree
    return np.where(near, np.abs(m.residual), m.distance), m.index


def coverage(surface: NDArray[np.float64], vertices: NDArray[np.float64] | cKDTree, gate_mm: float) -> float:
    """Fraction of CBCT crown samples ``surface`` (n, 3) LPS mm with a registered IOS vertex (m, 3) LPS mm within
    ``gate_mm``; ``vertices`` may be given as their k-d tree (built once by the caller), in the same frame as
    ``surface``."""
    if len(surface) == 0 or (vertices.n if isinstance(vertices, cKDTree) else len(vertices)) == 0:
        return 0.0
    # Only "is there one within the gate" matters: an unbalanced tree builds faster and the bound cuts the search.
    tree = vertices if isinstance(vertices, cKDTree) else cKDTree(vertices, balanced_tree=False, compact_nodes=False)
    d, _ = tree.query(surface, k=1, workers=1, distance_upper_bound=gate_mm)
    return float(np.mean(d < gate_mm))


REACH_MM = 1.5
"""A CBCT crown sample this close to a registered scan vertex lies where the scan reaches (partial scans)."""
FOV_MARGIN_MM = 1.0
"""A registered scan point this far inside the CBCT grid's faces lies where the CBCT sees (small fields of view)."""
MIN_OVERLAP_MM2 = 200.0
"""A partial overlap is judged only when its matched points cover at least this area (about two premolar crowns'
occlusal and side surfaces): below it a fit of a small piece is not told from a slide along the arch. An overlap
this small is judged by the *pass* thresholds."""
WIDE_OVERLAP_MM2 = 600.0
"""An overlap this large (five or more crowns) is judged by the *review* thresholds; in between, thresholds a
proportional part of the way from *pass* to *review* (:func:`toward_review`). The CBCT crown surface under strong
metal streaks is placed 0.1-0.2 mm RMS off and has holes (measured on ``metal_crowns`` patients at 0.4 mm: RMS
0.13-0.20, p95 0.26-0.46 mm, inliers 0.73-0.81 over 980-1460 mm² at the right pose), and a quadrant field's cut
crowns alike (50 ``fov_quadrant`` jaws of clinical seeds 0-8 and 17 at their true pose, polished: RMS
0.07-0.17, p95 0.12-0.34 mm, inliers 0.85-0.99 over 248-763 mm²), while a slide along the arch leaves its
points off the surface (the same jaws polished from starts 5-8 mm along the arch or turned 12°, 336 fits that
stayed 5-9 mm off: RMS ≥ 0.37, p95 ≥ 0.80 mm, inliers ≤ 0.55 over ≤ 280 mm²)."""
LABEL_AGREEMENT = 0.95
"""A partial overlap labelled on both sides (CBCT label map and labelled scan) whose matched points name the same
tooth on both sides at least this often is not a slide along the arch, which matches other teeth: it is judged by
the *review* thresholds whatever its area (see :func:`toward_review`). Metal crowns in a small field leave too
few clean crown points for the ramp: at their true pose, polished, 15 ``fov_quadrant+metal_crowns`` jaws
(``bench/register.py --field-mm clinical``, seeds 17, 7, 5, 0.4 mm) gave RMS 0.11-0.34, p95 up to 0.73 mm,
inliers down to 0.44 over 139-518 mm², beside slides of RMS ≥ 0.37, p95 ≥ 0.78 mm. Measured on those and 15
``fov_quadrant`` jaws: 0.99-1.0 at the true pose; the 212 fits slid 5-8 mm or turned 12° (as for
``WIDE_OVERLAP_MM2``): at most 0.09 over 200 mm² or more, up to 1.0 over at most 138 mm² (RMS ≥ 0.43, p95 ≥
0.82 mm: below ``MIN_OVERLAP_MM2`` and far outside the *review* thresholds)."""


def in_grid(
    shape: tuple[int, ...], affine: NDArray[np.float64], points: NDArray[np.float64], margin_mm: float
) -> NDArray[np.bool_]:
    """(m,) bool: ``points`` (m, 3) LPS mm at least ``margin_mm`` inside the grid of ``shape`` (I, J, K) with
    ``affine`` (4, 4) index → LPS (voxel centres 0..shape-1)."""
    ijk = apply_transform(np.linalg.inv(affine), points)
    margin = margin_mm / np.linalg.norm(affine[:3, :3], axis=0)
    return np.all((ijk >= margin) & (ijk <= np.asarray(shape, dtype=np.float64) - 1 - margin), axis=1)


def area_mm2(points: NDArray[np.float64]) -> float:
    """Area (mm²) covered by surface samples ``points`` (m, 3) mm, estimated as the count of 1 mm cells they
    occupy (a surface crosses about one cell per mm² of area)."""
    if len(points) == 0:
        return 0.0
    return float(len(np.unique(np.floor(points).astype(np.int64), axis=0)))


def threshold_scale(config: RegisterConfig, spacing_mm: float) -> float:
    """Factor applied to distance thresholds for a CBCT with ``spacing_mm`` voxels (≥ 1)."""
    return max(1.0, spacing_mm / config.reference_spacing_mm)


def summarise(
    res: NDArray[np.float64], fdi: NDArray[np.integer], cover: float, config: RegisterConfig, spacing_mm: float
) -> JawQC:
    """Statistics of crown-point residuals ``res`` (m,) mm with their tooth ``fdi`` (m,) (0 = unknown): RMS,
    95th percentile and per-tooth RMS over the points matched within ``PLANE_GATE_MM`` (crown parts the CBCT
    cannot show, e.g. tight contacts, have no counterpart); the inlier fraction over all of them."""
    if res.size == 0:
        return JawQC(float("inf"), float("inf"), 0.0, cover, {})
    matched = res < PLANE_GATE_MM
    if not matched.any():
        return JawQC(float("inf"), float("inf"), 0.0, cover, {})
    r, f_m = res[matched], fdi[matched]
    per_tooth = {int(f): float(np.sqrt(np.mean(r[f_m == f] ** 2))) for f in np.unique(f_m) if f > 0}
    return JawQC(
        rms_mm=float(np.sqrt(np.mean(r**2))),
        p95_mm=float(np.percentile(r, 95)),
        inlier_fraction=float(np.mean(res < config.inlier_mm * threshold_scale(config, spacing_mm))),
        coverage=cover,
        per_tooth_mm=per_tooth,
    )


def meets(qc: JawQC, config: RegisterConfig, spacing_mm: float, kind: str | float) -> bool:
    """Whether ``qc`` holds every ``{kind}_*`` threshold of ``config`` (``kind``: pass or review), or (``kind`` a
    number w in [0, 1]) every threshold w of the way from the *pass* one to the *review* one."""
    w = 0.0 if kind == "pass" else 1.0 if kind == "review" else float(kind)
    scale = threshold_scale(config, spacing_mm)

    def limit(name: str) -> float:
        return float((1.0 - w) * getattr(config, f"pass_{name}") + w * getattr(config, f"review_{name}"))

    return (
        qc.rms_mm <= limit("rms_mm") * scale
        and qc.p95_mm <= limit("p95_mm") * scale
        and qc.inlier_fraction >= limit("inlier_fraction")
        and qc.coverage >= limit("coverage")
    )


def toward_review(overlap_mm2: float, agreement: float | None = None) -> float:
    """How far (0 at :data:`MIN_OVERLAP_MM2` and below, 1 from :data:`WIDE_OVERLAP_MM2` on, linear between) a
    partial overlap of ``overlap_mm2`` is judged from the *pass* thresholds towards the *review* ones; 1 (the
    *review* thresholds) when its matched points are labelled on both sides and carry the same tooth at least
    :data:`LABEL_AGREEMENT` of the time (``agreement``, from :func:`label_agreement`; None: not labelled)."""
    if agreement is not None and agreement >= LABEL_AGREEMENT:
        return 1.0
    return float(np.clip((overlap_mm2 - MIN_OVERLAP_MM2) / (WIDE_OVERLAP_MM2 - MIN_OVERLAP_MM2), 0.0, 1.0))


def label_agreement(scan_fdi: NDArray[np.integer], cbct_fdi: NDArray[np.integer]) -> float:
    """Fraction of matched points (m,) whose scan tooth ``scan_fdi`` is the tooth ``cbct_fdi`` of the CBCT crown
    point it matched (FDI codes; 0 when nothing is matched)."""
    return float(np.mean(scan_fdi == cbct_fdi)) if len(scan_fdi) else 0.0


def verdict(qc: JawQC, config: RegisterConfig, spacing_mm: float) -> Verdict:
    """``pass`` when every pass_* threshold holds, ``review`` when every review_* one does, else ``fail``.

    Distance thresholds hold at ``config.reference_spacing_mm`` voxels and grow in proportion for coarser CBCTs
    (``spacing_mm``, the smallest voxel size): the surface cannot be placed better than the voxels allow;
    ``summarise`` scales the inlier gate alike."""
    if meets(qc, config, spacing_mm, "pass"):
        return "pass"
    return "review" if meets(qc, config, spacing_mm, "review") else "fail"
