"""What a publish takes in: one :class:`CaseRecord` per patient, plus the per-publish :class:`Provenance`.

A case's content hash is a sha256 over a canonical encoding of everything stored for it (arrays with dtype and
shape, transforms, QC numbers, tooth-table rows, source hashes, attributes); the store recomputes it from what
it reads back to verify a version, and compares it with the base version's to skip unchanged cases.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
from numpy.typing import NDArray

from toothmcl_data.errors import StoreError
from toothmcl_data.store.layout import MESH_FIELDS
from toothmcl_data.types import JAWS, Case, Jaw, Registration, ToothPair


@dataclass(frozen=True, eq=False)
class CaseRecord:
    """One curated patient, ready to publish.

    case: the de-identified case (CBCT int16 LPS, optional FDI label map, IOS jaws in their own frames).
    registrations: per jaw, the IOS → CBCT world registration with QC.
    pairs: the tooth pairs (crops and crown points in CBCT LPS world mm); all pairs of a store share one
        crop shape and one point count.
    teeth: rows of the tooth table (one dict per tooth, JSON-able scalars or lists; no paths, no identity).
    attributes: extra per-case columns for the ``cases`` table (e.g. ``source``, ``scanner``) — what splits
        can be stratified by.
    encoded: the case's arrays already encoded for the store (:func:`~toothmcl_data.store.casewrite.encode_case`,
        made in the case's own task), which a publish with the same layout copies instead of encoding them; not
        content (the content hash does not cover it).
    """

    case: Case
    registrations: Mapping[Jaw, Registration] = field(default_factory=dict)
    pairs: Sequence[ToothPair] = ()
    teeth: Sequence[Mapping[str, Any]] = ()
    attributes: Mapping[str, str | int | float | bool] = field(default_factory=dict)
    encoded: EncodedCase | None = field(default=None, repr=False)

    @property
    def pseudonym(self) -> str:
        return self.case.pseudonym

    @cached_property
    def content_hash(self) -> str:
        """:func:`case_content_hash` of this record, computed on first use and kept with the record (also through
        pickling), so the case's own task can hash it while its arrays are in memory and the serial publish need
        not hash it again. A record is immutable: its arrays must not change once it is built."""
        return case_content_hash(self)


@dataclass(frozen=True, eq=False)
class EncodedCase:
    """What writing one case into a store makes, made ahead: stored objects (zarr metadata and shards) by key.

    layout: the :class:`~toothmcl_data.store.layout.LayoutConfig` (as a dict) they were encoded with — a store with
    another layout encodes the case itself; arrays: key below ``cases/<pseudonym>/`` (e.g. ``cbct/c/0/0/0``) →
    bytes, everything of the case but its own group (whose attributes name its pair slots, known at publish);
    pairs: per pair array, the bytes of each shard of the case's slots, counted from its first slot (None where
    the shard holds only the fill value: nothing is stored for it)."""

    layout: Mapping[str, int]
    arrays: Mapping[str, bytes]
    pairs: Mapping[str, Sequence[bytes | None]] = field(default_factory=dict)


@dataclass(frozen=True)
class Provenance:
    """What made a version: code version, configuration, input content hashes, key fingerprint (never the
    key), data source and licence. Recorded in the ``provenance`` table and on the dataset card."""

    code_version: str = ""
    config: Mapping[str, Any] = field(default_factory=dict)
    input_hashes: Mapping[str, str] = field(default_factory=dict)
    key_fingerprint: str = ""
    source: str = ""
    licence: str = ""

    def __post_init__(self) -> None:
        paths = sorted(k for k in self.input_hashes if "/" in k or "\\" in k)
        if paths:
            raise StoreError(
                f"Provenance.input_hashes keys look like file paths ({paths[:3]}); published provenance must not "
                "name original paths: key the hashes by role or by the hash itself"
            )
        try:
            json.dumps(dict(self.config), sort_keys=True)
        except (TypeError, ValueError) as err:
            raise StoreError(f"Provenance.config must be JSON-able (a config's to_dict()), got: {err}") from err

    def to_dict(self) -> dict[str, Any]:
        return {
            "code_version": self.code_version,
            "config": dict(self.config),
            "input_hashes": dict(sorted(self.input_hashes.items())),
            "key_fingerprint": self.key_fingerprint,
            "source": self.source,
            "licence": self.licence,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Provenance:
        known = {"code_version", "config", "input_hashes", "key_fingerprint", "source", "licence"}
        unknown = set(data) - known
        if unknown:
            raise StoreError(f"unknown Provenance keys {sorted(unknown)}; known: {sorted(known)}")
        return cls(**dict(data))


def canonical_json(value: Any) -> str:
    """JSON with sorted keys, numpy scalars as Python numbers, non-finite floats as strings."""

    def fix(v: Any) -> Any:
        if isinstance(v, np.generic):
            v = v.item()
        if isinstance(v, float) and not math.isfinite(v):
            return repr(v)
        if isinstance(v, Mapping):
            return {str(k): fix(x) for k, x in v.items()}
        if isinstance(v, list | tuple | np.ndarray):
            return [fix(x) for x in v]
        if v is None or isinstance(v, bool | int | float | str):
            return v
        return str(v)

    return json.dumps(fix(value), sort_keys=True, separators=(",", ":"))


def canonical_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A table row without its None values (absent and null read back the same from Parquet)."""
    return {str(k): v for k, v in row.items() if v is not None}


def _finite(value: float) -> float | None:
    """JSON has no NaN/inf (a failed fit can have undefined residuals): they are stored as null."""
    return float(value) if math.isfinite(value) else None


