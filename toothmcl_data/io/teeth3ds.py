"""Teeth3DS per-vertex label sidecars (``<scan>.json`` beside ``<scan>.obj``).

The Teeth3DS format (3DTeethSeg challenge) is one JSON object::

    {"id_patient": "01A6GW4A", "jaw": "upper", "labels": [0, 0, 11, ...], "instances": [0, 0, 3, ...]}

``labels`` are FDI codes per vertex (0 = gingiva) in the mesh file's vertex order; ``instances`` number the
teeth of the scan (0 = gingiva, 1.. = one tooth each).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray

from toothmcl_data.errors import InputNotFoundError, LabelSchemeError, MeshError
from toothmcl_data.fdi import to_fdi
from toothmcl_data.io.meshwrite import write_atomic
from toothmcl_data.types import JAWS, Jaw

_KEYS = ("id_patient", "jaw", "labels", "instances")


@dataclass(frozen=True, eq=False)
class Teeth3DSLabels:
    """One Teeth3DS sidecar.

    labels: (n,) int16 FDI per vertex (0 = gingiva), in the mesh's vertex order.
    instances: (n,) int16 per vertex (0 = gingiva, k ≥ 1 = one tooth).
    """

    id_patient: str
    jaw: Jaw
    labels: NDArray[np.int16]
    instances: NDArray[np.int16]


def _ints(values: Any) -> NDArray[np.int64] | None:
    """``values`` as int64 when it is a list of JSON integers (no bools, floats, strings), else None.

    The type check runs in C (``set(map(type, …))``), not as a Python test per entry: sidecars hold one entry
    per vertex."""
    if not isinstance(values, list) or not set(map(type, values)) <= {int}:
        return None
    try:
        return np.asarray(values, dtype=np.int64)
    except OverflowError:  # handled: None makes the caller raise a LabelError naming the file and key
        return None


def _int_list(path: Path, doc: dict[str, Any], key: str) -> NDArray[np.int16]:
    values = doc[key]
    arr = _ints(values)
    if arr is None:
        raise MeshError(
            f"{path}: '{key}' must be a list of integers, found {type(values).__name__} "
            f"with non-integer entries; fix the sidecar or regenerate it"
        )
    if arr.size and (arr.min() < -32768 or arr.max() > 32767):
        raise MeshError(f"{path}: '{key}' values must fit int16, found range [{arr.min()}, {arr.max()}]")
    return arr.astype(np.int16)


def read_teeth3ds_json(path: str | Path) -> Teeth3DSLabels:
    """Read and validate a Teeth3DS sidecar; labels are checked against the ``teeth3ds`` scheme (FDI).

    Primary teeth (FDI 51–85, a child's or mixed dentition) are kept as they are: they are valid FDI codes, and the
    library pairs them like permanent ones (they are never mapped onto permanent codes)."""
    path = Path(path)
    if not path.is_file():
        raise InputNotFoundError(f"{path}: label sidecar not found; check the path")
    try:
        doc = orjson.loads(path.read_bytes())  # a C parser: sidecars hold one label per vertex
    except (UnicodeDecodeError, json.JSONDecodeError) as err:  # orjson.JSONDecodeError is a json.JSONDecodeError
        raise MeshError(f"{path}: not valid UTF-8 JSON ({err}); fix or regenerate the sidecar") from err
    if not isinstance(doc, dict):
        raise MeshError(f"{path}: expected a JSON object with keys {list(_KEYS)}, found {type(doc).__name__}")
    missing = [k for k in _KEYS if k not in doc]
    if missing:
        raise MeshError(f"{path}: missing key(s) {missing}; a Teeth3DS sidecar needs {list(_KEYS)}")
    id_patient, jaw = doc["id_patient"], doc["jaw"]
    if not isinstance(id_patient, str):
        raise MeshError(f"{path}: 'id_patient' must be a string, found {type(id_patient).__name__}")
    if jaw not in JAWS:
        raise MeshError(f"{path}: 'jaw' must be 'upper' or 'lower', found {jaw!r}")
    codes = _int_list(path, doc, "labels")
    instances = _int_list(path, doc, "instances")
    if len(codes) != len(instances):
        raise MeshError(
            f"{path}: 'labels' has {len(codes)} entries but 'instances' has {len(instances)}; "
            "both must have one entry per mesh vertex"
        )
    try:
        labels = to_fdi(codes, "teeth3ds", jaw=jaw, allow_deciduous=True)
    except LabelSchemeError as err:
        raise LabelSchemeError(f"{path}: {err}") from err
    return Teeth3DSLabels(id_patient, jaw, np.asarray(labels, dtype=np.int16), instances)


def write_teeth3ds_json(
    path: str | Path,
    *,
    id_patient: str,
    jaw: Jaw,
    labels: NDArray[np.integer],
    instances: NDArray[np.integer],
    allow_deciduous: bool = False,
) -> None:
    """Write a Teeth3DS sidecar deterministically and atomically.

    labels: (n,) integer FDI per vertex (0 = gingiva), in the mesh's vertex order (Teeth3DS codes are FDI).
    instances: (n,) integer per vertex (0 = gingiva, k ≥ 1 = one tooth).
    allow_deciduous: also accept primary teeth (FDI 51–85), e.g. a child's scan.
    """
    path = Path(path)
    lab = np.asarray(labels).ravel()
    inst = np.asarray(instances).ravel()
    if jaw not in JAWS:
        raise MeshError(f"{path}: jaw must be 'upper' or 'lower', got {jaw!r}")
    if len(lab) != len(inst):
        raise MeshError(f"{path}: labels has {len(lab)} entries but instances has {len(inst)}; they must match")
    to_fdi(
        lab, "teeth3ds", jaw=jaw, allow_deciduous=allow_deciduous
    )  # raises LabelSchemeError on codes Teeth3DS cannot hold
    doc = {
        "id_patient": str(id_patient),
        "jaw": jaw,
        "labels": [int(x) for x in lab.tolist()],
        "instances": [int(x) for x in inst.tolist()],
    }
    write_atomic(path, (json.dumps(doc) + "\n").encode("utf-8"))
