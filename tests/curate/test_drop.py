"""A run's bookkeeping from its case summaries: quarantine rows per failed case, stage totals over computed cases,
the empty-run error, the provenance of the published version."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from toothmcl_data.curate.clock import STAGES
from toothmcl_data.curate.drop import (
    curation_config,
    curation_provenance,
    nothing_to_publish,
    run_quarantine,
    stage_totals,
)
from toothmcl_data.errors import ConfigError
from toothmcl_data.pair import PairConfig
from toothmcl_data.provenance import code_version
from toothmcl_data.register import RegisterConfig

QUARANTINED = {
    "unit": "file:x.stl",
    "case": "",
    "kind": "mesh",
    "format": "stl",
    "role": "",
    "n_files": 1,
    "size": 7,
    "files": ["s0"],
    "reason": "unreadable mesh",
}


def _tables(work: Path) -> None:
    (work / "tables").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist([QUARANTINED]), work / "tables" / "quarantine.parquet")
    inventory = [
        {"case": "A", "fate": "used", "size": 10, "sha256": "a2"},
        {"case": "A", "fate": "used", "size": 5, "sha256": "a1"},
        {"case": "A", "fate": "ignored", "size": 1, "sha256": "a3"},
        {"case": "B", "fate": "used", "size": 4, "sha256": "b1"},
    ]
    pq.write_table(pa.Table.from_pylist(inventory), work / "tables" / "inventory.parquet")


def test_a_case_that_failed_registration_is_one_quarantine_unit_with_its_used_files(tmp_path: Path) -> None:
    _tables(tmp_path)
    summaries: list[dict[str, Any]] = [
        {"pseudonym": "A", "record": None, "reason": "no CBCT surface"},
        {"pseudonym": "B", "record": "B.pkl", "reason": ""},
    ]
    rows = run_quarantine(tmp_path, summaries)
    assert rows[0] == QUARANTINED
    assert rows[1:] == [
        {
            "unit": "case:A",
            "case": "A",
            "kind": "case",
            "format": "",
            "role": "register/pair",
            "n_files": 2,
            "size": 15,
            "files": ["a1", "a2"],
            "reason": "no CBCT surface",
        }
    ]
    error = nothing_to_publish("raw/", tmp_path, tmp_path / "audit", 2, rows)
    assert "2 cases found, 2 input units (3 files) quarantined" in str(error)
    assert "e.g. no CBCT surface" in str(error)
    assert str(tmp_path / "tables" / "quarantine.parquet") in str(error)


def test_stage_totals_sum_only_the_computed_cases() -> None:
    summaries = [
        {"seconds": {"register": 1.0, "pair": 0.25}, "cpu_seconds": {"register": 0.5}},
        {"seconds": {"register": 10.0}, "cpu_seconds": {"register": 9.0}},  # a cache hit
        {"seconds": {"register": 2.0004}},  # an old summary without CPU seconds
    ]
    wall = stage_totals(summaries, [True, False, True])
    assert list(wall) == list(STAGES)
    assert wall["register"] == 3.0
    assert wall["pair"] == 0.25
    assert wall["ingest"] == 0.0
    assert stage_totals(summaries, [True, False, True], "cpu_seconds")["register"] == 0.5
    with pytest.raises(ValueError, match="shorter"):
        stage_totals(summaries, [True])


def test_provenance_names_the_code_the_config_and_every_input(tmp_path: Path) -> None:
    _tables(tmp_path)
    assert curation_config() == {"register": RegisterConfig().to_dict(), "pair": PairConfig().to_dict()}
    provenance, inventory = curation_provenance(tmp_path, key_fingerprint="fp", source="clinic", licence="CC0")
    assert len(inventory) == 4
    assert provenance.input_hashes == {"a2": "used", "a1": "used", "a3": "ignored", "b1": "used"}
    assert provenance.code_version == code_version()
    assert provenance.config == curation_config()
    assert (provenance.key_fingerprint, provenance.source, provenance.licence) == ("fp", "clinic", "CC0")


def test_curation_config_takes_register_and_pair_overrides_and_names_a_wrong_key() -> None:
    config = curation_config(["register.inlier_mm=0.3", "pair.project_mm=4"])
    assert config["register"] == {**RegisterConfig().to_dict(), "inlier_mm": 0.3}
    assert config["pair"]["project_mm"] == 4.0
    assert config["register"] != curation_config()["register"]
    with pytest.raises(ConfigError, match="optim"):
        curation_config(["optim.lr=0.1"])
    with pytest.raises(ConfigError, match="inlier_mmm"):
        curation_config(["register.inlier_mmm=0.3"])
    with pytest.raises(ConfigError, match="inlier_mm"):
        curation_config(["register.inlier_mm=wide"])
