"""The writer on its own: slot reuse for a changed case, one commit per writer, aborts leave the store as it
was, and every refusal names the case, what is wrong and what to do."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tests.store.conftest import PROVENANCE, make_record, records
from toothmcl_data.errors import StoreError
from toothmcl_data.store import CaseRecord, LayoutConfig, SplitConfig, list_versions, open_version
from toothmcl_data.store.writer import Writer, publish
from toothmcl_data.types import Case


def _slots(store: Path, pseudonym: str) -> list[int]:
    return [r["slot"] for r in open_version(store).table("pairs").to_pylist() if r["pseudonym"] == pseudonym]


def test_a_changed_case_with_as_many_pairs_keeps_its_slots(store: Path) -> None:
    publish(store, records(3), message="3", provenance=PROVENANCE)
    before = {p: _slots(store, p) for p in ("P0000", "P0001", "P0002")}
    changed = make_record(1, "P0001", variant=77)
    new_crop = changed.pairs[0].cbct_crop.copy()
    new_crop[0, 0, 0] += 5
    changed = CaseRecord(
        changed.case,
        changed.registrations,
        [replace(changed.pairs[0], cbct_crop=new_crop), *changed.pairs[1:]],
        changed.teeth,
        changed.attributes,
    )
    info = publish(store, [make_record(0, "P0000", 1), changed, make_record(2, "P0002", 3)], message="change 1")
    assert (info.stats["cases_written"], info.stats["cases_unchanged"]) == (1, 2)
    assert {p: _slots(store, p) for p in before} == before  # same slots, no growth
    reader = open_version(store)
    first = min(_slots(store, "P0001"))
    fdi = int(reader.pairs().fdi[first])
    expected = {p.fdi: p for p in changed.pairs}[fdi].cbct_crop
    np.testing.assert_array_equal(reader.pairs().cbct_crop[first], expected)  # the new content in the old slot


def test_a_full_rewrite_drops_every_base_case(store: Path) -> None:
    publish(store, records(2), message="2", provenance=PROVENANCE)
    info = publish(store, records(1, start=5), message="rewrite", base=None, provenance=PROVENANCE)
    reader = open_version(store)
    assert reader.case_ids() == ["P0005"]
    assert info.stats["cases_written"] == 1
    assert len(reader.pairs()) == len(make_record(5, "P0005").pairs)
    assert len(list_versions(store)) == 2


def _write_then_fail(store: Path) -> None:
    with Writer(store) as w:
        w.write_case(make_record(1, "P0001"))
        raise RuntimeError("boom")


def test_one_commit_per_writer_and_an_error_leaves_no_version(store: Path) -> None:
    publish(store, records(1), message="1", provenance=PROVENANCE)
    versions = len(list_versions(store))
    with pytest.raises(RuntimeError, match="boom"):
        _write_then_fail(store)
    assert len(list_versions(store)) == versions
    assert open_version(store).case_ids() == ["P0000"]
    w = Writer(store)
    w.keep("P0000")
    w.commit(message="same")
    with pytest.raises(StoreError, match="already committed; open a new Writer"):
        w.commit(message="again")


def test_keep_and_base_refusals(store: Path) -> None:
    publish(store, records(1), message="1", provenance=PROVENANCE, tag="v1")
    publish(store, records(2), message="2", provenance=PROVENANCE)
    with Writer(store) as w:
        with pytest.raises(StoreError, match="not in the base version, so it cannot be kept; write it instead"):
            w.keep("P0009")
        w.keep("P0000")
        with pytest.raises(StoreError, match="written twice in one publish"):
            w.keep("P0000")
        with pytest.raises(StoreError, match="already open in this thread"):
            Writer(store)  # a second publish in the same thread is an error, not a wait on itself
        w.abort()
    with pytest.raises(StoreError, match=r"base 'v1' .* is not the latest version"):
        Writer(store, base="v1")
    with pytest.raises(StoreError, match="created with layout"):
        Writer(store, layout=LayoutConfig(pairs_per_shard=4))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p: replace(p, case="OTHER"), "names case 'OTHER'"),
        (lambda p: replace(p, label_crop=p.label_crop[:-1]), "must be one \\(X, Y, Z\\) shape"),
        (lambda p: replace(p, ios_points=p.ios_points[:, :3]), r"ios_points must be \(N, 6\)"),
    ],
)
def test_malformed_pairs_are_refused(store: Path, change, message: str) -> None:
    rec = make_record(0, "P0000")
    bad = CaseRecord(rec.case, rec.registrations, [change(rec.pairs[0]), *rec.pairs[1:]], rec.teeth)
    with pytest.raises(StoreError, match=message):
        publish(store, [bad], message="bad")


def test_pairs_of_one_case_must_share_a_shape(store: Path) -> None:
    rec = make_record(0, "P0000")
    odd = replace(rec.pairs[1], ios_points=rec.pairs[1].ios_points[:16])
    with pytest.raises(StoreError, match="every pair of the case must match its first"):
        publish(store, [CaseRecord(rec.case, rec.registrations, [rec.pairs[0], odd], rec.teeth)], message="x")


def test_stratifying_by_a_missing_column_is_refused(store: Path) -> None:
    with pytest.raises(StoreError, match=r"stratified by 'scanner'.*add it to CaseRecord\.attributes"):
        publish(store, records(2), message="x", splits=SplitConfig(stratify_by="scanner"))
    info = publish(store, records(2), message="x", splits=SplitConfig(stratify_by="site"))
    assert info.n_cases == 2


def test_a_case_without_pairs_or_cbct_is_published(store: Path) -> None:
    rec = make_record(0, "P0000")
    ios_only = CaseRecord(Case("P0000", None, None, rec.case.ios, {}), {}, [], [], {})
    publish(store, [ios_only, make_record(1, "P0001")], message="mixed")
    reader = open_version(store)
    row = {r["pseudonym"]: r for r in reader.table("cases").to_pylist()}["P0000"]
    assert (row["has_cbct"], row["n_pairs"], row["pair_slot_start"]) == (False, 0, -1)
    assert reader.cbct("P0000") is None
    assert reader.case_pairs("P0000") == []
    np.testing.assert_array_equal(reader.ios("P0000", "lower").vertices, rec.case.ios["lower"].vertices)
