"""Match readable units (DICOM series, volume files, meshes) to patients across modalities.

Order of trust, highest first: **header identity** (DICOM PatientID, Teeth3DS ``id_patient``), **folder
structure** (units in the same patient folder share a patient: the folder's header identities decide), a
**user manifest** (CSV ``path,patient_id``; ``path`` a file or folder relative to the drop root). A unit with
none of these becomes its own patient (keyed by its content hash). Every disagreement between sources is
reported in :attr:`Match.conflict` (it names identities, so it belongs to the audit area only) — the more
trusted source wins, nothing is guessed silently.

Patient folder: the folder holding a volume or mesh file, and for a DICOM series the folder above the
series' own folder (``…/<patient>/<study or series>/IM0001``), at any depth (drops nest: ``batch2/PACS/…``);
compared case-insensitively, so ``PACS_EXPORT/DOE_JOHN_1/`` and ``IOS_EXPORT/Doe_John_1/`` are the same
patient folder.
"""

from __future__ import annotations

import csv
import logging
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

from toothmcl_data.errors import InputError, InputNotFoundError
from toothmcl_data.io.discover import FileRecord

log = logging.getLogger(__name__)

UnitKind = Literal["series", "volume", "mesh"]
MatchedBy = Literal["header", "folder", "manifest", "file"]


@dataclass(frozen=True)
class Unit:
    """One readable input: a DICOM series (its slice files), a volume file, or a mesh (+ its label sidecar).

    ``files[0]`` is the main file (first slice by path, the volume, the mesh); a mesh's sidecar follows it.
    """

    kind: UnitKind
    files: tuple[FileRecord, ...]
    header_id: str | None

    @property
    def key(self) -> str:
        return self.files[0].sha256

    @property
    def folder(self) -> str:
        return folder_key(self.files[0].path, self.kind)


@dataclass(frozen=True)
class Match:
    """Which patient a unit belongs to (original identity: audit only), how that was decided, conflicts."""

    patient: str
    how: MatchedBy
    conflict: str = ""


def normalise_identity(value: str) -> str:
    """Patient identity as compared across modalities and keyed into pseudonyms: stripped, case-folded."""
    return value.strip().casefold()


def folder_key(path: str, kind: UnitKind = "mesh") -> str:
    """The patient-folder key of a unit's main file (relative path; see the module docstring); ``""`` for
    top-level files."""
    parts = PurePosixPath(path).parts[:-1]
    if kind == "series" and len(parts) >= 2:
        return parts[-2].casefold()
    return parts[-1].casefold() if parts else ""


def read_manifest(path: Path) -> dict[str, str]:
    """Read a CSV manifest with columns ``path`` and ``patient_id``; paths relative to the drop root."""
    path = Path(path)
    if not path.is_file():
        raise InputNotFoundError(f"manifest {path} does not exist; pass a CSV with columns path,patient_id")
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or not {"path", "patient_id"} <= set(reader.fieldnames):
            raise InputError(
                f"manifest {path} has columns {reader.fieldnames}, expected at least 'path' and 'patient_id'"
            )
        rows = {row["path"].strip(): row["patient_id"].strip() for row in reader if row["path"].strip()}
    climbing = [p for p in rows if p.startswith("/") or ".." in PurePosixPath(p).parts]
    if climbing:
        raise InputError(
            f"manifest {path} names paths outside the drop ({', '.join(climbing[:3])}); expected paths relative "
            "to the drop root without '..' — fix those rows"
        )
    return {p.strip("/"): patient for p, patient in rows.items()}


def _manifest_id(unit: Unit, manifest: Mapping[str, str]) -> str | None:
    for record in unit.files:
        p = PurePosixPath(record.path)
        for candidate in (p, *p.parents):
            hit = manifest.get(str(candidate))
            if hit:
                return hit
    return None


def _same(a: str, b: str) -> bool:
    return normalise_identity(a) == normalise_identity(b)


def match_units(units: Sequence[Unit], manifest: Mapping[str, str] | None = None) -> list[Match]:
    """One :class:`Match` per unit, in order (rules in the module docstring)."""
    manifest = manifest or {}
    by_folder: dict[str, Counter[str]] = defaultdict(Counter)
    for unit in units:
        if unit.header_id and unit.folder:
            by_folder[unit.folder][normalise_identity(unit.header_id)] += 1
    spelled: dict[str, str] = {}
    for unit in units:
        if unit.header_id:
            spelled.setdefault(normalise_identity(unit.header_id), unit.header_id.strip())
    matches: list[Match] = []
    for unit in units:
        counts = by_folder.get(unit.folder)
        folder_id: str | None = None
        folder_note = ""
        if counts:
            ranked = counts.most_common()
            if len(ranked) == 1 or ranked[0][1] > ranked[1][1]:
                folder_id = spelled[ranked[0][0]]
            else:
                folder_note = f"folder {unit.folder!r} holds several identities {sorted(counts)}"
        listed = _manifest_id(unit, manifest)
        notes: list[str] = [folder_note] if folder_note else []
        if unit.header_id:
            patient, how = unit.header_id.strip(), "header"
            if folder_id is not None and not _same(folder_id, patient):
                notes.append(
                    f"header says {patient!r} but its folder {unit.folder!r} holds {folder_id!r}; header trusted"
                )
        elif folder_id is not None:
            patient, how = folder_id, "folder"
        elif listed:
            patient, how = listed, "manifest"
        else:
            patient, how = (f"folder:{unit.folder}", "folder") if unit.folder else (f"file:{unit.key}", "file")
        if listed and not _same(listed, patient):
            notes.append(f"manifest says {listed!r} but {how} says {patient!r}; {how} trusted")
        matches.append(Match(patient=patient, how=how, conflict="; ".join(notes)))  # type: ignore[arg-type]
    for unit, m in zip(units, matches, strict=True):
        if m.conflict:
            log.warning("identity conflict for input sha256:%s (details in the audit area)", unit.key[:12])
    return matches
