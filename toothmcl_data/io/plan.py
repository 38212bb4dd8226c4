"""Plan a raw drop's files: discover them, group them into units and units into raw cases, match each unit to a
patient (:class:`~toothmcl_data.io.group.DropPlan`). Nothing is read beyond headers and nothing is written; the
de-identification stage (:mod:`toothmcl_data.deid.run`) and the curation flow start from the plan.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from toothmcl_data.io.discover import FileRecord, discover
from toothmcl_data.io.fs import open_source
from toothmcl_data.io.group import DropPlan, RawCase, plan_units
from toothmcl_data.io.match import read_manifest


def plan_files(
    raw: str | Path,
    *,
    manifest: Path | None = None,
    progress: Callable[[int], None] | None = None,
    records: Sequence[FileRecord] | None = None,
) -> DropPlan:
    """Discover, group and match the drop at ``raw`` (path or fsspec URL); writes nothing. ``records``: its files
    already discovered, in any order — e.g. in batches on several workers (:func:`discover` with ``files``, over
    the whole of :meth:`~toothmcl_data.io.fs.Source.list_files`); grouping and matching need only these."""
    source = open_source(raw)
    found = discover(source, progress=progress) if records is None else sorted(records, key=lambda r: r.path)
    return plan_units(source, found, read_manifest(manifest) if manifest else None)


def plan_drop(raw: str | Path, *, manifest: Path | None = None) -> list[RawCase]:
    """The raw cases of a drop (see :func:`plan_files` for the files that belong to no case)."""
    return list(plan_files(raw, manifest=manifest).cases)
