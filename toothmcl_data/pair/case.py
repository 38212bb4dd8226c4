"""Pair one case at the tooth level: for every FDI tooth in both modalities, a CBCT crop and IOS points."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from toothmcl_data.errors import LabelSchemeError, RegistrationError
from toothmcl_data.fdi import tooth
from toothmcl_data.geometry import crop_grid, resample
from toothmcl_data.pair import consistency, teeth, transfer
from toothmcl_data.pair.config import PairConfig
from toothmcl_data.register.sample import vertex_normals
from toothmcl_data.register.surface import ToothSurface, cbct_surface
from toothmcl_data.types import Case, Jaw, Mesh, Registration, ToothPair, Volume, apply_transform

log = logging.getLogger(__name__)


LABEL_SOURCES = ("cbct", "ios")
"""Where a CBCT tooth's identity comes from (``cbct_label_source`` of the teeth table, ``cbct_labels_source`` of
the case): the CBCT's own label map, or the registered IOS labels transferred into the CBCT."""


@dataclass(frozen=True, eq=False)
class PairResult:
    """Pairs of one case, its tooth table rows, label-transfer coverage per jaw and FDI, and case findings.

    cbct_labels: the case's CBCT tooth label map — its own when it has one, else the paired IOS teeth's labels
    transferred into the CBCT through the registration (:func:`transferred_label_map`); None when no tooth could
    be placed. cbct_labels_source: ``"cbct"``, ``"ios"`` or ``""`` (none).
    """

    pairs: list[ToothPair]
    teeth: list[dict[str, Any]]
    coverage: dict[str, dict[int, float]] = field(default_factory=dict)
    flags: tuple[str, ...] = ()
    cbct_labels: Volume | None = None
    cbct_labels_source: str = ""


@dataclass(frozen=True, eq=False)
class _Jaw:
    """One registered scan in CBCT world: vertices/normals (n, 3) LPS mm, effective FDI labels (n,).

    Without a CBCT label map only the scan's crown vertices (labels > 0) are looked at again, so only their
    ``normals`` and ``bright`` are computed (the others are (0, 0, 0) and False); with one, ``bright`` is not
    read (all False) and every normal is computed (the label transfer from the CBCT needs them)."""

    jaw: Jaw
    registration: Registration
    vertices: NDArray[np.float64]
    normals: NDArray[np.float64]
    labels: NDArray[np.int16]
    bright: NDArray[np.bool_]
    beyond_mm: NDArray[np.float64]
    findings: dict[int, list[str]]
    flags: list[str]


def _register_view(
    case: Case, jaw: Jaw, mesh: Mesh, reg: Registration, surface: ToothSurface, config: PairConfig
) -> _Jaw:
    cbct = case.cbct
    if cbct is None:  # checked by the caller
        raise RegistrationError(f"case {case.pseudonym}: no CBCT")
    T = reg.world_from_ios
    v = apply_transform(T, mesh.vertices)
    flags: list[str] = []
    from_cbct = None
    bright = np.zeros(len(v), dtype=bool)
    if case.cbct_labels is not None:
        n = vertex_normals(mesh) @ T[:3, :3].T
        from_cbct = transfer.labels_from_cbct(cbct, case.cbct_labels, v, n, surface.level, config.surface_gate_mm)
    else:
        crown = np.flatnonzero(mesh.labels > 0) if mesh.labels is not None else np.zeros(0, dtype=np.intp)
        n = np.zeros_like(v)
        n[crown] = vertex_normals(mesh, crown)  # the same rows as the whole scan's normals
        n = n @ T[:3, :3].T  # rotated as a whole: each row's arithmetic as before
        bright = transfer.tooth_bright(cbct, v, n, surface.level, config.surface_gate_mm, where=crown)
    findings: dict[int, list[str]] = {}
    if mesh.labels is not None and np.any(mesh.labels > 0):
        labels = np.asarray(mesh.labels, dtype=np.int16)
        if from_cbct is not None:
            findings = consistency.against_cbct(labels, from_cbct, config.min_agreement)
        centres = {int(f): v[labels == f].mean(axis=0) for f in np.unique(labels) if f > 0}
        for f, extra in consistency.against_anatomy(centres, jaw).items():
            findings.setdefault(f, []).extend(x for x in extra if x not in findings.get(f, []))
        flags += consistency.jaw_findings(findings, len(centres))
    elif from_cbct is not None:
        labels = from_cbct
        flags.append("labels_from_cbct")
    else:
        labels = np.zeros(len(v), dtype=np.int16)
        flags.append("no_labels")
    if reg.verdict == "fail":
        flags.append("registration_fail")
    beyond = teeth.beyond_grid_mm(cbct, v)
    return _Jaw(jaw, reg, v, n, labels, bright, beyond, findings, flags)


def _row(case: Case, fdi: int, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "case": case.pseudonym,
        "fdi": fdi,
        "centroid_cbct_mm": None,
        "centroid_ios_mm": None,
        "extent_mm": None,
        "residual_mm": None,
        "flags": [],
        "in_cbct": False,
        "in_ios": False,
        "paired": False,
    }
    row.update(values)
    return row


