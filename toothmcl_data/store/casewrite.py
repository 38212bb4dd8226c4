"""Writing one case into a session: its arrays (CBCT, label map, IOS jaws, registrations) and its tooth-pair
slots. Each case owns its arrays and whole shards of pair slots, so cases can be written concurrently."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import zarr
from numpy.typing import NDArray

from toothmcl_data.geometry import vertex_normals
from toothmcl_data.store import layout as lay
from toothmcl_data.store.records import CaseRecord, registration_dict
from toothmcl_data.types import ToothPair


def write_case_arrays(
    store: Any, record: CaseRecord, content_hash: str, slot_start: int, config: lay.LayoutConfig
) -> None:
    """Write ``cases/<pseudonym>/…`` (see :mod:`~toothmcl_data.store.layout`); replaces what was there."""
    case = record.case
    base = lay.case_path(case.pseudonym)
    attrs = {
        "content_sha256": content_hash,
        "sources": dict(sorted(case.sources.items())),
        "attributes": dict(record.attributes),
        "pair_slots": [slot_start, len(record.pairs)],
    }
    zarr.create_group(store, path=base, attributes=attrs, overwrite=True)
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
