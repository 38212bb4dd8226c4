"""Quarantine is one row per input unit (a series with its files listed), and a reason names only files of the
unit it is about — even when another series of the case has files with the same names."""

from __future__ import annotations

import re
import zlib
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from tests.io.test_dicom import _slice
from toothmcl_data.deid.run import deidentify_drop
from toothmcl_data.io.discover import FileRecord
from toothmcl_data.io.inventory import Fate, quarantine_rows, redact
from toothmcl_data.io.plan import plan_files

KEY = b"a-test-key-that-is-long-enough-for-hmac-0123456789"
TILT = (1.0, 0.0, 0.0, 0.0, 0.984808, 0.173648)  # 10° about x


def _series(folder: Path, patient: str, positions: list[float], iop: tuple[float, ...] = (1, 0, 0, 0, 1, 0)) -> None:
    folder.mkdir(parents=True)
    uid = f"2.25.{zlib.crc32(str(folder).encode())}"
    rng = np.random.default_rng(zlib.crc32(str(folder).encode()))
    for n, z in enumerate(positions):
        pixels = rng.integers(0, 3000, (6, 6)).astype(np.uint16)
        _slice(folder / f"IM{n + 1:04d}.dcm", pixels, ipp=(0.0, 0.0, z), iop=iop, series=uid, spacing=(0.5, 0.5),
               PatientName=patient, PatientID=patient, StudyInstanceUID=uid + ".1")  # fmt: skip


def test_two_bad_series_with_the_same_file_names_are_two_rows_naming_their_own_files(tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    _series(drop / "P1" / "CT_A", "Alpha^Anna", [0.0, 0.5, 1.5, 2.0])  # a gap between IM0002 and IM0003
    _series(drop / "P1" / "CT_B", "Alpha^Anna", [0.0, 0.5, 1.0, 1.5], iop=TILT)  # gantry tilt
    _series(drop / "P2" / "CT", "Beta^Bob", [0.0, 0.5, 0.5, 1.0])  # two files at one position
    plan = plan_files(drop)
    summary = deidentify_drop(drop, tmp_path / "out", key=KEY, plan=plan)
    assert summary.fates == {"quarantined": 12}
    assert summary.cases == 0

    rows = pq.read_table(tmp_path / "out" / "tables" / "quarantine.parquet").to_pylist()
    assert len(rows) == 3  # one per series, not one per slice
    assert [r["n_files"] for r in rows] == [4, 4, 4]
    assert len({r["case"] for r in rows}) == 2
    by_folder = {
        folder: {r.sha256 for r in plan.records if r.path.startswith(folder)} for folder in ("P1/CT_A", "P1/CT_B")
    }
    for folder, own in by_folder.items():
        (row,) = [r for r in rows if set(r["files"]) == own]
        named = set(re.findall(r"sha256:([0-9a-f]{12})", row["reason"]))
        assert named, row["reason"]
        assert named <= {h[:12] for h in own}, (folder, row["reason"])  # never a file of the other series
        assert "IM000" not in row["reason"]
    assert any("non-uniform slice spacing" in r["reason"] for r in rows)
    assert any("gantry tilt" in r["reason"] for r in rows)
    inventory = pq.read_table(tmp_path / "out" / "tables" / "inventory.parquet").to_pylist()
    assert {r["unit"] for r in inventory} == {r["unit"] for r in rows}  # each file points at its unit's row


def test_redact_never_names_an_unrelated_file_with_the_same_name() -> None:
    a = FileRecord("P/A/IM1.dcm", 10, "a" * 64, "dicom", "dicom")
    b = FileRecord("P/B/IM1.dcm", 10, "b" * 64, "dicom", "dicom")
    assert redact("e.g. IM1.dcm", [a, b]) == "e.g. <file>"
    assert redact("e.g. IM1.dcm", [a, b], prefer=[b]) == f"e.g. sha256:{'b' * 12}"
    assert redact("P/A/IM1.dcm", [a, b], prefer=[b]) == f"sha256:{'a' * 12}"  # a full path is unambiguous


def test_quarantine_rows_group_by_unit_and_lone_files_are_their_own_unit() -> None:
    recs = [FileRecord(f"s/{n}", 5, f"{n}" * 64, "dicom", "dicom") for n in range(3)]
    lone = FileRecord("z", 0, "f" * 64, "other", "")
    fates = {r.path: Fate("quarantined", case="C", reason="bad series", unit="sha256:" + "9" * 12) for r in recs}
    fates[lone.path] = Fate("quarantined", reason="empty file")
    rows = quarantine_rows([*recs, lone], fates)
    assert [(r["unit"], r["n_files"], r["size"]) for r in rows] == [
        (f"sha256:{'f' * 12}", 1, 0),
        ("sha256:" + "9" * 12, 3, 15),
    ]
    assert rows[1]["files"] == [r.sha256 for r in recs]
