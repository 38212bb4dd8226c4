"""Planning a raw drop (io.plan): discover + group + match, one raw case per patient, nothing written."""

from __future__ import annotations

from pathlib import Path

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
