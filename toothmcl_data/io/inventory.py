"""The fate of every input file, and the tables that prove every file is accounted for.

Each input ends in exactly one fate: ``used`` (case, role), ``duplicate`` (of which content hash),
``quarantined`` (reason) or ``ignored`` (why: not medical data). Two views of the same rows:

- the **published** tables (``DIR/tables/inventory.parquet``, ``quarantine.parquet``) refer to inputs by
  content hash only; reasons pass through :func:`redact`, which replaces every original path, folder and file
  name by ``sha256:<first 12 hex>`` or ``<folder>``;
- the **audit** table (``AUDIT/inventory.parquet``) adds the original path, the patient identity and the
  unredacted detail.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq

from toothmcl_data.io.discover import FileRecord

log = logging.getLogger(__name__)

FateKind = Literal["used", "duplicate", "quarantined", "ignored"]


@dataclass(frozen=True)
class Fate:
    """What happened to one input file.

    case: the pseudonym of the case it belongs to (``""`` if none); role: ``cbct``, ``ios:upper``,
    ``ios:upper:labels`` …; duplicate_of: sha256 of the kept copy; reason: publishable text (hash refs only);
    detail: the unredacted text (audit only); patient: the original identity (audit only); unit: the input
    unit (a series, a scan with its sidecar) the file was judged with, as ``sha256:<12 hex>`` of the unit's
    files (``""``: the file is its own unit) — the quarantine table has one row per unit.
    """

    fate: FateKind
    case: str = ""
    role: str = ""
    duplicate_of: str = ""
    reason: str = ""
    detail: str = ""
    patient: str = ""
    unit: str = ""


def ref(record: FileRecord) -> str:
    """How published tables name an input: ``sha256:<first 12 hex digits>``."""
    return f"sha256:{record.sha256[:12]}"


def redact(
    text: str, records: Iterable[FileRecord], roots: Sequence[str] = (), *, prefer: Iterable[FileRecord] = ()
) -> str:
    """``text`` with every path, folder and file name of ``records`` replaced by hash refs / ``<folder>``.

    roots: absolute folders the relative paths live under (the drop root, temporary copies …). A bare file name
    that several records share (``IM0001.dcm`` in two series) is replaced by the ref of the record in ``prefer``
    (the files the text is about) that has it, else by ``<file>`` — never by the ref of an unrelated file.
    """
    subs: dict[str, str] = {}
    folders: set[str] = set()
    names: dict[str, set[str]] = {}
    records = list(records)
    for record in records:
        r = ref(record)
        rel = PurePosixPath(record.path)
        for root in roots:
            subs[f"{root.rstrip('/')}/{record.path}"] = r
            subs[os.path.join(root, *rel.parts)] = r
        subs[record.path] = r
        names.setdefault(rel.name, set()).add(r)
        parent = rel.parent
        while str(parent) not in (".", ""):
            folders.add(str(parent))
            folders.update(parent.parts)
            parent = parent.parent
    for name, refs in names.items():
        subs.setdefault(name, next(iter(refs)) if len(refs) == 1 else "<file>")
    for record in prefer:
        subs[PurePosixPath(record.path).name] = ref(record)
    for folder in folders:
        for root in roots:
            subs.setdefault(f"{root.rstrip('/')}/{folder}", "<folder>")
        subs.setdefault(folder, "<folder>")
    for root in roots:
        subs.setdefault(root.rstrip("/"), "<input>")
    if not subs:
        return text
    keys = sorted((k for k in subs if k), key=len, reverse=True)
    pattern = re.compile("|".join(re.escape(k) for k in keys))
    return pattern.sub(lambda m: subs[m.group(0)], text)


_PUBLIC = [
    ("sha256", pa.string()),
    ("size", pa.int64()),
    ("kind", pa.string()),
    ("format", pa.string()),
    ("fate", pa.string()),
    ("case", pa.string()),
    ("role", pa.string()),
    ("duplicate_of", pa.string()),
    ("reason", pa.string()),
    ("unit", pa.string()),
]
_QUARANTINE = [
    ("unit", pa.string()),
    ("case", pa.string()),
    ("kind", pa.string()),
    ("format", pa.string()),
    ("role", pa.string()),
    ("n_files", pa.int64()),
    ("size", pa.int64()),
    ("files", pa.list_(pa.string())),
    ("reason", pa.string()),
]
"""One row per quarantined input unit (a series, a scan + sidecar, a lone file): ``files`` lists the sha256 of
each of its ``n_files`` files, ``size`` their bytes."""
_AUDIT = [
    *_PUBLIC,
    ("path", pa.string()),
    ("path_bytes", pa.binary()),
    ("patient", pa.string()),
    ("detail", pa.string()),
]


def text_path(path: str) -> str:
    """``path`` as valid UTF-8 text: bytes that are not UTF-8 (held as surrogates) shown as ``\\xNN``."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def inventory_rows(records: Sequence[FileRecord], fates: Mapping[str, Fate], *, audit: bool) -> list[dict[str, Any]]:
    """One row per record (by path); raises KeyError naming a file that has no fate."""
    rows: list[dict[str, Any]] = []
    for record in records:
        fate = fates[record.path]
        row: dict[str, Any] = {
            "sha256": record.sha256,
            "size": record.size,
            "kind": record.kind,
            "format": record.fmt,
            "fate": fate.fate,
            "case": fate.case,
            "role": fate.role,
            "duplicate_of": fate.duplicate_of,
            "reason": fate.reason,
            "unit": fate.unit,
        }
        if audit:
            row.update(
                path=text_path(record.path),
                path_bytes=os.fsencode(record.path),
                patient=text_path(fate.patient),
                detail=text_path(fate.detail or fate.reason),
            )
        rows.append(row)
    return rows


