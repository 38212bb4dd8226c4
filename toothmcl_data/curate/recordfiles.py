"""Case record files of a curation run: one pickled :class:`~toothmcl_data.store.CaseRecord` per case under
``WORK/records/<pseudonym>.pkl``, written by the case's task and streamed into ``publish`` one at a time."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from pathlib import Path

from toothmcl_data.heap import release_memory
from toothmcl_data.store import CaseRecord

RECORDS = "records"
"""Folder of the record files under the working folder."""


def save_record(record: CaseRecord, work: Path) -> Path:
    """Write ``record`` to ``work/records/<pseudonym>.pkl`` atomically (a temporary file renamed); returns the path."""
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
