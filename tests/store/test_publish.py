"""Publishing and reading versions: round trip, incremental writes, removal, determinism, errors."""

from __future__ import annotations

import os
import pickle
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from tests.store.conftest import PROVENANCE, make_record, records
from toothmcl_data.errors import StoreError, VersionNotFoundError
from toothmcl_data.store import (
    CaseRecord,
    Provenance,
    Writer,
    case_content_hash,
    diff_versions,
    open_version,
    publish,
    tag_version,
    verify_version,
)


def _chunk_files(store: Path) -> dict[str, int]:
    root = store / "chunks"
    return {str(p): p.stat().st_size for p in root.rglob("*") if p.is_file()} if root.exists() else {}


def test_round_trip_reads_back_every_array_and_table(store):
    recs = list(records(3))
    info = publish(
        store,
        recs,
        message="first",
        provenance=PROVENANCE,
        tag="v1",
        inventory=[{"sha256": "a" * 64, "kind": "dicom", "fate": "used"}],
        quarantine=[{"sha256": "b" * 64, "reason": "truncated DICOM"}],
    )
    r = open_version(store, "v1")
    assert r.id == info.id
    assert r.tags == ("v1",)
    assert info.n_cases == 3
    assert r.case_ids() == ["P0000", "P0001", "P0002"]
    rec = recs[1]
    cbct = r.cbct("P0001")
    np.testing.assert_array_equal(cbct.array, rec.case.cbct.array)
    np.testing.assert_array_equal(cbct.affine, rec.case.cbct.affine)
    assert cbct.array.dtype == np.int16
    np.testing.assert_array_equal(r.cbct_labels("P0001").array, rec.case.cbct_labels.array)
    mesh = r.ios("P0001", "upper")
    np.testing.assert_array_equal(mesh.vertices, rec.case.ios["upper"].vertices)
    np.testing.assert_array_equal(mesh.faces, rec.case.ios["upper"].faces)
    np.testing.assert_array_equal(mesh.labels, rec.case.ios["upper"].labels)
    assert mesh.frame == "ios:P0001:upper"
    normals = r.ios_normals("P0001", "upper")
    np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1.0, atol=1e-4)
    reg = r.registration("P0001", "lower")
    np.testing.assert_array_equal(reg.world_from_ios, rec.registrations["lower"].world_from_ios)
    assert (reg.verdict, reg.per_tooth_mm) == ("pass", {11: 0.04})
    # stacked pairs: every pair row points at its slot; arrays equal the record's pairs
    pairs = r.pairs()
    table = r.table("pairs").to_pylist()
    assert len(pairs) == len(table) == sum(len(x.pairs) for x in recs)
    assert pairs.cbct_crop.dtype == np.int16
    assert pairs.ios_points.shape[1:] == (32, 6)
    by_fdi = {p.fdi: p for p in rec.pairs}
    case_row = r.case_ids().index("P0001")
    for row in (t for t in table if t["pseudonym"] == "P0001"):
        s = row["slot"]
        assert int(pairs.case_index[s]) == case_row
        assert int(pairs.fdi[s]) == row["fdi"]
        np.testing.assert_array_equal(pairs.cbct_crop[s], by_fdi[row["fdi"]].cbct_crop)
        np.testing.assert_array_equal(pairs.ios_points[s], by_fdi[row["fdi"]].ios_points)
        np.testing.assert_array_equal(pairs.world_from_crop[s], by_fdi[row["fdi"]].world_from_crop)
        whole = pairs.read(s)
        np.testing.assert_array_equal(whole["label_crop"], by_fdi[row["fdi"]].label_crop)
        assert (whole["fdi"], whole["case_index"]) == (row["fdi"], case_row)
    # empty slots are marked
    empty = np.setdiff1d(np.arange(pairs.fdi.shape[0]), pairs.slots)
    assert np.all(np.asarray(pairs.case_index[...])[empty] == -1)
    # tables and card
    assert r.table("inventory").column("fate").to_pylist() == ["used"]
    card = r.card()
    assert card["counts"]["patients"] == 3
    assert card["counts"]["quarantined"] == 1
    assert card["counts"]["pairs"] == len(table)
    assert card["provenance"]["licence"] == "CC0-1.0"
    assert card["provenance"]["key_fingerprint"] == "fp-test"
    assert card["quarantine"]["by_reason"] == {"truncated DICOM": 1}
    assert "# Dataset card" in r.card_markdown()
    assert case_content_hash(r.record("P0001")) == case_content_hash(rec)


