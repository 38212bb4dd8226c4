"""Bad inputs a real clinical drop contains, injected into files already written by ``synth.drop``.

Each fault acts on one patient's files on disk (paths in, modified files out) and returns a
:class:`FaultRecord` naming its kind and the affected paths, relative to the drop root. Paths are ``str``; a
non-UTF-8 name is held as :func:`os.fsdecode` gives it (``os.fsencode`` recovers the bytes on disk).

Kinds, and what a downstream stage should notice:

- ``truncated_dicom``: one slice loses the second half of its pixel data.
- ``missing_slice``: one inner slice deleted (a gap of two steps).
- ``mixed_series``: a 3-slice scout of another SeriesInstanceUID, shape and orientation dropped in the folder.
- ``nonuniform_spacing``: slices from the middle on shifted by half a step along the slice normal.
- ``duplicate_file``: an exact copy of a slice (or, for NIfTI patients, of the upper-jaw mesh) under a
  ``"<name> (1)"`` name.
- ``zero_byte_file``: a slice (or the NIfTI file) emptied to 0 bytes.
- ``empty_mesh``: the lower-jaw mesh rewritten with no vertices and no faces (sidecar emptied to match).
- ``nan_vertices``: five vertices of the upper-jaw mesh set to NaN.
- ``label_count_mismatch``: the lower-jaw sidecar loses its last labels (and instances): length ≠ vertices.
- ``unknown_tooth_code``: one tooth in the upper-jaw sidecar relabelled 19 or 59 (no such FDI tooth).
- ``ios_misfiled``: the lower-jaw mesh and sidecar moved into the next patient's IOS folder.
- ``non_utf8_filename``: the upper-jaw mesh and sidecar renamed with a Latin-1 byte (``b"D\\xf6e_John…"``).
"""

from __future__ import annotations

import copy
import json
import logging
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import pydicom
from pydicom.uid import UID

from toothmcl_data.errors import ConfigError, InputError
from toothmcl_data.synth.dicom import draw_uid
from toothmcl_data.synth.meshbytes import emptied_mesh_bytes, nan_mesh_bytes
from toothmcl_data.types import Jaw

log = logging.getLogger(__name__)

FaultKind = Literal[
    "truncated_dicom",
    "missing_slice",
    "mixed_series",
    "nonuniform_spacing",
    "duplicate_file",
    "zero_byte_file",
    "empty_mesh",
    "nan_vertices",
    "label_count_mismatch",
    "unknown_tooth_code",
    "ios_misfiled",
    "non_utf8_filename",
]
FAULT_KINDS: tuple[FaultKind, ...] = get_args(FaultKind)
DICOM_ONLY: frozenset[FaultKind] = frozenset({"truncated_dicom", "missing_slice", "mixed_series", "nonuniform_spacing"})
_LATIN1 = {"a": 0xE4, "e": 0xE9, "i": 0xEF, "o": 0xF6, "u": 0xFC}


@dataclass(frozen=True)
class PatientFiles:
    """One patient's files as written, relative to the drop root.

    cbct: the slice files in order of ``k`` (format ``"dicom"``) or the single NIfTI file (``"nifti"``).
    meshes / sidecars: per jaw, the IOS mesh file and its Teeth3DS label sidecar.
    """

    key: str
    format: Literal["dicom", "nifti"]
    cbct: tuple[str, ...]
    meshes: dict[Jaw, str]
    sidecars: dict[Jaw, str]


@dataclass(frozen=True)
class FaultRecord:
    """What one fault did. ``paths``: affected files as they are on disk afterwards (or were, if removed).

    ``added`` (path, role), ``removed`` and ``renamed`` (old, new) let the caller keep its file list true;
    ``planted`` lists new identifying strings (UIDs) the fault wrote; ``other_patient`` is the patient whose
    folder received a misfiled scan.
    """

    kind: FaultKind
    paths: tuple[str, ...]
    detail: str
    added: tuple[tuple[str, str], ...] = ()
    removed: tuple[str, ...] = ()
    renamed: tuple[tuple[str, str], ...] = ()
    planted: tuple[str, ...] = field(default=(), repr=False)
    other_patient: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind, "paths": list(self.paths), "detail": self.detail}
        if self.added:
            d["added"] = [{"path": p, "role": r} for p, r in self.added]
        if self.removed:
            d["removed"] = list(self.removed)
        if self.renamed:
            d["renamed"] = [{"from": a, "to": b} for a, b in self.renamed]
        if self.other_patient is not None:
            d["other_patient"] = self.other_patient
        return d


