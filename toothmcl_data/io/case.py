"""Load one de-identified case folder (written by :mod:`toothmcl_data.deid.run`) as a :class:`Case`.

``<case>/cbct/*.dcm`` (a DICOM series) or ``<case>/cbct.nii.gz`` → ``Case.cbct`` (LPS); ``<case>/ios/<jaw>.ply``
+ ``<jaw>.json`` → ``Case.ios[jaw]`` in frame ``"ios:<pseudonym>:<jaw>"`` with FDI labels; ``case.json`` →
``Case.sources`` (role → sha256 of the raw input; a series is the sha256 of its members' sorted hashes).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path

from toothmcl_data.errors import InputError, InputNotFoundError
from toothmcl_data.io.dicom import read_series
from toothmcl_data.io.mesh import read_mesh
from toothmcl_data.io.volume import read_nifti
from toothmcl_data.types import JAWS, Case, Jaw, Mesh, Volume

log = logging.getLogger(__name__)


def load_case(case_dir: Path, *, cbct: Volume | None = None, ios: Mapping[Jaw, Mesh] | None = None) -> Case:
    """Read the case at ``case_dir`` (its folder name is the pseudonym).

    cbct: the case's CBCT when the caller holds it already (as :func:`toothmcl_data.deid.case.deidentify_case`
    decoded it); the series is then not read again. ios: the case's scans per jaw when the caller holds them as
    reading ``<case>/ios/`` would give them (``deidentify_case(..., keep_meshes=True)``); they are then not read.
    """
    case_dir = Path(case_dir)
    meta_path = case_dir / "case.json"
    if not meta_path.is_file():
        raise InputNotFoundError(
            f"{case_dir} has no case.json; expected a case folder written by `toothmcl-data deid run`"
        )
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    pn = str(meta.get("pseudonym", case_dir.name))
    if pn != case_dir.name:
        raise InputError(f"{meta_path} names pseudonym {pn!r} but the folder is {case_dir.name!r}; the case was moved")
    if cbct is None:
        series = sorted((case_dir / "cbct").glob("*.dcm")) if (case_dir / "cbct").is_dir() else []
        if series:
            cbct = read_series(series)
        elif (case_dir / "cbct.nii.gz").is_file():
            cbct = read_nifti(case_dir / "cbct.nii.gz")
    scans: dict[Jaw, Mesh] = dict(ios) if ios is not None else {}
    for jaw in JAWS if ios is None else ():
        mesh_path = case_dir / "ios" / f"{jaw}.ply"
        if mesh_path.is_file():
            side = mesh_path.with_suffix(".json")
            scans[jaw] = read_mesh(mesh_path, labels=side if side.is_file() else None, jaw=jaw, frame=f"ios:{pn}:{jaw}")
    sources = {str(k): str(v) for k, v in dict(meta.get("sources", {})).items()}
    return Case(pseudonym=pn, cbct=cbct, cbct_labels=None, ios=scans, sources=sources)
