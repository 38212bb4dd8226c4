"""Planning a raw drop (io.plan): discover + group + match, one raw case per patient, nothing written."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from toothmcl_data.io.discover import discover
from toothmcl_data.io.fs import open_source
from toothmcl_data.io.plan import plan_drop, plan_files
from toothmcl_data.synth.config import SynthConfig
from toothmcl_data.synth.drop import write_drop

COARSE = SynthConfig(spacing_mm=1.2, ios_resolution_mm=1.0, nifti_fraction=1.0)


def _tree(root: Path) -> list[tuple[str, int]]:
    return sorted((str(p.relative_to(root)), p.stat().st_size) for p in root.rglob("*"))


def test_plan_finds_one_case_per_patient_and_writes_nothing(tmp_path: Path) -> None:
    drop = write_drop(tmp_path / "synth", patients=2, seed=3, config=COARSE)
    before = _tree(drop.drop)
    seen: list[int] = []
    plan = plan_files(drop.drop, progress=seen.append)
    assert _tree(drop.drop) == before
    assert len(plan.cases) == 2
    assert seen  # discovery reported its progress
    assert {len(c.cbct) for c in plan.cases} == {1}
    assert all(len(c.ios) == 2 for c in plan.cases)  # upper and lower scan
    assert len(plan.records) == sum(len(c.files) for c in plan.cases) + len(
        [p for p, f in plan.fates.items() if f.fate != "used"]
    )
    assert [c.patient for c in plan_drop(drop.drop)] == [c.patient for c in plan.cases]


def test_a_drop_discovered_in_batches_is_planned_as_in_one_discovery(tmp_path: Path) -> None:
    """The flow discovers a drop's files in batches on its workers: batches that each span several cases, handed
    over in any order, give the plan one discovery gives."""
    drop = write_drop(
        tmp_path / "synth", patients=2, seed=5, bad_fraction=0.5, config=replace(COARSE, nifti_fraction=0.5)
    )
    whole = plan_files(drop.drop)
    source = open_source(drop.drop)
    files = source.list_files()
    batches = [files[i::3] for i in range(3)]
    records = [r for batch in reversed(batches) for r in discover(source, files=batch)]
    assert sorted(r.path for r in records) == files
    parted = plan_files(drop.drop, records=records)
    assert parted.records == whole.records
    assert parted.fates == whole.fates
    assert [(c.patient, c.files) for c in parted.cases] == [(c.patient, c.files) for c in whole.cases]
    assert any(c.cbct and c.cbct[0].kind == "series" for c in whole.cases)  # DICOM series split across batches
