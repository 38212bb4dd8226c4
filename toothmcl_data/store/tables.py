"""Catalog tables: rows from a case record, Arrow tables, Parquet bytes and their content hashes.

Every table is sorted by its key columns before it is written, and Parquet is written with fixed settings, so
the same rows give the same bytes. A table's *content hash* leaves out the layout columns
(:data:`~toothmcl_data.store.layout.LAYOUT_COLUMNS`), so a version published incrementally and one published
from scratch with the same content hash the same.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from toothmcl_data.errors import StoreError
from toothmcl_data.store.layout import FORBIDDEN_COLUMNS, LAYOUT_COLUMNS
from toothmcl_data.store.records import CaseRecord, canonical_json, canonical_row, registration_dict, sorted_pairs

SORT_KEYS: dict[str, tuple[str, ...]] = {
    "cases": ("pseudonym",),
    "scans": ("pseudonym", "modality", "jaw"),
    "teeth": ("pseudonym", "fdi"),
    "pairs": ("pseudonym", "fdi", "index"),
    "registrations": ("pseudonym", "jaw"),
    "splits": ("pseudonym",),
    "provenance": ("field",),
}


def check_columns(table: str, rows: Iterable[Mapping[str, Any]], where: str) -> None:
    """Refuse columns that would name an original path or identity."""
    for row in rows:
        bad = FORBIDDEN_COLUMNS.intersection(k.lower() for k in row)
        if bad:
            raise StoreError(
                f"{where}: table {table!r} has column(s) {sorted(bad)}, which name an original path or identity; "
                "keep those in the restricted audit area and publish content hashes or pseudonyms instead"
            )


def case_rows(record: CaseRecord, content_hash: str, slot_start: int) -> dict[str, list[dict[str, Any]]]:
    """The rows this case contributes to the cases, scans, teeth, pairs and registrations tables."""
    case = record.case
    p = case.pseudonym
    pairs = sorted_pairs(record.pairs)
    row: dict[str, Any] = {
        "pseudonym": p,
        "content_sha256": content_hash,
        "has_cbct": case.cbct is not None,
        "has_labels": case.cbct_labels is not None,
        "jaws": ",".join(j for j in ("upper", "lower") if j in case.ios),
        "n_teeth": len(record.teeth),
        "n_pairs": len(pairs),
        "pair_slot_start": slot_start,
    }
    if case.cbct is not None:
        row.update(zip(("size_i", "size_j", "size_k"), case.cbct.shape, strict=True))
        row.update(zip(("spacing_i_mm", "spacing_j_mm", "spacing_k_mm"), case.cbct.spacing, strict=True))
    for key, value in record.attributes.items():
        if key in row:
            raise StoreError(f"case {p}: attribute {key!r} clashes with a built-in column of the cases table")
        row[key] = value
    check_columns("cases", [row], f"case {p}")
    scans: list[dict[str, Any]] = []
    if case.cbct is not None:
        scans.append(
            {
                "pseudonym": p,
                "modality": "cbct",
                "jaw": "",
                "source_sha256": case.sources.get("cbct", ""),
                "n_voxels": int(np.prod(case.cbct.shape)),
                "n_vertices": 0,
                "n_faces": 0,
                "labelled": case.cbct_labels is not None,
            }
        )
    for jaw, mesh in sorted(case.ios.items()):
        scans.append(
            {
                "pseudonym": p,
                "modality": "ios",
                "jaw": jaw,
                "source_sha256": case.sources.get(f"ios:{jaw}", ""),
                "n_voxels": 0,
                "n_vertices": len(mesh.vertices),
                "n_faces": len(mesh.faces),
                "labelled": mesh.labels is not None,
            }
        )
    teeth = [{**canonical_row(t), "pseudonym": p} for t in record.teeth]
    check_columns("teeth", teeth, f"case {p}")
    pair_rows = [
        {
            "pseudonym": p,
            "fdi": int(pair.fdi),
            "index": i,
            "slot": slot_start + i,
            "flags": list(pair.flags),
        }
        for i, pair in enumerate(pairs)
    ]
    regs = []
    for jaw, reg in sorted(record.registrations.items()):
        d = registration_dict(reg)
        regs.append(
            {
                "pseudonym": p,
                "jaw": jaw,
                "rms_mm": d["rms_mm"],
                "p95_mm": d["p95_mm"],
                "inlier_fraction": d["inlier_fraction"],
                "verdict": d["verdict"],
                "flags": d["flags"],
                "world_from_ios": [x for r in d["world_from_ios"] for x in r],
                "per_tooth_mm": json.dumps(d["per_tooth_mm"]),
            }
        )
    return {"cases": [row], "scans": scans, "teeth": teeth, "pairs": pair_rows, "registrations": regs}


def to_arrow(name: str, rows: Sequence[Mapping[str, Any]]) -> pa.Table:
    """Rows → an Arrow table sorted by the table's key columns (those present)."""
    if not rows:
        return pa.table({})
    columns = sorted({k for r in rows for k in r})
    try:
        table = pa.Table.from_pylist([{c: r.get(c) for c in columns} for r in rows])
    except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
        raise StoreError(f"table {name!r}: rows have inconsistent column types ({err}); fix the row producer") from err
    keys = [k for k in SORT_KEYS.get(name, ()) if k in table.column_names]
    keys = keys or [c for c in columns if pa.types.is_primitive(table.schema.field(c).type) or c == "pseudonym"]
    if keys:
        table = table.sort_by([(k, "ascending") for k in keys])
    return table


def parquet_bytes(table: pa.Table) -> bytes:
    """Deterministic Parquet bytes (zstd, no statistics that depend on writer state)."""
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd", write_statistics=False, store_schema=True)
    return sink.getvalue()


def read_parquet(payload: bytes) -> pa.Table:
    return pq.read_table(io.BytesIO(payload))


def content_hash(name: str, table: pa.Table) -> str:
    """sha256 over the table's schema and rows (canonical JSON) without its layout columns — independent of
    the Parquet writer's version and settings."""
    drop = [c for c in LAYOUT_COLUMNS.get(name, ()) if c in table.column_names]
    kept = table.drop_columns(drop)
    schema = [[f.name, str(f.type)] for f in kept.schema]
    text = canonical_json({"schema": schema, "rows": kept.to_pylist()})
    return hashlib.sha256(text.encode()).hexdigest()


def version_hash(table_hashes: Mapping[str, str]) -> str:
    """The version content hash: sha256 over the sorted table content hashes."""
    text = json.dumps({"format": 1, "tables": dict(sorted(table_hashes.items()))}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def filter_rows(table: pa.Table, pseudonym: str) -> list[dict[str, Any]]:
    """The rows of ``table`` belonging to one case, as dicts without nulls."""
    if table.num_rows == 0 or "pseudonym" not in table.column_names:
        return []
    mask = np.asarray(table.column("pseudonym").to_pylist()) == pseudonym
    return [canonical_row(r) for r in table.filter(pa.array(mask)).to_pylist()]
