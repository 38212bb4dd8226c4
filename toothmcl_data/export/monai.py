"""A version as a MONAI datalist: NIfTI files plus ``datalist.json`` in the Medical Segmentation Decathlon layout.

MONAI's ``load_decathlon_datalist(OUT/datalist.json, data_list_key="training" | "validation" | "test")`` reads
it, resolving paths against the file's folder, and ``LoadImaged(keys=["image", "label"])`` loads each entry::

    OUT/datalist.json      name, description, licence, tensorImageSize "3D", modality {"0": "CT"},
                           labels {"<class id>": name}, numTraining / numValidation / numTest,
                           training / validation / test: [{"image": "images/<case>.nii.gz",
                           "label": "labels/<case>.nii.gz", "case": "<case>"}], fdi_of_label, label_scheme
    OUT/images/<case>.nii.gz   CBCT, int16 scanner values, RAS affine on disk
    OUT/labels/<case>.nii.gz   label map, uint8: class ids (fdi_classes, default) or FDI codes

``training`` / ``validation`` / ``test`` are the version's train / val / test patients. Training and validation
entries need a label map; a test entry carries one when the case has it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from toothmcl_data.errors import InputError
from toothmcl_data.export.cases import ExportCase, ExportReport, plan_cases, staged_folder, write_json
from toothmcl_data.export.classes import SCHEME, class_name, fdi_of_class, n_classes
from toothmcl_data.export.nifti import LabelValues, write_image, write_label_map
from toothmcl_data.export.nnunet import FILE_ENDING
from toothmcl_data.store.reader import VersionReader

DATALIST_KEYS = {"train": "training", "val": "validation", "test": "test"}
"""Version split → the datalist key MONAI's ``load_decathlon_datalist`` reads."""


def _usable(case: ExportCase) -> str | None:
    """None when the case goes into the datalist, else why it is skipped."""
    if not case.has_cbct:
        return "no CBCT (an intraoral-scan-only case)"
    if case.split not in DATALIST_KEYS:
        return f"no split in the version's splits table (got {case.split!r})"
    if case.split != "test" and not case.has_labels:
        return f"{case.split} case without a CBCT label map: training and validation entries need one"
    return None


def datalist_header(reader: VersionReader, deciduous: bool, values: LabelValues) -> dict[str, Any]:
    """The decathlon metadata keys of ``datalist.json`` (labels keyed by the value written in the label files)."""
    provenance = reader.card().get("provenance", {})
    mapping = fdi_of_class(deciduous)
    keys = {cls: (cls if values == "classes" else fdi) for cls, fdi in mapping.items()}
    return {
        "name": "toothmcl",
        "description": "CBCT tooth segmentation (FDI) exported from a toothmcl dataset version",
        "licence": str(provenance.get("licence", "")),
        "reference": str(provenance.get("source", "")),
        "tensorImageSize": "3D",
        "modality": {"0": "CT"},
        "labels": {str(keys[cls]): class_name(fdi) for cls, fdi in sorted(mapping.items())},
        "label_values": values,
        "label_scheme": SCHEME if values == "classes" else "fdi",
        "fdi_of_label": {str(keys[cls]): fdi for cls, fdi in sorted(mapping.items())},
        "toothmcl_version": {"id": reader.id, "tags": list(reader.tags), "content_hash": reader.content_hash},
    }


def export_monai(
    reader: VersionReader,
    out: Path,
    *,
    values: LabelValues = "classes",
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ExportReport:
    """Write the version's CBCT cases as NIfTI files and ``out/datalist.json`` (``out`` empty or absent).

    values: label files as consecutive class ids (``"classes"``, for one-hot training) or FDI codes (``"fdi"``).
    """
    if values not in ("classes", "fdi"):
        raise InputError(f"MONAI export: label values must be 'classes' or 'fdi', got {values!r}")
    out = Path(out)
    with staged_folder(out, "MONAI", dry_run=dry_run) as target:
        report = ExportReport("monai", target, reader.id)
        entries: dict[str, list[dict[str, str]]] = {key: [] for key in DATALIST_KEYS.values()}
        deciduous = False
        for case in plan_cases(reader):
            reason = _usable(case)
            if reason is not None:
                report.skipped[case.pseudonym] = reason
            else:
                entry = {"image": f"images/{case.pseudonym}{FILE_ENDING}", "case": case.pseudonym}
                if case.has_labels:
                    entry["label"] = f"labels/{case.pseudonym}{FILE_ENDING}"
                entries[DATALIST_KEYS[case.split]].append(entry)
                files = [] if dry_run else [write_image(reader, case.pseudonym, target / entry["image"])]
                if case.has_labels and not dry_run:
                    files.append(target / entry["label"])
                    deciduous |= write_label_map(reader, case.pseudonym, files[-1], values)
                report.add(case, files)
            if progress is not None:
                progress(1)
        counts = {"numTraining": len(entries["training"]), "numValidation": len(entries["validation"])}
        counts["numTest"] = len(entries["test"])
        if not dry_run:
            doc = {**datalist_header(reader, deciduous, values), **counts, **entries}
            report.files.append(str(write_json(target / "datalist.json", doc).relative_to(target)))
    report.out = out
    report.extra.update(counts, n_classes=n_classes(deciduous), label_values=values)
    if not any(entries.values()):
        report.notes.append("no case with a CBCT: the datalist is empty")
    return report
