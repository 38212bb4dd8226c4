"""Where everything lives in a version, and how arrays are chunked, sharded and compressed.

```
cases/<pseudonym>/                  attrs: content_sha256, sources, attributes, pair_slots [start, count]
    cbct                            int16 [i, j, k], attrs: affine (LPS mm from index), spacing
    cbct_labels                     FDI label map on the CBCT grid (dtype as given: uint8 / int16)
    ios/<jaw>/                      attrs: frame, jaw
        vertices (n, 3) float64 mm, faces (m, 3) int32, normals (n, 3) float32,
        labels (n,) int16 FDI, instances (n,) int16, face_labels (m,) int16   (those present)
    registration/<jaw>              group, attrs: world_from_ios (IOS → CBCT LPS), QC
pairs/                              stacked over slots s:
    cbct_crop (S, X, Y, Z) int16, label_crop (S, X, Y, Z) int16, ios_points (S, N, 6) float32 (LPS mm + normal),
    world_from_crop (S, 4, 4) float64, fdi (S,) int16 (0 = empty slot), case_index (S,) int32 (row of the
    ``cases`` table, -1 = empty slot)
tables/<name>                       uint8 bytes of one Parquet file, attrs: sha256, content_sha256, rows
card/json, card/md                  uint8 bytes of the dataset card
```

Volumes use 32³ chunks inside 128³ shards: a random 96³ crop reads ≤ 64 small chunks through the shard
index, while the store holds few objects. Each case's tooth pairs start on a shard boundary of the pair
arrays (``pairs_per_shard`` slots per shard), so writers of different cases never touch the same shard —
unaligned concurrent writes into one shard would silently lose data. Empty slots (a case's last shard,
removed cases) hold the fill value and cost no storage.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import zarr
from zarr.codecs import BloscCodec

from toothmcl_data.configdict import config_from_dict
from toothmcl_data.errors import ConfigError
from toothmcl_data.types import Jaw, Mesh

TABLES = (
    "cases",
    "scans",
    "teeth",
    "pairs",
    "registrations",
    "inventory",
    "quarantine",
    "splits",
    "provenance",
)
LAYOUT_COLUMNS: dict[str, tuple[str, ...]] = {"pairs": ("slot",), "cases": ("pair_slot_start",)}
"""Columns that say where data sits, not what it is: left out of the version content hash."""
FORBIDDEN_COLUMNS = frozenset(
    {"path", "file", "filename", "file_name", "original_path", "source_path", "patient_name", "patient_id"}
)
"""No table in the store names an original path or identity: those stay in the restricted audit area."""
PAIR_ARRAYS = ("cbct_crop", "label_crop", "ios_points", "world_from_crop", "fdi")
MESH_ARRAYS = ("vertices", "faces", "normals", "labels", "instances", "face_labels")
MESH_FIELDS = ("vertices", "faces", "labels", "instances", "face_labels")
"""A :class:`~toothmcl_data.types.Mesh`'s own arrays among :data:`MESH_ARRAYS` (``normals`` are derived at write)."""


def stored_mesh(data: Mapping[str, Any], *, frame: str, jaw: Jaw | None, meta: Mapping[str, str] | None = None) -> Mesh:
    """The :class:`~toothmcl_data.types.Mesh` of a jaw's stored arrays ``data`` (:data:`MESH_FIELDS` by name, the
    optional ones absent or None; others ignored)."""
    return Mesh(
        data["vertices"],
        data["faces"],
        frame=frame,
        labels=data.get("labels"),
        instances=data.get("instances"),
        face_labels=data.get("face_labels"),
        jaw=jaw,
        meta=dict(meta or {}),
    )


@dataclass(frozen=True)
class LayoutConfig:
    """Chunking, sharding and compression of a store (fixed when the store is created)."""

    volume_chunk: int = 32
    """Edge of the cubic inner chunks of CBCT volumes and label maps (voxels)."""
    volume_shard: int = 128
    """Edge of the cubic shards of volumes (voxels); a multiple of ``volume_chunk``."""
    pairs_per_shard: int = 8
    """Tooth-pair slots per shard of the stacked pair arrays (one chunk per pair)."""
    mesh_chunk: int = 1 << 18
    """Rows per chunk of mesh arrays."""
    clevel: int = 3
    """zstd level inside Blosc (bit-shuffled)."""

    def __post_init__(self) -> None:
        if self.volume_chunk < 8 or self.volume_shard % self.volume_chunk:
            raise ConfigError(
                f"LayoutConfig: volume_shard ({self.volume_shard}) must be a multiple of volume_chunk "
                f"({self.volume_chunk}) and volume_chunk ≥ 8"
            )
        if self.pairs_per_shard < 1 or self.mesh_chunk < 1024 or not 0 <= self.clevel <= 9:
            raise ConfigError(
                f"LayoutConfig: need pairs_per_shard ≥ 1, mesh_chunk ≥ 1024, clevel in 0..9; got {asdict(self)}"
            )

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LayoutConfig:
        return config_from_dict(cls, data)


