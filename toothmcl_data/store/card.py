"""The dataset card of a version (JSON + Markdown), computed from its tables and provenance.

It holds counts (patients, scans, teeth, pairs), the FDI histogram, spacing and size distributions, the
registration QC summary, the quarantine summary, splits, and provenance (code version, config, input content
hashes, key fingerprint — never a key), source and licence. No timestamps: the same content gives the same card.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa


def _column(table: pa.Table, name: str) -> list[Any]:
    return table.column(name).to_pylist() if name in table.column_names else []


def _distribution(values: list[Any]) -> dict[str, float] | None:
    arr = np.asarray([v for v in values if v is not None], dtype=np.float64)
    if arr.size == 0:
        return None
    q = np.percentile(arr, [0, 50, 95, 100])
    return {"min": float(q[0]), "median": float(q[1]), "p95": float(q[2]), "max": float(q[3]), "n": int(arr.size)}


def quarantine_counts(quarantine: pa.Table) -> dict[str, int]:
    """Quarantined ``units`` (rows: a series, a scan, a lone file, a case that failed registration/pairing),
    the distinct ``cases`` they belong to (rows without a case are files that belong to none) and their
    ``files`` (``n_files`` per row; a row without that column is one file)."""
    n_files = _column(quarantine, "n_files")
    return {
        "units": quarantine.num_rows,
        "cases": len({c for c in _column(quarantine, "case") if c}),
        "files": int(sum(n if n is not None else 1 for n in n_files)) if n_files else quarantine.num_rows,
    }


def build_card(
    tables: Mapping[str, pa.Table], *, content_hash: str, provenance: Mapping[str, Any], splits: Mapping[str, Any]
) -> dict[str, Any]:
    """The card as JSON-able data."""
    cases, scans, teeth, pairs = tables["cases"], tables["scans"], tables["teeth"], tables["pairs"]
    regs, quarantine = tables["registrations"], tables["quarantine"]
    fdi = _column(pairs, "fdi") if not teeth.num_rows else _column(teeth, "fdi")
    verdicts = Counter(_column(regs, "verdict"))
    reasons = Counter(str(r) for r in (_column(quarantine, "reason") or _column(quarantine, "stage")))
    modalities = Counter(_column(scans, "modality"))
    quarantined = quarantine_counts(quarantine)
    return {
        "content_hash": content_hash,
        "counts": {
            "patients": cases.num_rows,
            "scans": scans.num_rows,
            "cbct": modalities.get("cbct", 0),
            "ios": modalities.get("ios", 0),
            "teeth": teeth.num_rows,
            "pairs": pairs.num_rows,
            "quarantined": quarantine.num_rows,
            "quarantined_cases": quarantined["cases"],
            "quarantined_files": quarantined["files"],
            "inventory_files": tables["inventory"].num_rows,
        },
        "fdi_histogram": {str(k): v for k, v in sorted(Counter(int(f) for f in fdi if f is not None).items())},
        "spacing_mm": {
            axis: _distribution(_column(cases, f"spacing_{axis}_mm"))
            for axis in ("i", "j", "k")
            if f"spacing_{axis}_mm" in cases.column_names
        },
        "cbct_voxels": _distribution(
            [
                i * j * k
                for i, j, k in zip(
                    _column(cases, "size_i"), _column(cases, "size_j"), _column(cases, "size_k"), strict=True
                )
                if i is not None
            ]
        ),
        "ios_vertices": _distribution(
            [n for n, m in zip(_column(scans, "n_vertices"), _column(scans, "modality"), strict=True) if m == "ios"]
        ),
        "registration": {
            "verdicts": dict(sorted(verdicts.items())),
            "rms_mm": _distribution(_column(regs, "rms_mm")),
            "p95_mm": _distribution(_column(regs, "p95_mm")),
        },
        "quarantine": {"count": quarantine.num_rows, **quarantined, "by_reason": dict(sorted(reasons.items()))},
        "splits": {
            "config": dict(splits),
            "counts": dict(sorted(Counter(_column(tables["splits"], "split")).items())),
        },
        "provenance": dict(provenance),
    }


def render_markdown(card: Mapping[str, Any]) -> str:
    """The card as Markdown for people."""
    c = card["counts"]
    prov = card["provenance"]
    lines = [
        "# Dataset card",
        "",
        f"Content hash: `{card['content_hash']}`",
        "",
        "## Counts",
        "",
        "| patients | scans | CBCT | IOS | teeth | pairs | quarantined units | quarantined cases | quarantined files "
        "| inventory files |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        f"| {c['patients']} | {c['scans']} | {c['cbct']} | {c['ios']} | {c['teeth']} | {c['pairs']} "
        f"| {c['quarantined']} | {c.get('quarantined_cases', '')} | {c.get('quarantined_files', '')} "
        f"| {c['inventory_files']} |",
        "",
        "## FDI histogram",
        "",
        " ".join(f"{k}: {v}" for k, v in card["fdi_histogram"].items()) or "(no teeth)",
        "",
        "## Distributions",
        "",
    ]
    dists = {f"spacing {k} (mm)": v for k, v in card["spacing_mm"].items()}
    dists.update({"CBCT voxels": card["cbct_voxels"], "IOS vertices": card["ios_vertices"]})
    dists.update({f"registration {k}": card["registration"][k] for k in ("rms_mm", "p95_mm")})
    lines += ["| quantity | min | median | p95 | max | n |", "| --- | --- | --- | --- | --- | --- |"]
    for name, d in dists.items():
        if d:
            lines.append(
                f"| {name} | {d['min']:.4g} | {d['median']:.4g} | {d['p95']:.4g} | {d['max']:.4g} | {d['n']} |"
            )
    lines += [
        "",
        "## Quality",
        "",
        f"Registration verdicts: {json.dumps(card['registration']['verdicts'])}",
        f"Quarantine: {card['quarantine']['count']} units in {card['quarantine'].get('cases', 0)} cases, "
        f"{card['quarantine'].get('files', 0)} files ({json.dumps(card['quarantine']['by_reason'])})",
        f"Splits: {json.dumps(card['splits']['counts'])} (config {json.dumps(card['splits']['config'])})",
        "",
        "## Provenance",
        "",
        f"- code version: {prov.get('code_version', '')}",
        f"- key fingerprint: {prov.get('key_fingerprint', '')}",
        f"- source: {prov.get('source', '')}",
        f"- licence: {prov.get('licence', '')}",
        f"- input content hashes: {len(prov.get('input_hashes', {}))}",
        f"- config: `{json.dumps(prov.get('config', {}), sort_keys=True)}`",
        "",
    ]
    return "\n".join(lines)
