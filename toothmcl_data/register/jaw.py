"""Register one IOS jaw into its CBCT: global start, robust ICP, QC (its crown samples: ``sample``)."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from toothmcl_data import geometry
from toothmcl_data.errors import RegistrationError
from toothmcl_data.io.meshlabels import jaw_from_labels
from toothmcl_data.io.palate import jaw_from_palate
from toothmcl_data.register import features, qc, slide
from toothmcl_data.register.config import RegisterConfig
from toothmcl_data.register.icp import Target, icp
from toothmcl_data.register.init import CLEAR_SCORE, best_start, centroid_start, centroids, hypotheses
from toothmcl_data.register.sample import (
    MIN_TARGET_POINTS,
    CrownSample,
    crown_sample,
    scan_target,
    shown_teeth,
    whole_scan,
)
from toothmcl_data.register.surface import ToothSurface, cbct_surface
from toothmcl_data.types import JAWS, Affine4x4, Jaw, Mesh, Registration, Verdict, Volume, apply_transform

log = logging.getLogger(__name__)

PARTIAL_SCAN = 0.75
"""A scan shorter than this fraction of the CBCT jaw's crowns (along their largest axes) covers part of the arch (a
quadrant scan): the search also slides it along the arch (``slide``); CBCT crowns shorter than this fraction of a
scan's (a quadrant field of view) are slid along the scan's crowns (labelled) or along the whole scan (unlabelled)."""
GOOD_START = 0.6
"""A centroid start whose polished pose puts this fraction of crown points on the CBCT crowns is kept without a
search."""


def spread(surface: ToothSurface, config: RegisterConfig) -> NDArray[np.intp]:
    """Farthest-point sample (indices) of the CBCT crown points that the start search, the final polish and QC
    take their prefixes of (the first k of a farthest-point sample are one)."""
    return geometry.farthest_point_indices(surface.points, max(config.ios_points, 2000))


def _refine(
    target: Target, points: NDArray[np.float64], normals: NDArray[np.float64], start: Affine4x4, config: RegisterConfig
) -> Affine4x4:
    return icp(
        target,
        points,
        normals,
        start,
        iterations=config.icp_iterations,
        start_mm=config.icp_start_mm,
        final_mm=config.icp_final_mm,
        tolerance=config.icp_tolerance,
        normal_agreement=config.normal_agreement,
    )


def _fit(
    jaw: Jaw,
    surface: ToothSurface,
    scan_normal: NDArray[np.float64],
    scan: Target | None,
    sample: CrownSample,
    config: RegisterConfig,
    where: str,
    previous: list[Affine4x4] | None = None,
) -> tuple[Affine4x4, float]:
    """The best start ``world_from_ios`` of one jaw (before the final polish, ``_polish``) and its score.

    ``scan_normal``: the scan's (3,) mean face normal (``geometry.mean_normal``: its own frame, roughly from its
    gums towards its crowns; computed once per registration). ``scan``: the whole scan surface (``scan_target``),
    None for crowns only. Without ``previous`` the start comes from the tooth centroids or the arch-axis search; with
    it (starts, ``world_from_ios``, from searches that were not clear), from them and the shape-feature starts
    (``features``), best scored.

    With labelled IOS crowns, the crown samples are fitted onto the CBCT crowns. Without labels the scan also
    holds gingiva and palate, which have no CBCT counterpart, so the fit runs the other way: CBCT crown samples
    onto the whole scan surface (every crown point has a counterpart there), and the result is inverted.
    """
    if len(surface.points) < MIN_TARGET_POINTS:
        raise RegistrationError(
            f"{where}: only {len(surface.points)} CBCT crown surface points for this jaw (need ≥ {MIN_TARGET_POINTS});"
            " the CBCT does not show this jaw's crowns — check the field of view or the jaw of the scan"
        )
    agree = config.normal_agreement
    cbct_pick = spread(surface, config)
    k = config.init_points
    occlusal = surface.up * (-1.0 if jaw == "upper" else 1.0)  # from the crowns' shape, not the volume axes
    partial = slide.extent_mm(sample.points) < PARTIAL_SCAN * slide.extent_mm(surface.points)  # a quadrant scan
    few = cbct_pick[:2000]  # the CBCT crown points a slid scan settles on
    cbct_arch = surface.points[few], surface.normals[few], surface.target
    if scan is None:
        target = surface.target
        pts, nrm = sample.points[:k], sample.normals[:k]
        side = slide.scan_side(sample.fdi) if partial else 0  # a one-sided partial scan stays on its side
        if previous is not None:  # no clear pose from the arch axes: match local shape
            found = features.feature_starts(
                sample.points, sample.normals, surface.points[cbct_pick], surface.normals[cbct_pick], _rng()
            )
            starts = [*previous, *found]
            slid = None
            if partial:
                ios = sample.points, sample.normals, scan_normal
                starts.append(slide.slide(ios, cbct_arch, occlusal, agree, side))
            elif slide.extent_mm(surface.points) < PARTIAL_SCAN * slide.extent_mm(sample.points):
                # The CBCT shows part of the arch (a quadrant field): its crowns slid along the scan's.
                part = cbct_arch[0], cbct_arch[1], occlusal
                arch = sample.points, sample.normals, Target.of(sample.points, sample.normals)
                ios_from_world = slide.slide(part, arch, scan_normal, agree, 0, crowns=True)
                slid = np.asarray(np.linalg.inv(ios_from_world), dtype=np.float64)
            starts = slide.on_side(starts, sample.points, side, surface.points)
            best, score = best_start(target, pts, nrm, starts, iterations=20, normal_agreement=agree)
            if slid is not None:
                # Scored on its own: the prescore of a whole scan's crowns, most of them beyond a quadrant field,
                # ranks every start poorly and dropped this one (clinical seed 17, ``fov_quadrant`` patient 4).
                alt, alt_score = best_start(target, pts, nrm, [slid], iterations=20, normal_agreement=agree)
                if alt_score > score:
                    best, score = alt, alt_score
            return best, score
        best, score = np.eye(4), -1.0
        if np.any(surface.fdi > 0):
            found_c = centroid_start(centroids(sample.points, sample.fdi), centroids(surface.points, surface.fdi))
            if found_c is not None:
                best, score = best_start(target, pts, nrm, [found_c[0]], iterations=20, normal_agreement=agree)
        if score < GOOD_START:
            starts = ([best] if score >= 0 else []) + hypotheses(
                sample.points, surface.points[cbct_pick], occlusal, config.init_angles, crowns_only=True
            )
            starts = slide.on_side(starts, sample.points, side, surface.points)
            best, score = best_start(target, pts, nrm, starts, iterations=20, normal_agreement=agree)
        return best, score
    cbct_pts, cbct_nrm = surface.points[cbct_pick[:k]], surface.normals[cbct_pick[:k]]
    if previous is not None:
        found = features.feature_starts(
            surface.points[cbct_pick], surface.normals[cbct_pick], scan.points, scan.normals, _rng()
        )
        starts = [np.asarray(np.linalg.inv(T), dtype=np.float64) for T in previous] + found
        if partial:
            ios = sample.points, sample.normals, scan_normal
            slid = slide.slide(ios, cbct_arch, occlusal, agree, 0)
            starts += [np.asarray(np.linalg.inv(slid), dtype=np.float64)]
        elif slide.extent_mm(surface.points) < PARTIAL_SCAN * slide.extent_mm(sample.points):
            part = cbct_arch[0], cbct_arch[1], occlusal
            starts.append(slide.slide(part, (sample.points, sample.normals, scan), scan_normal, agree, 0, crowns=True))
    else:
        hyps = hypotheses(sample.points, surface.points[cbct_pick], occlusal, config.init_angles)
        starts = [np.asarray(np.linalg.inv(T), dtype=np.float64) for T in hyps]
    best, score = best_start(
        scan, cbct_pts, cbct_nrm, starts, iterations=20, normal_agreement=agree, coarse=scan.coarse
    )
    return np.asarray(np.linalg.inv(best), dtype=np.float64), score


def _polish(
    surface: ToothSurface, scan: Target | None, sample: CrownSample, config: RegisterConfig, start: Affine4x4
) -> Affine4x4:
    """The final precise ICP from ``start`` (``world_from_ios``), in the direction ``_fit`` searched in."""
    if scan is None:
        return _refine(surface.target, sample.points, sample.normals, start, config)
    src = spread(surface, config)[: config.ios_points]
    ios_from_world = _refine(
        scan, surface.points[src], surface.normals[src], np.asarray(np.linalg.inv(start), dtype=np.float64), config
    )
    return np.asarray(np.linalg.inv(ios_from_world), dtype=np.float64)


Result = tuple[float, Jaw, Affine4x4, ToothSurface]
"""A jaw's best start so far: (score, jaw, ``world_from_ios``, the CBCT crowns it was fitted to)."""


