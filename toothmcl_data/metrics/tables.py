"""Folder-level evaluation: pair GT and prediction files by name, score each case, write one table.

Pairing: a GT case is found under the GT folder (recursively); its prediction is the file of the same name
anywhere under the prediction folder.

- IOS: every Teeth3DS sidecar ``<stem>.json`` with a mesh ``<stem>.{obj,ply,stl,vtp}`` beside it (Teeth3DS
  layout ``<ID>/<ID>_upper.obj`` + ``<ID>_upper.json``); the prediction is ``<stem>.json``.
- CBCT: every label volume ``<key>.nii[.gz]`` / ``.mha`` / ``.mhd`` / ``.nrrd`` and every folder holding
  ``*.dcm`` files (a DICOM series, key = folder name); the prediction has the same key.

Row status: ``ok``; a prediction that is missing, unreadable or unusable (wrong vertex count, other grid)
scores as an empty prediction — the 3DTeethSeg22 rule (its evaluation gives 0 to every metric of a scan whose
prediction cannot be loaded) — and says why in ``status``; a GT that cannot be read is an ``error`` row,
without scores, left out of the means (a quarantine record, never a crash of the run).

Tables: ``.csv`` (stdlib) or ``.parquet`` (pyarrow), plus a Markdown twin ``<out>.md`` with a mean row.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from toothmcl_data.errors import InputError, ToothmclError
from toothmcl_data.io.meshwrite import write_atomic
from toothmcl_data.metrics.cbct import TOOTH_GROUPS, CBCTScores
from toothmcl_data.metrics.inputs import (
    read_ios_ground_truth,
    read_ios_prediction,
    score_cbct_files,
    score_cbct_missing,
)
from toothmcl_data.metrics.ios import gt_teeth, score_scan

Row = dict[str, Any]
MESH_SUFFIXES = (".obj", ".ply", ".stl", ".vtp")
VOLUME_SUFFIXES = (".nii.gz", ".nii", ".mha", ".mhd", ".nrrd")
IOS_COLUMNS = ("case", "status", "TSA", "TLA", "TIR", "score", "mIoU", "gt_teeth", "matched")
CBCT_COLUMNS = (
    "case",
    "status",
    "mean_dice",
    "mean_hd95_mm",
    "identification_accuracy",
    "detection_rate",
    "gt_teeth",
    "missed",
    "spurious",
    *(f"dice_{g}" for g in TOOTH_GROUPS),
    *(f"hd95_mm_{g}" for g in TOOTH_GROUPS),
)
_NOT_SCORED = "error"


@dataclass(frozen=True)
class CasePair:
    """One case to score: its key, GT path(s) and prediction path (None when none was found)."""

    key: str
    gt: Path
    pred: Path | None
    mesh: Path | None = None


def _predictions(pred_dir: Path, names: set[str]) -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = {}
    for p in sorted(pred_dir.rglob("*")):
        if p.name in names:
            found.setdefault(p.name, []).append(p)
    return found


def _check_dirs(gt_dir: Path, pred_dir: Path) -> None:
    for what, d in (("ground-truth", gt_dir), ("prediction", pred_dir)):
        if not d.is_dir():
            raise InputError(f"{what} folder {d} does not exist or is not a folder; pass a folder of {what} files")


def find_ios_cases(gt_dir: str | Path, pred_dir: str | Path) -> list[CasePair]:
    """Pair every GT sidecar that has a mesh beside it with its prediction (see the module docstring)."""
    gt_dir, pred_dir = Path(gt_dir), Path(pred_dir)
    _check_dirs(gt_dir, pred_dir)
    cases = []
    for gt in sorted(gt_dir.rglob("*.json")):
        mesh = next((m for s in MESH_SUFFIXES if (m := gt.with_suffix(s)).is_file()), None)
        if mesh is not None:
            cases.append(CasePair(gt.stem, gt, None, mesh))
    return _attach(cases, _predictions(pred_dir, {c.gt.name for c in cases}), lambda c: c.gt.name, "IOS", gt_dir)


def _volume_key(path: Path) -> str | None:
    name = path.name
    for s in VOLUME_SUFFIXES:
        if name.lower().endswith(s):
            return name[: -len(s)]
    return None


def _volume_entries(folder: Path) -> dict[str, Path]:
    entries: dict[str, Path] = {}
    for p in sorted(folder.rglob("*")):
        key = _volume_key(p) if p.is_file() else (p.name if any(p.glob("*.dcm")) else None)
        if key is None:
            continue
        if key in entries:
            raise InputError(
                f"{folder}: two label volumes share the case name {key!r}: {entries[key]} and {p}; "
                "give every case a unique file or folder name"
            )
        entries[key] = p
    return entries


def find_cbct_cases(gt_dir: str | Path, pred_dir: str | Path) -> list[CasePair]:
    """Pair every GT label volume (file or DICOM folder) with the prediction of the same case name."""
    gt_dir, pred_dir = Path(gt_dir), Path(pred_dir)
    _check_dirs(gt_dir, pred_dir)
    gts = _volume_entries(gt_dir)
    if not gts:
        raise InputError(
            f"{gt_dir}: no CBCT ground truth found (expected label volumes {', '.join(VOLUME_SUFFIXES)} or "
            "folders of .dcm files)"
        )
    preds = _volume_entries(pred_dir)
    return [CasePair(key, gt, preds.get(key)) for key, gt in gts.items()]


def _attach(
    cases: list[CasePair], found: dict[str, list[Path]], name: Callable[[CasePair], str], what: str, gt_dir: Path
) -> list[CasePair]:
    if not cases:
        raise InputError(f"{gt_dir}: no {what} ground truth found (expected a Teeth3DS <stem>.json beside a mesh)")
    out = []
    for c in cases:
        hits = found.get(name(c), [])
        if len(hits) > 1:
            raise InputError(f"several predictions named {name(c)}: {', '.join(map(str, hits))}; keep one per case")
        out.append(CasePair(c.key, c.gt, hits[0] if hits else None, c.mesh))
    return out


def _empty_ios_row(key: str, status: str) -> Row:
    # __main__ of the challenge's evaluation.py appends 0 to TSA, TLA (already exp(-TLA)) and TIR when a
    # prediction cannot be loaded; the scan still counts in the means.
    return {"case": key, "status": status, "TSA": 0.0, "TLA": 0.0, "TIR": 0.0, "score": 0.0, "mIoU": 0.0}


def score_ios_case(case: CasePair) -> Row:
    """Score one IOS case into a table row (status rules in the module docstring)."""
    if case.mesh is None:
        raise InputError(f"{case.gt}: IOS case without a mesh")
    what = f"ground truth {case.gt}"
    try:
        mesh, labels, instances = read_ios_ground_truth(case.mesh, case.gt)
        gt_teeth(mesh.vertices, labels, instances, what)  # a GT the challenge cannot score is an error row
    except ToothmclError as err:
        return {"case": case.key, "status": f"{_NOT_SCORED}: {err}"}
    if case.pred is None:
        return _empty_ios_row(case.key, "missing prediction (scored 0)")
    try:
        pred = read_ios_prediction(case.pred, mesh, str(case.mesh))
    except ToothmclError as err:
        return _empty_ios_row(case.key, f"prediction unusable (scored 0): {err}")
    d = score_scan(mesh.vertices, labels, instances, pred.labels, pred.instances, what).to_dict()
    return {"case": case.key, "status": "ok", **{k: d[k] for k in IOS_COLUMNS[2:]}}


def _cbct_row(key: str, status: str, s: CBCTScores) -> Row:
    d = s.to_dict()
    row: Row = {"case": key, "status": status, **{k: d[k] for k in CBCT_COLUMNS[2:7]}}
    row["missed"] = " ".join(map(str, d["missed"]))
    row["spurious"] = " ".join(map(str, d["spurious"]))
    for g in TOOTH_GROUPS:
        grp = d["groups"].get(g, {})
        row[f"dice_{g}"] = grp.get("mean_dice")
        row[f"hd95_mm_{g}"] = grp.get("mean_hd95_mm")
    return row


def score_cbct_case(case: CasePair, scheme: str = "fdi", pred_scheme: str | None = None) -> Row:
    """Score one CBCT case into a table row (status rules in the module docstring)."""
    try:
        empty = score_cbct_missing(case.gt, scheme=scheme)
    except ToothmclError as err:
        return {"case": case.key, "status": f"{_NOT_SCORED}: {err}"}
    if case.pred is None:
        return _cbct_row(case.key, "missing prediction (scored as empty)", empty)
    try:
        return _cbct_row(case.key, "ok", score_cbct_files(case.gt, case.pred, scheme=scheme, pred_scheme=pred_scheme))
    except ToothmclError as err:
        return _cbct_row(case.key, f"prediction unusable (scored as empty): {err}", empty)


def _no_progress(n: int) -> None:
    del n


def score_ios_cases(cases: Sequence[CasePair], advance: Callable[[int], None] = _no_progress) -> list[Row]:
    """Score every IOS case (from :func:`find_ios_cases`); ``advance(1)`` after each."""
    rows = []
    for case in cases:
        rows.append(score_ios_case(case))
        advance(1)
    return rows


def score_cbct_cases(
    cases: Sequence[CasePair],
    *,
    scheme: str = "fdi",
    pred_scheme: str | None = None,
    advance: Callable[[int], None] = _no_progress,
) -> list[Row]:
    """Score every CBCT case (from :func:`find_cbct_cases`); ``advance(1)`` after each."""
    rows = []
    for case in cases:
        rows.append(score_cbct_case(case, scheme, pred_scheme))
        advance(1)
    return rows


def summarize(rows: Sequence[Row], columns: Sequence[str]) -> Row:
    """Mean of each numeric column over scored rows (status not ``error``), skipping empty cells.

    An IOS ``score`` is recomputed from the means, ``(mean TSA + mean TLA + mean TIR) / 3``, as the challenge does.
    """
    scored = [r for r in rows if not str(r.get("status", "")).startswith(_NOT_SCORED)]
    out: Row = {"case": "mean", "status": f"{len(scored)} scored / {len(rows)} cases"}
    for col in columns[2:]:
        vals = [r[col] for r in scored if isinstance(r.get(col), int | float) and not isinstance(r.get(col), bool)]
        vals = [v for v in vals if not math.isnan(v)]
        out[col] = float(np.mean(vals)) if vals else None
    if "score" in columns and all(out.get(k) is not None for k in ("TSA", "TLA", "TIR")):
        out["score"] = (out["TSA"] + out["TLA"] + out["TIR"]) / 3.0
    return out


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(rows: Sequence[Row], columns: Sequence[str], summary: Row | None = None) -> str:
    """A Markdown table of ``rows`` (floats to 4 decimals), the summary row last in bold."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join(" --- " for _ in columns) + "|"]
    lines += ["| " + " | ".join(_cell(r.get(c)) for c in columns) + " |" for r in rows]
    if summary is not None:
        cells = [f"**{_cell(summary.get(c))}**" if summary.get(c) is not None else "" for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def table_paths(out: str | Path) -> tuple[Path, Path]:
    """(table path, Markdown path) for ``out`` ending in ``.csv`` or ``.parquet``."""
    out = Path(out)
    if out.suffix.lower() not in (".csv", ".parquet"):
        raise InputError(f"table {out}: unknown format {out.suffix!r}; name it <something>.csv or .parquet")
    return out, out.with_suffix(".md")


def write_table(rows: Sequence[Row], columns: Sequence[str], out: str | Path) -> tuple[Path, Path]:
    """Write ``rows`` (columns in order) to ``out`` (.csv or .parquet) and its Markdown twin with the mean row.

    Returns the two paths. Files are written atomically and deterministically (same rows, same bytes).
    """
    table, md = table_paths(out)
    summary = summarize(rows, columns)
    table.parent.mkdir(parents=True, exist_ok=True)
    if table.suffix.lower() == ".csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for r in rows:
            writer.writerow({c: "" if r.get(c) is None else r.get(c) for c in columns})
        write_atomic(table, buf.getvalue().encode("utf-8"))
    else:
        write_atomic(table, _parquet_bytes(rows, columns))
    write_atomic(md, markdown_table(rows, columns, summary).encode("utf-8"))
    return table, md


def _parquet_bytes(rows: Sequence[Row], columns: Sequence[str]) -> bytes:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as err:
        raise InputError("writing a .parquet table needs pyarrow: `pip install pyarrow`, or write .csv") from err
    arrays = {}
    for c in columns:
        text = c in ("case", "status", "missed", "spurious")
        values = [None if (v := r.get(c)) is None else str(v) if text else float(v) for r in rows]
        arrays[c] = pa.array(values, type=pa.string() if text else pa.float64())
    buf = pa.BufferOutputStream()
    pq.write_table(pa.table(arrays), buf, compression="zstd")
    return bytes(buf.getvalue().to_pybytes())
