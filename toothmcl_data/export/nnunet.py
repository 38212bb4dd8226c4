"""A version as an nnU-Net v2 raw dataset (``nnUNet_raw/DatasetNNN_Name``), keeping the version's split.

Layout, as nnU-Net's ``documentation/dataset_format.md`` specifies::

    DatasetNNN_Name/dataset.json          channel_names {"0": "CT"}, labels {name: class id}, numTraining,
                                          file_ending ".nii.gz" (+ extra keys, which nnU-Net passes through:
                                          fdi_of_label, label_scheme, licence, toothmcl version)
    DatasetNNN_Name/imagesTr/<case>_0000.nii.gz   CBCT of every labelled train and val case
    DatasetNNN_Name/labelsTr/<case>.nii.gz        its label map as consecutive class ids (fdi_classes)
    DatasetNNN_Name/imagesTs/<case>_0000.nii.gz   CBCT of every test case (labelsTs/<case>.nii.gz when labelled)
    DatasetNNN_Name/splits_final.json             [{"train": [train ids], "val": [val ids]}]: one fold

``splits_final.json`` is the version's patient-level split as nnU-Net's manual split file
(``documentation/manual_data_splits.md``). nnU-Net trains from ``nnUNet_preprocessed/DatasetNNN_Name/
splits_final.json``; its experiment planner (nnunetv2 2.8.1, tested) copies the raw folder's file there during
``nnUNetv2_plan_and_preprocess``. For releases that do not, ``preprocessed`` writes it there directly. Train
fold 0 to keep the split. The channel is named ``CT`` so nnU-Net picks its global CT intensity normalisation
(dataset-wide percentile clip and z-score), the scheme the nnU-Net team used for ToothFairy2 CBCTs; per-image
z-scoring follows from any other name.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from toothmcl_data.errors import InputError
from toothmcl_data.export.cases import ExportCase, ExportReport, plan_cases, staged_folder, write_json
from toothmcl_data.export.classes import SCHEME, class_name, fdi_of_class, n_classes
from toothmcl_data.export.nifti import write_image, write_label_map
from toothmcl_data.store.reader import VersionReader

log = logging.getLogger(__name__)

FILE_ENDING = ".nii.gz"
CHANNEL = "_0000"
_DATASET_NAME = re.compile(r"^Dataset(\d{3})_([A-Za-z0-9][A-Za-z0-9_\-]*)$")


def dataset_id(out: Path) -> int:
    """The three-digit id of an nnU-Net dataset folder named ``DatasetNNN_Name``; raises InputError otherwise."""
    m = _DATASET_NAME.match(Path(out).name)
    if m is None:
        raise InputError(
            f"nnU-Net export folder {out}: its name must be DatasetNNN_Name (three digits, then a name of letters, "
            "digits, '_' or '-'), e.g. nnUNet_raw/Dataset501_Teeth; nnU-Net finds datasets by that name"
        )
    return int(m[1])


def _destination(case: ExportCase) -> tuple[str, str | None] | str:
    """(images folder, labels folder or None) for a case nnU-Net can use, else the reason it is skipped."""
    if not case.has_cbct:
        return "no CBCT (an intraoral-scan-only case)"
    if case.split in ("train", "val"):
        if not case.has_labels:
            return f"{case.split} case without a CBCT label map: nnU-Net trains on labelled images only"
        return "imagesTr", "labelsTr"
    if case.split == "test":
        return "imagesTs", "labelsTs" if case.has_labels else None
    return f"no split in the version's splits table (got {case.split!r})"


def dataset_json(reader: VersionReader, n_training: int, deciduous: bool, channel_name: str) -> dict[str, Any]:
    """nnU-Net's dataset.json: its four required keys, then descriptive and mapping keys nnU-Net passes through."""
    mapping = fdi_of_class(deciduous)
    provenance = reader.card().get("provenance", {})
    return {
        "channel_names": {"0": channel_name},
        "labels": {class_name(fdi): cls for cls, fdi in sorted(mapping.items())},
        "numTraining": n_training,
        "file_ending": FILE_ENDING,
        "name": "toothmcl",
        "description": "CBCT tooth segmentation (FDI) exported from a toothmcl dataset version",
        "licence": str(provenance.get("licence", "")),
        "source": str(provenance.get("source", "")),
        "label_scheme": SCHEME,
        "fdi_of_label": {str(cls): fdi for cls, fdi in sorted(mapping.items())},
        "toothmcl_version": {"id": reader.id, "tags": list(reader.tags), "content_hash": reader.content_hash},
    }


def export_nnunet(
    reader: VersionReader,
    out: Path,
    *,
    preprocessed: Path | None = None,
    channel_name: str = "CT",
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ExportReport:
    """Write the version as the nnU-Net v2 raw dataset ``out`` (named ``DatasetNNN_Name``, empty or absent).

    The folder appears only when every file is written (see :func:`~toothmcl_data.export.cases.staged_folder`).
    preprocessed: the ``nnUNet_preprocessed`` folder; ``splits_final.json`` is also written to
        ``preprocessed/<out's name>/`` so nnU-Net trains on the version's split.
    dry_run: plan and report, write nothing. progress: called with 1 after each case.
    """
    out = Path(out)
    number = dataset_id(out)
    cases = plan_cases(reader)
    planned = {c.pseudonym: _destination(c) for c in cases}
    if not any(c.split == "train" and not isinstance(planned[c.pseudonym], str) for c in cases):
        skipped = {p: w for p, w in planned.items() if isinstance(w, str)}
        raise InputError(
            f"store {reader.store} version {reader.id}: no labelled train case with a CBCT, so there is nothing for "
            f"nnU-Net to train on (skipped: {skipped or 'no case at all'})"
        )
    with staged_folder(out, "nnU-Net", dry_run=dry_run) as target:
        report = ExportReport("nnunet", target, reader.id, extra={"dataset_id": number})
        deciduous = False
        for case in cases:
            where = planned[case.pseudonym]
            if isinstance(where, str):
                report.skipped[case.pseudonym] = where
            elif dry_run:
                report.add(case, [])
            else:
                images, labels = where
                image = target / images / f"{case.pseudonym}{CHANNEL}{FILE_ENDING}"
                files = [write_image(reader, case.pseudonym, image)]
                if labels is not None:
                    files.append(target / labels / f"{case.pseudonym}{FILE_ENDING}")
                    deciduous |= write_label_map(reader, case.pseudonym, files[-1])
                report.add(case, files)
            if progress is not None:
                progress(1)
        train, val = sorted(report.written["train"]), sorted(report.written["val"])
        splits = [{"train": train, "val": val}]
        if not dry_run:
            report.files.append(str(write_json(target / "splits_final.json", splits).relative_to(target)))
            doc = dataset_json(reader, len(train) + len(val), deciduous, channel_name)
            report.files.append(str(write_json(target / "dataset.json", doc).relative_to(target)))  # last
    report.out = out
    if not val:
        report.notes.append("no val case: splits_final.json has an empty val list; train with fold 'all'")
    else:
        report.notes.append(f"train fold 0 (nnUNetv2_train {number} 3d_fullres 0) to keep the version's split")
    report.extra.update(n_classes=n_classes(deciduous), numTraining=len(train) + len(val))
    if preprocessed is not None and not dry_run:
        report.extra["splits_final"] = str(write_json(Path(preprocessed) / out.name / "splits_final.json", splits))
    log.info("nnU-Net export %s: %d train, %d val, %d test", out, len(train), len(val), len(report.written["test"]))
    return report
