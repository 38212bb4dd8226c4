"""The QC report of one version: a static HTML page with its PNGs (``toothmcl-data report``).

Everything comes from the published version (card, tables, arrays), so the page shows what training jobs read.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
from jinja2 import Environment, FileSystemLoader, select_autoescape

from toothmcl_data.register.figures import registration_png
from toothmcl_data.report.charts import PairView, distribution_png, fdi_histogram_png, pair_montage_png
from toothmcl_data.store import open_version
from toothmcl_data.store.reader import VersionReader
from toothmcl_data.types import JAWS

TEMPLATES = Path(__file__).parent / "templates"
CASE_COLUMNS = (
    "pseudonym",
    "has_cbct",
    "has_labels",
    "jaws",
    "n_teeth",
    "n_pairs",
    "spacing_i_mm",
    "size_i",
    "size_j",
    "size_k",
)


def _overlays(version: VersionReader, folder: Path, max_cases: int) -> tuple[list[dict[str, str]], bool]:
    cases = version.case_ids()
    regs = {(r["pseudonym"], r["jaw"]) for r in version.table("registrations").to_pylist()}
    shown: list[dict[str, str]] = []
    for case in cases[:max_cases]:
        cbct = None
        for jaw in JAWS:
            if (case, jaw) not in regs:
                continue
            cbct = cbct if cbct is not None else version.cbct(case)
            if cbct is None:
                break
            reg = version.registration(case, jaw)
            title = f"{case} · {jaw} · {reg.verdict} · RMS {reg.rms_mm:.3f} mm"
            path = registration_png(
                cbct, version.ios(case, jaw), reg, folder / f"overlay_{case}_{jaw}.png", title=title
            )
            shown.append({"src": path.name, "title": title})
    return shown, len(cases) > max_cases


def _montage(version: VersionReader, path: Path, max_pairs: int) -> Path:
    arrays = version.pairs()
    views = []
    if len(arrays.slots):
        cases = version.table("cases").column("pseudonym").to_pylist()
        slots = arrays.slots
        pick = slots[np.linspace(0, len(slots) - 1, min(max_pairs, len(slots))).astype(int)]
        for slot in pick:
            pair = arrays.read(int(slot))
            views.append(
                PairView(
                    f"{cases[int(pair['case_index'])]} · {int(pair['fdi'])}",
                    pair["cbct_crop"],
                    pair["label_crop"],
                    np.asarray(pair["world_from_crop"]),
                    pair["ios_points"],
                )
            )
    return pair_montage_png(views, path)


def _grouped(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Quarantine rows grouped by (case, role, reason): a rejected series is one line with its file count."""
    groups: dict[tuple[str, str, str], dict[str, Any]] = {}
    for row in rows:
        key = (str(row.get("case") or ""), str(row.get("role") or ""), str(row.get("reason") or ""))
        group = groups.setdefault(
            key, {"case": key[0], "role": key[1], "kind": row.get("kind") or "", "files": 0, "reason": key[2]}
        )
        group["files"] += int(row.get("n_files") or 1)  # one row per unit (a series: n_files slices)
    return sorted(groups.values(), key=lambda g: (g["case"], g["reason"]))


def write_report(store: str | Path, version: str, out: Path, *, max_cases: int = 12, max_pairs: int = 24) -> Path:
    """Write ``out/index.html`` and its PNGs for ``version`` of ``store``; return the page's path.

    max_cases: registration overlays drawn (the first cases by pseudonym); max_pairs: tooth pairs in the montage.
    """
    reader = open_version(store, version)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    card = reader.card()
    cases = reader.table("cases").to_pylist()
    registrations = sorted(reader.table("registrations").to_pylist(), key=lambda r: (r["pseudonym"], r["jaw"]))
    quarantine = _grouped(reader.table("quarantine").to_pylist())
    spacing = [r.get("spacing_i_mm") for r in cases if r.get("has_cbct")]
    images = {
        "fdi": fdi_histogram_png(
            {int(k): int(v) for k, v in card.get("fdi_histogram", {}).items()}, out / "fdi.png"
        ).name,
        "spacing": distribution_png(
            [s for s in spacing if s], out / "spacing.png", xlabel="voxel size (mm)", title="CBCT spacing"
        ).name,
        "residuals": distribution_png(
            [r["rms_mm"] for r in registrations],
            out / "residuals.png",
            xlabel="RMS surface residual (mm)",
            title="registration residuals",
        ).name,
        "montage": _montage(reader, out / "pairs.png", max_pairs).name,
    }
    overlays, truncated = _overlays(reader, out, max_cases)
    provenance = card.get("provenance", {})
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]))
    quarantine_columns = ["case", "role", "kind", "files", "reason"]
    page = env.get_template("report.html.j2").render(
        store=str(store),
        version_id=reader.id,
        tags=list(reader.tags),
        content_hash=reader.content_hash,
        counts=card.get("counts", {}),
        provenance={k: provenance.get(k, "") for k in ("code_version", "key_fingerprint", "source", "licence")},
        images=images,
        registrations=registrations,
        overlays=overlays,
        overlays_truncated=truncated,
        cases=cases,
        case_columns=[c for c in CASE_COLUMNS if any(c in r for r in cases)],
        quarantine=quarantine,
        quarantine_columns=quarantine_columns,
    )
    index = out / "index.html"
    index.write_text(page, encoding="utf-8")
    return index


def report_summary(index: Path) -> dict[str, Any]:
    """What a report folder holds: the page and its pictures."""
    return {"page": str(index), "images": sorted(p.name for p in index.parent.glob("*.png"))}
