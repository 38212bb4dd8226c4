"""Teeth3DS+ / 3DTeethSeg22 → store cases (IOS-only, per-vertex FDI), and predictions back as challenge JSON.

Layout (card ``catalogs/sources/teeth3ds.yaml``): scans ``<id>/<id>_<jaw>.obj`` with the label file
``<id>/<id>_<jaw>.json`` (``id_patient``, ``jaw``, per-vertex FDI ``labels`` and ``instances``) beside them —
found anywhere below SRC, so both the challenge release (``<id>/…``) and Teeth3DS+ ``raw/{upper,lower}/<id>/…``
read. Official split files anywhere below SRC (``training_upper.txt``, ``testing_lower.txt``,
``public-training-set-1.txt``, ``private-testing-set.txt`` …, one ``<id>_<jaw>`` or ``<id>`` per line) set each
case's ``official_split`` attribute (``test`` wins when a patient is listed in both).

A patient becomes one IOS-only store case (pseudonym = the dataset id, already anonymous; no CBCT, no
registration) with the jaws found, vertices in the scan's own frame and the file's vertex order.
:func:`write_prediction` writes ``<out>/<id>/<id>_<jaw>.json`` as the challenge's evaluation reads it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from toothmcl_data.adapters.importing import counted, file_sha256, import_records, load_source_card
from toothmcl_data.errors import InputNotFoundError, MeshError
from toothmcl_data.io.mesh import read_mesh
from toothmcl_data.io.teeth3ds import write_teeth3ds_json
from toothmcl_data.store import CaseRecord, VersionInfo
from toothmcl_data.types import JAWS, Case, Jaw, Mesh

SPLIT_FILES = {
    "train": ("training_upper.txt", "training_lower.txt", "public-training-set-1.txt", "public-training-set-2.txt"),
    "test": ("testing_upper.txt", "testing_lower.txt", "private-testing-set.txt"),
}
_SCAN = re.compile(r"^(?P<id>.+)_(?P<jaw>upper|lower)$")


@dataclass(frozen=True)
class Teeth3DSScan:
    """One jaw scan of the source folder: patient id, jaw, mesh file, label file (None when unlabelled)."""

    patient: str
    jaw: Jaw
    mesh: Path
    labels: Path | None


def scan_folder(src: Path) -> list[Teeth3DSScan]:
    """The scans below ``src`` (``<id>/<id>_<jaw>.obj`` whose folder is named ``<id>``), sorted by id and jaw."""
    scans = []
    for path in sorted(Path(src).rglob("*.obj")):
        m = _SCAN.match(path.stem)
        if m is None or path.parent.name != m["id"]:
            continue
        sidecar = path.with_suffix(".json")
        jaw: Jaw = "upper" if m["jaw"] == "upper" else "lower"
        scans.append(Teeth3DSScan(m["id"], jaw, path, sidecar if sidecar.is_file() else None))
    if not scans:
        raise InputNotFoundError(f"{src}: no Teeth3DS scans (<id>/<id>_upper.obj or <id>/<id>_lower.obj) found")
    seen: dict[tuple[str, str], Path] = {}
    for s in scans:
        if (s.patient, s.jaw) in seen:
            raise MeshError(f"{s.mesh}: scan {s.patient}_{s.jaw} also at {seen[(s.patient, s.jaw)]}; keep one copy")
        seen[(s.patient, s.jaw)] = s.mesh
    return sorted(scans, key=lambda s: (s.patient, JAWS.index(s.jaw)))


def read_splits(src: Path) -> dict[str, str]:
    """Patient id → ``train`` / ``test`` from the official split files found below ``src`` ({} when none)."""
    out: dict[str, str] = {}
    for split in ("train", "test"):  # test last: it wins
        for name in SPLIT_FILES[split]:
            for path in sorted(Path(src).rglob(name)):
                for line in path.read_text(encoding="utf-8").splitlines():
                    entry = line.strip()
                    if not entry:
                        continue
                    m = _SCAN.match(entry)
                    out[m["id"] if m else entry] = split
    return out


def read_patient(patient: str, scans: Sequence[Teeth3DSScan]) -> Case:
    """An IOS-only :class:`Case` of one patient's scans (own frames ``ios:<id>:<jaw>``, FDI labels)."""
    ios: dict[Jaw, Mesh] = {}
    sources: dict[str, str] = {}
    for s in scans:
        mesh = read_mesh(s.mesh, labels=s.labels, jaw=s.jaw, frame=f"ios:{patient}:{s.jaw}")
        ios[s.jaw] = Mesh(mesh.vertices, mesh.faces, mesh.frame, mesh.labels, mesh.instances, None, s.jaw)
        sources[f"ios:{s.jaw}"] = file_sha256(*(p for p in (s.mesh, s.labels) if p is not None))
    return Case(patient, None, None, ios, sources)


def _by_patient(scans: Sequence[Teeth3DSScan]) -> dict[str, list[Teeth3DSScan]]:
    out: dict[str, list[Teeth3DSScan]] = {}
    for s in scans:
        out.setdefault(s.patient, []).append(s)
    return out


def records(scans: Sequence[Teeth3DSScan], splits: dict[str, str]) -> Iterator[CaseRecord]:
    """One IOS-only record per patient, read one at a time."""
    for patient, own in _by_patient(scans).items():
        attributes = {"source": "teeth3ds", "source_id": patient, "official_split": splits.get(patient, "")}
        yield CaseRecord(read_patient(patient, own), attributes=attributes)


def import_folder(
    src: Path,
    store: str | Path,
    *,
    tag: str | None = None,
    limit: int | None = None,
    message: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> VersionInfo:
    """Import a Teeth3DS folder (``limit``: the first N patients) into the store's next version."""
    card = load_source_card("teeth3ds")
    scans = scan_folder(Path(src))
    patients = list(_by_patient(scans))[:limit]
    scans = [s for s in scans if s.patient in set(patients)]
    hashes = {f"{s.patient}_{s.jaw}": file_sha256(*(p for p in (s.mesh, s.labels) if p is not None)) for s in scans}
    return import_records(
        store,
        counted(records(scans, read_splits(Path(src))), progress),
        card=card,
        input_hashes=hashes,
        message=message or f"import {len(patients)} Teeth3DS patients",
        tag=tag,
    )


def write_prediction(
    out: Path, patient: str, jaw: Jaw, labels: NDArray[np.integer], instances: NDArray[np.integer]
) -> Path:
    """Write per-vertex FDI ``labels`` (n,) and ``instances`` (n,) (the scan's vertex order) as
    ``out/<id>/<id>_<jaw>.json``."""
    path = Path(out) / patient / f"{patient}_{jaw}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_teeth3ds_json(path, id_patient=patient, jaw=jaw, labels=labels, instances=instances)
    return path
