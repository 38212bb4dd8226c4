"""Inventory: every input file has a fate; published tables name files by hash only, the audit copy by path."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from toothmcl_data.io.discover import FileRecord
from toothmcl_data.io.inventory import Fate, redact, ref, write_inventory

RECORDS = [
    FileRecord("Doe_Jane/ct/IM0001.dcm", 100, "a" * 64, "dicom", "dicom"),
    FileRecord("Doe_Jane/scans/upper_jaw.stl", 200, "b" * 64, "mesh", "stl"),
    FileRecord("Roe_Rick/lower.ply", 300, "c" * 64, "mesh", "ply"),
]


def test_redact_replaces_paths_names_folders_and_roots() -> None:
    text = (
        "cannot read /drops/site1/Doe_Jane/ct/IM0001.dcm; upper_jaw.stl too; "
        "see Doe_Jane/scans and /drops/site1 (Roe_Rick)"
    )
    out = redact(text, RECORDS, roots=["/drops/site1"])
    assert out == (f"cannot read {ref(RECORDS[0])}; {ref(RECORDS[1])} too; see <folder> and <input> (<folder>)")
    assert "Doe" not in out
    assert ref(RECORDS[0]) == "sha256:aaaaaaaaaaaa"


def test_write_inventory_counts_fates_and_keeps_paths_in_the_audit_only(tmp_path: Path) -> None:
    fates = {
        RECORDS[0].path: Fate("used", case="PX", role="cbct", patient="Jane Doe"),
        RECORDS[1].path: Fate("quarantined", case="PX", reason="sha256:bbbbbbbbbbbb: bad", detail="upper_jaw.stl: bad"),
        RECORDS[2].path: Fate("ignored", reason="no CBCT for this patient"),
    }
    counts = write_inventory(tmp_path / "tables", tmp_path / "audit", RECORDS, fates)
    assert counts == {"used": 1, "quarantined": 1, "ignored": 1}
    public = pq.read_table(tmp_path / "tables" / "inventory.parquet")
    assert "path" not in public.column_names
    assert "patient" not in public.column_names
    assert public.column("sha256").to_pylist() == [r.sha256 for r in RECORDS]
    quarantine = pq.read_table(tmp_path / "tables" / "quarantine.parquet").to_pylist()
    assert [(q["files"], q["n_files"], q["reason"]) for q in quarantine] == [
        (["b" * 64], 1, "sha256:bbbbbbbbbbbb: bad")
    ]  # one row per unit; a file judged alone is its own unit
    audit = pq.read_table(tmp_path / "audit" / "inventory.parquet").to_pylist()
    assert [a["path"] for a in audit] == [r.path for r in RECORDS]
    assert audit[0]["patient"] == "Jane Doe"
    assert audit[1]["detail"] == "upper_jaw.stl: bad"
    with pytest.raises(KeyError, match="1 input files have no fate"):
        write_inventory(tmp_path / "t2", tmp_path / "a2", RECORDS, {k: v for k, v in list(fates.items())[:2]})
