"""Block reads of sharded volumes: the fast path returns exactly what zarr (and NumPy) return."""

from __future__ import annotations

import numpy as np
import pytest
import zarr
from zarr.codecs import BloscCodec

from tests.store.conftest import records
from toothmcl_data.errors import StoreError
from toothmcl_data.store import open_version, publish
from toothmcl_data.store.blocks import BlockReader
from toothmcl_data.store.layout import LayoutConfig, create_volume

SMALL = LayoutConfig(volume_chunk=8, volume_shard=16)


def _volume(rng: np.random.Generator) -> np.ndarray:
    """(37, 29, 21) int16 with zero regions large enough to leave whole chunks unwritten."""
    vol = rng.integers(-1000, 3000, size=(37, 29, 21)).astype(np.int16)
    vol[:16, :, :] = 0
    vol[:, 20:, 10:] = 0
    return vol


def _expected(vol: np.ndarray, lo: tuple[int, ...], shape: tuple[int, ...]) -> np.ndarray:
    out = np.zeros(shape, dtype=vol.dtype)
    src = tuple(slice(max(a, 0), min(a + n, m)) for a, n, m in zip(lo, shape, vol.shape, strict=True))
    if all(s.stop > s.start for s in src):
        out[tuple(slice(s.start - a, s.stop - a) for s, a in zip(src, lo, strict=True))] = vol[src]
    return out


def _blocks(rng: np.random.Generator, bounds: tuple[int, ...], n: int) -> list[tuple[tuple[int, ...], ...]]:
    out = []
    for _ in range(n):
        shape = tuple(int(v) for v in rng.integers(1, 2 * np.array(bounds)))
        lo = tuple(int(v) for v in rng.integers(-np.array(shape), np.array(bounds) + 2))
        out.append((lo, shape))
    return out


def test_blocks_equal_numpy_including_outside_and_unwritten_chunks() -> None:
    rng = np.random.default_rng(0)
    vol = _volume(rng)
    arr = create_volume(zarr.storage.MemoryStore(), "c/cbct", vol, SMALL, {})
    reader = BlockReader(arr)
    assert reader.layout is not None  # the fast path is the one under test
    chosen = [((0, 0, 0), vol.shape), ((-3, 5, 2), (40, 8, 30)), ((0, 0, 0), (16, 29, 21))]
    for lo, shape in [*chosen, *_blocks(rng, vol.shape, 60)]:
        np.testing.assert_array_equal(reader.read(lo, shape), _expected(vol, lo, shape), err_msg=f"{lo} {shape}")
    # unwritten chunks are not fetched
    all_zero = (slice(0, 16), slice(0, 29), slice(0, 21))
    assert reader.payloads(all_zero) == []
    converted = reader.read((3, -2, 4), (20, 20, 20), np.float32)
    assert converted.dtype == np.float32
    np.testing.assert_array_equal(converted, _expected(vol, (3, -2, 4), (20, 20, 20)).astype(np.float32))


def test_other_layouts_are_read_through_zarr() -> None:
    rng = np.random.default_rng(1)
    vol = _volume(rng)
    arr = zarr.create_array(
        zarr.storage.MemoryStore(), name="v", shape=vol.shape, dtype=vol.dtype, chunks=(8, 8, 8), fill_value=0
    )
    arr[...] = vol
    reader = BlockReader(arr)
    assert reader.layout is None
    for lo, shape in _blocks(rng, vol.shape, 10):
        np.testing.assert_array_equal(reader.read(lo, shape), _expected(vol, lo, shape))
    with pytest.raises(StoreError, match="not a sharded Blosc volume"):
        reader.payloads((slice(0, 4),) * 3)
    lz4 = zarr.create_array(
        zarr.storage.MemoryStore(),
        name="w",
        shape=vol.shape,
        dtype=vol.dtype,
        chunks=(8, 8, 8),
        shards=(16, 16, 16),
        compressors=BloscCodec(cname="lz4", typesize=2),
        fill_value=0,
    )
    lz4[...] = vol
    fast = BlockReader(lz4)  # any Blosc compressor is read on the fast path
    assert fast.layout is not None
    np.testing.assert_array_equal(fast.read((5, 5, 5), (30, 20, 10)), _expected(vol, (5, 5, 5), (30, 20, 10)))


def test_corrupt_shard_index_is_reported() -> None:
    vol = _volume(np.random.default_rng(2))
    store = zarr.storage.MemoryStore()
    create_volume(store, "c/cbct", vol, SMALL, {})
    key = "c/cbct/c/2/0/0"
    data = bytearray(store._store_dict[key].to_bytes())
    data[-10] ^= 0xFF  # inside the index, before its CRC32C
    store._store_dict[key] = store._store_dict[key].from_bytes(bytes(data))
    reader = BlockReader(zarr.open_array(store, path="c/cbct", mode="r"))
    with pytest.raises(StoreError, match="CRC32C"):
        reader.read((32, 0, 0), (5, 5, 5))


def test_published_volumes_read_like_zarr(tmp_path) -> None:
    publish(tmp_path / "store", records(1), message="one")
    version = open_version(tmp_path / "store")
    case = version.case_ids()[0]
    rng = np.random.default_rng(3)
    for name in ("cbct", "cbct_labels"):
        arr = version.cbct_array(case, name)
        reader = version.volume_blocks(case, name)
        assert arr is not None
        assert reader is not None
        assert reader.layout is not None
        assert version.volume_blocks(case, name) is reader  # kept: its shard indexes are cached
        whole = np.asarray(arr[...])
        for lo, shape in _blocks(rng, whole.shape, 20):
            np.testing.assert_array_equal(reader.read(lo, shape), _expected(whole, lo, shape))
