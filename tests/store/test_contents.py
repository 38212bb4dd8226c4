"""A version's tables and card (store.contents): built from the gathered rows, splits kept from the base,
hashed as readers see them, written as bytes with their sha256; validate_record refuses what cannot be stored."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np
import pyarrow as pa
import pytest
import zarr

from tests.store.conftest import make_record
from toothmcl_data.errors import StoreError
from toothmcl_data.store.contents import build_tables, encode_tables, write_tables_and_card
from toothmcl_data.store.records import Provenance, validate_record
from toothmcl_data.store.splits import SplitConfig
from toothmcl_data.store.tables import case_rows

TABLE_NAMES = {"cases", "scans", "teeth", "pairs", "registrations", "inventory", "quarantine", "splits", "provenance"}


def _rows(*pseudonyms: str) -> dict[str, list[dict]]:
    rows: dict[str, list[dict]] = {t: [] for t in ("cases", "scans", "teeth", "pairs", "registrations")}
    for i, p in enumerate(pseudonyms):
        for name, value in case_rows(make_record(i, p), f"{i:064x}", -1).items():
            rows[name].extend(value)
    return rows


def test_tables_keep_the_base_split_and_hash_deterministically() -> None:
    rows = _rows("P0000", "P0001")
    base = {"splits": pa.table({"pseudonym": ["P0000"], "split": ["test"]})}
    built = build_tables(rows, [], [], Provenance(source="s"), SplitConfig(), base_tables=base, where="store X")
    assert set(built) == TABLE_NAMES
    assert built["cases"].column("pseudonym").to_pylist() == ["P0000", "P0001"]
    splits = dict(zip(*(built["splits"].column(c).to_pylist() for c in ("pseudonym", "split")), strict=True))
    assert splits["P0000"] == "test"  # kept from the base version
    payloads, tables, hashes, vhash = encode_tables(built)
    assert set(payloads) == set(tables) == set(hashes) == TABLE_NAMES
    assert encode_tables(built)[3] == vhash
    other = build_tables(rows, [], [], Provenance(source="t"), SplitConfig(), base_tables=base, where="store X")
    _, _, other_hashes, other_vhash = encode_tables(other)
    assert other_vhash != vhash
    assert other_hashes["provenance"] != hashes["provenance"]
    assert other_hashes["cases"] == hashes["cases"]


def test_stratifying_by_a_missing_column_names_the_store() -> None:
    with pytest.raises(StoreError, match="store X: splits stratified by 'scanner', but the cases table has no"):
        build_tables(
            _rows("P0000"), [], [], Provenance(), SplitConfig(stratify_by="scanner"), base_tables={}, where="store X"
        )


def test_tables_and_card_are_written_with_their_sha256() -> None:
    built = build_tables(_rows("P0000"), [], [], Provenance(), SplitConfig(), base_tables={}, where="store X")
    payloads, tables, hashes, vhash = encode_tables(built)
    zstore = zarr.storage.MemoryStore()
    zarr.open_group(zstore, mode="w")
    write_tables_and_card(zstore, tables, payloads, hashes, vhash=vhash, provenance=Provenance(), splits=SplitConfig())
    cases = zarr.open_array(zstore, path="tables/cases", mode="r")
    assert bytes(np.asarray(cases[...])) == payloads["cases"]
    assert cases.attrs["sha256"] == hashlib.sha256(payloads["cases"]).hexdigest()
    assert cases.attrs["content_sha256"] == hashes["cases"]
    assert cases.attrs["rows"] == 1
    card = json.loads(bytes(np.asarray(zarr.open_array(zstore, path="card/json", mode="r")[...])))
    assert vhash in json.dumps(card)


def test_validate_record_refuses_a_pseudonym_with_a_slash_and_points_without_normals() -> None:
    record = make_record(0, "P0000")
    validate_record(record)
    bad_case = dataclasses.replace(record.case, pseudonym="a/b")
    with pytest.raises(StoreError, match="a pseudonym must be non-empty, without '/'"):
        validate_record(dataclasses.replace(record, case=bad_case))
    pair = record.pairs[0]
    short = dataclasses.replace(pair, ios_points=pair.ios_points[:, :3])
    with pytest.raises(StoreError, match=r"ios_points must be \(N, 6\)"):
        validate_record(dataclasses.replace(record, pairs=[short, *record.pairs[1:]]))