def quarantine_rows(records: Sequence[FileRecord], fates: Mapping[str, Fate]) -> list[dict[str, Any]]:
    """One row per quarantined input unit (schema :data:`_QUARANTINE`), files in input order; a file whose fate
    names no unit is its own unit."""
    units: dict[str, dict[str, Any]] = {}
    for record in records:
        fate = fates[record.path]
        if fate.fate != "quarantined":
            continue
        key = fate.unit or f"file:{record.path}"
        row = units.get(key)
        if row is None:
            row = units[key] = {
                "unit": fate.unit or ref(record),
                "case": fate.case,
                "kind": record.kind,
                "format": record.fmt,
                "role": fate.role,
                "n_files": 0,
                "size": 0,
                "files": [],
                "reason": fate.reason,
            }
        row["n_files"] += 1
        row["size"] += record.size
        row["files"].append(record.sha256)
    return sorted(units.values(), key=lambda r: (r["case"], r["unit"], r["reason"]))


def write_table(path: Path, rows: Sequence[Mapping[str, Any]], schema: pa.Schema) -> Path:
    """Write ``rows`` as Parquet atomically (temporary file + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist([dict(r) for r in rows], schema=schema)
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)
    return path


def write_inventory(
    out_tables: Path, audit_dir: Path, records: Sequence[FileRecord], fates: Mapping[str, Fate]
) -> dict[str, int]:
    """Write ``inventory.parquet`` (one row per file) + ``quarantine.parquet`` (one row per quarantined unit,
    its files listed) — both published — and the audit inventory.

    Returns the count of files per fate.
    """
    missing = [r.path for r in records if r.path not in fates]
    if missing:
        raise KeyError(
            f"{len(missing)} input files have no fate (first: {missing[0]}); every file must be accounted for"
        )
    public = inventory_rows(records, fates, audit=False)
    write_table(out_tables / "inventory.parquet", public, pa.schema(_PUBLIC))
    write_table(out_tables / "quarantine.parquet", quarantine_rows(records, fates), pa.schema(_QUARANTINE))
    audit_rows = inventory_rows(records, fates, audit=True)
    audit_table = write_table(audit_dir / "inventory.parquet", audit_rows, pa.schema(_AUDIT))
    os.chmod(audit_dir, 0o700)  # the audit area names originals: owner only (toothmcl_data.deid.audit)
    os.chmod(audit_table, 0o600)
    counts: dict[str, int] = {}
    for row in public:
        counts[row["fate"]] = counts.get(row["fate"], 0) + 1
    return counts
