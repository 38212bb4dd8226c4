"""De-identify a whole drop, or one case at a time (what a flow task runs).

``io.plan.plan_files`` (discover + group + match, nothing written) → ``deid.case.deidentify_case`` per
:class:`RawCase` (reads, checks, de-identifies, writes ``DIR/cases/<pseudonym>/`` atomically: built in a
temporary folder and renamed, so a case folder appears complete or not at all) → ``finish_drop`` (tables).
``deidentify_drop`` composes them. Layout of ``DIR``::

    cases/<pseudonym>/cbct/<new SOPInstanceUID>.dcm    de-identified DICOM series   (or)
    cases/<pseudonym>/cbct.nii.gz                      de-identified NIfTI, RAS on disk
    cases/<pseudonym>/ios/<jaw>.ply + <jaw>.json       mesh + Teeth3DS sidecar (FDI, id_patient = pseudonym)
    cases/<pseudonym>/case.json                        pseudonym, sources (role → sha256), CBCT geometry, jaws
    tables/inventory.parquet, quarantine.parquet, cases.parquet

The audit area (default: ``<DIR>-audit`` beside ``DIR``, never inside it; folders 0700, files 0600) holds what
names originals:
``inventory.parquet`` with paths and identities, ``pseudonyms.csv``, ``cases/<pseudonym>.json``.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from toothmcl_data.deid.audit import private_dir, write_private
from toothmcl_data.deid.case import CaseResult, deidentify_case
from toothmcl_data.deid.pseudonym import check_key, key_fingerprint
from toothmcl_data.deid.table import DeidOptions
from toothmcl_data.errors import DeidError
from toothmcl_data.io.fs import Source
from toothmcl_data.io.group import DropPlan
from toothmcl_data.io.inventory import Fate, write_inventory, write_table
from toothmcl_data.io.plan import plan_files

log = logging.getLogger(__name__)

__all__ = ["DeidSummary", "default_audit", "deidentify_drop", "finish_drop"]  # one case's steps: deid.case

_CASE_SCHEMA = pa.schema(
    [
        ("pseudonym", pa.string()),
        ("modalities", pa.list_(pa.string())),
        ("cbct_format", pa.string()),
        ("cbct_shape", pa.list_(pa.int64())),
        ("cbct_spacing", pa.list_(pa.float64())),
        ("jaws", pa.list_(pa.string())),
        ("sources", pa.string()),
        ("matched_by", pa.string()),
    ]
)


@dataclass(frozen=True)
class DeidSummary:
    """What :func:`deidentify_drop` wrote. ``fates``: number of input files per fate."""

    out: Path
    audit: Path
    files: int
    cases: int
    fates: Mapping[str, int]
    conflicts: int
    key_fingerprint: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "out": str(self.out),
            "audit": str(self.audit),
            "files": self.files,
            "cases": self.cases,
            "fates": dict(self.fates),
            "conflicts": self.conflicts,
            "key_fingerprint": self.key_fingerprint,
        }


def default_audit(out: Path) -> Path:
    """``<out>-audit`` beside ``out``."""
    out = Path(out).absolute()
    return out.with_name(f"{out.name}-audit")


def _check_places(source: Source, out: Path, audit: Path) -> None:
    out, audit = Path(out).absolute(), Path(audit).absolute()
    if audit == out or out in audit.parents:
        raise DeidError(f"audit area {audit} lies inside the output {out}; it names originals — put it outside")
    if source.is_local:
        raw = Path(source.root).absolute()
        if out == raw or raw in out.parents:
            raise DeidError(f"output {out} lies inside the raw drop {raw}; choose a folder outside the drop")


def finish_drop(plan: DropPlan, results: Sequence[CaseResult], out: Path, audit: Path) -> dict[str, int]:
    """Write the tables for a planned drop and its case results; returns the number of files per fate."""
    fates: dict[str, Fate] = dict(plan.fates)
    for result in results:
        fates.update(result.fates)
    counts = write_inventory(Path(out) / "tables", Path(audit), plan.records, fates)
    rows = sorted((dict(r.row) for r in results if r.row is not None), key=lambda r: r["pseudonym"])
    write_table(Path(out) / "tables" / "cases.parquet", rows, _CASE_SCHEMA)
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(["patient", "pseudonym", "day_shift", "written"])
    for r in sorted(results, key=lambda r: r.pseudonym):
        writer.writerow([r.audit.get("patient", ""), r.pseudonym, r.audit.get("day_shift", ""), r.written])
    write_private(Path(audit) / "pseudonyms.csv", text.getvalue().encode("utf-8"))
    return counts


def deidentify_drop(
    raw: str | Path,
    out: Path,
    *,
    key: bytes,
    audit: Path | None = None,
    options: DeidOptions = DeidOptions(),
    manifest: Path | None = None,
    plan: DropPlan | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> DeidSummary:
    """De-identify the drop at ``raw`` into ``out`` (layout in the module docstring).

    ``plan``: a :func:`plan_files` result for ``raw`` already made (else it is made here, with ``manifest``).
    ``progress(done, total)`` is called after each case.
    """
    check_key(key)
    out = Path(out).absolute()
    audit = Path(audit).absolute() if audit is not None else default_audit(out)
    plan = plan if plan is not None else plan_files(raw, manifest=manifest)
    _check_places(plan.source, out, audit)
    out.mkdir(parents=True, exist_ok=True)
    private_dir(audit)
    results = []
    for n, case in enumerate(plan.cases, start=1):
        results.append(deidentify_case(case, out, key=key, audit=audit, options=options))
        if progress is not None:
            progress(n, len(plan.cases))
    counts = finish_drop(plan, results, out, audit)
    conflicts = sum(len(r.audit.get("conflicts", [])) for r in results)
    return DeidSummary(
        out=out,
        audit=audit,
        files=len(plan.records),
        cases=sum(r.written for r in results),
        fates=counts,
        conflicts=conflicts,
        key_fingerprint=key_fingerprint(key),
    )
