"""De-identify one case: read its CBCT and scans once, check them, quarantine what fails (with the reason), and
write the de-identified copies to ``DIR/cases/<pseudonym>/`` atomically (built in a temporary folder and
renamed, so a case folder appears complete or not at all). The folder layout and the drop-level steps are in
:mod:`toothmcl_data.deid.run`; the case's audit record (identity, fates per input file) goes to
``<audit>/cases/<pseudonym>.json``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from toothmcl_data.deid.audit import private_dir, write_private
from toothmcl_data.deid.dicom import DeidContext
from toothmcl_data.deid.files import write_dicom, write_ios, write_volume, written_mesh
from toothmcl_data.deid.pseudonym import check_key, day_shift, pseudonym
from toothmcl_data.deid.table import DeidOptions
from toothmcl_data.errors import DeidError, InputError, LabelSchemeError
from toothmcl_data.io.dicom import read_series
from toothmcl_data.io.discover import FileRecord
from toothmcl_data.io.fs import Source
from toothmcl_data.io.group import RawCase
from toothmcl_data.io.inventory import Fate, redact, ref
from toothmcl_data.io.match import Unit
from toothmcl_data.io.mesh import read_mesh
from toothmcl_data.io.palate import jaw_from_palate
from toothmcl_data.io.volume import read_volume
from toothmcl_data.types import Jaw, Mesh, Volume


@dataclass(frozen=True)
class CaseResult:
    """What :func:`deidentify_case` did. ``fates`` by input path (audit side); ``row``: the cases.parquet row;
    ``cbct``: the decoded CBCT when asked to keep it; ``ios``: per jaw the written scan as reading it back gives
    it (:func:`~toothmcl_data.deid.files.written_mesh`) when asked to keep them; ``seconds``: time spent
    reading/decoding the inputs (``read``) and de-identifying and writing them (``deid``)."""

    pseudonym: str
    written: bool
    fates: Mapping[str, Fate]
    row: Mapping[str, Any] | None
    audit: Mapping[str, Any] = field(default_factory=dict)
    cbct: Volume | None = field(default=None, repr=False, compare=False)
    ios: Mapping[Jaw, Mesh] = field(default_factory=dict, repr=False, compare=False)
    seconds: Mapping[str, float] = field(default_factory=dict, compare=False)


def _combined(records: Sequence[FileRecord]) -> str:
    if len(records) == 1:
        return records[0].sha256
    return hashlib.sha256("\n".join(sorted(r.sha256 for r in records)).encode()).hexdigest()


class _CaseWriter:
    """State of one case while it is processed: fates, sources, redaction roots."""

    def __init__(self, raw: RawCase, pn: str) -> None:
        self.raw, self.pn = raw, pn
        self.fates: dict[str, Fate] = {}
        self.roots = [raw.source.root]
        self.seconds = {"read": 0.0, "deid": 0.0}
        self.meshes: dict[Jaw, Mesh] | None = None  # the written scans, when the caller keeps them

    def note(self, unit: Unit) -> str:
        m = self.raw.matches.get(unit.key)
        return f"matched by {m.how}; another source disagreed (see audit)" if m and m.conflict else ""

    def used(self, unit: Unit, role: str) -> None:
        for n, r in enumerate(unit.files):
            self.fates[r.path] = Fate(
                "used",
                case=self.pn,
                role=role if n == 0 or unit.kind != "mesh" else f"{role}:labels",
                reason=self.note(unit),
                patient=self.raw.patient,
            )

    def quarantine(self, unit: Unit, problem: str) -> None:
        refs = ", ".join(ref(r) for r in unit.files[:3]) + (" …" if len(unit.files) > 3 else "")
        public = redact(f"{unit.kind} {refs}: {problem}", self.raw.files, self.roots, prefer=unit.files)
        name = f"sha256:{_combined(unit.files)[:12]}"
        for r in unit.files:
            self.fates[r.path] = Fate(
                "quarantined",
                case=self.pn,
                reason=public,
                detail=f"{r.path}: {problem}",
                patient=self.raw.patient,
                unit=name,
            )


def _read_cbct(unit: Unit, source: Source) -> tuple[Volume, list[bytes]]:
    """The CBCT of ``unit`` and, for a DICOM series, its files' bytes: each file is read once, and the same
    bytes are decoded here and de-identified by the caller."""
    if unit.kind == "series":
        blobs = [source.read_bytes(r.path) for r in unit.files]
        names = [Path(source.full(r.path)) for r in unit.files]
        return read_series(names, data=blobs), blobs
    with ExitStack() as stack:
        path = stack.enter_context(source.local_path(unit.files[0].path))
        return read_volume(path, fmt=unit.files[0].fmt), []


def _read_ios(unit: Unit, source: Source) -> Mesh:
    with ExitStack() as stack:
        mesh_path = stack.enter_context(source.local_path(unit.files[0].path))
        side = stack.enter_context(source.local_path(unit.files[1].path)) if len(unit.files) > 1 else None
        return read_mesh(mesh_path, labels=side)


def _cbct(w: _CaseWriter, tmp: Path, ctx: DeidContext) -> tuple[dict[str, Any], Volume | None]:
    info: dict[str, Any] = {}
    kept: Volume | None = None
    source = w.raw.source
    for unit in w.raw.cbct:
        first = unit.files[0].dicom
        if unit.kind == "series" and first is not None and "LOCALIZER" in first.image_type:
            w.quarantine(unit, f"localizer series of {len(unit.files)} files (ImageType LOCALIZER), not a CBCT volume")
            continue
        if info:
            w.quarantine(unit, f"a second CBCT for this case; {info['ref']} was already used — one CBCT per case")
            continue
        try:
            t0 = time.perf_counter()
            volume, blobs = _read_cbct(unit, source)
            w.seconds["read"] += time.perf_counter() - t0
            t0 = time.perf_counter()
            if unit.kind == "series":
                (tmp / "cbct").mkdir()
                for record, blob in zip(unit.files, blobs, strict=True):
                    write_dicom(tmp / "cbct", blob, ctx, source=f"DICOM file {source.full(record.path)}")
            else:
                write_volume(tmp / "cbct.nii.gz", volume)
            w.seconds["deid"] += time.perf_counter() - t0
        except (InputError, DeidError, ValueError, TypeError, KeyError, AttributeError, OSError) as err:
            shutil.rmtree(tmp / "cbct", ignore_errors=True)
            w.quarantine(unit, str(err))
            continue
        w.used(unit, "cbct")
        kept = volume
        info = {
            "ref": ref(unit.files[0]),
            "format": "dicom" if unit.kind == "series" else unit.files[0].fmt,
            "shape": list(volume.shape),
            "spacing": [round(s, 6) for s in volume.spacing],
            "source": _combined(unit.files),
        }
    return info, kept


def _ios(w: _CaseWriter, tmp: Path) -> dict[Jaw, str]:
    found: dict[Jaw, list[tuple[Unit, Mesh]]] = {}
    for unit in w.raw.ios:
        t0 = time.perf_counter()
        try:
            mesh = _read_ios(unit, w.raw.source)
        except (InputError, LabelSchemeError, ValueError, IndexError) as err:
            w.quarantine(unit, str(err))
            continue
        finally:
            w.seconds["read"] += time.perf_counter() - t0
        jaw = mesh.jaw or jaw_from_palate(mesh)  # the scan's shape can only ever say upper
        if jaw is None:
            w.quarantine(
                unit,
                "cannot tell the jaw: no sidecar 'jaw', no FDI labels, no upper/lower in the name, no palate "
                "(a lower scan, or an upper one trimmed without its palate) — put upper or lower in the file name",
            )
            continue
        found.setdefault(jaw, []).append((unit, mesh))
    sources: dict[Jaw, str] = {}
    for jaw, items in sorted(found.items()):
        if len(items) > 1:
            refs = ", ".join(ref(u.files[0]) for u, _ in items)
            for unit, _ in items:
                w.quarantine(
                    unit,
                    f"{len(items)} scans ({refs}) claim the {jaw} jaw of one case; expected one — "
                    "remove the wrong one or assign it with a manifest",
                )
            continue
        unit, mesh = items[0]
        t0 = time.perf_counter()
        (tmp / "ios").mkdir(exist_ok=True)
        write_ios(tmp / "ios", jaw, mesh, w.pn)
        if w.meshes is not None:
            w.meshes[jaw] = written_mesh(jaw, mesh, w.pn)
        w.seconds["deid"] += time.perf_counter() - t0
        w.used(unit, f"ios:{jaw}")
        sources[jaw] = unit.files[0].sha256
    return sources


def deidentify_case(
    raw_case: RawCase,
    out: Path,
    *,
    key: bytes,
    audit: Path | None = None,
    options: DeidOptions = DeidOptions(),
    keep_cbct: bool = False,
    keep_meshes: bool = False,
) -> CaseResult:
    """Read, check, de-identify and write one case under ``out/cases/<pseudonym>/`` (atomically).

    Inputs that fail a check are quarantined (reason in the result's fates); the case folder is written when
    at least a CBCT or one jaw came through. ``audit`` (when given) receives ``cases/<pseudonym>.json``.
    Each input file is read once. ``keep_cbct``: return the decoded CBCT in ``CaseResult.cbct`` (the voxels
    and geometry of the written copy, which de-identification does not change), so a caller that goes on to
    register the case need not read and decode the series again. ``keep_meshes``: return in ``CaseResult.ios``
    the written scans as reading them back gives them (vertices rounded to float32 like the PLY), so that caller
    need not parse them again either.
    """
    check_key(key)
    out = Path(out)
    pn = pseudonym(key, raw_case.patient)
    ctx = DeidContext(key=key, pseudonym=pn, day_shift=day_shift(key, raw_case.patient), options=options)
    w = _CaseWriter(raw_case, pn)
    w.meshes = {} if keep_meshes else None
    cases = out / "cases"
    tmp = cases / f".tmp-{pn}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    cbct, volume = _cbct(w, tmp, ctx)
    jaws = _ios(w, tmp)
    sources = ({"cbct": cbct["source"]} if cbct else {}) | {f"ios:{j}": h for j, h in jaws.items()}
    row: dict[str, Any] | None = None
    if sources:
        row = {
            "pseudonym": pn,
            "modalities": (["cbct"] if cbct else []) + (["ios"] if jaws else []),
            "cbct_format": cbct.get("format", ""),
            "cbct_shape": cbct.get("shape", []),
            "cbct_spacing": cbct.get("spacing", []),
            "jaws": sorted(jaws),
            "sources": json.dumps(sources, sort_keys=True),
            "matched_by": ",".join(sorted({m.how for m in raw_case.matches.values()})),
        }
        doc = {k: v for k, v in row.items() if k != "sources"} | {"sources": sources, "format_version": 1}
        (tmp / "case.json").write_text(json.dumps(doc, sort_keys=True, indent=1) + "\n", encoding="utf-8")
        final = cases / pn
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
    else:
        shutil.rmtree(tmp)
    record = {
        "pseudonym": pn,
        "patient": raw_case.patient,
        "day_shift": ctx.day_shift,
        "written": row is not None,
        "conflicts": sorted({m.conflict for m in raw_case.matches.values() if m.conflict}),
        "files": [{"path": p, **asdict(f)} for p, f in sorted(w.fates.items())],
    }
    if audit is not None:  # written atomically: a build killed here leaves the old record or the new one
        private_dir(Path(audit))
        private_dir(Path(audit) / "cases")
        target = Path(audit) / "cases" / f"{pn}.json"
        partial = target.with_name(f".{target.name}.tmp")
        write_private(partial, (json.dumps(record, indent=1) + "\n").encode("utf-8"))
        partial.replace(target)
    return CaseResult(
        pseudonym=pn,
        written=row is not None,
        fates=w.fates,
        row=row,
        audit=record,
        cbct=volume if keep_cbct and row is not None else None,
        ios=w.meshes if w.meshes is not None and row is not None else {},
        seconds={k: round(v, 4) for k, v in w.seconds.items()},
    )


def load_case_result(out: Path, audit: Path, pseudonym_: str) -> CaseResult:
    """The :class:`CaseResult` of a case already de-identified into ``out`` with its audit record in ``audit``
    (so an orchestrator can pass pseudonyms between tasks instead of results that carry identity)."""
    record_path = Path(audit) / "cases" / f"{pseudonym_}.json"
    if not record_path.is_file():
        raise DeidError(f"{record_path}: no audit record for case {pseudonym_}; de-identify the case again")
    record = json.loads(record_path.read_text(encoding="utf-8"))
    fates = {f["path"]: Fate(**{k: v for k, v in f.items() if k != "path"}) for f in record["files"]}
    row: dict[str, Any] | None = None
    if record["written"]:
        doc = json.loads((Path(out) / "cases" / pseudonym_ / "case.json").read_text(encoding="utf-8"))
        row = {k: v for k, v in doc.items() if k != "format_version"} | {
            "sources": json.dumps(doc["sources"], sort_keys=True)
        }
    return CaseResult(pseudonym=pseudonym_, written=bool(record["written"]), fates=fates, row=row, audit=record)
