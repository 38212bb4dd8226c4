"""Writing one case into a session: its arrays (CBCT, label map, IOS jaws, registrations) and its tooth-pair
slots. Each case owns its arrays and whole shards of pair slots, so cases can be written concurrently.

:func:`encode_case` makes the same stored bytes ahead, in the case's own task (in memory, while its arrays are
hot and other cases run alongside); :func:`copy_case` then puts them into the session during the serial publish,
with nothing left to encode there."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import numpy as np
import zarr
from numpy.typing import NDArray
from zarr.core.buffer import cpu
from zarr.core.sync import sync

from toothmcl_data.errors import StoreError
from toothmcl_data.geometry import vertex_normals
from toothmcl_data.store import layout as lay
from toothmcl_data.store.records import CaseRecord, EncodedCase, registration_dict, sorted_pairs
from toothmcl_data.types import ToothPair


def write_case_arrays(
    store: Any, record: CaseRecord, content_hash: str, slot_start: int, config: lay.LayoutConfig
) -> None:
    """Write ``cases/<pseudonym>/…`` (see :mod:`~toothmcl_data.store.layout`); replaces what was there."""
    case = record.case
    base = lay.case_path(case.pseudonym)
    zarr.create_group(store, path=base, attributes=_case_attrs(record, content_hash, slot_start), overwrite=True)
    for name, vol in (("cbct", case.cbct), ("cbct_labels", case.cbct_labels)):
        if vol is not None:
            meta = {"affine": vol.affine.tolist(), "spacing_mm": list(vol.spacing)}
            lay.create_volume(store, f"{base}/{name}", np.asarray(vol.array), config, meta)
    for jaw, mesh in sorted(case.ios.items()):
        path = f"{base}/ios/{jaw}"
        zarr.create_group(store, path=path, attributes={"frame": mesh.frame, "jaw": jaw}, overwrite=True)
        data = {
            "vertices": mesh.vertices,
            "faces": mesh.faces,
            "normals": vertex_normals(mesh.vertices, mesh.faces).astype(np.float32),
            "labels": mesh.labels,
            "instances": mesh.instances,
            "face_labels": mesh.face_labels,
        }
        for name, arr in data.items():
            if arr is not None:
                lay.create_rows(store, f"{path}/{name}", np.asarray(arr), config)
    for jaw, reg in sorted(record.registrations.items()):
        zarr.create_group(store, path=f"{base}/registration/{jaw}", attributes=registration_dict(reg), overwrite=True)


def _case_attrs(record: CaseRecord, content_hash: str, slot_start: int) -> dict[str, Any]:
    return {
        "content_sha256": content_hash,
        "sources": dict(sorted(record.case.sources.items())),
        "attributes": dict(record.attributes),
        "pair_slots": [slot_start, len(record.pairs)],
    }


def encode_case(record: CaseRecord, config: lay.LayoutConfig) -> EncodedCase:
    """The stored bytes of ``record`` (its arrays and its pair shards, as :func:`write_case_arrays` and
    :func:`write_pair_slots` write them with ``config``), made in memory for :func:`copy_case`."""
    objects: dict[str, Any] = {}
    memory = zarr.storage.MemoryStore(objects)
    write_case_arrays(memory, record, "", 0, config)
    prefix = lay.case_path(record.pseudonym) + "/"
    arrays = {  # the case's group itself (and its parents) are written at publish
        k[len(prefix) :]: v.to_bytes() for k, v in objects.items() if k.startswith(prefix) and k != prefix + "zarr.json"
    }
    shards: dict[str, list[bytes | None]] = {}
    pairs = sorted_pairs(record.pairs)
    if pairs:
        objects.clear()
        s = config.pairs_per_shard
        n = -(-len(pairs) // s) * s
        crop = tuple(int(x) for x in pairs[0].cbct_crop.shape)
        lay.create_pair_arrays(memory, crop, int(pairs[0].ios_points.shape[0]), config, n_slots=n)  # type: ignore[arg-type]
        write_pair_slots(memory, pairs, 0, config)
        for name in lay.PAIR_ARRAYS:
            arr = zarr.open_array(memory, path=f"pairs/{name}", mode="r")
            keys = [
                f"pairs/{name}/" + arr.metadata.encode_chunk_key((i,) + (0,) * (arr.ndim - 1)) for i in range(n // s)
            ]
            shards[name] = [objects[k].to_bytes() if k in objects else None for k in keys]
    return EncodedCase(layout=config.to_dict(), arrays=arrays, pairs=shards)


def copy_case(store: Any, record: CaseRecord, content_hash: str, slot_start: int, config: lay.LayoutConfig) -> None:
    """Put ``record.encoded`` (made with ``config``) into ``store``: the same objects as :func:`write_case_arrays`
    and :func:`write_pair_slots` at ``slot_start`` would write, without encoding anything; replaces what was there."""
    encoded = record.encoded
    if encoded is None or dict(encoded.layout) != config.to_dict():
        raise StoreError(
            f"case {record.pseudonym}: no arrays encoded with the store's layout {config.to_dict()}; write the case "
            "with write_case_arrays (Writer.write_case chooses)"
        )
    base = lay.case_path(record.pseudonym)
    zarr.create_group(store, path=base, attributes=_case_attrs(record, content_hash, slot_start), overwrite=True)
    puts = {f"{base}/{key}": data for key, data in encoded.arrays.items()}
    deletes = []
    s = config.pairs_per_shard
    for name, shards in encoded.pairs.items():
        arr = zarr.open_array(store, path=f"pairs/{name}", mode="r")
        for i, data in enumerate(shards):
            key = f"pairs/{name}/" + arr.metadata.encode_chunk_key((slot_start // s + i,) + (0,) * (arr.ndim - 1))
            if data is None:
                deletes.append(key)
            else:
                puts[key] = data
    sync(_put(store, puts, deletes))


async def _put(store: Any, puts: dict[str, bytes], deletes: list[str]) -> None:
    """Metadata first, parents before children (a store such as Icechunk takes a chunk only into an existing
    array), then the chunks and deletions all at once."""
    meta = sorted((k for k in puts if k.endswith("zarr.json")), key=lambda k: k.count("/"))
    for key in meta:
        await store.set(key, cpu.Buffer.from_bytes(puts[key]))
    chunks = [store.set(k, cpu.Buffer.from_bytes(v)) for k, v in puts.items() if not k.endswith("zarr.json")]
    await asyncio.gather(*chunks, *(store.delete(k) for k in deletes))


def write_pair_slots(store: Any, pairs: Sequence[ToothPair], start: int, config: lay.LayoutConfig) -> None:
    """Write ``pairs`` (store order) into slots ``start…``, padded with empty slots to a whole shard."""
    s = config.pairs_per_shard
    n = -(-len(pairs) // s) * s
    stacks: dict[str, NDArray[Any]] = {
        "cbct_crop": np.stack([np.asarray(p.cbct_crop, dtype=np.int16) for p in pairs]),
        "label_crop": np.stack([np.asarray(p.label_crop, dtype=np.int16) for p in pairs]),
        "ios_points": np.stack([np.asarray(p.ios_points, dtype=np.float32) for p in pairs]),
        "world_from_crop": np.stack([np.asarray(p.world_from_crop, dtype=np.float64) for p in pairs]),
        "fdi": np.asarray([p.fdi for p in pairs], dtype=np.int16),
    }
    for name, data in stacks.items():
        padded = np.zeros((n, *data.shape[1:]), dtype=data.dtype)
        padded[: len(data)] = data
        arr = zarr.open_array(store, path=f"pairs/{name}", mode="r+")
        arr[start : start + n] = padded


def clear_pair_slots(store: Any, start: int, n_pairs: int, config: lay.LayoutConfig) -> None:
    """Empty a case's slots (whole shards of fill value: their chunks are deleted, not stored)."""
    s = config.pairs_per_shard
    stop = start + -(-n_pairs // s) * s
    for name in lay.PAIR_ARRAYS:
        arr = zarr.open_array(store, path=f"pairs/{name}", mode="r+")
        arr[start:stop] = 0
