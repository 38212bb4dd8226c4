"""Fast reads of a voxel block from a sharded volume: one batched store request, blosc decoding in this thread.

zarr-python reads a block through its asyncio codec pipeline, which costs ≈ 0.15 ms per inner chunk before any
decoding; a 256×256×64 crop touches ≈ 200 chunks of 32³ per array, so that overhead is larger than reading and
decompressing the bytes (``bench/stream.py``). For arrays written by :func:`~toothmcl_data.store.layout.create_volume`
(sharding codec, index at the shard's end with a CRC32C, inner chunks ``bytes`` little-endian + Blosc) this module
reads the same bytes itself:

1. each shard's index (``n_chunks`` × (offset, nbytes) uint64 + CRC32C) is fetched once per array and kept (a
   published version is immutable, so the index cannot change under the reader);
2. the inner chunks the block touches are fetched in one batched store request (per shard, one byte span from the
   first to the last of them: stores charge per request);
3. each chunk is Blosc-decoded and its overlap copied into the output; chunks never written are the fill value.

Any array laid out differently (other codecs, index at the start, big-endian) is read through zarr instead, so the
result is always what ``array[block]`` returns (tested against it).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import google_crc32c
import numcodecs.blosc
import numpy as np
import zarr
from numpy.typing import DTypeLike, NDArray
from zarr.abc.store import RangeByteRequest, SuffixByteRequest
from zarr.codecs import BloscCodec, BytesCodec, Crc32cCodec, ShardingCodec
from zarr.codecs.sharding import ShardingCodecIndexLocation
from zarr.core.buffer import default_buffer_prototype
from zarr.core.chunk_key_encodings import ChunkKeyEncoding
from zarr.core.metadata import ArrayV3Metadata
from zarr.core.sync import sync

from toothmcl_data.errors import StoreError

_EMPTY = np.uint64(2**64 - 1)
"""Offset and length of an inner chunk that was never written (all fill value)."""


@dataclass(frozen=True)
class _Layout:
    chunk: tuple[int, ...]
    per_shard: tuple[int, ...]
    keys: ChunkKeyEncoding


def _layout(array: zarr.Array[Any]) -> _Layout | None:
    """The sharded layout this module reads, or None when ``array`` is stored any other way."""
    metadata = array.metadata
    if not isinstance(metadata, ArrayV3Metadata):
        return None
    codecs = metadata.codecs
    if len(codecs) != 1 or not isinstance(codecs[0], ShardingCodec):
        return None
    sharding = codecs[0]
    inner, index = sharding.codecs, sharding.index_codecs
    little = array.dtype.itemsize == 1 or str(getattr(inner[0], "endian", "")).endswith("little")
    if not (
        len(inner) == 2
        and isinstance(inner[0], BytesCodec)
        and little
        and isinstance(inner[1], BloscCodec)
        and len(index) == 2
        and isinstance(index[0], BytesCodec)
        and isinstance(index[1], Crc32cCodec)
        and sharding.index_location == ShardingCodecIndexLocation.end
        and array.shards is not None
    ):
        return None
    shard, chunk = tuple(array.shards), tuple(sharding.chunk_shape)
    return _Layout(chunk, tuple(s // c for s, c in zip(shard, chunk, strict=True)), metadata.chunk_key_encoding)


def _overlap(
    lo: tuple[int, ...], shape: tuple[int, ...], bounds: tuple[int, ...]
) -> tuple[tuple[slice, ...] | None, tuple[slice, ...]]:
    """(array slices, block slices) of the part of block ``lo … lo + shape`` inside ``bounds``; (None, …) if none."""
    src = tuple(slice(max(a, 0), min(a + n, m)) for a, n, m in zip(lo, shape, bounds, strict=True))
    dst = tuple(slice(s.start - a, s.stop - a) for s, a in zip(src, lo, strict=True))
    return (src if all(s.stop > s.start for s in src) else None), dst


def _positions(src: tuple[slice, ...], chunk: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Grid positions of the inner chunks that array slices ``src`` touch, in C order."""
    ranges = (range(s.start // c, (s.stop - 1) // c + 1) for s, c in zip(src, chunk, strict=True))
    return list(itertools.product(*ranges))


class BlockReader:
    """Reads voxel blocks of one (I, J, K) sharded volume; keeps the shard indexes it has read.

    array: a ``zarr.Array`` of a published (immutable) version. Each process builds its own: a
    :class:`~toothmcl_data.store.reader.VersionReader` pickles without its block readers (DataLoader workers).
    """

    def __init__(self, array: zarr.Array[Any]) -> None:
        self.array = array
        self.shape: tuple[int, ...] = tuple(array.shape)
        self.dtype = array.dtype
        self.layout = _layout(array)
        self._indexes: dict[tuple[int, ...], NDArray[np.uint64] | None] = {}

    def read(self, lo: tuple[int, ...], shape: tuple[int, ...], dtype: DTypeLike | None = None) -> NDArray[np.generic]:
        """The block ``lo … lo + shape`` (voxels; may reach outside the array, where it is the fill value), as
        ``dtype`` (default: the array's; converting while copying costs no extra pass over the block)."""
        dtype = self.dtype if dtype is None else dtype
        src, dst = _overlap(lo, shape, self.shape)
        if src is None:
            return np.full(shape, self.array.fill_value, dtype=dtype)
        if self.layout is None:
            out = np.full(shape, self.array.fill_value, dtype=dtype)
            out[dst] = np.asarray(self.array[src])
            return out
        layout, fill = self.layout, self.array.fill_value
        out = np.empty(shape, dtype)
        for axis, (d, n) in enumerate(zip(dst, shape, strict=True)):  # the parts outside the array
            before = (slice(None),) * axis
            out[(*before, slice(0, d.start))] = fill
            out[(*before, slice(d.stop, n))] = fill
        block, chunk = out[dst], layout.chunk
        stored = dict(self.payloads(src))
        # Per axis and chunk index: (slice of the block, slice of the chunk) they share.
        axes = [
            {
                g: (
                    slice(max(s.start, g * c) - s.start, min(s.stop, g * c + c) - s.start),
                    slice(max(s.start - g * c, 0), min(s.stop - g * c, c)),
                )
                for g in range(s.start // c, (s.stop - 1) // c + 1)
            }
            for s, c in zip(src, chunk, strict=True)
        ]
        decoded = np.empty(chunk, dtype=self.dtype)  # one buffer every chunk is decompressed into
        for pos in itertools.product(*axes):
            parts = [axis[g] for axis, g in zip(axes, pos, strict=True)]
            into = tuple(p[0] for p in parts)
            payload = stored.get(pos)
            if payload is None:  # never written: fill value
                block[into] = fill
            else:
                numcodecs.blosc.decompress(payload, decoded)
                block[into] = decoded[tuple(p[1] for p in parts)]
        return out

    def payloads(self, src: tuple[slice, ...]) -> list[tuple[tuple[int, ...], memoryview]]:
        """(inner chunk grid position, Blosc-compressed bytes) of every stored chunk that array slices ``src``
        touch (chunks never written are left out: they are the fill value), fetched in one batched request."""
        layout = self.layout
        if layout is None:
            raise StoreError(f"{self.array.store_path}: not a sharded Blosc volume; read it with read()")
        wanted = _positions(src, layout.chunk)
        shards = sorted({tuple(g // p for g, p in zip(pos, layout.per_shard, strict=True)) for pos in wanted})
        self._load_indexes([s for s in shards if s not in self._indexes], layout)
        spans: dict[tuple[int, ...], list[tuple[tuple[int, ...], int, int]]] = {}
        for pos in wanted:
            shard = tuple(g // p for g, p in zip(pos, layout.per_shard, strict=True))
            index = self._indexes[shard]
            if index is None:
                continue
            inner = tuple(g % p for g, p in zip(pos, layout.per_shard, strict=True))
            offset, nbytes = index[np.ravel_multi_index(inner, layout.per_shard)]
            if offset != _EMPTY:
                spans.setdefault(shard, []).append((pos, int(offset), int(nbytes)))
        keys = list(spans)
        starts = [min(o for _, o, _ in spans[k]) for k in keys]
        stops = [max(o + n for _, o, n in spans[k]) for k in keys]
        fetched = self._fetch(
            [(self._key(layout, k), RangeByteRequest(a, b)) for k, a, b in zip(keys, starts, stops, strict=True)]
        )
        out: list[tuple[tuple[int, ...], memoryview]] = []
        for key, start, payload in zip(keys, starts, fetched, strict=True):
            if payload is None:
                raise StoreError(f"{self.array.store_path}: shard {key} is listed but missing (corrupt store)")
            view = memoryview(payload)
            out.extend((pos, view[o - start : o - start + n]) for pos, o, n in spans[key])
        return out

    def _key(self, layout: _Layout, shard: tuple[int, ...]) -> str:
        key = layout.keys.encode_chunk_key(shard)
        path = self.array.store_path.path
        return f"{path}/{key}" if path else key

    def _load_indexes(self, shards: list[tuple[int, ...]], layout: _Layout) -> None:
        n = int(np.prod(layout.per_shard))
        size = 16 * n + 4
        payloads = self._fetch([(self._key(layout, s), SuffixByteRequest(size)) for s in shards], may_be_missing=True)
        for shard, payload in zip(shards, payloads, strict=True):
            if payload is None:  # shard never written: all fill value
                self._indexes[shard] = None
                continue
            body, crc = payload[:-4], payload[-4:]
            if np.uint32(google_crc32c.value(body)).tobytes() != crc:
                raise StoreError(
                    f"{self.array.store_path}: shard {shard} index fails its CRC32C check (corrupt store); "
                    "run `toothmcl-data version verify` on this version"
                )
            self._indexes[shard] = np.frombuffer(body, dtype="<u8").reshape(n, 2)

    def _fetch(self, requests: list[tuple[str, Any]], *, may_be_missing: bool = False) -> list[bytes | None]:
        """The byte ranges ``requests`` ((key, range) pairs) in one call; None for a missing key (only allowed with
        ``may_be_missing``: some stores' batched read fails on missing keys, so those are read one by one)."""
        if not requests:
            return []
        store = self.array.store_path.store
        prototype = default_buffer_prototype()
        if may_be_missing:

            async def each() -> list[Any]:
                return [await store.get(key, prototype, byte_range=r) for key, r in requests]

            fetched = sync(each())
        else:
            fetched = sync(store.get_partial_values(prototype, requests))
        return [None if b is None else b.to_bytes() for b in fetched]
