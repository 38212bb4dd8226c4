"""Case record files of a curation run: one pickled :class:`~toothmcl_data.store.CaseRecord` per case under
``WORK/records/<pseudonym>.pkl``, written by the case's task and streamed into ``publish`` one at a time."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from toothmcl_data.heap import release_memory
from toothmcl_data.store import CaseRecord, LayoutConfig
from toothmcl_data.store.casewrite import encode_case

RECORDS = "records"
"""Folder of the record files under the working folder."""


def save_record(record: CaseRecord, work: Path, *, layout: LayoutConfig | None = None) -> Path:
    """Write ``record`` to ``work/records/<pseudonym>.pkl`` atomically (a temporary file renamed); returns the path.

    What the serial publish would otherwise compute is done here, in the case's task while its arrays are in
    memory, and saved with the record: its content hash (:attr:`~toothmcl_data.store.CaseRecord.content_hash`) and
    its arrays encoded for a store of ``layout`` (default: the default layout; ``CaseRecord.encoded``, which a
    publish into a store of another layout ignores)."""
    record = replace(record, encoded=encode_case(record, layout or LayoutConfig()))
    record.content_hash  # noqa: B018 (computed once and kept in the record's pickle)
    path = work / RECORDS / f"{record.pseudonym}.pkl"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as fh:  # streamed: no second copy of the record's arrays as one bytes object
        pickle.dump(record, fh, protocol=pickle.HIGHEST_PROTOCOL)
    tmp.replace(path)
    return path


def load_records(paths: list[str]) -> Iterator[CaseRecord]:
    """The saved records at ``paths``, in order, one in memory at a time (the heap trimmed between them)."""
    for path in paths:
        with Path(path).open("rb") as fh:
            record = pickle.load(fh)
        yield record
        del record
        release_memory()
