"""De-identifying one case (deid.case): the case folder appears whole, the audit record names the patient and
the fate of every input file, a scan-only case has no CBCT fields."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from tests.deid.conftest import KEY
from toothmcl_data.deid.case import CaseResult, deidentify_case, load_case_result
from toothmcl_data.deid.pseudonym import pseudonym
from toothmcl_data.io.plan import plan_files
from toothmcl_data.synth.config import SynthConfig
from toothmcl_data.synth.drop import write_drop

COARSE = SynthConfig(spacing_mm=1.2, ios_resolution_mm=1.0, nifti_fraction=1.0)


def test_a_scan_only_case_is_written_whole_with_its_audit_record(tmp_path: Path) -> None:
    drop = write_drop(tmp_path / "synth", patients=1, seed=5, config=COARSE)
    raw = replace(plan_files(drop.drop).cases[0], cbct=())
    out, audit = tmp_path / "out", tmp_path / "audit"
    result = deidentify_case(raw, out, key=KEY, audit=audit, keep_cbct=True)
    assert isinstance(result, CaseResult)
    assert result.pseudonym == pseudonym(KEY, raw.patient)
    assert result.cbct is None  # no CBCT to keep
    assert result.row is not None
    assert result.row["modalities"] == ["ios"]
    assert result.row["cbct_shape"] == []
    assert result.row["jaws"] == ["lower", "upper"]
    assert sorted(p.name for p in (out / "cases").iterdir()) == [result.pseudonym]  # no temporary folder left
    folder = out / "cases" / result.pseudonym
    assert sorted(p.name for p in (folder / "ios").iterdir()) == ["lower.json", "lower.ply", "upper.json", "upper.ply"]
    doc = json.loads((folder / "case.json").read_text(encoding="utf-8"))
    assert sorted(doc["sources"]) == ["ios:lower", "ios:upper"]
    record = json.loads((audit / "cases" / f"{result.pseudonym}.json").read_text(encoding="utf-8"))
    assert record["patient"] == raw.patient
    assert {f["path"] for f in record["files"]} == {r.path for u in raw.ios for r in u.files}
    assert set(result.seconds) == {"read", "deid"}
    assert load_case_result(out, audit, result.pseudonym).row == result.row
