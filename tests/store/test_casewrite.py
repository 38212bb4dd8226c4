"""One case's arrays and pair slots, written into a bare in-memory zarr store and read back: exactly what was
given (normals from the shared geometry), nothing for what is absent, a rewrite replaces the case, and pair slots
are written and cleared in whole shards."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import zarr
from zarr.storage import MemoryStore

from toothmcl_data.errors import StoreError
from toothmcl_data.geometry import vertex_normals
from toothmcl_data.store import layout as lay
from toothmcl_data.store.casewrite import clear_pair_slots, copy_case, encode_case, write_case_arrays, write_pair_slots
from toothmcl_data.store.records import CaseRecord
from toothmcl_data.types import Case, Mesh, Registration, ToothPair, Volume

CONFIG = lay.LayoutConfig(volume_chunk=8, volume_shard=16, pairs_per_shard=4)


def _record(pseudonym: str = "A", jaws: tuple[str, ...] = ("upper",)) -> CaseRecord:
    rng = np.random.default_rng(0)
    affine = np.diag([0.5, 0.5, 0.5, 1.0])
    affine[:3, 3] = [-10.0, 4.0, 2.0]
    cbct = Volume(rng.integers(-1000, 3000, size=(20, 9, 5)).astype(np.int16), affine)
    labels = Volume(np.zeros((20, 9, 5), dtype=np.int16), affine)
    labels.array[3:6, 2:4, 1:3] = 11
    vertices = np.array([[0.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 1.5]])
    faces = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]], dtype=np.int32)
    ios = {
        jaw: Mesh(vertices, faces, frame=f"ios:{pseudonym}:{jaw}", labels=np.array([0, 11, 11, 21], np.int16), jaw=jaw)
        for jaw in jaws
    }
    case = Case(pseudonym, cbct, labels, ios, {"cbct": "c" * 64})
    regs = {jaw: Registration(jaw, np.eye(4), 0.1, 0.2, 0.95, {11: 0.1}, "pass") for jaw in jaws}
    return CaseRecord(case, regs, attributes={"source": "test"})


def test_case_arrays_read_back_as_written() -> None:
    store = MemoryStore()
    record = _record()
    write_case_arrays(store, record, "h" * 64, 8, CONFIG)
    group = zarr.open_group(store, mode="r")["cases/A"]
    assert dict(group.attrs) == {
        "content_sha256": "h" * 64,
        "sources": {"cbct": "c" * 64},
        "attributes": {"source": "test"},
        "pair_slots": [8, 0],
    }
    cbct = group["cbct"]
    np.testing.assert_array_equal(cbct[...], record.case.cbct.array)
    assert cbct.attrs["affine"] == record.case.cbct.affine.tolist()
    assert cbct.attrs["spacing_mm"] == [0.5, 0.5, 0.5]
    assert cbct.shards == (16, 16, 8)  # sharded volume: shard edges rounded up to whole chunks
    assert cbct.chunks == (8, 8, 8)
    np.testing.assert_array_equal(group["cbct_labels"][...], record.case.cbct_labels.array)
    mesh = record.case.ios["upper"]
    jaw = group["ios/upper"]
    assert dict(jaw.attrs) == {"frame": "ios:A:upper", "jaw": "upper"}
    assert sorted(jaw.keys()) == ["faces", "labels", "normals", "vertices"]  # no instances, no face labels
    np.testing.assert_array_equal(jaw["vertices"][...], mesh.vertices)
    np.testing.assert_array_equal(jaw["faces"][...], mesh.faces)
    np.testing.assert_array_equal(jaw["labels"][...], mesh.labels)
    normals = jaw["normals"][...]
    assert normals.dtype == np.float32
    np.testing.assert_array_equal(normals, vertex_normals(mesh.vertices, mesh.faces).astype(np.float32))
    np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1.0, atol=1e-6)
    reg = dict(group["registration/upper"].attrs)
    assert (reg["jaw"], reg["rms_mm"], reg["verdict"]) == ("upper", 0.1, "pass")
    assert reg["world_from_ios"] == np.eye(4).tolist()


def test_a_rewrite_replaces_the_case() -> None:
    store = MemoryStore()
    write_case_arrays(store, _record(jaws=("upper", "lower")), "1" * 64, 0, CONFIG)
    write_case_arrays(store, _record(jaws=("lower",)), "2" * 64, 4, CONFIG)
    group = zarr.open_group(store, mode="r")["cases/A"]
    assert sorted(group["ios"].keys()) == ["lower"]  # the upper scan is gone with the old case
    assert sorted(group["registration"].keys()) == ["lower"]
    assert group.attrs["content_sha256"] == "2" * 64
    assert group.attrs["pair_slots"] == [4, 0]


def _pair(fdi: int, value: int) -> ToothPair:
    crop = np.full((3, 2, 2), value, dtype=np.int16)
    points = np.full((5, 6), value, dtype=np.float32)
    return ToothPair("A", fdi, crop, crop, np.eye(4) * value, points)


def test_pair_slots_are_written_padded_to_a_shard_and_cleared() -> None:
    store = MemoryStore()
    lay.create_pair_arrays(store, (3, 2, 2), 5, CONFIG, n_slots=12)
    fdi = zarr.open_array(store, path="pairs/fdi", mode="r")
    write_pair_slots(store, [_pair(11, 1), _pair(12, 2), _pair(13, 3), _pair(14, 4), _pair(15, 5)], 0, CONFIG)
    write_pair_slots(store, [_pair(21, 6)], 8, CONFIG)
    np.testing.assert_array_equal(fdi[...], [11, 12, 13, 14, 15, 0, 0, 0, 21, 0, 0, 0])
    crops = zarr.open_array(store, path="pairs/cbct_crop", mode="r")[...]
    assert [int(c.max()) for c in crops] == [1, 2, 3, 4, 5, 0, 0, 0, 6, 0, 0, 0]
    points = zarr.open_array(store, path="pairs/ios_points", mode="r")
    np.testing.assert_array_equal(points[4], np.full((5, 6), 5, dtype=np.float32))
    write_pair_slots(store, [_pair(31, 7)], 0, CONFIG)  # a case's slots rewritten: its whole shard is replaced
    np.testing.assert_array_equal(fdi[:4], [31, 0, 0, 0])
    np.testing.assert_array_equal(fdi[4:], [15, 0, 0, 0, 21, 0, 0, 0])
    clear_pair_slots(store, 4, 1, CONFIG)
    np.testing.assert_array_equal(fdi[...], [31, 0, 0, 0, 0, 0, 0, 0, 21, 0, 0, 0])
    world = zarr.open_array(store, path="pairs/world_from_crop", mode="r")
    assert not world[4:8].any()


def _objects(store: MemoryStore) -> dict[str, bytes]:
    return {k: v.to_bytes() for k, v in store._store_dict.items()}


def test_encoded_case_copies_to_the_same_objects_as_writing_it() -> None:
    """encode_case (in the case's task) + copy_case (at publish) leave exactly the objects write_case_arrays +
    write_pair_slots leave — every key, every byte — at any shard-aligned first slot, also over an old case."""
    pairs = [_pair(13, 3), _pair(11, 1), _pair(12, 2), _pair(14, 4), _pair(15, 0)]  # the second shard's crop: 0s
    record = replace(_record(jaws=("upper", "lower")), pairs=[replace(p, case="A") for p in pairs])
    encoded = replace(record, encoded=encode_case(record, CONFIG))
    assert encoded.encoded is not None
    assert encoded.encoded.layout == CONFIG.to_dict()
    assert encoded.encoded.pairs["cbct_crop"][1] is None  # nothing stored for a shard of fill values
    written, copied = MemoryStore(), MemoryStore()
    for store in (written, copied):
        lay.create_pair_arrays(store, (3, 2, 2), 5, CONFIG, n_slots=16)
        write_case_arrays(store, _record(jaws=("upper",)), "0" * 64, 4, CONFIG)  # an old version of the case
        write_pair_slots(store, [_pair(21, 7)] * 8, 4, CONFIG)
    write_case_arrays(written, record, "h" * 64, 4, CONFIG)
    write_pair_slots(written, sorted(record.pairs, key=lambda p: p.fdi), 4, CONFIG)
    copy_case(copied, encoded, "h" * 64, 4, CONFIG)
    assert _objects(copied) == _objects(written)
    other = lay.LayoutConfig(volume_chunk=8, volume_shard=8, pairs_per_shard=4)
    with pytest.raises(StoreError, match=r"case A: no arrays encoded with the store's layout .*write_case_arrays"):
        copy_case(copied, encoded, "h" * 64, 4, other)


def test_batched_volume_write_stores_what_zarrs_default_stores() -> None:
    """create_volume encodes WRITE_BATCH chunks per batch: the same objects as zarr's default of one."""
    data = np.random.default_rng(3).integers(-1000, 3000, size=(40, 20, 12)).astype(np.int16)
    data[:16] = 0  # whole chunks of fill value: not stored either way
    batched, default = MemoryStore(), MemoryStore()
    lay.create_volume(batched, "v", data, CONFIG, {})
    with zarr.config.set({"codec_pipeline.batch_size": 1}):
        arr = zarr.create_array(
            default,
            name="v",
            shape=data.shape,
            dtype=data.dtype,
            chunks=(8, 8, 8),
            shards=(16, 16, 16),
            compressors=lay.compressor(CONFIG, data.dtype),
            fill_value=0,
            attributes={},
        )
        arr[...] = data
    assert lay.WRITE_BATCH > 1
    assert _objects(batched) == _objects(default)
