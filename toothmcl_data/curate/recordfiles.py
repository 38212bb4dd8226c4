"""Case record files of a curation run: one pickled :class:`~toothmcl_data.store.CaseRecord` per case under
``WORK/records/<pseudonym>.pkl``, written by the case's task and streamed into ``publish`` one at a time.

A record file holds the case's volumes (CBCT, label map) once: as the stored bytes encoded in the case's task
(``CaseRecord.encoded``), not also as voxels. A loaded record's volumes are zarr arrays over those bytes: their
shape and dtype are at hand, their voxels decoded only when read (``np.asarray``) — which a publish into a store
of the same layout never does (it copies the bytes)."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

import zarr
from numpy.typing import NDArray
from zarr.core.buffer import Buffer, cpu

from toothmcl_data.errors import StoreError
from toothmcl_data.heap import release_memory
from toothmcl_data.store import CaseRecord, LayoutConfig
from toothmcl_data.store.casewrite import encode_case
from toothmcl_data.types import Volume

RECORDS = "records"
"""Folder of the record files under the working folder."""


@dataclass(frozen=True)
class _RecordFile:
    """What a record file holds: ``record`` without its volumes (``case.cbct`` and ``case.cbct_labels`` None;
    their bytes are in ``record.encoded``), each volume's (4, 4) affine by name, and the record's content hash."""

    record: CaseRecord
    affines: dict[str, NDArray[Any]]
    content_hash: str


def save_record(record: CaseRecord, work: Path, *, layout: LayoutConfig | None = None) -> Path:
    """Write ``record`` to ``work/records/<pseudonym>.pkl`` atomically (a temporary file renamed); returns the path.

    What the serial publish would otherwise compute is done here, in the case's task while its arrays are in
    memory, and saved with the record: its content hash (:attr:`~toothmcl_data.store.CaseRecord.content_hash`) and
    its arrays encoded for a store of ``layout`` (default: the default layout; ``CaseRecord.encoded``, which a
    publish into a store of another layout decodes and encodes again). The volumes' voxels are saved only as
    their encoded bytes (see the module docstring)."""
    record = replace(record, encoded=encode_case(record, layout or LayoutConfig()))
    case = record.case
    affines = {
        name: vol.affine for name, vol in (("cbct", case.cbct), ("cbct_labels", case.cbct_labels)) if vol is not None
    }
    lean = replace(record, case=replace(case, cbct=None, cbct_labels=None))
    saved = _RecordFile(lean, affines, record.content_hash)
    path = work / RECORDS / f"{record.pseudonym}.pkl"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as fh:  # streamed: no second copy of the record's arrays as one bytes object
        pickle.dump(saved, fh, protocol=pickle.HIGHEST_PROTOCOL)
    tmp.replace(path)
    return path


def _loaded(saved: _RecordFile, path: str) -> CaseRecord:
    """The record of a record file, its volumes zarr arrays over their encoded bytes, its content hash kept."""
    record = saved.record
    if saved.affines:
        if record.encoded is None:
            raise StoreError(
                f"record file {path} names volumes {sorted(saved.affines)} but holds no encoded arrays; it was not "
                "written by save_record — curate the case again"
            )
        objects: dict[str, Buffer] = {key: cpu.Buffer.from_bytes(data) for key, data in record.encoded.arrays.items()}
        store = zarr.storage.MemoryStore(objects, read_only=True)

        def volume(name: str) -> Volume | None:
            if name not in saved.affines:
                return None
            # a zarr array stands in for the voxels: shape, dtype and ndim as numpy's, decoded by np.asarray
            return Volume(cast(NDArray[Any], zarr.open_array(store, path=name, mode="r")), saved.affines[name])

        record = replace(record, case=replace(record.case, cbct=volume("cbct"), cbct_labels=volume("cbct_labels")))
    vars(record)["content_hash"] = saved.content_hash  # the cached property's slot: not hashed again
    return record


def load_records(paths: list[str]) -> Iterator[CaseRecord]:
    """The saved records at ``paths``, in order, one in memory at a time (the heap trimmed between them)."""
    for path in paths:
        with Path(path).open("rb") as fh:
            record = _loaded(pickle.load(fh), path)
        yield record
        del record
        release_memory()
