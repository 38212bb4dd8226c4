"""Case record files: saved atomically under WORK/records/<pseudonym>.pkl and loaded back equal, in order."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from zarr.core.buffer import cpu
from zarr.core.sync import sync

from toothmcl_data.curate.recordfiles import RECORDS, load_records, save_record
from toothmcl_data.synth.config import SynthConfig
from toothmcl_data.synth.patient import make_patient
from toothmcl_data.synth.record import synth_record


def test_records_round_trip_one_at_a_time(tmp_path: Path) -> None:
    patient = make_patient(SynthConfig(spacing_mm=1.2, ios_resolution_mm=1.0), np.random.default_rng(4))
    records = [synth_record(patient, name) for name in ("P001", "P000")]
    paths = [save_record(r, tmp_path) for r in records]
    assert [p.name for p in paths] == ["P001.pkl", "P000.pkl"]
    assert sorted(p.name for p in (tmp_path / RECORDS).iterdir()) == ["P000.pkl", "P001.pkl"]  # no .tmp left
    back = list(load_records([str(p) for p in paths]))
    assert [r.pseudonym for r in back] == ["P001", "P000"]
    for got, want in zip(back, records, strict=True):
        assert got.case.cbct is not None
        assert want.case.cbct is not None
        np.testing.assert_array_equal(got.case.cbct.array, want.case.cbct.array)
        assert len(got.pairs) == len(want.pairs) > 0
        np.testing.assert_array_equal(
            got.registrations["upper"].world_from_ios, want.registrations["upper"].world_from_ios
        )


def test_saved_record_carries_its_content_hash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The content hash is computed when the case's task saves the record and travels in its pickle: the publish
    that loads it does not hash the case's arrays again."""
    from toothmcl_data.store import case_content_hash
    from toothmcl_data.store import records as store_records

    patient = make_patient(SynthConfig(spacing_mm=1.2, ios_resolution_mm=1.0), np.random.default_rng(4))
    path = save_record(synth_record(patient, "P000"), tmp_path)
    (back,) = load_records([str(path)])
    want = case_content_hash(back)

    def refuse(record: object) -> str:
        raise AssertionError("hashed again")

    monkeypatch.setattr(store_records, "case_content_hash", refuse)
    assert back.content_hash == want


def test_saved_records_publish_the_same_version(tmp_path: Path) -> None:
    """Records saved with their arrays encoded (for the store's layout, or for another one, which publish then
    ignores) publish the version the plain records publish: same content hash, same stored objects."""
    from toothmcl_data.store import LayoutConfig, publish
    from toothmcl_data.store.repo import open_repo

    patient = make_patient(SynthConfig(spacing_mm=1.2, ios_resolution_mm=1.0), np.random.default_rng(4))
    records = [synth_record(patient, name) for name in ("P000", "P001")]
    saved = [str(save_record(r, tmp_path / "w")) for r in records]
    other = [str(save_record(r, tmp_path / "o", layout=LayoutConfig(volume_shard=64))) for r in records]
    assert all(r.encoded is not None for r in load_records(saved))
    infos = [
        publish(tmp_path / name, source, message="m")
        for name, source in (("plain", records), ("saved", load_records(saved)), ("other", load_records(other)))
    ]
    assert len({i.content_hash for i in infos}) == 1

    def objects(name: str) -> dict[str, bytes]:
        store = open_repo(tmp_path / name).readonly_session("main").store
        keys = sync(_keys(store))
        return {k: sync(store.get(k, cpu.buffer_prototype)).to_bytes() for k in keys if "/c/" in k or "cases" in k}

    assert objects("saved") == objects("plain") == objects("other")


MESH_ARRAYS = ("vertices", "faces", "labels", "instances", "face_labels")


async def _keys(store: Any) -> list[str]:
    return sorted([k async for k in store.list()])