def registration_dict(reg: Registration) -> dict[str, Any]:
    """A registration as JSON-able data (also its zarr attributes); undefined residuals become null."""
    return {
        "jaw": reg.jaw,
        "world_from_ios": np.asarray(reg.world_from_ios, dtype=np.float64).tolist(),
        "rms_mm": _finite(reg.rms_mm),
        "p95_mm": _finite(reg.p95_mm),
        "inlier_fraction": _finite(reg.inlier_fraction),
        "per_tooth_mm": [[int(k), _finite(v)] for k, v in sorted(reg.per_tooth_mm.items())],
        "verdict": reg.verdict,
        "flags": list(reg.flags),
    }


def _number(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def registration_from_dict(data: Mapping[str, Any]) -> Registration:
    return Registration(
        jaw=data["jaw"],
        world_from_ios=np.asarray(data["world_from_ios"], dtype=np.float64),
        rms_mm=_number(data["rms_mm"]),
        p95_mm=_number(data["p95_mm"]),
        inlier_fraction=_number(data["inlier_fraction"]),
        per_tooth_mm={int(k): _number(v) for k, v in data["per_tooth_mm"]},
        verdict=data["verdict"],
        flags=tuple(data["flags"]),
    )


def _array(h: Any, name: str, arr: NDArray[Any] | None) -> None:
    if arr is None:
        h.update(f"{name}:none;".encode())
        return
    a = np.ascontiguousarray(arr)
    a = a.astype(a.dtype.newbyteorder("<"), copy=False)
    h.update(f"{name}:{a.dtype.str}:{a.shape};".encode())
    h.update(a.data)


def validate_record(record: CaseRecord) -> None:
    """Refuse a record the store cannot hold as given: a pseudonym that is not a plain name, a CBCT that is not
    int16 scanner values, a tooth pair naming another case, crops that are not one (X, Y, Z) shape, crown points
    that are not (N, 6) (x, y, z, nx, ny, nz)."""
    case = record.case
    p = case.pseudonym
    if not p or "/" in p or p.startswith("."):
        raise StoreError(f"case {p!r}: a pseudonym must be non-empty, without '/', not starting with '.'")
    if case.cbct is not None and case.cbct.array.dtype != np.int16:
        raise StoreError(
            f"case {p}: CBCT must be int16 scanner values, got {case.cbct.array.dtype}; convert on read (io.*)"
        )
    for pair in record.pairs:
        if pair.case != p:
            raise StoreError(f"case {p}: tooth pair {pair.fdi} names case {pair.case!r}")
        if pair.cbct_crop.ndim != 3 or pair.label_crop.shape != pair.cbct_crop.shape:
            raise StoreError(
                f"case {p}: tooth {pair.fdi}: cbct_crop and label_crop must be one (X, Y, Z) shape, got "
                f"{pair.cbct_crop.shape} and {pair.label_crop.shape}"
            )
        if pair.ios_points.ndim != 2 or pair.ios_points.shape[1] != 6:
            raise StoreError(f"case {p}: tooth {pair.fdi}: ios_points must be (N, 6), got {pair.ios_points.shape}")


def sorted_pairs(pairs: Sequence[ToothPair]) -> list[ToothPair]:
    """Pairs in store order: by FDI, stable for equal FDI."""
    return sorted(pairs, key=lambda p: p.fdi)


def case_content_hash(record: CaseRecord) -> str:
    """sha256 (hex) over the canonical content of one case (see the module docstring)."""
    case = record.case
    h = hashlib.sha256(b"toothmcl-case-v1;")
    h.update(f"pseudonym:{case.pseudonym};".encode())
    _array(h, "cbct", None if case.cbct is None else case.cbct.array)
    _array(h, "cbct_affine", None if case.cbct is None else case.cbct.affine)
    _array(h, "labels", None if case.cbct_labels is None else case.cbct_labels.array)
    _array(h, "labels_affine", None if case.cbct_labels is None else case.cbct_labels.affine)
    for jaw in JAWS:
        mesh = case.ios.get(jaw)
        if mesh is None:
            h.update(f"ios:{jaw}:none;".encode())
            continue
        h.update(f"ios:{jaw}:{mesh.frame};".encode())
        for name in MESH_FIELDS:
            _array(h, f"ios:{jaw}:{name}", getattr(mesh, name))
    regs = {jaw: registration_dict(r) for jaw, r in sorted(record.registrations.items())}
    h.update(f"registrations:{canonical_json(regs)};".encode())
    for i, pair in enumerate(sorted_pairs(record.pairs)):
        h.update(f"pair:{i}:{int(pair.fdi)}:{canonical_json(list(pair.flags))};".encode())
        _array(h, "cbct_crop", np.asarray(pair.cbct_crop, dtype=np.int16))
        _array(h, "label_crop", np.asarray(pair.label_crop, dtype=np.int16))
        _array(h, "world_from_crop", np.asarray(pair.world_from_crop, dtype=np.float64))
        _array(h, "ios_points", np.asarray(pair.ios_points, dtype=np.float32))
    teeth = sorted((canonical_row({**row, "pseudonym": case.pseudonym}) for row in record.teeth), key=canonical_json)
    h.update(f"teeth:{canonical_json(teeth)};".encode())
    h.update(f"sources:{canonical_json(dict(case.sources))};".encode())
    h.update(f"attributes:{canonical_json(dict(record.attributes))};".encode())
    return h.hexdigest()