def test_adding_five_patients_writes_only_their_bytes(tmp_path):
    """Acceptance: +5 patients onto a 20-patient version writes only the new cases' data."""
    store, alone = tmp_path / "store", tmp_path / "alone"
    v20 = publish(store, records(20), message="20", provenance=PROVENANCE)
    before = _chunk_files(store)
    v25 = publish(store, records(25), message="25", provenance=PROVENANCE)
    after = _chunk_files(store)
    assert v25.stats["cases_written"] == 5
    assert v25.stats["cases_unchanged"] == 20
    assert all(after[k] == v for k, v in before.items())  # nothing old rewritten
    new_bytes = sum(v for k, v in after.items() if k not in before)
    five = publish(alone, records(5, start=20), message="5", provenance=PROVENANCE)
    # the same five cases alone: same chunk bytes (± the shared case_index chunk)
    assert new_bytes == v25.stats["bytes_written"]
    assert abs(new_bytes - five.stats["bytes_written"]) <= 0.02 * five.stats["bytes_written"]
    assert new_bytes < 0.3 * v20.stats["bytes_written"]


def test_removed_and_changed_cases_and_layout_free_content_hash(tmp_path):
    a, fresh = tmp_path / "a", tmp_path / "fresh"
    v1 = publish(a, records(4), message="4", provenance=PROVENANCE, tag="v1")
    changed = make_record(2, "P0002", variant=99)
    new = [make_record(0, "P0000", 1), changed, make_record(3, "P0003", 4)]
    v2 = publish(a, new, message="drop 1, change 2", provenance=PROVENANCE)
    assert v2.stats == {**v2.stats, "cases_written": 1, "cases_unchanged": 2, "cases_removed": 1}
    d = diff_versions(a, "v1", "latest")
    assert (d["added"], d["removed"], d["changed"], d["unchanged"]) == ([], ["P0001"], ["P0002"], 2)
    assert d["tables"]["provenance"]["changed"] is False
    assert d["tables"]["cases"]["changed"] is True
    r = open_version(a)
    assert r.case_ids() == ["P0000", "P0002", "P0003"]
    with pytest.raises(StoreError, match="no case 'P0001'"):
        r.cbct("P0001")
    np.testing.assert_array_equal(r.cbct("P0002").array, changed.case.cbct.array)
    assert verify_version(a).ok
    assert verify_version(a, "v1").ok
    # the old version is untouched
    assert open_version(a, v1.id).case_ids() == ["P0000", "P0001", "P0002", "P0003"]
    # a fresh publish of the same content has the same content hash (slots are layout, not content)
    v_fresh = publish(fresh, new, message="fresh", provenance=PROVENANCE)
    assert v_fresh.content_hash == v2.content_hash
    assert len(open_version(a).pairs()) == len(open_version(fresh).pairs())


def test_same_inputs_same_hash_and_config_changes_it(tmp_path):
    h1 = publish(tmp_path / "1", records(2), message="a", provenance=PROVENANCE).content_hash
    h2 = publish(tmp_path / "2", records(2), message="b", provenance=PROVENANCE).content_hash
    other = Provenance(**{**PROVENANCE.to_dict(), "config": {"synth": {}, "x": 1}})
    h3 = publish(tmp_path / "3", records(2), message="c", provenance=other).content_hash
    assert h1 == h2 != h3
    assert len(h1) == 64


def test_unchanged_publish_makes_no_commit_but_tags(store):
    v1 = publish(store, records(2), message="a", provenance=PROVENANCE)
    again = publish(store, records(2), message="again", provenance=PROVENANCE, tag="stable")
    assert again.id == v1.id
    assert again.tags == ("stable",)


