"""Group discovered files into units (DICOM series, volumes, meshes + sidecars) and units into raw cases.

What cannot become part of a unit gets its fate here: empty files and unparseable DICOM headers are
quarantined, exact duplicates (same sha256; the copy with the shortest, then first, path is kept) are
``duplicate``, label sidecars without a mesh are quarantined, everything else unrecognised is ignored.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from toothmcl_data.io.discover import FileRecord
from toothmcl_data.io.fs import Source
from toothmcl_data.io.inventory import Fate, ref
from toothmcl_data.io.match import Match, Unit, match_units, normalise_identity

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class RawCase:
    """One patient's inputs before de-identification (carries identity: never publish it).

    cbct: candidate CBCT units in order of preference (CT image series by size, then volume files);
    ios: mesh units; matches: unit key → how it was matched to ``patient``.
    """

    source: Source
    patient: str
    cbct: tuple[Unit, ...]
    ios: tuple[Unit, ...]
    matches: Mapping[str, Match] = field(default_factory=dict)

    @property
    def files(self) -> list[FileRecord]:
        return [r for u in (*self.cbct, *self.ios) for r in u.files]


@dataclass(frozen=True, eq=False)
class DropPlan:
    """The whole drop: every record, the raw cases, and the fates decided before reading (by path)."""

    source: Source
    records: tuple[FileRecord, ...]
    cases: tuple[RawCase, ...]
    fates: Mapping[str, Fate]


def _stem(path: str) -> str:
    p = PurePosixPath(path)
    name = p.name
    for suffix in (".nii.gz", p.suffix):
        if suffix and name.lower().endswith(suffix.lower()):
            return str(p.with_name(name[: -len(suffix)]))
    return str(p)


def _prefates(records: Sequence[FileRecord]) -> tuple[list[FileRecord], dict[str, Fate]]:
    fates: dict[str, Fate] = {}
    kept: dict[str, FileRecord] = {}
    for r in sorted(records, key=lambda r: (len(r.path), r.path)):
        if r.kind == "empty":
            fates[r.path] = Fate(
                "quarantined",
                reason=f"{ref(r)}: empty file (0 bytes); expected DICOM, a volume or a mesh — re-export it",
            )
        elif r.kind == "other":
            why = "JSON that is not a Teeth3DS label sidecar" if r.fmt == "json" else "unrecognised format"
            fates[r.path] = Fate("ignored", reason=f"{ref(r)}: not medical data ({why})")
        elif r.kind == "dicom" and r.dicom is None:
            fates[r.path] = Fate(
                "quarantined",
                reason=f"{ref(r)}: {r.note or 'DICOM preamble but the header cannot be parsed'}; the file is corrupt",
            )
        elif r.sha256 in kept:
            fates[r.path] = Fate(
                "duplicate",
                duplicate_of=r.sha256,
                reason=f"{ref(r)}: exact copy of another input with the same content",
            )
        else:
            kept[r.sha256] = r
    live = [r for r in records if r.path not in fates]
    return live, fates


def build_units(records: Sequence[FileRecord]) -> tuple[list[Unit], dict[str, Fate]]:
    """Units from the records, plus the fates of records that join no unit (see the module docstring)."""
    live, fates = _prefates(records)
    series: dict[tuple[str, str], list[FileRecord]] = defaultdict(list)
    sidecars = {_stem(r.path): r for r in live if r.kind == "sidecar"}
    units: list[Unit] = []
    used_sidecars: set[str] = set()
    for r in live:
        if r.kind == "dicom" and r.dicom is not None:
            series[(r.dicom.study_uid, r.dicom.series_uid)].append(r)
        elif r.kind == "volume":
            units.append(Unit("volume", (r,), None))
        elif r.kind == "mesh":
            side = sidecars.get(_stem(r.path))
            pair: tuple[FileRecord, ...] = (r,) if side is None else (r, side)
            if side is not None:
                used_sidecars.add(side.path)
            units.append(Unit("mesh", pair, side.header_id if side is not None else None))
    for members in series.values():
        ids = sorted({f.header_id for f in members if f.header_id})
        units.append(Unit("series", tuple(sorted(members, key=lambda f: f.path)), ids[0] if len(ids) == 1 else None))
    for side in sidecars.values():
        if side.path not in used_sidecars:
            fates[side.path] = Fate(
                "quarantined",
                reason=f"{ref(side)}: label sidecar with no mesh of the same name beside it; "
                "put the mesh next to it or remove it",
            )
    units.sort(key=lambda u: u.files[0].path)
    return units, fates


def _cbct_order(unit: Unit) -> tuple[int, int, str]:
    if unit.kind == "volume":
        return (2, 0, unit.files[0].path)
    info = unit.files[0].dicom
    localizer = info is not None and "LOCALIZER" in info.image_type
    return (1 if localizer else 0, -len(unit.files), unit.files[0].path)


def plan_units(source: Source, records: Sequence[FileRecord], manifest: Mapping[str, str] | None = None) -> DropPlan:
    """Group ``records`` into units, match units to patients, and collect them as :class:`RawCase` s."""
    units, fates = build_units(records)
    matches = match_units(units, manifest)
    by_patient: dict[str, list[tuple[Unit, Match]]] = defaultdict(list)
    spelled: dict[str, str] = {}
    for unit, m in zip(units, matches, strict=True):
        key = normalise_identity(m.patient)
        spelled.setdefault(key, m.patient)
        by_patient[key].append((unit, m))
    cases = []
    for key in sorted(by_patient):
        members = by_patient[key]
        cbct = sorted((u for u, _ in members if u.kind != "mesh"), key=_cbct_order)
        ios = [u for u, _ in members if u.kind == "mesh"]
        cases.append(
            RawCase(
                source=source,
                patient=spelled[key],
                cbct=tuple(cbct),
                ios=tuple(ios),
                matches={u.key: m for u, m in members},
            )
        )
    log.info("planned %d cases from %d units (%d files)", len(cases), len(units), len(records))
    return DropPlan(source=source, records=tuple(records), cases=tuple(cases), fates=fates)
