"""A version's intraoral scans in the Teeth3DS / 3DTeethSeg22 layout: OBJ + per-vertex JSON, official split files.

Layout (the one :mod:`toothmcl_data.adapters.teeth3ds` imports)::

    OUT/<case>/<case>_<jaw>.obj      vertices in the scan's own frame (mm), in the store's vertex order, exactly
                                     (shortest round-trip decimal); faces 1-based
    OUT/<case>/<case>_<jaw>.json     {"id_patient": case, "jaw", "labels": FDI per vertex, "instances"}
    OUT/training_<jaw>.txt           "<case>_<jaw>" per line: the version's train patients
    OUT/validation_<jaw>.txt         the val patients (Teeth3DS itself has no validation set; its importer ignores
                                     this file)
    OUT/testing_<jaw>.txt            the test patients

An unlabelled scan is written without its JSON (as Teeth3DS's test scans are). Scans whose store record has
labels but no instances get instances numbered 1, 2, … in ascending FDI order (0 = gingiva).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from toothmcl_data.export.cases import ExportReport, plan_cases, staged_folder
from toothmcl_data.io.meshwrite import write_atomic, write_obj
from toothmcl_data.io.teeth3ds import write_teeth3ds_json
from toothmcl_data.store.reader import VersionReader
from toothmcl_data.types import JAWS, Jaw

SPLIT_FILES = {"train": "training", "val": "validation", "test": "testing"}


def instances_from_labels(labels: NDArray[np.integer]) -> NDArray[np.int16]:
    """(n,) FDI per vertex → (n,) int16 instances: 0 for gingiva/unknown, teeth 1, 2, … in ascending FDI order."""
    lab = np.asarray(labels)
    teeth = np.unique(lab[lab > 0])
    out = np.zeros(lab.shape, dtype=np.int16)
    out[lab > 0] = np.searchsorted(teeth, lab[lab > 0]) + 1
    return out


def export_teeth3ds(
    reader: VersionReader,
    out: Path,
    *,
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ExportReport:
    """Write every intraoral scan of the version as Teeth3DS OBJ + JSON under ``out`` (empty or absent)."""
    out = Path(out)
    with staged_folder(out, "Teeth3DS", dry_run=dry_run) as target:
        report = ExportReport("teeth3ds", target, reader.id)
        listed: dict[tuple[str, str], list[str]] = {}
        unlabelled = 0
        for case in plan_cases(reader):
            if not case.jaws:
                report.skipped[case.pseudonym] = "no intraoral scan (a CBCT-only case)"
            else:
                files: list[Path] = []
                for jaw in case.jaws:
                    listed.setdefault((case.split, jaw), []).append(f"{case.pseudonym}_{jaw}")
                    if not dry_run:
                        written = _write_scan(reader, case.pseudonym, jaw, target)
                        unlabelled += len(written) == 1
                        files.extend(written)
                report.add(case, files)
            if progress is not None:
                progress(1)
        for split, stem in SPLIT_FILES.items():
            for jaw in JAWS:
                lines = listed.get((split, jaw))
                if lines and not dry_run:
                    write_atomic(target / f"{stem}_{jaw}.txt", ("\n".join(lines) + "\n").encode("utf-8"))
                    report.files.append(f"{stem}_{jaw}.txt")
    report.out = out
    if unlabelled:
        report.notes.append(f"{unlabelled} unlabelled scan(s) written without a label JSON")
    return report


def _write_scan(reader: VersionReader, pseudonym: str, jaw: Jaw, folder: Path) -> list[Path]:
    """Write one jaw's ``<case>_<jaw>.obj`` (+ ``.json`` when labelled) under ``folder/<case>/``."""
    mesh = reader.ios(pseudonym, jaw)
    obj = folder / pseudonym / f"{pseudonym}_{jaw}.obj"
    obj.parent.mkdir(parents=True, exist_ok=True)
    write_obj(obj, mesh.vertices, mesh.faces)
    if mesh.labels is None:
        return [obj]
    instances = mesh.instances if mesh.instances is not None else instances_from_labels(mesh.labels)
    sidecar = obj.with_suffix(".json")
    write_teeth3ds_json(
        sidecar, id_patient=pseudonym, jaw=jaw, labels=mesh.labels, instances=instances, allow_deciduous=True
    )
    return [obj, sidecar]