def applicable(kind: FaultKind, files_format: str, n_patients: int) -> bool:
    """Whether ``kind`` can be injected into a patient whose CBCT is ``files_format`` in a drop of N."""
    if kind in DICOM_ONLY:
        return files_format == "dicom"
    if kind == "ios_misfiled":
        return n_patients >= 2
    return True


def plan_faults(formats: Sequence[str], bad_fraction: float, rng: np.random.Generator) -> dict[int, FaultKind]:
    """Choose ``round(bad_fraction × N)`` patients (N = ``len(formats)``) and one fault kind for each.

    Kinds are dealt like cards in the order of :data:`FAULT_KINDS`, a fresh deck when one runs out: each chosen
    patient (by index) takes the first undealt kind that applies to it (DICOM kinds need a DICOM CBCT,
    ``ios_misfiled`` a second patient). Small drops get distinct kinds; with 12 or more chosen patients every
    kind appears as long as enough of them are DICOM. Returns ``{patient index: kind}``.
    """
    if not 0.0 <= bad_fraction <= 1.0:
        raise ConfigError(f"bad_fraction must be in [0, 1], got {bad_fraction}")
    n = len(formats)
    n_bad = int(np.floor(bad_fraction * n + 0.5))
    chosen = sorted(int(i) for i in rng.choice(n, size=n_bad, replace=False)) if n_bad else []
    pending: list[FaultKind] = []
    plan: dict[int, FaultKind] = {}
    for index in chosen:
        for _ in range(2):
            kind = next((k for k in pending if applicable(k, formats[index], n)), None)
            if kind is not None:
                pending.remove(kind)
                plan[index] = kind
                break
            pending.extend(FAULT_KINDS)
    return plan


# ---- helpers ---------------------------------------------------------------------------------------------
def _copy_name(rel: str) -> str:
    path = Path(rel)
    name = path.name
    for suffix in (".nii.gz", path.suffix):
        if suffix and name.endswith(suffix):
            return str(path.with_name(f"{name[: -len(suffix)]} (1){suffix}"))
    return str(path.with_name(f"{name} (1)"))


def _inner(files: PatientFiles, rng: np.random.Generator) -> int:
    n = len(files.cbct)
    if n < 3:
        raise InputError(f"{files.key}: a DICOM fault needs a series of at least 3 slices, got {n}")
    return int(rng.integers(1, n - 1))