def test_threaded_writer_and_keep_match_publish(tmp_path):
    recs = list(records(6))
    ref = publish(tmp_path / "ref", recs, message="ref", provenance=PROVENANCE)
    with Writer(tmp_path / "threads") as w:
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(w.write_case, recs))
        info = w.commit(message="threads", provenance=PROVENANCE)
    assert info.content_hash == ref.content_hash
    assert verify_version(tmp_path / "threads").ok
    with Writer(tmp_path / "threads") as w:
        for p in ("P0000", "P0001", "P0002"):
            w.keep(p)
        for rec in recs[3:5]:
            w.write_case(rec)
        kept = w.commit(message="keep", provenance=PROVENANCE)
    assert kept.stats["cases_removed"] == 1
    assert kept.n_cases == 5
    direct = publish(tmp_path / "direct", recs[:5], message="direct", provenance=PROVENANCE)
    assert kept.content_hash == direct.content_hash


def test_reader_pickles_and_is_pinned_to_its_version(store):
    publish(store, records(2), message="a", provenance=PROVENANCE)
    r = open_version(store)
    crop = np.asarray(r.pairs().cbct_crop[int(r.pairs().slots[0])])
    publish(store, records(3), message="b", provenance=PROVENANCE)
    clone = pickle.loads(pickle.dumps(r))
    assert clone.id == r.id
    assert clone.case_ids() == ["P0000", "P0001"]
    np.testing.assert_array_equal(clone.pairs().cbct_crop[int(clone.pairs().slots[0])], crop)
    assert open_version(store).case_ids() == ["P0000", "P0001", "P0002"]


def test_verify_detects_a_corrupted_chunk(store):
    publish(store, records(1), message="a", provenance=PROVENANCE)
    chunks = sorted((store / "chunks").rglob("*"), key=lambda p: p.stat().st_size)
    target = chunks[-1]
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    os.chmod(target, 0o644)
    target.write_bytes(bytes(data))
    report = verify_version(store)
    assert not report.ok
    assert any("P0000" in p for p in report.problems)


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda s: open_version("memory://x"), StoreError, "memory:// is not supported"),
        (lambda s: open_version(s / "nothing"), VersionNotFoundError, "no dataset store there"),
        (lambda s: open_version(s, "nope"), VersionNotFoundError, "no version 'nope'"),
        (lambda s: publish(s, [make_record(0, "A"), make_record(1, "A")], message="x"), StoreError, "written twice"),
        (lambda s: publish(s, records(1), message="x", inventory=[{"path": "/x"}]), StoreError, "original path"),
        (lambda s: publish(s, [_bad_dtype()], message="x"), StoreError, "CBCT must be int16"),
        (lambda s: publish(s, [make_record(0, "a/b")], message="x"), StoreError, "without '/'"),
        (lambda s: Provenance(input_hashes={"/data/jane_doe/ct.dcm": "0" * 64}), StoreError, "look like file paths"),
        (lambda s: publish(s, [_with_attributes(patient_name="x")], message="x"), StoreError, "identity"),
        (lambda s: tag_version(s, "latest"), StoreError, "cannot be a tag name"),
    ],
)
def test_errors_name_the_problem_and_the_fix(store, make, error, message):
    if message in ("no version 'nope'", "cannot be a tag name"):
        publish(store, records(1), message="x")
    with pytest.raises(error, match=message):
        make(store)


def _with_attributes(**attributes):
    rec = make_record(0, "G")
    return CaseRecord(rec.case, rec.registrations, rec.pairs, rec.teeth, attributes)


def _bad_dtype():
    rec = make_record(0, "F")
    from toothmcl_data.types import Case, Volume

    c = rec.case
    vol = Volume(c.cbct.array.astype(np.float32), c.cbct.affine)
    return CaseRecord(Case(c.pseudonym, vol, c.cbct_labels, c.ios, c.sources), rec.registrations, rec.pairs, rec.teeth)


def test_pair_shape_mismatch_is_refused(store):
    publish(store, records(1), message="a")
    rec = make_record(1, "P0009")
    from dataclasses import replace

    small = [replace(p, cbct_crop=p.cbct_crop[:8, :8, :8], label_crop=p.label_crop[:8, :8, :8]) for p in rec.pairs]

    with pytest.raises(StoreError, match=r"resample them to the store's"):
        publish(store, [*records(1), CaseRecord(rec.case, rec.registrations, small, rec.teeth)], message="b")
    assert open_version(store).case_ids() == ["P0000"]  # the failed publish left nothing
