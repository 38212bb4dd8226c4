"""The version a curation run publishes, written while the run's cases still run.

Each case's record file (:mod:`~toothmcl_data.curate.recordfiles`) goes into one store
:class:`~toothmcl_data.store.Writer` session as soon as the case is done and the cases before it are written (the
caller hands them in an order of its own — the flow: the order it submitted them — so the store's layout does not
depend on which worker finished first). After the
last case only the tables and the commit are left: the part of a run that no worker count shortens. The writer
opens at the first record, so a drop with nothing to publish creates no store. Nothing is visible before the
commit; a run that fails discards the session and the store keeps its latest version.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Any

from toothmcl_data.curate.recordfiles import load_records
from toothmcl_data.errors import StoreError
from toothmcl_data.store import VersionInfo, Writer
from toothmcl_data.store.guard import write_errors


class RunPublisher:
    """A run's version in progress on ``store``; use as a context manager around the run's case loop."""

    def __init__(self, store: str | Path) -> None:
        self.store = str(store)
        self.written = 0
        self._writer: Writer | None = None

    def add(self, record_file: str) -> None:
        """Write the case of ``record_file`` into the version (the store's lock is taken at the first one: a
        second publisher of the same store waits for this run to commit)."""
        with write_errors(self.store):
            if self._writer is None:
                self._writer = Writer(self.store)
            for record in load_records([record_file]):
                self._writer.write_case(record)
        self.written += 1

    def commit(self, **kwargs: Any) -> VersionInfo:
        """Commit what was added as one version (``kwargs``: :meth:`Writer.commit`'s)."""
        if self._writer is None:
            raise StoreError(f"store {self.store}: no case was added to this run's version; there is nothing to commit")
        with write_errors(self.store):
            return self._writer.commit(**kwargs)

    def __enter__(self) -> RunPublisher:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._writer is not None:
            self._writer.__exit__(exc_type, exc, tb)
