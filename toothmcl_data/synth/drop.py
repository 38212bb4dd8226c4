"""Write a synthetic raw clinical drop (what a clinic hands over) plus the ground truth, kept apart.

Layout under ``out``::

    drop/                                   what a clinic exports; identity everywhere
      PACS_EXPORT/DOE_JOHN_MR0048213/20160514_CBCT/IM00001 …   DICOM series (IM00001[.dcm] or CT.<uid>.dcm)
      PLANNING_EXPORT/Doe_John_MR0048213/Doe_John_20160514_CBCT.nii.gz     NIfTI CBCT (some patients)
      IOS_EXPORT/Doe_John_MR0048213/Doe_John_20160515_UpperJaw.stl       mesh (stl | ply | obj)
      IOS_EXPORT/Doe_John_MR0048213/Doe_John_20160515_UpperJaw.json      Teeth3DS labels sidecar
    ground_truth/
      truth.json     seed, config, per patient: files with roles, CBCT geometry, world_from_ios, teeth, faults
      phi.json       {patient key: [identifying strings]}: every string planted anywhere in the drop (file
                     names, DICOM headers, NIfTI header, mesh headers, sidecars), in literal form; a superset
                     for NIfTI patients, whose export carries fewer fields than a DICOM header
      P0000/cbct.npy (int16 values after Rescale), cbct_labels.npy (uint8 FDI),
            ios_<jaw>_labels.npy (int16 FDI in the written file's vertex order), ios_bite_labels.npy

With named conditions (``conditions={name: fraction}``, :mod:`toothmcl_data.synth.conditions`) a patient's
entry also has ``conditions`` and ``variety`` (the condition ground truth, :mod:`toothmcl_data.synth.variety`),
and a ``ios_bite_scan`` patient a third mesh ``…_BiteScan.<fmt>`` (role ``ios_bite``, no sidecar; its
``world_from_ios`` is ``variety["world_from_bite"]``). Patients without conditions, and the whole drop when no
condition is asked for, are byte-identical to drops written before conditions existed.

Paths in ``truth.json`` are relative to ``drop/`` (files) or ``ground_truth/`` (arrays). The tree is
deterministic: the same seed gives byte-identical files (no clocks, gzip without time stamp, ``.npy`` not
``.npz``, JSON with sorted keys). Patient ``i`` draws from ``default_rng([seed, i])`` (anatomy, images, scans)
and ``default_rng([seed, i, 1])`` (identity, formats, UIDs), so it does not depend on the number of patients;
only the choice of faulty patients and of the patients given each condition (``default_rng([seed, 4, 4, 4])``)
does.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from toothmcl_data.errors import ConfigError, InputError
from toothmcl_data.io.meshwrite import renumber_by_first_appearance, write_obj, write_ply, write_stl
from toothmcl_data.io.teeth3ds import write_teeth3ds_json
from toothmcl_data.io.volume import write_nifti
from toothmcl_data.synth.conditions import plan_conditions
from toothmcl_data.synth.config import SynthConfig
from toothmcl_data.synth.dicom import NAME_STYLES, write_series
from toothmcl_data.synth.faults import PatientFiles, apply_fault, plan_faults, updated_files
from toothmcl_data.synth.identity import (
    Identity,
    draw_identity,
    mesh_comments,
    phi_strings,
    series_description,
    stl_header,
)
from toothmcl_data.synth.patient import SyntheticPatient, make_patient
from toothmcl_data.types import JAWS, Jaw, Mesh

log = logging.getLogger(__name__)

DROP_DIR = "drop"
TRUTH_DIR = "ground_truth"
_JAW_WORD = {"upper": "UpperJaw", "lower": "LowerJaw", "bite": "BiteScan"}


@dataclass(frozen=True)
class DropSummary:
    """What :func:`write_drop` wrote. ``faults``: number of patients per fault kind."""

    root: Path
    drop: Path
    ground_truth: Path
    patients: int
    dicom_patients: int
    nifti_patients: int
    files: int
    bytes: int
    faults: dict[str, int] = field(default_factory=dict)
    conditions: dict[str, int] = field(default_factory=dict)
    """Number of patients per named condition."""


def patient_key(index: int) -> str:
    return f"P{index:04d}"


def _dump_json(path: Path, doc: Any) -> None:
    path.write_text(json.dumps(doc, sort_keys=True, indent=1, ensure_ascii=True) + "\n", encoding="ascii")


def _write_cbct(
    drop: Path, patient: SyntheticPatient, identity: Identity, fmt: str, rng: np.random.Generator
) -> tuple[list[dict[str, Any]], list[str], dict[str, Any]]:
    """Write the CBCT; returns (file entries, planted strings, extra geometry facts)."""
    if fmt == "nifti":
        rel = Path("PLANNING_EXPORT", f"{identity.file_stem}_{identity.patient_id}")
        rel = rel / f"{identity.file_stem}_{identity.study_date}_CBCT.nii.gz"
        (drop / rel).parent.mkdir(parents=True, exist_ok=True)
        aux = identity.dicom_name[:24]
        write_nifti(
            drop / rel,
            patient.cbct,
            descrip=f"{identity.display_name} DOB {identity.birth_date_iso} ID {identity.patient_id}"[:80],
            aux_file=aux,
            intent_name=identity.patient_id[:16],
        )
        return [{"path": str(rel), "role": "cbct_nifti"}], [aux, identity.patient_id[:16]], {}
    folder = Path("PACS_EXPORT", identity.pacs_folder, f"{identity.study_date}_CBCT")
    style = NAME_STYLES[int(rng.integers(len(NAME_STYLES)))]
    written = write_series(
        drop / folder,
        patient.cbct,
        identity,
        rng,
        style=style,
        description=series_description(identity, patient.cbct.spacing[0]),
    )
    files = [{"path": str(p.relative_to(drop)), "role": "cbct_slice", "k": k} for k, p in enumerate(written.paths)]
    return files, list(written.all_uids), {"rescale_intercept": written.rescale_intercept, "file_names": style}


def _write_ios(
    drop: Path, truth_dir: Path, jaw: Jaw | Literal["bite"], mesh: Mesh, identity: Identity, fmt: str
) -> tuple[list[dict[str, Any]], str]:
    """Write one jaw's mesh and Teeth3DS sidecar (+ true labels .npy); returns (file entries, labels .npy).

    ``jaw="bite"``: a bite-registration scan, written without a sidecar (clinics export it unlabelled)."""
    folder = Path("IOS_EXPORT", f"{identity.file_stem}_{identity.patient_id}")
    stem = f"{identity.file_stem}_{identity.ios_date}_{_JAW_WORD[jaw]}"
    (drop / folder).mkdir(parents=True, exist_ok=True)
    if mesh.labels is None or mesh.instances is None:
        raise InputError(f"{identity.key}: the {jaw} scan has no labels; synthetic scans are always labelled")
    vertices, faces = mesh.vertices, mesh.faces
    labels, instances = mesh.labels, mesh.instances
    mesh_rel = folder / f"{stem}.{fmt}"
    side_labels, side_instances = labels, instances
    if fmt == "stl":
        # STL has no shared vertices: the sidecar lists one label per triangle corner (the vertices that
        # ``trimesh.load(..., process=False)`` returns); the ground truth keeps the merged order our reader
        # returns (first appearance), so renumber the mesh to it first.
        order, faces_stl = renumber_by_first_appearance(faces)
        vertices, labels, instances = vertices[order], labels[order], instances[order]
        side_labels, side_instances = labels[faces_stl].ravel(), instances[faces_stl].ravel()
        write_stl(drop / mesh_rel, vertices, faces_stl, header=stl_header(identity, _JAW_WORD[jaw]))
    elif fmt == "ply":
        write_ply(drop / mesh_rel, vertices, faces, comments=mesh_comments(identity, jaw))
    else:
        write_obj(drop / mesh_rel, vertices, faces, comments=mesh_comments(identity, jaw))
    labels_rel = Path(identity.key, f"ios_{jaw}_labels.npy")
    np.save(truth_dir / labels_rel, np.asarray(labels, dtype=np.int16))
    if jaw == "bite":
        return [{"path": str(mesh_rel), "role": "ios_bite", "vertices": len(vertices)}], str(labels_rel)
    sidecar_rel = folder / f"{stem}.json"
    write_teeth3ds_json(
        drop / sidecar_rel,
        id_patient=identity.patient_id,
        jaw=jaw,
        labels=side_labels,
        instances=side_instances,
        allow_deciduous=bool(np.any(np.asarray(labels) > 48)),
    )
    files: list[dict[str, Any]] = [
        {"path": str(mesh_rel), "role": "ios_mesh", "jaw": jaw, "vertices": len(vertices)},
        {"path": str(sidecar_rel), "role": "ios_labels", "jaw": jaw},
    ]
    return files, str(labels_rel)


def write_patient(
    drop: Path, truth_dir: Path, patient: SyntheticPatient, config: SynthConfig, rng: np.random.Generator
) -> tuple[dict[str, Any], PatientFiles, list[str]]:
    """Write one patient's raw files and ground-truth arrays; returns (truth entry, files, planted strings).

    ``rng`` draws the identity, the CBCT format (NIfTI with probability ``config.nifti_fraction``), the mesh
    format, the DICOM file naming and the UIDs.
    """
    key = patient_key(patient.index)
    identity = draw_identity(rng, key)
    fmt = "nifti" if rng.random() < config.nifti_fraction else "dicom"
    mesh_fmt = str(config.mesh_formats[int(rng.integers(len(config.mesh_formats)))])
    (truth_dir / key).mkdir(parents=True, exist_ok=True)
    np.save(truth_dir / key / "cbct.npy", np.asarray(patient.cbct.array, dtype=np.int16))
    np.save(truth_dir / key / "cbct_labels.npy", np.asarray(patient.cbct_labels.array, dtype=np.uint8))
    files, planted, cbct_facts = _write_cbct(drop, patient, identity, fmt, rng)
    ios_labels: dict[str, str] = {}
    for jaw in JAWS:
        jaw_files, ios_labels[jaw] = _write_ios(drop, truth_dir, jaw, patient.ios[jaw], identity, mesh_fmt)
        files += jaw_files
    anatomy = patient.anatomy
    entry: dict[str, Any] = {
        "key": key,
        "index": patient.index,
        "format": fmt,
        "mesh_format": mesh_fmt,
        "identity": identity.to_dict(),
        "files": files,
        "cbct": {
            "shape": list(patient.cbct.shape),
            "spacing": list(patient.cbct.spacing),
            "affine": patient.cbct.affine.tolist(),
            "frame": "LPS",
            **cbct_facts,
        },
        "arrays": {
            "cbct": f"{key}/cbct.npy",
            "cbct_labels": f"{key}/cbct_labels.npy",
            "ios_labels": ios_labels,
        },
        "world_from_ios": {jaw: np.asarray(patient.world_from_ios[jaw]).tolist() for jaw in JAWS},
        "teeth": sorted(t.fdi for t in anatomy.teeth),
        "missing": sorted(int(m) for m in anatomy.missing),
        "restorations": {str(t.fdi): t.restoration for t in anatomy.teeth},
        "faults": [],
    }
    if patient.conditions:
        entry["conditions"] = list(patient.conditions)
        entry["variety"] = dict(patient.variety)
        if patient.bite_scan is not None and patient.world_from_bite is not None:
            bite_files, ios_labels["bite"] = _write_ios(drop, truth_dir, "bite", patient.bite_scan, identity, mesh_fmt)
            files += bite_files
            entry["variety"]["world_from_bite"] = np.asarray(patient.world_from_bite).tolist()
    patient_files = PatientFiles(
        key=key,
        format="nifti" if fmt == "nifti" else "dicom",
        cbct=tuple(f["path"] for f in files if f["role"] in ("cbct_slice", "cbct_nifti")),
        meshes={f["jaw"]: f["path"] for f in files if f["role"] == "ios_mesh"},
        sidecars={f["jaw"]: f["path"] for f in files if f["role"] == "ios_labels"},
    )
    return entry, patient_files, [*phi_strings(identity), *planted]


def _check_out(out: Path) -> None:
    for sub in (DROP_DIR, TRUTH_DIR):
        if (out / sub).exists() and any((out / sub).iterdir()):
            raise InputError(
                f"{out / sub} already exists and is not empty; a drop is written into a fresh folder — "
                "choose another --out or delete it"
            )


def write_drop(
    out: Path,
    *,
    patients: int,
    seed: int,
    bad_fraction: float = 0.0,
    config: SynthConfig = SynthConfig(),
    progress: Callable[[int], None] | None = None,
    conditions: Mapping[str, float] | None = None,
) -> DropSummary:
    """Write ``patients`` synthetic patients as a raw clinical drop under ``out/drop`` and the ground truth
    under ``out/ground_truth`` (see the module docstring for the layout).

    ``bad_fraction`` of the patients (rounded) get one injected fault each
    (:mod:`toothmcl_data.synth.faults`), recorded in ``truth.json``. ``conditions``: ``{name: fraction}``; each
    named condition goes to ``round(fraction × patients)`` patients (:func:`synth.conditions.plan_conditions`).
    ``progress`` is called after each patient with the number of patients written so far.
    """
    if patients < 1:
        raise ConfigError(f"patients must be ≥ 1, got {patients}")
    if seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed}")
    if not 0.0 <= bad_fraction <= 1.0:
        raise ConfigError(f"bad_fraction must be in [0, 1], got {bad_fraction}")
    out = Path(out)
    _check_out(out)
    drop, truth_dir = out / DROP_DIR, out / TRUTH_DIR
    drop.mkdir(parents=True, exist_ok=True)
    truth_dir.mkdir(parents=True, exist_ok=True)
    entries: list[dict[str, Any]] = []
    all_files: list[PatientFiles] = []
    phi: dict[str, list[str]] = {}
    plan = plan_conditions(patients, conditions or {}, np.random.default_rng([seed, 4, 4, 4]))
    for index in range(patients):
        patient = make_patient(config, np.random.default_rng([seed, index]), index, plan[index])
        entry, files, planted = write_patient(drop, truth_dir, patient, config, np.random.default_rng([seed, index, 1]))
        entries.append(entry)
        all_files.append(files)
        phi[entry["key"]] = sorted(set(planted))
        log.info("synth drop: wrote %s (%s, %s)", entry["key"], entry["format"], entry["mesh_format"])
        if progress is not None:
            progress(index + 1)
    faults = plan_faults([f.format for f in all_files], bad_fraction, np.random.default_rng([seed, 3, 3, 3]))
    for index, kind in sorted(faults.items()):
        other = all_files[(index + 1) % patients] if patients > 1 else None
        record = apply_fault(kind, drop, all_files[index], np.random.default_rng([seed, index, 2]), other=other)
        entries[index]["faults"].append(record.to_dict())
        entries[index]["files"] = updated_files(entries[index]["files"], record)
        phi[entries[index]["key"]] = sorted(set(phi[entries[index]["key"]]) | set(record.planted))
    truth = {
        "format_version": 1,
        "seed": seed,
        "patients": entries,
        "n_patients": patients,
        "bad_fraction": bad_fraction,
        "config": config.to_dict(),
        "drop": DROP_DIR,
    }
    if conditions:
        truth["conditions"] = dict(sorted(conditions.items()))
    _dump_json(truth_dir / "truth.json", truth)
    _dump_json(truth_dir / "phi.json", phi)
    written = [p for p in drop.rglob("*") if p.is_file()]
    formats = Counter(e["format"] for e in entries)
    return DropSummary(
        root=out,
        drop=drop,
        ground_truth=truth_dir,
        patients=patients,
        dicom_patients=formats["dicom"],
        nifti_patients=formats["nifti"],
        files=len(written),
        bytes=sum(p.stat().st_size for p in written),
        faults=dict(sorted(Counter(faults.values()).items())),
        conditions=dict(sorted(Counter(c for p in plan for c in p).items())),
    )