def _label_crop(case: Case, world_from_crop: NDArray[np.float64], config: PairConfig) -> NDArray[np.int16]:
    if case.cbct_labels is not None:
        labels = case.cbct_labels
        return resample(labels.array, labels.affine, world_from_crop, config.crop_shape, order=0, dtype=np.int16)
    return np.zeros(config.crop_shape, dtype=np.int16)  # filled from the transferred label map (pair_case)


def transferred_label_map(
    cbct: Volume, views: list[_Jaw], paired: set[int], level: float, config: PairConfig
) -> tuple[Volume | None, set[int]]:
    """A CBCT tooth label map from the registered IOS labels of the ``paired`` teeth (FDI codes): tooth voxels
    within ``config.project_mm`` of such a crown vertex take the label of the nearest one (both jaws at
    once, so teeth in occlusion split at the middle). Unpaired teeth (inconsistent, not in the CBCT, failed
    registration) are left out: their identity is not trusted. Voxels count as tooth above
    :func:`transfer.inner_level` (between the surface level and the crowns' own value: not the alveolar bone).
    Returns the map — same grid as ``cbct`` (int16); None if empty — and the FDI codes it holds."""
    keep = [np.isin(v.labels, sorted(paired)) for v in views]
    crowns = np.concatenate([v.vertices[k] for v, k in zip(views, keep, strict=True)]) if views else np.zeros((0, 3))
    if len(crowns) == 0:
        return None, set()
    normals = np.concatenate([v.normals[k] for v, k in zip(views, keep, strict=True)])
    labels = np.concatenate([v.labels[k] for v, k in zip(views, keep, strict=True)])
    threshold = transfer.inner_level(cbct, crowns, normals, level)
    box = transfer.box_around(cbct, crowns, config.project_mm)
    part = transfer.labels_from_ios(cbct, crowns, labels, threshold, config.project_mm, box=box)
    placed = {int(f) for f in np.unique(part) if f > 0}  # the box only: the map is 0 outside it
    if not placed:
        return None, placed
    out = np.zeros(cbct.shape, dtype=np.int16)
    out[box] = part
    return Volume(out, cbct.affine), placed


def _tooth(
    case: Case,
    fdi: int,
    view: _Jaw | None,
    boxes: dict[int, tuple[NDArray[np.float64], NDArray[np.float64]]],
    config: PairConfig,
) -> tuple[dict[str, Any], ToothPair | None]:
    cbct = case.cbct
    if cbct is None:
        raise RegistrationError(f"case {case.pseudonym}: no CBCT")
    flags: list[str] = []
    centre_cbct, extent = boxes.get(fdi, (None, None))
    sel = np.zeros(0, dtype=bool) if view is None else view.labels == fdi
    n_ios = int(sel.sum())
    in_ios = n_ios >= config.min_vertices
    in_cbct = centre_cbct is not None
    if view is not None and case.cbct_labels is None and in_ios:
        in_cbct = float(np.mean(view.bright[sel])) >= 0.5
    # The CBCT's field of view, judged on the registered crown: a crown partly beyond the grid is cut (its crop
    # would miss part of what the scan shows), one wholly beyond it is not in the CBCT at all.
    fov = ""
    if view is not None and n_ios:
        beyond = view.beyond_mm[sel] > config.fov_tolerance_mm
        fov = "outside_fov" if beyond.all() else "cut_by_fov" if beyond.any() else ""
    if fov == "outside_fov" and centre_cbct is None:
        in_cbct = False
    residual = None if view is None else view.registration.per_tooth_mm.get(fdi)
    centroid_ios = view.vertices[sel].mean(axis=0) if view is not None and n_ios else None
    if view is not None:
        flags += view.findings.get(fdi, [])
        flags += [f for f in view.flags if f in ("registration_fail", "mirror")]
    if fov:
        flags.append(fov)
    elif in_ios and not in_cbct:
        flags.append("not_in_cbct")
    if in_cbct and not in_ios:
        flags.append("not_in_ios")
    paired = in_ios and in_cbct and not flags
    row = _row(
        case,
        fdi,
        centroid_cbct_mm=None if centre_cbct is None else [float(x) for x in centre_cbct],
        centroid_ios_mm=None if centroid_ios is None else [float(x) for x in centroid_ios],
        extent_mm=None if extent is None else [float(x) for x in extent],
        residual_mm=residual,
        flags=flags,
        in_cbct=bool(in_cbct),
        in_ios=bool(in_ios),
        paired=bool(paired),
    )
    if not paired or view is None:
        return row, None
    crown = view.vertices[sel]
    occlusal = np.array([0.0, 0.0, -1.0 if tooth(fdi).jaw == "upper" else 1.0])
    if centre_cbct is None:
        centre_cbct = teeth.crown_centre(crown, occlusal, config.crop_mm)
    else:
        centre_cbct = teeth.keep_crown(centre_cbct, crown, occlusal, config.crop_mm)
    world_from_crop = crop_grid(centre_cbct, config.crop_shape, config.spacing_mm)
    # outside the volume: its lowest intensity near the crop (air or the scanner's padding)
    crop = resample(cbct.array, cbct.affine, world_from_crop, config.crop_shape, order=1, fill="lowest", dtype=np.int16)
    label_crop = _label_crop(case, world_from_crop, config)
    points = teeth.tooth_points(crown, view.normals[sel], config.points)
    pair_flags = tuple(view.flags)
    return row, ToothPair(case.pseudonym, fdi, crop, label_crop, world_from_crop, points, pair_flags)


