"""Reading one published version: tables, the card, per-case arrays and the stacked tooth-pair arrays.

A :class:`VersionReader` is pinned to one Icechunk snapshot, so what it reads never changes while later
versions are published. It pickles as (store, snapshot id) and reopens lazily, so data-loader worker
processes can each hold one and read concurrently.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Collection
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import zarr
from numpy.typing import NDArray
from zarr.core.sync import sync as zarr_sync

from toothmcl_data.errors import StoreError
from toothmcl_data.store import layout as lay
from toothmcl_data.store.blocks import BlockReader
from toothmcl_data.store.records import CaseRecord, registration_from_dict
from toothmcl_data.store.repo import VersionInfo, open_repo, resolve
from toothmcl_data.store.tables import filter_rows, read_parquet
from toothmcl_data.types import JAWS, Case, Jaw, Mesh, Registration, ToothPair, Volume


class PairArrays:
    """The stacked tooth-pair arrays of a version, indexed by slot ``s`` (zarr arrays, read lazily).

    cbct_crop (S, X, Y, Z) int16 scanner values; label_crop (S, X, Y, Z) int16 FDI; ios_points (S, N, 6)
    float32 xyz LPS mm + unit normal; world_from_crop (S, 4, 4) float64 crop index → LPS mm; fdi (S,) int16;
    case_index (S,) int32 row of the ``cases`` table. Empty slots have fdi 0 and case_index -1: iterate over
    ``slots`` (the filled ones, ascending) or the ``pairs`` table's ``slot`` column.
    """

    def __init__(self, group: zarr.Group | None):
        self._group = group

    def _get(self, name: str) -> zarr.Array[Any]:
        if self._group is None or name not in self._group:
            raise StoreError("this version has no tooth pairs (the pair arrays are empty)")
        arr = self._group[name]
        if not isinstance(arr, zarr.Array):
            raise StoreError(f"pairs/{name} is not an array")
        return arr

    cbct_crop = property(lambda self: self._get("cbct_crop"))
    label_crop = property(lambda self: self._get("label_crop"))
    ios_points = property(lambda self: self._get("ios_points"))
    world_from_crop = property(lambda self: self._get("world_from_crop"))
    fdi = property(lambda self: self._get("fdi"))
    case_index = property(lambda self: self._get("case_index"))

    @cached_property
    def slots(self) -> NDArray[np.int64]:
        """(P,) int64 filled slot indices, ascending."""
        if self._group is None or "case_index" not in self._group:
            return np.zeros(0, dtype=np.int64)
        return np.flatnonzero(np.asarray(self.case_index[...]) >= 0).astype(np.int64)

    def __len__(self) -> int:
        return len(self.slots)

    @cached_property
    def index(self) -> dict[str, NDArray[Any]]:
        """The small per-slot arrays read whole once: ``fdi`` (S,) int16, ``case_index`` (S,) int32,
        ``world_from_crop`` (S, 4, 4) float64."""
        return {name: np.asarray(self._get(name)[...]) for name in ("fdi", "case_index", "world_from_crop")}

    def read(self, slot: int) -> dict[str, Any]:
        """One whole tooth pair: ``cbct_crop`` (X, Y, Z) int16, ``label_crop`` (X, Y, Z) int16, ``ios_points``
        (N, 6) float32 (LPS mm + normal), ``world_from_crop`` (4, 4), ``fdi`` and ``case_index`` (ints).
        The three large arrays are fetched concurrently."""
        index = self.index
        arrays = (self.cbct_crop, self.label_crop, self.ios_points)

        async def fetch() -> list[Any]:
            return list(await asyncio.gather(*(a.async_array.getitem(int(slot)) for a in arrays)))

        crop, label, points = zarr_sync(fetch())
        return {
            "cbct_crop": np.asarray(crop),
            "label_crop": np.asarray(label),
            "ios_points": np.asarray(points),
            "world_from_crop": index["world_from_crop"][slot],
            "fdi": int(index["fdi"][slot]),
            "case_index": int(index["case_index"][slot]),
        }


class VersionReader:
    """One immutable version of a store."""

    def __init__(self, store: str | Path, info: VersionInfo):
        self.store = str(store)
        self.info = info

    # pickling: (store, info) only; the session reopens in the new process
    def __getstate__(self) -> dict[str, Any]:
        return {"store": self.store, "info": self.info}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    @property
    def id(self) -> str:
        return self.info.id

    @property
    def tags(self) -> tuple[str, ...]:
        return self.info.tags

    @property
    def content_hash(self) -> str:
        return self.info.content_hash

    @cached_property
    def root(self) -> zarr.Group:
        session = open_repo(self.store).readonly_session(snapshot_id=self.info.id)
        return zarr.open_group(session.store, mode="r")

    def _array(self, path: str) -> zarr.Array[Any]:
        try:
            node = self.root[path]
        except KeyError as err:
            raise StoreError(f"store {self.store} version {self.id}: no array {path!r}") from err
        if not isinstance(node, zarr.Array):
            raise StoreError(f"store {self.store} version {self.id}: {path!r} is a group, not an array")
        return node

    def _bytes(self, path: str) -> bytes:
        return bytes(np.asarray(self._array(path)[...]).tobytes())

    # ------------------------------------------------------------------------------------------ catalog
    def card(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self._bytes("card/json"))
        return result

    def card_markdown(self) -> str:
        return self._bytes("card/md").decode()

    def table(self, name: str) -> pa.Table:
        """One catalog table (cases, scans, teeth, pairs, registrations, inventory, quarantine, splits,
        provenance)."""
        if name not in lay.TABLES:
            raise StoreError(f"no table {name!r}; tables are: {', '.join(lay.TABLES)}")
        return self._tables[name] if name in self._tables else self._load_table(name)

    @cached_property
    def _tables(self) -> dict[str, pa.Table]:
        return {}

    def _load_table(self, name: str) -> pa.Table:
        table = read_parquet(self._bytes(f"tables/{name}"))
        self._tables[name] = table
        return table

    def table_bytes(self, name: str) -> bytes:
        """The stored Parquet file of a table, byte for byte."""
        return self._bytes(f"tables/{name}")

    def case_ids(self) -> list[str]:
        cases = self.table("cases")
        return sorted(cases.column("pseudonym").to_pylist()) if cases.num_rows else []

    # ------------------------------------------------------------------------------------------ arrays
    def _case(self, pseudonym: str) -> zarr.Group:
        path = lay.case_path(pseudonym)
        if path not in self.root:
            raise StoreError(f"store {self.store} version {self.id}: no case {pseudonym!r} (see case_ids())")
        group = self.root[path]
        if not isinstance(group, zarr.Group):
            raise StoreError(f"{path} is not a group")
        return group

    def cbct_array(self, pseudonym: str, name: str = "cbct") -> zarr.Array[Any] | None:
        """The lazy (I, J, K) CBCT (or ``name="cbct_labels"``) array, for crops without reading it whole."""
        group = self._case(pseudonym)
        node = group.get(name)
        return node if isinstance(node, zarr.Array) else None

    def volume_blocks(self, pseudonym: str, name: str = "cbct") -> BlockReader | None:
        """A fast block reader of :meth:`cbct_array` (kept per case and name: it caches shard indexes)."""
        blocks: dict[tuple[str, str], BlockReader | None] = self.__dict__.setdefault("_blocks", {})
        if (pseudonym, name) not in blocks:
            arr = self.cbct_array(pseudonym, name)
            blocks[pseudonym, name] = None if arr is None else BlockReader(arr)
        return blocks[pseudonym, name]

    def _volume(self, pseudonym: str, name: str) -> Volume | None:
        arr = self.cbct_array(pseudonym, name)
        if arr is None:
            return None
        return Volume(np.asarray(arr[...]), np.asarray(arr.attrs["affine"], dtype=np.float64))

    def cbct(self, pseudonym: str) -> Volume | None:
        """The CBCT, int16 scanner values, LPS affine; None when the case has none."""
        return self._volume(pseudonym, "cbct")

    def cbct_labels(self, pseudonym: str) -> Volume | None:
        """The FDI label map on the CBCT grid, or None."""
        return self._volume(pseudonym, "cbct_labels")

    def ios(self, pseudonym: str, jaw: Jaw) -> Mesh:
        """One jaw's scan in its own frame, with FDI labels and instances when stored."""
        group = self._case(pseudonym)
        path = f"ios/{jaw}"
        if path not in group:
            raise StoreError(f"store {self.store} version {self.id}: case {pseudonym} has no {jaw} scan")
        g = group[path]
        if not isinstance(g, zarr.Group):
            raise StoreError(f"store {self.store} version {self.id}: {path} of case {pseudonym} is not a group")
        base = f"{lay.case_path(pseudonym)}/{path}"
        data = {name: np.asarray(self._array(f"{base}/{name}")[...]) for name in lay.MESH_FIELDS if name in g}
        return lay.stored_mesh(data, frame=str(g.attrs["frame"]), jaw=jaw)

    def ios_normals(self, pseudonym: str, jaw: Jaw) -> NDArray[np.float32]:
        """(n, 3) float32 unit vertex normals of a jaw's scan, in the scan's own frame."""
        return np.asarray(self._array(f"{lay.case_path(pseudonym)}/ios/{jaw}/normals")[...])

    def registration(self, pseudonym: str, jaw: Jaw) -> Registration:
        group = self._case(pseudonym)
        if f"registration/{jaw}" not in group:
            raise StoreError(f"store {self.store} version {self.id}: case {pseudonym} has no {jaw} registration")
        return registration_from_dict(_attrs(group[f"registration/{jaw}"]))

    def registered(self, verdicts: Collection[str]) -> set[tuple[str, Jaw]]:
        """(pseudonym, jaw) of every registration whose QC verdict is one of ``verdicts`` (``pass``, ``review``,
        ``fail``): a published case keeps a failed jaw's transform for inspection, so readers that place a scan in
        the CBCT's world ask for the verdicts they trust."""
        rows = self.table("registrations").select(["pseudonym", "jaw", "verdict"]).to_pylist()
        return {(r["pseudonym"], r["jaw"]) for r in rows if r["verdict"] in verdicts}

    def pairs(self) -> PairArrays:
        node = self.root.get("pairs")
        return PairArrays(node if isinstance(node, zarr.Group) else None)

    def case_pairs(self, pseudonym: str) -> list[ToothPair]:
        """The tooth pairs of one case, in store order (by FDI)."""
        start, n = _attrs(self._case(pseudonym))["pair_slots"]
        if not n:
            return []
        arrays = self.pairs()
        sl = slice(int(start), int(start) + int(n))
        crops, labels = np.asarray(arrays.cbct_crop[sl]), np.asarray(arrays.label_crop[sl])
        points, world = np.asarray(arrays.ios_points[sl]), np.asarray(arrays.world_from_crop[sl])
        fdi = np.asarray(arrays.fdi[sl])
        rows = {r["index"]: r for r in filter_rows(self.table("pairs"), pseudonym)}
        return [
            ToothPair(
                pseudonym,
                int(fdi[i]),
                crops[i],
                labels[i],
                world[i],
                points[i],
                tuple(rows.get(i, {}).get("flags", ())),
            )
            for i in range(int(n))
        ]

    def record(self, pseudonym: str) -> CaseRecord:
        """Reassemble a case as it was published (what ``verify`` hashes)."""
        group = self._case(pseudonym)
        attrs = _attrs(group)
        ios = {jaw: self.ios(pseudonym, jaw) for jaw in JAWS if f"ios/{jaw}" in group}
        case = Case(pseudonym, self.cbct(pseudonym), self.cbct_labels(pseudonym), ios, dict(attrs["sources"]))
        regs = {jaw: self.registration(pseudonym, jaw) for jaw in JAWS if f"registration/{jaw}" in group}
        teeth = [
            {k: v for k, v in row.items() if k != "pseudonym"} for row in filter_rows(self.table("teeth"), pseudonym)
        ]
        return CaseRecord(case, regs, self.case_pairs(pseudonym), teeth, dict(attrs["attributes"]))


def _attrs(node: zarr.Array[Any] | zarr.Group) -> dict[str, Any]:
    """A node's attributes as plain JSON data."""
    return dict(node.attrs)


def open_version(store: str | Path, version: str = "latest") -> VersionReader:
    """Open one version of a store for reading (``"latest"``, a tag, or a snapshot id)."""
    return VersionReader(store, resolve(open_repo(store), version, store=store))
