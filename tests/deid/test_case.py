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


def test_an_unnamed_unlabelled_scan_is_upper_by_its_palate_and_a_lower_one_is_quarantined(tmp_path: Path) -> None:
    """Scans exported as ``…_scan1.ply`` / ``…_scan2.ply`` without sidecars: nothing names their jaws. The upper
    scan holds a palate (``io.palate``) and is kept as the upper jaw; the lower one is quarantined with the fix."""
    drop = write_drop(tmp_path / "synth", patients=1, seed=5, config=COARSE)
    folder = next((drop.drop / "IOS_EXPORT").iterdir())
    for sidecar in folder.glob("*.json"):
        sidecar.unlink()
    for scan in folder.glob("*Jaw.ply"):
        scan.rename(scan.with_name(scan.name.replace("UpperJaw", "scan1").replace("LowerJaw", "scan2")))
    raw = replace(plan_files(drop.drop).cases[0], cbct=())
    result = deidentify_case(raw, tmp_path / "out", key=KEY, audit=tmp_path / "audit", keep_cbct=True)
    assert isinstance(result, CaseResult)
    assert result.row is not None
    assert result.row["jaws"] == ["upper"]
    fates = {Path(path).stem.rsplit("_", 1)[-1]: fate for path, fate in result.fates.items()}
    assert (fates["scan1"].fate, fates["scan1"].role) == ("used", "ios:upper")
    assert fates["scan2"].fate == "quarantined"
    assert "cannot tell the jaw" in fates["scan2"].reason
    assert "put upper or lower in the file name" in fates["scan2"].reason