def pair_case(
    case: Case,
    registrations: dict[Jaw, Registration],
    config: PairConfig | None = None,
    *,
    surface: ToothSurface | None = None,
) -> PairResult:
    """Tooth pairs, tooth table rows and label-transfer coverage of one registered case.

    registrations: per jaw, ``world_from_ios`` of ``case.ios[jaw]`` into the CBCT's LPS world. A tooth is
    paired only when it is in both modalities, its registered crown lies wholly inside the CBCT's field of view,
    its registration did not fail and no consistency finding (swap, mirror, jaw mix-up, side, order) touches it.
    Each row's ``flags`` say why a tooth is not paired: ``outside_fov`` (its registered crown lies wholly beyond
    the CBCT grid), ``cut_by_fov`` (partly: the grid's edge cuts the crown, ``PairConfig.fov_tolerance_mm``),
    ``not_in_cbct`` (inside the grid but no CBCT tooth there), ``not_in_ios``, ``registration_fail``, ``mirror``
    and the consistency findings. Deciduous teeth pair under their own FDI codes (51–85) like permanent ones.
    surface: the CBCT crown surface if already extracted.
    """
    config = config or PairConfig()
    if case.cbct is None:
        raise RegistrationError(
            f"case {case.pseudonym}: has no CBCT, so no tooth can be paired; pair only cases with a readable CBCT"
        )
    surface = surface or cbct_surface(case.cbct, case.cbct_labels, where=f"case {case.pseudonym}")
    views: dict[Jaw, _Jaw] = {}
    for jaw, reg in registrations.items():
        mesh = case.ios.get(jaw)
        if mesh is None:
            raise RegistrationError(
                f"case {case.pseudonym}: a registration for the {jaw} jaw was given but the case has no {jaw} scan"
            )
        views[jaw] = _register_view(case, jaw, mesh, reg, surface, config)
    boxes = teeth.label_boxes(case.cbct_labels) if case.cbct_labels is not None else {}
    fdis: set[int] = set(boxes)
    for seen in views.values():
        fdis |= {int(f) for f in np.unique(seen.labels) if f > 0}
    rows: list[dict[str, Any]] = []
    pairs: list[ToothPair] = []
    for fdi in sorted(fdis):
        try:
            jaw = tooth(fdi).jaw
        except LabelSchemeError as err:
            where = "CBCT label map" if fdi in boxes else "IOS labels"
            raise LabelSchemeError(
                f"case {case.pseudonym}: label {fdi} in the {where} is not an FDI tooth ({err}); the reader should "
                "have converted or refused it — convert the labels to FDI (catalogs/labelmaps) and curate again"
            ) from err
        # A tooth labelled in the other jaw's scan (jaw mix-up) is reported with that scan.
        view: _Jaw | None = views.get(jaw)
        other = [v for v in views.values() if v.jaw != jaw and np.any(v.labels == fdi)]
        if other and (view is None or not np.any(view.labels == fdi)):
            view = other[0]
        row, pair = _tooth(case, fdi, view, boxes, config)
        rows.append(row)
        if pair is not None:
            pairs.append(pair)
    coverage: dict[str, dict[int, float]] = {
        jaw: transfer.coverage(
            surface.jaw(jaw).points, surface.jaw(jaw).fdi, v.vertices, v.labels, config.surface_gate_mm
        )
        for jaw, v in views.items()
    }
    flags = tuple(sorted({f"{jaw}:{f}" for jaw, v in views.items() for f in v.flags}))
    label_map, source, placed = case.cbct_labels, "cbct", set(boxes)  # boxes: one per FDI code in the map
    if label_map is None:
        paired = {int(r["fdi"]) for r in rows if r["paired"]}
        label_map, placed = transferred_label_map(case.cbct, list(views.values()), paired, surface.level, config)
        source = "ios"
        if label_map is not None:
            crops = {
                p.fdi: resample(
                    label_map.array, label_map.affine, p.world_from_crop, config.crop_shape, order=0, dtype=np.int16
                )
                for p in pairs
            }
            pairs = [replace(p, label_crop=crops[p.fdi]) for p in pairs]
    for row in rows:
        row["cbct_label_source"] = source if int(row["fdi"]) in placed else None
    log.debug("case %s: %d pairs of %d teeth", case.pseudonym, len(pairs), len(rows))
    return PairResult(pairs, rows, coverage, flags, label_map, source if label_map is not None else "")