def _features(
    result: Result,
    mesh: Mesh,
    scan_normal: NDArray[np.float64],
    scan: Target | None,
    fit: CrownSample,
    config: RegisterConfig,
    where: str,
) -> Result:
    """``result`` (score, jaw, start, crowns), or the start found from shape features (``features``) where it
    scores better; ``result`` itself when its pose is already clear or Open3D is missing (``scan_normal``: see
    ``_fit``)."""
    score0, j, start0, jaw_surface = result
    if score0 >= CLEAR_SCORE or not features.available():
        return result
    starts = [start0]
    if scan is None:
        # A labelled scan's crowns lack CBCT counterparts where metal streaks hide the CBCT's crowns, and the search
        # from them may then hold on to nothing: also search from the CBCT crowns onto the whole scan (every CBCT
        # crown point has a counterpart there), as for an unlabelled scan; the labelled fit scores that start too.
        starts.append(_fit(j, jaw_surface, scan_normal, whole_scan(mesh), fit, config, f"{where} ({j} jaw)")[0])
    start, score = _fit(j, jaw_surface, scan_normal, scan, fit, config, f"{where} ({j} jaw)", previous=starts)
    log.debug("%s: %s jaw feature start score %.3f", where, j, score)
    return (score, j, start, jaw_surface) if score > score0 else result


