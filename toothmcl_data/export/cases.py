"""Which cases of a version an export writes, in which split, and what the export reports.

Every exporter starts from the same plan: the ``cases`` table (what each case holds) joined with the ``splits``
table (the version's keyed, patient-level ``train`` / ``val`` / ``test`` split). Nothing is re-split: a patient is
in the same split in every format. Cases an export cannot use are *skipped with a reason*, never silently dropped.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toothmcl_data.errors import InputError
from toothmcl_data.io.meshwrite import write_atomic
from toothmcl_data.store.reader import VersionReader
from toothmcl_data.types import JAWS, Jaw

SPLIT_ORDER = ("train", "val", "test")


@dataclass(frozen=True)
class ExportCase:
    """One case of a version as the catalog tables describe it (no array is read).

    split: ``train``, ``val`` or ``test`` from the version's ``splits`` table (``""`` when it has no row).
    jaws: the jaws with an intraoral scan, upper first.
    """

    pseudonym: str
    split: str
    has_cbct: bool
    has_labels: bool
    jaws: tuple[Jaw, ...]


def plan_cases(reader: VersionReader) -> list[ExportCase]:
    """The version's cases sorted by pseudonym, each with its split and what it holds."""
    cases = reader.table("cases")
    if cases.num_rows == 0:
        return []
    splits_table = reader.table("splits")
    splits = {r["pseudonym"]: r["split"] for r in splits_table.to_pylist()} if splits_table.num_rows else {}
    out = []
    for row in cases.to_pylist():
        named = set(str(row.get("jaws") or "").split(","))
        out.append(
            ExportCase(
                pseudonym=str(row["pseudonym"]),
                split=str(splits.get(row["pseudonym"], "")),
                has_cbct=bool(row.get("has_cbct")),
                has_labels=bool(row.get("has_labels")),
                jaws=tuple(j for j in JAWS if j in named),
            )
        )
    return sorted(out, key=lambda c: c.pseudonym)


def require_empty_folder(out: Path, what: str) -> None:
    """Refuse to write into a folder that already holds files: a stale case would join the export unnoticed."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(
            f"{what} output {out} already exists and is not an empty folder; remove it or pass another --out "
            "(exports never mix with files already there)"
        )


@contextmanager
def staged_folder(out: Path, what: str, *, dry_run: bool = False) -> Iterator[Path]:
    """Yield a hidden sibling folder ``.<name>.partial`` to write into; it becomes ``out`` only when the block
    succeeds, so a failed export leaves no half-written dataset behind. ``out`` must be absent or empty.
    With ``dry_run`` nothing is created and ``out`` itself is yielded."""
    out = Path(out)
    require_empty_folder(out, what)
    if dry_run:
        yield out
        return
    stage = out.with_name(f".{out.name}.partial")
    shutil.rmtree(stage, ignore_errors=True)  # left by an export that was killed
    stage.mkdir(parents=True)
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    if out.exists():
        out.rmdir()  # empty, checked above
    os.replace(stage, out)


def write_json(path: Path, doc: Any) -> Path:
    """Write ``doc`` as indented JSON, atomically (parent folders created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, (json.dumps(doc, indent=2) + "\n").encode("utf-8"))
    return path


@dataclass
class ExportReport:
    """What an export wrote: case ids per split, skipped cases with their reason, and notes for the user.

    files: every file written, relative to ``out``, in the order written.
    """

    format: str
    out: Path
    version: str
    written: dict[str, list[str]] = field(default_factory=lambda: {s: [] for s in SPLIT_ORDER})
    skipped: dict[str, str] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def add(self, case: ExportCase, files: Iterable[Path]) -> None:
        self.written.setdefault(case.split, []).append(case.pseudonym)
        self.files.extend(str(Path(f).relative_to(self.out)) for f in files)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "out": str(self.out),
            "version": self.version,
            "cases": {s: len(ids) for s, ids in self.written.items()},
            "written": self.written,
            "skipped": self.skipped,
            "files": len(self.files),
            "notes": self.notes,
            **self.extra,
        }
