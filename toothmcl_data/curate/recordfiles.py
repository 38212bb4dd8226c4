"""Case record files of a curation run: one pickled :class:`~toothmcl_data.store.CaseRecord` per case under
``WORK/records/<pseudonym>.pkl``, written by the case's task and read back one at a time into a publish
(:class:`~toothmcl_data.curate.RunPublisher` as each case ends, or :func:`~toothmcl_data.store.publish`).

A record file holds the case's volumes (CBCT, label map), its IOS jaws' arrays and its tooth pairs' crops and crown
points once: as the stored bytes encoded in the case's task (``CaseRecord.encoded``), not also as values. A loaded
record's volumes are zarr arrays over those bytes, each pair's arrays one slot of such an array: their shape and
dtype are at hand, their values decoded only when read (``np.asarray``) — which a publish into a store of the same
layout never does (it copies the bytes). A :class:`~toothmcl_data.types.Mesh` holds numpy arrays, so the jaws'
arrays are decoded on load (~20 ms for a case's two scans; the store keeps them losslessly, dtypes included)."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

import numpy as np
import zarr
from numpy.typing import NDArray
from zarr.core.buffer import Buffer, cpu

from toothmcl_data.errors import StoreError
from toothmcl_data.heap import release_memory
from toothmcl_data.store import CaseRecord, LayoutConfig
from toothmcl_data.store import layout as lay
from toothmcl_data.store.casewrite import encode_case
from toothmcl_data.store.records import EncodedCase, sorted_pairs
from toothmcl_data.types import Jaw, Mesh, ToothPair, Volume

RECORDS = "records"
"""Folder of the record files under the working folder."""


@dataclass(frozen=True)
class _Pair:
    """A tooth pair without its arrays (those are slot ``i`` of the record's encoded pair shards, store order)."""

    case: str
    fdi: int
    world_from_crop: NDArray[Any]
    flags: tuple[str, ...]


@dataclass(frozen=True)
class _Jaw:
    """An IOS jaw without its arrays (those are ``ios/<key>/…`` of the record's encoded arrays)."""

    key: Jaw
    frame: str
    jaw: Jaw | None
    meta: dict[str, str]


@dataclass(frozen=True)
class _RecordFile:
    """What a record file holds: ``record`` without its volumes, IOS jaws and pairs (``case.cbct`` and
    ``case.cbct_labels`` None, ``case.ios`` and ``pairs`` empty; their bytes are in ``record.encoded``), each
    volume's (4, 4) affine by name, the pairs in store order without their arrays, their crop shape and point count,
    the record's content hash, and the jaws without their arrays."""

    record: CaseRecord
    affines: dict[str, NDArray[Any]]
    content_hash: str
    pairs: tuple[_Pair, ...] = ()
    pair_shape: tuple[tuple[int, int, int], int] | None = None
    meshes: tuple[_Jaw, ...] = ()  # empty in a record file of an earlier version: its jaws are in ``record``


class _Slot:
    """One tooth pair's crop or points: row ``index`` of a stacked pair array over encoded shards. Shape, dtype and
    ndim as numpy's; the values are decoded by ``np.asarray``."""

    __slots__ = ("_array", "_index")

    def __init__(self, array: zarr.Array, index: int) -> None:
        self._array = array
        self._index = index

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self._array.shape[1:])

    @property
    def ndim(self) -> int:
        return self._array.ndim - 1

    @property
    def dtype(self) -> Any:
        return self._array.dtype

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> NDArray[Any]:
        values = np.asarray(self._array[self._index])
        return values if dtype is None else values.astype(dtype, copy=False)


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
    pairs = sorted_pairs(record.pairs)
    lean = replace(record, case=replace(case, cbct=None, cbct_labels=None, ios={}), pairs=())
    saved = _RecordFile(
        lean,
        affines,
        record.content_hash,
        tuple(_Pair(p.case, p.fdi, np.asarray(p.world_from_crop), tuple(p.flags)) for p in pairs),
        _pair_shape(pairs[0]) if pairs else None,
        tuple(_Jaw(key, m.frame, m.jaw, dict(m.meta)) for key, m in sorted(case.ios.items())),
    )
    path = work / RECORDS / f"{record.pseudonym}.pkl"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as fh:  # streamed: no second copy of the record's arrays as one bytes object
        pickle.dump(saved, fh, protocol=pickle.HIGHEST_PROTOCOL)
    tmp.replace(path)
    return path


