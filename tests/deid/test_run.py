"""De-identification runs, case by case: results that reload from disk as they were, a case with nothing usable
leaves nothing behind, competing inputs are quarantined with the reason, the tables name every case."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.deid.conftest import KEY
from toothmcl_data.deid.case import deidentify_case, load_case_result
from toothmcl_data.deid.pseudonym import key_fingerprint, pseudonym
from toothmcl_data.deid.run import default_audit, deidentify_drop
from toothmcl_data.errors import DeidError
from toothmcl_data.io.group import DropPlan
from toothmcl_data.io.plan import plan_files
from toothmcl_data.synth.config import SynthConfig
from toothmcl_data.synth.drop import write_drop

COARSE = SynthConfig(spacing_mm=1.2, ios_resolution_mm=1.0, nifti_fraction=1.0)


@pytest.fixture(scope="module")
def clean_plan(tmp_path_factory: pytest.TempPathFactory) -> DropPlan:
    """Two clean coarse patients (NIfTI CBCTs), planned."""
    drop = write_drop(tmp_path_factory.mktemp("run") / "synth", patients=2, seed=8, config=COARSE)
    return plan_files(drop.drop)


def test_drop_summary_progress_and_tables(clean_plan: DropPlan, tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    out = tmp_path / "deid"
    summary = deidentify_drop(
        clean_plan.source.root, out, key=KEY, plan=clean_plan, progress=lambda d, t: calls.append((d, t))
    )
    assert calls == [(1, 2), (2, 2)]
    assert summary.audit == default_audit(out) == tmp_path / "deid-audit"
    assert summary.cases == 2
    assert summary.files == len(clean_plan.records)
    assert summary.key_fingerprint == key_fingerprint(KEY)
    assert summary.to_dict()["fates"] == dict(summary.fates)
    names = sorted(pseudonym(KEY, c.patient) for c in clean_plan.cases)
    assert sorted(p.name for p in (out / "cases").iterdir()) == names
    assert pq.read_table(out / "tables" / "cases.parquet").column("pseudonym").to_pylist() == names
    with (summary.audit / "pseudonyms.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["patient"]: r["pseudonym"] for r in rows} == {
        c.patient: pseudonym(KEY, c.patient) for c in clean_plan.cases
    }
    assert all(r["written"] == "True" for r in rows)


def test_a_case_result_reloads_as_it_was(clean_plan: DropPlan, tmp_path: Path) -> None:
    raw = clean_plan.cases[0]
    out, audit = tmp_path / "out", tmp_path / "audit"
    result = deidentify_case(raw, out, key=KEY, audit=audit, keep_cbct=True)
    assert result.written
    assert result.cbct is not None
    assert result.row is not None
    assert result.row["modalities"] == ["cbct", "ios"]
    assert result.row["cbct_shape"] == list(result.cbct.shape)
    loaded = load_case_result(out, audit, result.pseudonym)
    assert loaded.pseudonym == result.pseudonym
    assert loaded.written
    assert dict(loaded.fates) == dict(result.fates)
    assert dict(loaded.row) == dict(result.row)  # type: ignore[arg-type]
    assert all(f.fate == "used" and f.case == result.pseudonym for f in result.fates.values())
    with pytest.raises(DeidError, match="no audit record for case NOPE; de-identify the case again"):
        load_case_result(out, audit, "NOPE")


def test_a_case_with_nothing_usable_leaves_nothing(clean_plan: DropPlan, tmp_path: Path) -> None:
    raw = replace(clean_plan.cases[0], cbct=(), ios=())
    result = deidentify_case(raw, tmp_path / "out", key=KEY, audit=tmp_path / "audit")
    assert not result.written
    assert result.row is None
    assert list((tmp_path / "out" / "cases").iterdir()) == []  # no case folder, no temporary one
    assert load_case_result(tmp_path / "out", tmp_path / "audit", result.pseudonym).written is False


def test_competing_inputs_are_quarantined_with_the_reason(clean_plan: DropPlan, tmp_path: Path) -> None:
    raw = clean_plan.cases[1]
    scan = raw.ios[0]
    cbct_twin = replace(raw.cbct[0], files=tuple(replace(f, path=f.path + "#copy") for f in raw.cbct[0].files))
    # the same scan handed twice claims its jaw twice; the CBCT twin names files that do not exist, which is
    # fine: a second CBCT is refused before it is read
    result = deidentify_case(replace(raw, cbct=(*raw.cbct, cbct_twin), ios=(*raw.ios, scan)), tmp_path / "o", key=KEY)
    fates = result.fates
    assert fates[cbct_twin.files[0].path].fate == "quarantined"
    assert "a second CBCT for this case" in fates[cbct_twin.files[0].path].reason
    assert fates[raw.cbct[0].files[0].path].fate == "used"
    assert fates[scan.files[0].path].fate == "quarantined"
    assert "2 scans" in fates[scan.files[0].path].reason
    assert "jaw of one case; expected one" in fates[scan.files[0].path].reason
    assert result.row is not None
    assert len(result.row["jaws"]) == len(raw.ios) - 1  # neither copy of the claimed jaw is used
