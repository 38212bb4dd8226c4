"""curate_case: a case that cannot be paired is quarantined with its reason, not raised; a case whose every input
was quarantined at de-identification has no record and no stage after de-identification."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

from tests.deid.conftest import KEY
from toothmcl_data.curate.case import FIGURES, curate_case, missing_outputs
from toothmcl_data.curate.clock import STAGES
from toothmcl_data.curate.drop import curation_config
from toothmcl_data.io.plan import plan_files
from toothmcl_data.synth.config import SynthConfig
from toothmcl_data.synth.drop import write_drop

COARSE = SynthConfig(spacing_mm=1.2, ios_resolution_mm=1.0, nifti_fraction=1.0)


def test_a_case_without_a_cbct_is_quarantined_with_its_reason(tmp_path: Path) -> None:
    drop = write_drop(tmp_path / "synth", patients=1, seed=5, config=COARSE)
    raw = replace(plan_files(drop.drop).cases[0], cbct=())
    work = tmp_path / "work"
    summary = curate_case(raw, work, tmp_path / "audit", key=KEY)
    assert summary["written"]
    assert summary["record"] is None
    assert "needs a CBCT and at least one IOS jaw" in summary["reason"]
    assert summary["verdicts"] == {}
    assert "pairs" not in summary
    assert set(summary["seconds"]) == set(STAGES)
    assert summary["seconds"]["deid"] > 0
    assert summary["seconds"]["register"] == 0.0
    assert not (work / "records").exists()
    assert not (work / FIGURES).exists()


def test_a_case_with_no_usable_input_is_not_written(tmp_path: Path) -> None:
    drop = write_drop(tmp_path / "synth", patients=1, seed=5, config=COARSE)
    raw = replace(plan_files(drop.drop).cases[0], cbct=(), ios=())
    summary = curate_case(raw, tmp_path / "work", tmp_path / "audit", key=KEY)
    assert summary["written"] is False
    assert summary["record"] is None
    assert summary["seconds"]["ingest"] >= 0.0
    assert summary["seconds"]["pair"] == 0.0


def test_the_register_config_given_reaches_the_registration(tmp_path: Path) -> None:
    # Thresholds no fit can meet: every jaw must fail QC, which only happens if curate_case used this config.
    config = curation_config(
        [f"register.{kind}_rms_mm=0.0001" for kind in ("pass", "review")]
        + [f"register.{kind}_p95_mm=0.0001" for kind in ("pass", "review")]
    )
    drop = write_drop(tmp_path / "synth", patients=1, seed=5, config=COARSE)
    raw = plan_files(drop.drop).cases[0]
    summary = curate_case(raw, tmp_path / "work", tmp_path / "audit", key=KEY, figures=False, config=config)
    assert summary["verdicts"] == {"upper": "fail", "lower": "fail"}, summary  # defaults: review / pass


def test_missing_outputs_names_what_a_case_result_points_to_and_is_gone(tmp_path: Path) -> None:
    drop = write_drop(tmp_path / "synth", patients=1, seed=5, config=COARSE)
    work, audit = tmp_path / "work", tmp_path / "audit"
    summary = curate_case(plan_files(drop.drop).cases[0], work, audit, key=KEY, figures=False)
    assert summary["record"] is not None
    assert missing_outputs(summary, work, audit) == []
    record = Path(summary["record"])
    record.unlink()
    assert missing_outputs(summary, work, audit) == [record]
    shutil.rmtree(work)
    shutil.rmtree(audit)
    pn = summary["pseudonym"]
    assert missing_outputs(summary, work, audit) == [
        audit / "cases" / f"{pn}.json",
        work / "cases" / pn / "case.json",
        record,
    ]