def _faces_its_jaw(T: Affine4x4, occlusal: NDArray[np.float64], up: NDArray[np.float64], jaw: Jaw) -> bool:
    """Whether a scan moved by ``T`` (``world_from_ios``) faces as ``jaw`` does: an upper scan's occlusal side
    (``occlusal``, its own frame: from its gums towards its crown tips) against the crowns' ``up``, a lower one's
    along it. Among both jaws' crowns, a scan laid upside down on the other jaw's crowns fits like any other."""
    return (float(T[:3, :3] @ occlusal @ up) < 0.0) == (jaw == "upper")


def _rng() -> np.random.Generator:
    """The feature search's RANSAC draws: fixed, so a registration is reproducible bit for bit."""
    return np.random.default_rng(0)


def _registration(
    jaw: Jaw,
    T: Affine4x4,
    mesh: Mesh,
    sample: CrownSample,
    surface: ToothSurface,
    config: RegisterConfig,
    cbct: Volume,
    scan: Target | None = None,
) -> Registration:
    """QC of a fitted jaw. Residuals are taken in the direction that has a counterpart for every point: labelled
    IOS crown samples onto the CBCT crowns, or (unlabelled scan) CBCT crown samples onto the scan surface.

    A fit that fails on the whole of both is judged again on their overlap alone (a small field of view, a
    quadrant scan, crowns the CBCT does not show under metal streaks): the scan points the CBCT grid sees that
    have a CBCT crown surface within ``qc.REACH_MM``, or the CBCT crown samples the scan reaches, and the CBCT
    crowns within reach of the scan. When that overlap covers ``qc.MIN_OVERLAP_MM2`` and meets every *pass*
    threshold (every *review* one from ``qc.WIDE_OVERLAP_MM2`` on, between them ``qc.toward_review``; every *review*
    one when a label map and a labelled scan agree on the teeth matched), the jaw goes to ``review`` (flag
    ``partial_overlap``), never to ``pass``. With an unlabelled scan, a verdict on the whole is held to the same
    rule by the area of the CBCT crown samples it matched (flag ``small_cbct_surface`` when it fails it): the CBCT
    side may be a small piece that fits the whole scan in many places.

    Everything measured against the scan is measured in the scan's own frame (CBCT points moved by ``T⁻¹``:
    distances do not change under a rigid motion), so its k-d tree is built once per registration (``scan``, the
    unlabelled scan's ``scan_target``: built here when not given)."""
    if scan is None and not sample.crowns_only:
        scan = scan_target(mesh)
    spacing_mm = min(cbct.spacing)
    inv = np.asarray(np.linalg.inv(T), dtype=np.float64)
    reach = cKDTree(mesh.vertices, balanced_tree=False, compact_nodes=False) if scan is None else scan.tree
    matched_fdi = None  # the CBCT teeth the scan's labelled points matched (a label map and a labelled scan)
    if scan is None:
        moved = apply_transform(T, sample.points)
        res, at = qc.residuals(surface.target, moved, sample.normals @ T[:3, :3].T, config.normal_agreement)
        fdi = sample.fdi
        if surface.source == "labels":
            matched_fdi = surface.fdi[at]
        seen = qc.in_grid(cbct.shape, cbct.affine, moved, qc.FOV_MARGIN_MM) & (res < qc.REACH_MM)
    else:
        pick = spread(surface, config)[: config.ios_points]
        moved = surface.points[pick]
        back = apply_transform(inv, moved)
        res, _ = qc.residuals(scan, back, surface.normals[pick] @ inv[:3, :3].T, config.normal_agreement)
        fdi = surface.fdi[pick]
        seen = reach.query(back, k=1, workers=1, distance_upper_bound=qc.REACH_MM)[0] < qc.REACH_MM
    crowns = apply_transform(inv, surface.points)  # the CBCT crown points in the scan's frame
    cover = qc.coverage(crowns, reach, config.coverage_mm)
    stats = qc.summarise(res, fdi, cover, config, spacing_mm)
    flags: list[str] = []
    if not sample.crowns_only:
        flags.append("unlabelled_ios")
    if surface.source == "intensity":
        flags.append("unlabelled_cbct")
    verdict = qc.verdict(stats, config, spacing_mm)
    gate = config.inlier_mm * qc.threshold_scale(config, spacing_mm)
    if verdict != "fail" and scan is not None:
        # CBCT crown samples onto an unlabelled scan: a small piece (a quadrant field, a metal post taken for
        # crowns) fits a whole scan in many places, as a slide along the arch does: judged as a partial overlap.
        area = qc.area_mm2(moved[res < gate])
        if area < qc.MIN_OVERLAP_MM2 or not qc.meets(stats, config, spacing_mm, qc.toward_review(area)):
            verdict = "fail"
            flags.append(f"small_cbct_surface:{area:.0f}mm2")
    if verdict == "fail" and seen.any():
        near = reach.query(crowns, k=1, workers=1, distance_upper_bound=qc.REACH_MM)[0] < qc.REACH_MM
        cover_near = qc.coverage(crowns[near], reach, config.coverage_mm)
        part = qc.summarise(res[seen], fdi[seen], cover_near, config, spacing_mm)
        inside = seen & (res < gate)
        overlap = qc.area_mm2(moved[inside])
        agree = None if matched_fdi is None else qc.label_agreement(fdi[inside], matched_fdi[inside])
        log.debug("partial overlap %.0f mm2, labels agree %s: %s", overlap, agree, part)
        if overlap >= qc.MIN_OVERLAP_MM2 and qc.meets(part, config, spacing_mm, qc.toward_review(overlap, agree)):
            stats, verdict = part, "review"
            flags.append(f"partial_overlap:{overlap:.0f}mm2")
    if stats.coverage < config.pass_coverage:
        flags.append(f"low_coverage:{stats.coverage:.2f}")
    return Registration(
        jaw=jaw,
        world_from_ios=T,
        rms_mm=stats.rms_mm,
        p95_mm=stats.p95_mm,
        inlier_fraction=stats.inlier_fraction,
        per_tooth_mm=stats.per_tooth_mm,
        verdict=verdict,
        flags=tuple(flags),
    )


