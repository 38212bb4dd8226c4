"""Register one case given as files: read the CBCT (DICOM folder or NIfTI), its optional label map and one scan,
register, and write ``transform.json``, ``qc.json`` and the overlay picture.

``transform.json``'s ``ios_to_cbct`` maps scan mm to the CBCT file's own world convention: LPS for DICOM, RAS
for NIfTI (the library works in LPS inside; the conversion happens here, at the edge).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import numpy as np

from toothmcl_data.errors import InputError, InputNotFoundError
from toothmcl_data.io.dicom import read_series
from toothmcl_data.io.mesh import read_mesh
from toothmcl_data.io.meshwrite import write_atomic
from toothmcl_data.io.volume import read_nifti
from toothmcl_data.register.config import RegisterConfig
from toothmcl_data.register.figures import registration_png
from toothmcl_data.register.jaw import register_jaw
from toothmcl_data.types import LPS_FROM_RAS, Registration, Volume

NIFTI_SUFFIXES = (".nii", ".nii.gz")


def read_volume(path: Path) -> tuple[Volume, Literal["LPS", "RAS"]]:
    """A CBCT or label map from a DICOM series folder (world LPS) or a NIfTI file (world RAS on disk); the
    Volume is LPS either way, the second value names the file's own convention."""
    path = Path(path)
    if not path.exists():
        raise InputNotFoundError(f"{path}: no such file or folder; pass a DICOM series folder or a NIfTI file")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
        return read_series(files), "LPS"
    if path.name.lower().endswith(NIFTI_SUFFIXES):
        return read_nifti(path), "RAS"
    raise InputError(
        f"{path}: unsupported volume; expected a DICOM series folder or a NIfTI file (.nii, .nii.gz) — convert "
        "other formats (MHA, NRRD) to NIfTI first"
    )


def registration_record(reg: Registration, world: Literal["LPS", "RAS"]) -> dict[str, Any]:
    """JSON-ready QC of one registration; ``ios_to_cbct`` row-major 4×4 in the ``world`` convention."""
    T = reg.world_from_ios if world == "LPS" else LPS_FROM_RAS @ reg.world_from_ios
    return {
        "jaw": reg.jaw,
        "ios_to_cbct": [[float(x) for x in row] for row in T],
        "world": world,
        "verdict": reg.verdict,
        "rms_mm": reg.rms_mm,
        "p95_mm": reg.p95_mm,
        "inlier_fraction": reg.inlier_fraction,
        "per_tooth_mm": {str(k): v for k, v in sorted(reg.per_tooth_mm.items())},
        "flags": list(reg.flags),
    }


def register_files(
    cbct_path: Path,
    ios_path: Path,
    out: Path,
    *,
    labels_path: Path | None = None,
    config: RegisterConfig | None = None,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Register the scan ``ios_path`` into the CBCT ``cbct_path`` and write the results under ``out``.

    Returns the report: the QC record plus the paths written (or that would be written, with ``dry_run``).
    """
    config = config or RegisterConfig()
    out = Path(out)
    paths = {"transform": out / "transform.json", "qc": out / "qc.json", "figure": out / "registration.png"}
    cbct, world = read_volume(cbct_path)
    labels = read_volume(labels_path)[0] if labels_path is not None else None
    mesh = read_mesh(ios_path)
    reg = register_jaw(cbct, mesh, cbct_labels=labels, config=config)
    record = registration_record(reg, world)
    report = {**record, "files": {k: str(v) for k, v in paths.items()}, "dry_run": dry_run}
    if dry_run:
        return report
    out.mkdir(parents=True, exist_ok=True)
    transform = {"ios_to_cbct": record["ios_to_cbct"], "world": world, "jaw": reg.jaw}
    write_atomic(paths["transform"], (json.dumps(transform, indent=2) + "\n").encode())
    qc = {
        **record,
        "inputs": {"cbct": str(cbct_path), "ios": str(ios_path), "cbct_labels": str(labels_path or "")},
        "config": config.to_dict(),
        "world_from_ios_lps": [[float(x) for x in row] for row in np.asarray(reg.world_from_ios)],
    }
    write_atomic(paths["qc"], (json.dumps(qc, indent=2, sort_keys=True) + "\n").encode())
    registration_png(cbct, mesh, reg, paths["figure"], title=f"{Path(ios_path).name} → {Path(cbct_path).name}")
    return report