WRITE_BATCH = 64
"""Chunks zarr encodes per batch while :func:`create_volume` writes (zarr's default is 1): a 128³ shard holds 64
chunks of 32³, and batching them cuts zarr's per-chunk overhead — 0.72 → 0.54 s CPU for an 89 MB int16 volume —
for the same bytes (tested). Set for the write only (``zarr.config.set`` as a context); writers on several threads
at once may leave it set process-wide, which changes no stored byte."""


def compressor(config: LayoutConfig, dtype: np.dtype[Any]) -> BloscCodec:
    """Blosc + zstd with bit-shuffle: fast to decode, good on int16 CT and small ints."""
    return BloscCodec(cname="zstd", clevel=config.clevel, shuffle="bitshuffle", typesize=dtype.itemsize)


def case_path(pseudonym: str) -> str:
    return f"cases/{pseudonym}"


def create_volume(
    store: Any, path: str, data: np.ndarray[Any, Any], config: LayoutConfig, attrs: dict[str, Any]
) -> zarr.Array[Any]:
    """Write ``data`` (I, J, K) as a sharded array at ``path`` with ``attrs``."""
    shards = tuple(min(config.volume_shard, _ceil_to(n, config.volume_chunk)) for n in data.shape)
    chunks = tuple(min(config.volume_chunk, s) for s in shards)
    arr = zarr.create_array(
        store,
        name=path,
        shape=data.shape,
        dtype=data.dtype,
        chunks=chunks,
        shards=shards,
        compressors=compressor(config, data.dtype),
        fill_value=0,
        attributes=attrs,
        overwrite=True,
    )
    with zarr.config.set({"codec_pipeline.batch_size": WRITE_BATCH}):
        if np.all(data):  # a CBCT: no shard holds only the fill value
            arr[...] = data
            return arr
        # A label map is mostly background: only the shards holding a label are written (shard-aligned), which
        # stores what a whole write stores (a shard of fill values is not stored) without encoding empty shards.
        for corner in itertools.product(*(range(0, n, s) for n, s in zip(data.shape, shards, strict=True))):
            box = tuple(slice(c, c + s) for c, s in zip(corner, shards, strict=True))
            if data[box].any():
                arr[box] = data[box]
    return arr


def create_rows(store: Any, path: str, data: np.ndarray[Any, Any], config: LayoutConfig) -> zarr.Array[Any]:
    """Write a row array (n, …) (mesh vertices, faces, per-vertex labels) chunked along rows."""
    chunks = (max(1, min(config.mesh_chunk, data.shape[0])), *data.shape[1:])
    arr = zarr.create_array(
        store,
        name=path,
        shape=data.shape,
        dtype=data.dtype,
        chunks=chunks,
        compressors=compressor(config, data.dtype),
        fill_value=0,
        overwrite=True,
    )
    if data.size:
        arr[...] = data
    return arr


def create_bytes(store: Any, path: str, payload: bytes, attrs: dict[str, Any]) -> None:
    """Store ``payload`` (a Parquet file, a card) as a 1-D uint8 array in one chunk."""
    data = np.frombuffer(payload, dtype=np.uint8)
    arr = zarr.create_array(
        store,
        name=path,
        shape=data.shape,
        dtype=np.uint8,
        chunks=(max(1, len(data)),),
        compressors=None,
        fill_value=0,
        attributes=attrs,
        overwrite=True,
    )
    if len(data):
        arr[...] = data


def pair_array_specs(
    crop_shape: tuple[int, int, int], n_points: int
) -> dict[str, tuple[tuple[int, ...], np.dtype[Any]]]:
    """Per-slot shape and dtype of each stacked pair array."""
    return {
        "cbct_crop": (crop_shape, np.dtype(np.int16)),
        "label_crop": (crop_shape, np.dtype(np.int16)),
        "ios_points": ((n_points, 6), np.dtype(np.float32)),
        "world_from_crop": ((4, 4), np.dtype(np.float64)),
        "fdi": ((), np.dtype(np.int16)),
    }


def create_pair_arrays(
    store: Any, crop_shape: tuple[int, int, int], n_points: int, config: LayoutConfig, n_slots: int = 0
) -> None:
    """Create the empty stacked pair arrays (``n_slots`` slots, one chunk per slot, shards of slots)."""
    s = config.pairs_per_shard
    for name, (shape, dtype) in pair_array_specs(crop_shape, n_points).items():
        zarr.create_array(
            store,
            name=f"pairs/{name}",
            shape=(n_slots, *shape),
            dtype=dtype,
            chunks=(1, *shape),
            shards=(s, *shape),
            compressors=compressor(config, dtype),
            fill_value=0,
            attributes={"crop_shape": list(crop_shape), "n_points": n_points, "pairs_per_shard": s},
            overwrite=True,
        )


def write_case_index(store: Any, case_index: np.ndarray[Any, Any]) -> None:
    """(S,) int32 row of the ``cases`` table per slot (-1 = empty); rewritten whole by each commit."""
    arr = zarr.create_array(
        store,
        name="pairs/case_index",
        shape=case_index.shape,
        dtype=np.int32,
        chunks=(max(1, min(1 << 16, len(case_index))),),
        compressors=compressor(LayoutConfig(), np.dtype(np.int32)),
        fill_value=-1,
        overwrite=True,
    )
    if len(case_index):
        arr[...] = case_index


def _ceil_to(n: int, m: int) -> int:
    return -(-n // m) * m