def _pair_shape(pair: ToothPair) -> tuple[tuple[int, int, int], int]:
    i, j, k = (int(n) for n in pair.cbct_crop.shape)
    return (i, j, k), int(pair.ios_points.shape[0])


def _loaded(saved: _RecordFile, path: str) -> CaseRecord:
    """The record of a record file, its volumes zarr arrays over their encoded bytes, its pairs' arrays slots of
    such arrays, its content hash kept."""
    record = saved.record
    if saved.affines or saved.pairs or saved.meshes:
        if record.encoded is None:
            raise StoreError(
                f"record file {path} names volumes {sorted(saved.affines)}, {len(saved.meshes)} IOS jaws and "
                f"{len(saved.pairs)} tooth pairs but holds no encoded arrays; it was not written by save_record — "
                "curate the case again"
            )
        objects: dict[str, Buffer] = {key: cpu.Buffer.from_bytes(data) for key, data in record.encoded.arrays.items()}
        store = zarr.storage.MemoryStore(objects, read_only=True)

        def volume(name: str) -> Volume | None:
            if name not in saved.affines:
                return None
            # a zarr array stands in for the voxels: shape, dtype and ndim as numpy's, decoded by np.asarray
            return Volume(cast(NDArray[Any], zarr.open_array(store, path=name, mode="r")), saved.affines[name])

        def mesh(jaw: _Jaw) -> Mesh:
            base = f"ios/{jaw.key}"
            data = {
                name: np.asarray(zarr.open_array(store, path=f"{base}/{name}", mode="r")[...])
                for name in lay.MESH_FIELDS
                if f"{base}/{name}/zarr.json" in objects
            }
            return lay.stored_mesh(data, frame=jaw.frame, jaw=jaw.jaw, meta=jaw.meta)

        ios = {jaw.key: mesh(jaw) for jaw in saved.meshes} if saved.meshes else record.case.ios
        case = replace(record.case, cbct=volume("cbct"), cbct_labels=volume("cbct_labels"), ios=ios)
        record = replace(record, case=case, pairs=_pairs(saved, record.encoded))
    vars(record)["content_hash"] = saved.content_hash  # the cached property's slot: not hashed again
    return record


def _pairs(saved: _RecordFile, encoded: EncodedCase) -> list[ToothPair]:
    """The saved pairs, their arrays slots of the stacked pair arrays rebuilt over the encoded shards."""
    if not saved.pairs or saved.pair_shape is None:
        return []
    config = LayoutConfig.from_dict(dict(encoded.layout))
    objects: dict[str, Buffer] = {}
    store = zarr.storage.MemoryStore(objects)
    s = config.pairs_per_shard
    n_slots = -(-len(saved.pairs) // s) * s
    lay.create_pair_arrays(store, *saved.pair_shape, config, n_slots=n_slots)
    arrays = {}
    for name in ("cbct_crop", "label_crop", "ios_points"):
        arr = zarr.open_array(store, path=f"pairs/{name}", mode="r")
        for i, data in enumerate(encoded.pairs.get(name, ())):
            if data is not None:
                key = f"pairs/{name}/" + arr.metadata.encode_chunk_key((i,) + (0,) * (arr.ndim - 1))
                objects[key] = cpu.Buffer.from_bytes(data)
        arrays[name] = arr
    return [
        ToothPair(
            case=p.case,
            fdi=p.fdi,
            cbct_crop=cast(NDArray[Any], _Slot(arrays["cbct_crop"], i)),
            label_crop=cast(NDArray[Any], _Slot(arrays["label_crop"], i)),
            world_from_crop=p.world_from_crop,
            ios_points=cast(NDArray[Any], _Slot(arrays["ios_points"], i)),
            flags=p.flags,
        )
        for i, p in enumerate(saved.pairs)
    ]


def load_records(paths: list[str]) -> Iterator[CaseRecord]:
    """The saved records at ``paths``, in order, one in memory at a time (the heap trimmed between them)."""
    for path in paths:
        with Path(path).open("rb") as fh:
            record = _loaded(pickle.load(fh), path)
        yield record
        del record
        # Reference counting frees a record's buffers (its only cycles are a few zarr codec objects), so only the
        # heap is trimmed: a full collection in a flow's process, full of Prefect's and Dask's objects, took ~50 ms
        # per record there (py-spy, 20 patients on 2 Dask workers).
        release_memory(collect=False)