def test_a_record_file_holds_the_voxels_the_scans_and_the_pair_arrays_once(tmp_path: Path) -> None:
    """The CBCT, the label map, the IOS jaws' arrays and the tooth pairs' crops and points are saved as their encoded
    bytes only (publish copies those), not also as values; a loaded record still reads them back whole and equal
    (dtypes included), pairs in store order."""
    import pickle
    from dataclasses import replace

    from toothmcl_data.store import LayoutConfig
    from toothmcl_data.store.casewrite import encode_case
    from toothmcl_data.store.records import sorted_pairs

    patient = make_patient(SynthConfig(spacing_mm=1.2, ios_resolution_mm=1.0), np.random.default_rng(4))
    record = synth_record(patient, "P000")
    assert record.case.cbct is not None
    assert record.case.cbct_labels is not None
    assert len(record.pairs) > 1
    both = replace(record, encoded=encode_case(record, LayoutConfig()))
    path = save_record(record, tmp_path)
    voxels = record.case.cbct.array.nbytes + record.case.cbct_labels.array.nbytes
    pair_values = sum(p.cbct_crop.nbytes + p.label_crop.nbytes + p.ios_points.nbytes for p in record.pairs)
    scans = record.case.ios.values()
    scan_values = sum(getattr(m, n).nbytes for m in scans for n in MESH_ARRAYS if getattr(m, n) is not None)
    assert path.stat().st_size < len(pickle.dumps(both, protocol=pickle.HIGHEST_PROTOCOL)) - 0.9 * (
        voxels + pair_values + scan_values
    )
    (back,) = load_records([str(path)])
    assert sorted(back.case.ios) == sorted(record.case.ios) == ["lower", "upper"]
    for jaw, want_mesh in record.case.ios.items():
        got_mesh = back.case.ios[jaw]
        assert (got_mesh.frame, got_mesh.jaw, got_mesh.meta) == (want_mesh.frame, want_mesh.jaw, want_mesh.meta)
        for name in MESH_ARRAYS:
            got_values, want_values = getattr(got_mesh, name), getattr(want_mesh, name)
            assert (got_values is None) == (want_values is None), name
            if want_values is not None:
                assert got_values.dtype == want_values.dtype, name
                np.testing.assert_array_equal(got_values, want_values)
    assert back.case.cbct is not None
    assert back.case.cbct_labels is not None
    assert back.case.cbct.shape == record.case.cbct.shape
    assert back.case.cbct.array.dtype == np.int16
    np.testing.assert_array_equal(np.asarray(back.case.cbct_labels.array), record.case.cbct_labels.array)
    np.testing.assert_array_equal(back.case.cbct.affine, record.case.cbct.affine)
    want = sorted_pairs(record.pairs)
    assert [(p.case, p.fdi, p.flags) for p in back.pairs] == [(p.case, p.fdi, p.flags) for p in want]
    for got, pair in zip(back.pairs, want, strict=True):
        assert got.cbct_crop.shape == pair.cbct_crop.shape
        assert got.ios_points.dtype == np.float32
        np.testing.assert_array_equal(np.asarray(got.cbct_crop), pair.cbct_crop)
        np.testing.assert_array_equal(np.asarray(got.label_crop), pair.label_crop)
        np.testing.assert_array_equal(np.asarray(got.ios_points), pair.ios_points)
        np.testing.assert_array_equal(got.world_from_crop, pair.world_from_crop)


def test_a_loaded_record_is_freed_by_reference_counting_alone(tmp_path: Path) -> None:
    """load_records trims the heap between records without a garbage collection (costly in a flow's process):
    that holds only if nothing large of a record sits in a reference cycle."""
    import gc
    import weakref

    patient = make_patient(SynthConfig(spacing_mm=1.2, ios_resolution_mm=1.0), np.random.default_rng(4))
    paths = [str(save_record(synth_record(patient, name), tmp_path)) for name in ("P000", "P001")]
    refs: list[weakref.ref[Any]] = []
    gc.collect()
    gc.disable()
    try:
        for record in load_records(paths):
            assert record.case.cbct is not None
            np.asarray(record.pairs[0].cbct_crop)  # read once, as a publish into another layout does
            held = [record, record.encoded, record.case.cbct.array, record.case.ios["upper"].vertices]
            held.append(record.pairs[0].cbct_crop._array.store_path.store)  # type: ignore[attr-defined]
            held.append(record.case.cbct.array.store_path.store)  # type: ignore[union-attr]
            refs = [weakref.ref(x) for x in held]
            del held, record
        assert [r() for r in refs] == [None] * len(refs)
    finally:
        gc.enable()


def test_a_record_file_of_an_earlier_version_keeps_its_raw_scans(tmp_path: Path) -> None:
    """Record files written before the jaws were saved encoded hold them as meshes in the record (and no ``meshes``
    field): they load as they were."""
    import pickle
    from dataclasses import replace

    patient = make_patient(SynthConfig(spacing_mm=1.2, ios_resolution_mm=1.0), np.random.default_rng(4))
    record = synth_record(patient, "P000")
    path = save_record(record, tmp_path)
    with path.open("rb") as fh:
        saved = pickle.load(fh)
    assert saved.meshes
    assert not saved.record.case.ios
    earlier = replace(saved, record=replace(saved.record, case=replace(saved.record.case, ios=record.case.ios)))
    del vars(earlier)["meshes"]  # the field did not exist: the class default stands in on load
    path.write_bytes(pickle.dumps(earlier, protocol=pickle.HIGHEST_PROTOCOL))
    (back,) = load_records([str(path)])
    for jaw, mesh in record.case.ios.items():
        np.testing.assert_array_equal(back.case.ios[jaw].vertices, mesh.vertices)
        np.testing.assert_array_equal(back.case.ios[jaw].faces, mesh.faces)
