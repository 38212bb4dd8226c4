"""Publishing: stream case records into one Icechunk session, then commit them as one immutable version.

``publish(store, records, …)`` is the whole thing; :class:`Writer` is the same in steps for a flow that writes
cases from separate tasks (``write_case`` is thread-safe: cases own disjoint shards) and commits once.

Incremental against ``base``: a case whose content hash equals the base's is not rewritten (its tooth pairs keep
their slots); a changed case is rewritten, a case not written (nor ``keep``-ed) is dropped, its arrays and pair
slots cleared. Nothing is visible to readers until the commit, which Icechunk makes atomic: a writer killed at
any moment leaves the previous version as it was (orphaned chunks are removed by ``gc``). A publish whose content
hash equals the base's makes no new commit. A record whose arrays were encoded in its own task
(``CaseRecord.encoded``, for this store's layout) is copied in, not encoded again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import icechunk
import numpy as np
import zarr

from toothmcl_data.errors import StoreError
from toothmcl_data.store import layout as lay
from toothmcl_data.store.casewrite import clear_pair_slots, copy_case, write_case_arrays, write_pair_slots
from toothmcl_data.store.contents import build_tables, encode_tables, write_tables_and_card
from toothmcl_data.store.guard import exclusive, store_lock_path, write_errors
from toothmcl_data.store.records import (
    CaseRecord,
    Provenance,
    sorted_pairs,
    validate_record,
)
from toothmcl_data.store.repo import BRANCH, FORMAT_VERSION, META_KEY, VersionInfo, create_tag, open_repo, resolve
from toothmcl_data.store.splits import SplitConfig
from toothmcl_data.store.tables import (
    case_rows,
    filter_rows,
    read_parquet,
)

log = logging.getLogger(__name__)
_CASE_TABLES = ("cases", "scans", "teeth", "pairs", "registrations")


@dataclass
class _BaseCase:
    content_hash: str
    slot_start: int
    n_pairs: int


@dataclass
class _State:
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {t: [] for t in _CASE_TABLES})
    seen: set[str] = field(default_factory=set)
    cleared: set[str] = field(default_factory=set)
    next_slot: int = 0
    capacity: int = 0
    pair_shape: tuple[tuple[int, int, int], int] | None = None
    written: int = 0
    unchanged: int = 0


class Writer:
    """A publish in progress (a writable Icechunk session on ``main``); use as a context manager."""

    def __init__(self, store: str | Path, *, base: str | None = "latest", layout: lay.LayoutConfig | None = None):
        self.store = str(store)
        self._publisher = ExitStack()  # one publisher per local store at a time: a second one waits (serialises)
        self._publisher.enter_context(exclusive(store_lock_path(store), f"store {store}: another publish"))
        try:
            self._open(base, layout)
        except BaseException:
            self._publisher.close()
            raise

    def _open(self, base: str | None, layout: lay.LayoutConfig | None) -> None:
        store = self.store
        self._repo = open_repo(store, create=True)
        self._lock = threading.Lock()
        self._committed = False
        self._state = _State()
        self._base = None if base is None else self._resolve_base(base)
        self._session = self._repo.writable_session(BRANCH)
        self._zstore = self._session.store
        self._base_cases: dict[str, _BaseCase] = {}
        self._base_tables: dict[str, Any] = {}
        self._chunk_bytes_before = self._repo.chunk_storage_stats().native_bytes
        root_meta = self._root_meta()
        if base is None and root_meta:
            for path in ("cases", "pairs"):
                self._delete(path)
            root_meta = {}
        self.layout = lay.LayoutConfig.from_dict(root_meta["layout"]) if root_meta else (layout or lay.LayoutConfig())
        if root_meta and layout is not None and layout != self.layout:
            raise StoreError(f"store {store}: created with layout {self.layout}, cannot publish with {layout}")
        if self._base is not None:
            self._load_base()

    # ----------------------------------------------------------------------------------------------- set-up
    def _resolve_base(self, base: str) -> VersionInfo | None:
        try:
            tip = self._repo.lookup_branch(BRANCH)
            info = resolve(self._repo, base, store=self.store)
        except StoreError:
            if base == "latest":
                return None  # an empty store: the first version
            raise
        if info.id != tip:
            raise StoreError(
                f"store {self.store}: base {base!r} ({info.id}) is not the latest version ({tip}); publish against "
                "'latest' (or base=None for a full rewrite) — versions form one line of history"
            )
        return info

    def _root_meta(self) -> dict[str, Any]:
        try:
            root = zarr.open_group(self._zstore, mode="r")
        except (FileNotFoundError, KeyError, zarr.errors.GroupNotFoundError):  # handled: a new store has no root yet
            return {}
        meta = root.attrs.get(META_KEY)
        return dict(meta) if isinstance(meta, Mapping) else {}

    def _load_base(self) -> None:
        root = zarr.open_group(self._zstore, mode="r")
        for name in (*_CASE_TABLES, "splits"):
            payload = np.asarray(zarr.open_array(self._zstore, path=f"tables/{name}", mode="r")[...])
            self._base_tables[name] = read_parquet(payload.tobytes())
        cases = self._base_tables["cases"]
        for row in cases.to_pylist():
            self._base_cases[row["pseudonym"]] = _BaseCase(
                row["content_sha256"], int(row["pair_slot_start"]), int(row["n_pairs"])
            )
        if "pairs/cbct_crop" in root:
            crop = zarr.open_array(self._zstore, path="pairs/cbct_crop", mode="r")
            points = zarr.open_array(self._zstore, path="pairs/ios_points", mode="r")
            i, j, k = (int(n) for n in crop.shape[1:])
            self._state.pair_shape = ((i, j, k), int(points.shape[1]))
            self._state.next_slot = self._state.capacity = int(crop.shape[0])

    # --------------------------------------------------------------------------------------------- writing
    def write_case(self, record: CaseRecord) -> str:
        """Write one case (or skip it when unchanged since the base); returns its content hash
        (:attr:`CaseRecord.content_hash`: not computed again when the record carries it already)."""
        p = record.pseudonym
        h = record.content_hash
        with self._lock:
            if p in self._state.seen:
                raise StoreError(f"case {p}: written twice in one publish; each pseudonym must appear once")
            self._state.seen.add(p)
        old = self._base_cases.get(p)
        if old is not None and old.content_hash == h:
            rows = case_rows(record, h, old.slot_start)
            with self._lock:
                self._state.unchanged += 1
                self._add_rows(rows)
            return h
        validate_record(record)
        if old is not None:
            self._clear_case(p)
        pairs = sorted_pairs(record.pairs)
        start = self._allocate(pairs, reuse=old)
        encoded = record.encoded
        if encoded is not None and dict(encoded.layout) == self.layout.to_dict():
            copy_case(self._zstore, record, h, start, self.layout)  # encoded in the case's task already
        else:
            write_case_arrays(self._zstore, record, h, start, self.layout)
            if pairs:
                write_pair_slots(self._zstore, pairs, start, self.layout)
        rows = case_rows(record, h, start)
        with self._lock:
            self._state.written += 1
            self._add_rows(rows)
        log.debug("case %s written (%d pairs at slot %d)", p, len(pairs), start)
        return h

    def keep(self, pseudonym: str) -> None:
        """Carry a base case into this version unchanged without handing its record again."""
        if pseudonym not in self._base_cases:
            raise StoreError(f"case {pseudonym}: not in the base version, so it cannot be kept; write it instead")
        with self._lock:
            if pseudonym in self._state.seen:
                raise StoreError(f"case {pseudonym}: written twice in one publish; each pseudonym must appear once")
            self._state.seen.add(pseudonym)
            self._state.unchanged += 1
            for name in _CASE_TABLES:
                self._state.rows[name].extend(filter_rows(self._base_tables[name], pseudonym))

    def _add_rows(self, rows: Mapping[str, list[dict[str, Any]]]) -> None:
        for name, value in rows.items():
            self._state.rows[name].extend(value)

    def _allocate(self, pairs: list[Any], reuse: _BaseCase | None = None) -> int:
        """Reserve whole shards of pair slots for one case (a changed case keeps its old slots when its pairs
        fit there); creates or grows the pair arrays."""
        if not pairs:
            return -1
        s = self.layout.pairs_per_shard
        shape = (tuple(int(n) for n in pairs[0].cbct_crop.shape), int(pairs[0].ios_points.shape[0]))
        for pair in pairs:
            if (pair.cbct_crop.shape, pair.ios_points.shape[0]) != shape:
                raise StoreError(
                    f"case {pair.case}: tooth {pair.fdi} has crop {pair.cbct_crop.shape} and "
                    f"{pair.ios_points.shape[0]} points; every pair of the case must match its first "
                    f"({shape[0]}, {shape[1]} points)"
                )
        with self._lock:
            st = self._state
            if st.pair_shape is None:
                lay.create_pair_arrays(self._zstore, shape[0], shape[1], self.layout)  # type: ignore[arg-type]
                st.pair_shape = shape  # type: ignore[assignment]
            elif st.pair_shape != shape:
                raise StoreError(
                    f"case {pairs[0].case}: tooth pairs have crop {shape[0]} and {shape[1]} points but this store "
                    f"holds crops {st.pair_shape[0]} with {st.pair_shape[1]} points; resample them to the store's"
                )
            if reuse is not None and reuse.n_pairs and -(-reuse.n_pairs // s) >= -(-len(pairs) // s):
                return reuse.slot_start
            start = st.next_slot
            st.next_slot += -(-len(pairs) // s) * s
            if st.next_slot > st.capacity:
                st.capacity = max(st.next_slot, 2 * st.capacity)
                self._resize_pairs(st.capacity)
        return start

    def _resize_pairs(self, n_slots: int) -> None:
        for name in lay.PAIR_ARRAYS:
            arr = zarr.open_array(self._zstore, path=f"pairs/{name}", mode="r+")
            arr.resize((n_slots, *arr.shape[1:]))

    def _clear_case(self, pseudonym: str) -> None:
        """Delete a base case's arrays and empty its pair slots (whole shards: their chunks are deleted)."""
        old = self._base_cases[pseudonym]
        with self._lock:
            if pseudonym in self._state.cleared:
                return
            self._state.cleared.add(pseudonym)
        self._delete(lay.case_path(pseudonym))
        if old.n_pairs:
            clear_pair_slots(self._zstore, old.slot_start, old.n_pairs, self.layout)

    def _delete(self, path: str) -> None:
        root = zarr.open_group(self._zstore, mode="r+")
        if path in root:
            del root[path]

    # ---------------------------------------------------------------------------------------------- commit
    def commit(
        self,
        *,
        message: str,
        inventory: Iterable[Mapping[str, Any]] = (),
        quarantine: Iterable[Mapping[str, Any]] = (),
        provenance: Provenance | None = None,
        splits: SplitConfig | None = None,
        tag: str | None = None,
    ) -> VersionInfo:
        """Drop base cases not written, write tables + card, commit; returns the new (or unchanged) version."""
        if self._committed:
            raise StoreError(f"store {self.store}: this writer has already committed; open a new Writer")
        self._committed = True
        try:
            return self._commit(message, inventory, quarantine, provenance, splits, tag)
        finally:
            self._publisher.close()

    def _commit(
        self,
        message: str,
        inventory: Iterable[Mapping[str, Any]],
        quarantine: Iterable[Mapping[str, Any]],
        provenance: Provenance | None,
        splits: SplitConfig | None,
        tag: str | None,
    ) -> VersionInfo:
        provenance = provenance or Provenance()
        splits = splits or SplitConfig()
        removed = sorted(set(self._base_cases) - self._state.seen)
        for p in removed:
            self._clear_case(p)
        built = build_tables(
            self._state.rows,
            list(inventory),
            list(quarantine),
            provenance,
            splits,
            base_tables=self._base_tables,
            where=f"store {self.store}",
        )
        payloads, tables, hashes, vhash = encode_tables(built)
        stats = {"cases_written": self._state.written, "cases_unchanged": self._state.unchanged}
        stats["cases_removed"] = len(removed)
        if self._base is not None and vhash == self._base.content_hash:
            self._session.discard_changes()
            log.info("store %s: content unchanged (%s); no new version", self.store, vhash[:12])
            if tag:
                create_tag(self._repo, tag, self._base.id, store=self.store)
            return resolve(self._repo, self._base.id, store=self.store)
        self._write_case_index(tables["cases"])
        write_tables_and_card(self._zstore, tables, payloads, hashes, vhash=vhash, provenance=provenance, splits=splits)
        meta = {
            "format": FORMAT_VERSION,
            "content_hash": vhash,
            "tables": hashes,
            "layout": self.layout.to_dict(),
            "n_cases": tables["cases"].num_rows,
        }
        root = zarr.open_group(self._zstore, mode="a")
        root.attrs[META_KEY] = meta
        try:
            snapshot_id = self._session.commit(message, metadata={META_KEY: {**meta, "stats": stats}})
        except icechunk.ConflictError as err:
            raise StoreError(
                f"store {self.store}: another publisher committed a version while this one was written ({err}); "
                "nothing of this publish is visible — run it again to publish on top of the new version"
            ) from err
        stats["bytes_written"] = self._repo.chunk_storage_stats().native_bytes - self._chunk_bytes_before
        if tag:
            create_tag(self._repo, tag, snapshot_id, store=self.store)
        info = resolve(self._repo, snapshot_id, store=self.store)
        log.info("store %s: version %s (%s) %s", self.store, snapshot_id, vhash[:12], stats)
        return VersionInfo(**{**info.__dict__, "stats": stats})

    def _write_case_index(self, cases: Any) -> None:
        st = self._state
        if st.pair_shape is None:
            return
        if st.capacity != st.next_slot:
            self._resize_pairs(st.next_slot)
            st.capacity = st.next_slot
        index = np.full(st.next_slot, -1, dtype=np.int32)
        if cases.num_rows:
            for row, (start, n) in enumerate(
                zip(cases.column("pair_slot_start").to_pylist(), cases.column("n_pairs").to_pylist(), strict=True)
            ):
                if n:
                    index[start : start + n] = row
        lay.write_case_index(self._zstore, index)

    def abort(self) -> None:
        """Throw away everything written in this session (the store keeps its latest version)."""
        try:
            if self._session.has_uncommitted_changes:
                self._session.discard_changes()
        finally:
            self._publisher.close()

    def __enter__(self) -> Writer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None:
            self.abort()
        self._publisher.close()


def publish(
    store: str | Path,
    records: Iterable[CaseRecord],
    *,
    message: str,
    inventory: Iterable[Mapping[str, Any]] = (),
    quarantine: Iterable[Mapping[str, Any]] = (),
    provenance: Provenance | None = None,
    splits: SplitConfig | None = None,
    tag: str | None = None,
    base: str | None = "latest",
    layout: lay.LayoutConfig | None = None,
) -> VersionInfo:
    """Publish ``records`` (streamed: one case in memory at a time) as the store's next version.

    base: ``"latest"`` (incremental: unchanged cases are not rewritten, cases not in ``records`` are dropped) or
    None (rewrite everything). Returns the new version, or the base when the content is unchanged.
    """
    with write_errors(store), Writer(store, base=base, layout=layout) as writer:
        for record in records:
            writer.write_case(record)
        return writer.commit(
            message=message,
            inventory=inventory,
            quarantine=quarantine,
            provenance=provenance,
            splits=splits,
            tag=tag,
        )
