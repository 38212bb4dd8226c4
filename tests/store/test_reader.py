"""The reader on its own: what it returns is exactly what was written — pairs per case in FDI order, teeth rows
and attributes, table bytes, lazy blocks — and what is not there is a clear error."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from tests.store.conftest import PROVENANCE, make_record, records
from toothmcl_data.errors import StoreError
from toothmcl_data.store import CaseRecord, publish
from toothmcl_data.store.reader import VersionReader, open_version
from toothmcl_data.store.records import sorted_pairs
from toothmcl_data.types import Case


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[CaseRecord]]:
    recs = list(records(2))
    path = tmp_path_factory.mktemp("reader") / "store"
    publish(path, recs, message="two", provenance=PROVENANCE, tag="v1")
    return path, recs


def test_case_pairs_are_the_written_pairs_in_fdi_order(two: tuple[Path, list[CaseRecord]]) -> None:
    store, recs = two
    reader = open_version(store, "v1")
    got = reader.case_pairs("P0001")
    written = sorted_pairs(recs[1].pairs)
    assert [p.fdi for p in got] == sorted(p.fdi for p in recs[1].pairs)
    assert len(got) == len(written)
    for a, b in zip(got, written, strict=True):
        assert (a.case, a.fdi) == ("P0001", b.fdi)
        np.testing.assert_array_equal(a.cbct_crop, b.cbct_crop)
        np.testing.assert_array_equal(a.label_crop, b.label_crop)
        np.testing.assert_array_equal(a.world_from_crop, b.world_from_crop)
        np.testing.assert_array_equal(a.ios_points, b.ios_points)


def test_record_gives_back_teeth_rows_attributes_and_sources(two: tuple[Path, list[CaseRecord]]) -> None:
    store, recs = two
    back = open_version(store).record("P0000")
    assert dict(back.attributes) == dict(recs[0].attributes) == {"site": "B"}
    assert [dict(r) for r in back.teeth] == [dict(r) for r in recs[0].teeth]
    assert back.case.sources == recs[0].case.sources
    assert set(back.registrations) == {"upper", "lower"}
    reg = back.registrations["upper"]
    assert (reg.rms_mm, reg.p95_mm, reg.inlier_fraction) == (0.05, 0.1, 0.99)


def test_table_bytes_are_the_parquet_of_the_table(two: tuple[Path, list[CaseRecord]]) -> None:
    store, _ = two
    reader = open_version(store)
    for name in ("cases", "teeth", "splits"):
        assert pq.read_table(io.BytesIO(reader.table_bytes(name))).equals(reader.table(name))
    with pytest.raises(StoreError, match="no table 'patients'; tables are: cases"):
        reader.table("patients")


def test_lazy_volume_access_reads_the_written_voxels(two: tuple[Path, list[CaseRecord]]) -> None:
    store, recs = two
    reader = open_version(store)
    assert recs[1].case.cbct is not None
    cbct = recs[1].case.cbct.array
    lazy = reader.cbct_array("P0001")
    assert lazy is not None
    assert lazy.shape == cbct.shape
    np.testing.assert_array_equal(lazy[10:20, 5:9, 30:41], cbct[10:20, 5:9, 30:41])
    blocks = reader.volume_blocks("P0001", "cbct_labels")
    assert blocks is reader.volume_blocks("P0001", "cbct_labels")  # kept per case and name
    assert reader.cbct_array("P0001", "nothing") is None


def test_pair_read_fetches_one_whole_slot(two: tuple[Path, list[CaseRecord]]) -> None:
    store, recs = two
    pairs = open_version(store).pairs()
    assert len(pairs) == sum(len(r.pairs) for r in recs)
    assert np.all(np.diff(pairs.slots) > 0)
    slot = int(pairs.slots[-1])
    whole = pairs.read(slot)
    last = sorted_pairs(recs[1].pairs)[-1]
    assert whole["fdi"] == last.fdi
    assert whole["case_index"] == 1
    np.testing.assert_array_equal(whole["cbct_crop"], last.cbct_crop)
    assert whole["ios_points"].dtype == np.float32


def test_missing_things_are_clear_errors(two: tuple[Path, list[CaseRecord]], tmp_path: Path) -> None:
    store, _ = two
    reader = open_version(store)
    with pytest.raises(StoreError, match="no case 'P0007' \\(see case_ids\\(\\)\\)"):
        reader.ios("P0007", "upper")
    rec = make_record(0, "S0000")
    one_jaw = CaseRecord(Case("S0000", None, None, {"lower": rec.case.ios["lower"]}, {}), {}, [], [], {})
    publish(tmp_path / "s", [one_jaw], message="one jaw")
    bare = open_version(tmp_path / "s")
    with pytest.raises(StoreError, match="case S0000 has no upper scan"):
        bare.ios("S0000", "upper")
    with pytest.raises(StoreError, match="case S0000 has no lower registration"):
        bare.registration("S0000", "lower")
    assert len(bare.pairs()) == 0
    with pytest.raises(StoreError, match="this version has no tooth pairs"):
        bare.pairs().cbct_crop  # noqa: B018
    assert bare.cbct_labels("S0000") is None
    assert bare.volume_blocks("S0000") is None


def test_a_reader_is_pinned_by_its_version_info(two: tuple[Path, list[CaseRecord]]) -> None:
    store, _ = two
    pinned = open_version(store, "v1")
    again = VersionReader(store, pinned.info)
    assert again.id == pinned.id
    assert again.content_hash == pinned.content_hash
    assert again.tags == ("v1",)
    assert again.case_ids() == ["P0000", "P0001"]
