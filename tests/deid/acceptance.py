"""Checks shared by the default-suite drop test and the slow 20-patient acceptance run."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from tests.deid.conftest import KEY, DeidRun
from toothmcl_data.deid.pseudonym import pseudonym
from toothmcl_data.deid.scan import load_phi, scan_tree
from toothmcl_data.io.case import load_case

EXPECTED: dict[str, tuple[str, str]] = {
    # fault kind → (fate of the planted paths, pattern the published reason must match)
    "truncated_dicom": ("quarantined", r"DICOM file sha256:[0-9a-f]{12} declares 1 frame\(s\) of \d+×\d+ pixels"),
    "mixed_series": ("quarantined", r"localizer series of 3 files \(ImageType LOCALIZER\)"),
    "nonuniform_spacing": ("quarantined", r"non-uniform slice spacing .* sha256:[0-9a-f]{12}"),
    "zero_byte_file": ("quarantined", r"sha256:[0-9a-f]{12}: empty file \(0 bytes\)"),
    "empty_mesh": ("quarantined", r"sha256:[0-9a-f]{12}: mesh is empty"),
    "nan_vertices": ("quarantined", r"sha256:[0-9a-f]{12}: 5 vertices have NaN"),
    "label_count_mismatch": ("quarantined", r"label sidecar sha256:[0-9a-f]{12} has \d+ labels but the mesh has"),
    "unknown_tooth_code": ("quarantined", r"not codes of label scheme 'teeth3ds': (19|59)"),
    "ios_misfiled": ("used", r"matched by header; another source disagreed"),
    "non_utf8_filename": ("used", r"^$"),
}


def audit_rows(run: DeidRun) -> dict[str, dict[str, Any]]:
    rows = pq.read_table(run.audit / "inventory.parquet").to_pylist()
    return {os.fsdecode(r["path_bytes"]): r for r in rows}


def truth(run: DeidRun) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((run.drop.ground_truth / "truth.json").read_text())
    return doc


def check_inventory_complete(run: DeidRun) -> None:
    on_disk = {os.fsdecode(p.relative_to(run.drop.drop)) for p in run.drop.drop.rglob("*") if p.is_file()}
    rows = audit_rows(run)
    assert set(rows) == on_disk
    public = pq.read_table(run.out / "tables" / "inventory.parquet").to_pylist()
    assert len(public) == len(on_disk)
    assert sorted(r["sha256"] for r in public) == sorted(r["sha256"] for r in rows.values())
    assert {r["fate"] for r in public} <= {"used", "duplicate", "quarantined", "ignored"}
    quarantined = pq.read_table(run.out / "tables" / "quarantine.parquet").to_pylist()
    files = [r["sha256"] for r in public if r["fate"] == "quarantined"]
    # one row per input unit (a series is one row), its files listed: every quarantined file in exactly one row
    assert sorted(f for r in quarantined for f in r["files"]) == sorted(files)
    assert all(r["n_files"] == len(r["files"]) and r["reason"] for r in quarantined)
    assert len({r["unit"] for r in quarantined}) == len(quarantined)


def check_faults(run: DeidRun) -> set[str]:
    """Every planted fault ends as expected; returns the fault kinds seen."""
    rows = audit_rows(run)
    seen: set[str] = set()
    for patient in truth(run)["patients"]:
        pn = pseudonym(KEY, patient["identity"]["patient_id"])
        for fault in patient["faults"]:
            kind = fault["kind"]
            seen.add(kind)
            if kind == "duplicate_file":
                source, twin = fault["paths"]
                fates = sorted((rows[source]["fate"], rows[twin]["fate"]))
                assert fates == ["duplicate", "used"], (kind, fates)
                continue
            if kind == "missing_slice":
                rest = [f["path"] for f in patient["files"] if f["role"] == "cbct_slice"]
                assert rest
                assert all(rows[p]["fate"] == "quarantined" for p in rest)
                assert all(re.search(r"non-uniform slice spacing", rows[p]["reason"]) for p in rest)
                continue
            fate, pattern = EXPECTED[kind]
            for path in fault["paths"]:
                row = rows[path]
                assert row["fate"] == fate, (kind, path, row)
                assert re.search(pattern, row["reason"]), (kind, row["reason"])
                assert row["path"] not in row["reason"]
                assert os.path.basename(path) not in row["reason"]
                if kind == "ios_misfiled":
                    assert row["case"] == pn  # the header identity won over the folder it was filed in
    return seen


def check_clean_cases(run: DeidRun) -> int:
    """Patients whose CBCT was not damaged come through with the CBCT equal to the ground truth."""
    checked = 0
    cbct_faults = {"truncated_dicom", "missing_slice", "nonuniform_spacing", "zero_byte_file"}
    for patient in truth(run)["patients"]:
        pn = pseudonym(KEY, patient["identity"]["patient_id"])
        kinds = {f["kind"] for f in patient["faults"]}
        case_dir = run.out / "cases" / pn
        if kinds & cbct_faults:
            if case_dir.exists():
                assert load_case(case_dir).cbct is None
            continue
        case = load_case(case_dir)
        assert case.cbct is not None
        expected = np.load(run.drop.ground_truth / patient["arrays"]["cbct"])
        np.testing.assert_array_equal(case.cbct.array, expected)
        np.testing.assert_allclose(case.cbct.affine, np.asarray(patient["cbct"]["affine"]), atol=1e-6)
        jaws = {"upper", "lower"} - ({"lower"} if kinds & {"empty_mesh", "label_count_mismatch"} else set())
        jaws -= {"upper"} if kinds & {"nan_vertices", "unknown_tooth_code"} else set()
        assert set(case.ios) == jaws, (patient["key"], kinds)
        for jaw, mesh in case.ios.items():
            assert mesh.frame == f"ios:{pn}:{jaw}"
            assert mesh.labels is not None
            assert mesh.jaw == jaw
        checked += 1
    return checked


def check_no_leaks(run: DeidRun) -> tuple[int, int]:
    """(hits in the output, hits in the raw drop) for the planted PHI."""
    phi = load_phi(run.drop.ground_truth / "phi.json")
    out_hits, _ = scan_tree(run.out, phi)
    raw_hits, _ = scan_tree(run.drop.drop, phi)
    return len(out_hits), len(raw_hits)


def check_all(run: DeidRun) -> dict[str, Any]:
    check_inventory_complete(run)
    seen = check_faults(run)
    clean = check_clean_cases(run)
    out_hits, raw_hits = check_no_leaks(run)
    assert out_hits == 0
    assert raw_hits > 0
    return {"faults": sorted(seen), "clean_cases": clean, "raw_hits": raw_hits}


def no_path_in(root: Path, names: set[str]) -> list[str]:
    return [str(p) for p in root.rglob("*") if any(n in p.name for n in names)]
