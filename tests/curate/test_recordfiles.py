"""Case record files: saved atomically under WORK/records/<pseudonym>.pkl and loaded back equal, in order."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from toothmcl_data.curate.recordfiles import RECORDS, load_records, save_record
from toothmcl_data.synth.config import SynthConfig
from toothmcl_data.synth.patient import make_patient
from toothmcl_data.synth.record import synth_record


def test_records_round_trip_one_at_a_time(tmp_path: Path) -> None:
    patient = make_patient(SynthConfig(spacing_mm=1.2, ios_resolution_mm=1.0), np.random.default_rng(4))
    records = [synth_record(patient, name) for name in ("P001", "P000")]
    paths = [save_record(r, tmp_path) for r in records]
    assert [p.name for p in paths] == ["P001.pkl", "P000.pkl"]
    assert sorted(p.name for p in (tmp_path / RECORDS).iterdir()) == ["P000.pkl", "P001.pkl"]  # no .tmp left
    back = list(load_records([str(p) for p in paths]))
    assert [r.pseudonym for r in back] == ["P001", "P000"]
    for got, want in zip(back, records, strict=True):
        assert got.case.cbct is not None
        assert want.case.cbct is not None
        np.testing.assert_array_equal(got.case.cbct.array, want.case.cbct.array)
        assert len(got.pairs) == len(want.pairs) > 0
        np.testing.assert_array_equal(
            got.registrations["upper"].world_from_ios, want.registrations["upper"].world_from_ios
        )