def register_jaw(
    cbct: Volume,
    mesh: Mesh,
    *,
    cbct_labels: Volume | None = None,
    config: RegisterConfig | None = None,
    surface: ToothSurface | None = None,
) -> Registration:
    """Register one IOS jaw scan into the CBCT's LPS world space.

    cbct: scanner intensities (I, J, K), LPS affine. mesh: one jaw scan, vertices (n, 3) mm in its own frame,
    FDI labels when known (gingiva and palate are then left out of the fit). cbct_labels: FDI label map on the
    CBCT grid, or None (intensity path). surface: the CBCT crown surface when already extracted (both jaws
    share it). The jaw comes from ``mesh.jaw``, else its labels, else its palate (``io.palate``: an upper scan
    only), else whichever jaw fits better.
    Deterministic: the same inputs give a bit-identical ``world_from_ios``.
    """
    config = config or RegisterConfig()
    where = f"IOS {mesh.frame} → CBCT"
    if len(mesh.vertices) < 30 or not np.all(np.isfinite(mesh.vertices)):
        raise RegistrationError(
            f"{where}: the scan has {len(mesh.vertices)} vertices (or non-finite ones); expected a jaw scan with "
            "finite coordinates — re-export the mesh"
        )
    if surface is None:
        surface = cbct_surface(cbct, cbct_labels, profile_mm=config.profile_mm, where=where)
    jaw = mesh.jaw or jaw_from_labels(mesh.labels) or jaw_from_palate(mesh)
    scan = scan_target(mesh)
    sample = crown_sample(mesh, config.ios_points, None if scan is None else scan.normals)
    fit = shown_teeth(sample, surface)  # what is searched and polished; QC judges the whole ``sample``
    occlusal_side = geometry.mean_normal(mesh)  # the scan's own frame: from its gums towards its crown tips
    candidates: tuple[Jaw, ...] = (jaw,) if jaw is not None else JAWS
    if jaw is None:  # a one-jaw field of view: only the jaw the CBCT shows can be this scan's
        shown = tuple(j for j in JAWS if len(surface.jaw(j).points) >= MIN_TARGET_POINTS)
        candidates = shown or candidates
    results = []
    for j in candidates:
        jaw_surface = surface.jaw(j)
        if jaw is not None and surface.source == "intensity" and len(jaw_surface.points) < MIN_TARGET_POINTS:
            # The intensity split found no crowns of this scan's jaw (arches nested in a deep bite, or a split
            # gone wrong): no split at all, the scan finds its own teeth among all crowns; QC's coverage then
            # counts both jaws' crowns, and such a fit is at most reviewed.
            log.debug("%s: no %s crowns after the jaw split; fitting against all crowns", where, j)
            jaw_surface = surface
        start, score = _fit(j, jaw_surface, occlusal_side, scan, fit, config, f"{where} ({j} jaw)")
        results.append((score, j, start, jaw_surface))
        log.debug("%s: %s jaw start score %.3f", where, j, score)
        if score >= CLEAR_SCORE:  # a clear pose (a wrong jaw scored ≤ 0.39 on synthetic patients): done
            break
    if max(r[0] for r in results) < CLEAR_SCORE and features.available():
        # No jaw gave a clear pose from the arch axes (closed bite, partial view, palate-heavy scan): search
        # again from shape features, keeping each jaw's best start among the candidates.
        results = [_features(r, mesh, occlusal_side, scan, fit, config, where) for r in results]
    _, j, start, jaw_surface = max(results, key=lambda r: r[0])
    T = _polish(jaw_surface, scan, fit, config, start)
    reg = _registration(j, T, mesh, sample, jaw_surface, config, cbct, scan)
    if reg.verdict == "fail" and jaw is None:
        # A scan of unknown jaw took the jaw of the best start; a few crowns of the other jaw at the edge of a
        # one-jaw field fit somewhere on a whole scan as well (0.88 there, 0.84 on its own jaw; clinical seed 11,
        # ``fov_one_jaw`` patient 1): the other jaw's fit is checked too, and kept unless it fails as well.
        tried = {r[1]: r[2] for r in results}  # jaw → its best start
        for other in (o for o in candidates if o != j):
            own = surface.jaw(other)
            begin = tried[other] if other in tried else _fit(other, own, occlusal_side, scan, fit, config, where)[0]
            alt = _registration(other, _polish(own, scan, fit, config, begin), mesh, sample, own, config, cbct, scan)
            reg = alt if alt.verdict != "fail" else reg
    if reg.verdict == "fail" and surface.source == "intensity" and jaw_surface is not surface:
        # The jaw split of intensity crowns can be wrong (a one-jaw field whose cut crowns of the other jaw and
        # metal crowns put part of its own crowns on the other side: clinical seed 17, ``fov_one_jaw+metal_crowns``
        # patient 0, 54 mm off): a failed fit is tried once more against all crowns, each candidate jaw.
        for other in candidates:
            start, score = _fit(other, surface, occlusal_side, scan, fit, config, where)
            begin = _features((score, other, start, surface), mesh, occlusal_side, scan, fit, config, where)[2]
            T = _polish(surface, scan, fit, config, begin)
            alt = _registration(other, T, mesh, sample, surface, config, cbct, scan)
            faces = _faces_its_jaw(T, occlusal_side, surface.up, other)
            if faces and alt.verdict != "fail" and (reg.verdict == "fail" or alt.rms_mm < reg.rms_mm):
                reg, jaw_surface = alt, surface
    if jaw_surface is surface and surface.source == "intensity":
        # Fitted against both jaws' crowns (see above): which crowns it found is not checked against the jaw
        # split, so the fit is never passed unseen.
        verdict: Verdict = "review" if reg.verdict == "pass" else reg.verdict
        reg = dataclasses.replace(reg, verdict=verdict, flags=(*reg.flags, "jaw_not_split"))
    if reg.verdict != "fail" and not _faces_its_jaw(reg.world_from_ios, occlusal_side, surface.up, reg.jaw):
        # A scan laid upside down fits crowns like any other: a lower scan of unknown jaw on the upper crowns of a
        # one-jaw field (the only jaw shown), an upper one on both jaws' crowns.
        reg = dataclasses.replace(reg, verdict="fail", flags=(*reg.flags, "faces_other_jaw"))
    return reg