def _read_json(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return doc


def _write_json(path: Path, doc: dict[str, Any]) -> None:
    path.write_text(json.dumps(doc) + "\n", encoding="utf-8")


# ---- DICOM faults ----------------------------------------------------------------------------------------
def truncated_dicom(root: Path, files: PatientFiles, rng: np.random.Generator) -> FaultRecord:
    """Cut one inner slice in the middle of its pixel data, like an interrupted transfer."""
    rel = files.cbct[_inner(files, rng)]
    data = (root / rel).read_bytes()
    ds = pydicom.dcmread(root / rel, stop_before_pixels=True)
    keep = len(data) - max(1, int(ds.Rows) * int(ds.Columns) * int(ds.BitsAllocated) // 16)
    (root / rel).write_bytes(data[:keep])
    return FaultRecord("truncated_dicom", (rel,), f"cut from {len(data)} to {keep} bytes (half the pixel data)")


def missing_slice(root: Path, files: PatientFiles, rng: np.random.Generator) -> FaultRecord:
    k = _inner(files, rng)
    rel = files.cbct[k]
    (root / rel).unlink()
    return FaultRecord("missing_slice", (rel,), f"slice k={k} deleted", removed=(rel,))


def nonuniform_spacing(root: Path, files: PatientFiles, rng: np.random.Generator) -> FaultRecord:
    k0 = _inner(files, rng)
    changed: list[str] = []
    for rel in files.cbct[k0:]:
        ds = pydicom.dcmread(root / rel)
        iop = np.asarray([float(v) for v in ds.ImageOrientationPatient])
        normal = np.cross(iop[:3], iop[3:])
        shift = normal * 0.5 * float(ds.SpacingBetweenSlices)
        ipp = np.asarray([float(v) for v in ds.ImagePositionPatient]) + shift
        ds.ImagePositionPatient = [pydicom.valuerep.format_number_as_ds(float(v)) for v in ipp]
        ds.SliceLocation = pydicom.valuerep.format_number_as_ds(float(ipp @ normal))
        ds.save_as(root / rel, enforce_file_format=True)
        changed.append(rel)
    return FaultRecord(
        "nonuniform_spacing",
        tuple(changed),
        f"slices k >= {k0} shifted by half a slice step along the normal",
    )


def mixed_series(root: Path, files: PatientFiles, rng: np.random.Generator) -> FaultRecord:
    """Drop a 3-slice sagittal scout (new series, 32×24 pixels) into the series folder."""
    template = pydicom.dcmread(root / files.cbct[0])
    series_uid = draw_uid(rng)
    folder = Path(files.cbct[0]).parent
    last = Path(files.cbct[-1]).name
    numbered = last.startswith("IM")
    suffix = ".dcm" if last.endswith(".dcm") else ""
    added: list[tuple[str, str]] = []
    planted = [series_uid]
    pixels = rng.integers(900, 1400, size=(24, 32)).astype("<u2")
    for n in range(3):
        sop = draw_uid(rng)
        planted.append(sop)
        ds = copy.deepcopy(template)
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = UID(sop)
        ds.SeriesInstanceUID = series_uid
        ds.SeriesNumber = 99
        ds.SeriesDescription = "Scout"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
        ds.InstanceNumber = len(files.cbct) + 1 + n
        ds.Rows, ds.Columns = pixels.shape
        ds.ImageOrientationPatient = ["0", "1", "0", "0", "0", "-1"]
        ds.ImagePositionPatient = [str(-10 + 10 * n), "-40", "40"]
        ds.PixelSpacing = ["2", "2"]
        ds.PixelData = pixels.tobytes()
        name = f"IM{ds.InstanceNumber:05d}{suffix}" if numbered else f"CT.{sop}.dcm"
        rel = str(folder / name)
        ds.save_as(root / rel, enforce_file_format=True)
        added.append((rel, "foreign_series_slice"))
    return FaultRecord(
        "mixed_series",
        tuple(p for p, _ in added),
        f"scout series {series_uid} (3 slices) added to {folder}",
        added=tuple(added),
        planted=tuple(planted),
    )


# ---- faults on any file ----------------------------------------------------------------------------------
def duplicate_file(root: Path, files: PatientFiles, rng: np.random.Generator) -> FaultRecord:
    source = files.cbct[int(rng.integers(len(files.cbct)))] if files.format == "dicom" else files.meshes["upper"]
    twin = _copy_name(source)
    shutil.copyfile(root / source, root / twin)
    return FaultRecord("duplicate_file", (source, twin), f"exact copy of {source}", added=((twin, "duplicate"),))


def zero_byte_file(root: Path, files: PatientFiles, rng: np.random.Generator) -> FaultRecord:
    rel = files.cbct[_inner(files, rng)] if files.format == "dicom" else files.cbct[0]
    (root / rel).write_bytes(b"")
    return FaultRecord("zero_byte_file", (rel,), "file emptied to 0 bytes")


# ---- mesh faults -----------------------------------------------------------------------------------------
def empty_mesh(root: Path, files: PatientFiles, rng: np.random.Generator) -> FaultRecord:
    mesh, sidecar = files.meshes["lower"], files.sidecars["lower"]
    (root / mesh).write_bytes(emptied_mesh_bytes(root / mesh))
    doc = _read_json(root / sidecar)
    doc["labels"], doc["instances"] = [], []
    _write_json(root / sidecar, doc)
    return FaultRecord("empty_mesh", (mesh, sidecar), "lower-jaw mesh has 0 vertices and 0 faces")


def nan_vertices(root: Path, files: PatientFiles, rng: np.random.Generator) -> FaultRecord:
    mesh = files.meshes["upper"]
    (root / mesh).write_bytes(nan_mesh_bytes(root / mesh, rng, 5))
    return FaultRecord("nan_vertices", (mesh,), "5 vertices of the upper-jaw mesh set to NaN")


def label_count_mismatch(root: Path, files: PatientFiles, rng: np.random.Generator) -> FaultRecord:
    sidecar = files.sidecars["lower"]
    doc = _read_json(root / sidecar)
    drop = int(rng.integers(3, 20))
    n = len(doc["labels"])
    doc["labels"], doc["instances"] = doc["labels"][:-drop], doc["instances"][:-drop]
    _write_json(root / sidecar, doc)
    return FaultRecord(
        "label_count_mismatch", (sidecar,), f"{n - drop} labels for {n} vertices of {files.meshes['lower']}"
    )


def unknown_tooth_code(root: Path, files: PatientFiles, rng: np.random.Generator) -> FaultRecord:
    sidecar = files.sidecars["upper"]
    doc = _read_json(root / sidecar)
    labels = np.asarray(doc["labels"], dtype=np.int64)
    teeth = np.unique(labels[labels > 0])
    if teeth.size == 0:
        raise InputError(f"{root / sidecar}: no tooth labels to corrupt")
    tooth = int(teeth[int(rng.integers(teeth.size))])
    code = int(rng.choice([19, 59]))
    labels[labels == tooth] = code
    doc["labels"] = [int(v) for v in labels]
    _write_json(root / sidecar, doc)
    return FaultRecord("unknown_tooth_code", (sidecar,), f"tooth {tooth} relabelled {code}")


def ios_misfiled(root: Path, files: PatientFiles, rng: np.random.Generator, other: PatientFiles) -> FaultRecord:
    target = Path(other.meshes["upper"]).parent
    renamed: list[tuple[str, str]] = []
    for rel in (files.meshes["lower"], files.sidecars["lower"]):
        new = str(target / Path(rel).name)
        if (root / new).exists():
            new = _copy_name(new)
        os.replace(root / rel, root / new)
        renamed.append((rel, new))
    return FaultRecord(
        "ios_misfiled",
        tuple(new for _, new in renamed),
        f"lower-jaw scan of {files.key} filed under {other.key} ({target})",
        renamed=tuple(renamed),
        other_patient=other.key,
    )


def _latin1_name(name: bytes) -> bytes:
    """``name`` with its first vowel accented in Latin-1 (``b"Doe"`` → ``b"D\\xf6e"``): not valid UTF-8."""
    at = next((i for i, c in enumerate(name) if chr(c).lower() in _LATIN1), None)
    if at is None:
        return b"\xe9" + name
    return name[:at] + bytes([_LATIN1[chr(name[at]).lower()]]) + name[at + 1 :]


def non_utf8_filename(root: Path, files: PatientFiles, rng: np.random.Generator) -> FaultRecord:
    renamed: list[tuple[str, str]] = []
    for rel in (files.meshes["upper"], files.sidecars["upper"]):
        path = Path(rel)
        new = str(path.with_name(os.fsdecode(_latin1_name(os.fsencode(path.name)))))
        os.rename(os.fsencode(root / rel), os.fsencode(root / new))
        renamed.append((rel, new))
    return FaultRecord(
        "non_utf8_filename",
        tuple(new for _, new in renamed),
        "upper-jaw mesh and sidecar renamed with a Latin-1 byte (not valid UTF-8)",
        renamed=tuple(renamed),
    )


_FAULTS: dict[FaultKind, Callable[[Path, PatientFiles, np.random.Generator], FaultRecord]] = {
    "truncated_dicom": truncated_dicom,
    "missing_slice": missing_slice,
    "mixed_series": mixed_series,
    "nonuniform_spacing": nonuniform_spacing,
    "duplicate_file": duplicate_file,
    "zero_byte_file": zero_byte_file,
    "empty_mesh": empty_mesh,
    "nan_vertices": nan_vertices,
    "label_count_mismatch": label_count_mismatch,
    "unknown_tooth_code": unknown_tooth_code,
    "non_utf8_filename": non_utf8_filename,
}


def apply_fault(
    kind: FaultKind,
    root: Path,
    files: PatientFiles,
    rng: np.random.Generator,
    *,
    other: PatientFiles | None = None,
) -> FaultRecord:
    """Inject ``kind`` into ``files`` under the drop ``root``; ``other`` is required by ``ios_misfiled``."""
    if kind == "ios_misfiled":
        if other is None or other.key == files.key:
            raise InputError(f"{files.key}: ios_misfiled needs another patient's files to file the scan under")
        record = ios_misfiled(root, files, rng, other)
    elif kind in DICOM_ONLY and files.format != "dicom":
        raise InputError(f"{files.key}: fault {kind} needs a DICOM series, but the CBCT is {files.format}")
    elif kind in _FAULTS:
        record = _FAULTS[kind](root, files, rng)
    else:
        raise InputError(f"unknown fault kind {kind!r}; expected one of {', '.join(FAULT_KINDS)}")
    log.debug("%s: injected %s into %s", files.key, kind, record.paths)
    return record


def updated_files(files: list[dict[str, Any]], record: FaultRecord) -> list[dict[str, Any]]:
    """Apply ``record``'s removed / renamed / added paths to a list of ``{"path", "role", …}`` entries."""
    renamed = dict(record.renamed)
    out = [
        {**entry, "path": renamed.get(entry["path"], entry["path"])}
        for entry in files
        if entry["path"] not in record.removed
    ]
    out += [{"path": path, "role": role} for path, role in record.added]
    return out
