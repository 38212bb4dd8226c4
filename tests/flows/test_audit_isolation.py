"""Nothing from the audit area (identities, original paths, the pseudonym map, the key) reaches the store, the
report or the logs of a build: all of them are searched with the leak scanner for every identifying string the
audit area and the synthetic ground truth hold. The audit area itself is owner-only (0700 folders, 0600 files)."""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path, PurePosixPath

import pyarrow.parquet as pq
import pytest

from flows.curate import CurateParams, run_curate
from toothmcl_data.deid.scan import scan_tree
from toothmcl_data.report.html import write_report
from toothmcl_data.synth.config import SynthConfig
from toothmcl_data.synth.drop import write_drop

COARSE = SynthConfig(spacing_mm=0.8, ios_resolution_mm=0.6, third_molar_probability=0.0)


@pytest.fixture(scope="module")
def build(key_file: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("audit-isolation")
    synth = write_drop(base / "synth", patients=2, seed=33, bad_fraction=0.5, config=COARSE)
    log_path = base / "build.log"
    handler = logging.FileHandler(log_path)
    handler.setLevel(logging.INFO)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        result = run_curate(
            CurateParams(raw=str(synth.drop), store=str(base / "store"), key_file=str(key_file), tag="v1")
        )
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()
    report = write_report(base / "store", result["version"], base / "report")
    return {
        "store": base / "store",
        "work_tables": base / "store.work" / "tables",
        "audit": base / "store.audit",
        "report": report.parent,
        "logs": log_path.parent / "logs",
        "log_file": log_path,
        "phi": synth.ground_truth / "phi.json",
        "prefect_home": Path(os.environ["PREFECT_HOME"]),
    }


def _audit_strings(audit: Path, phi_json: Path, key_file: Path) -> list[str]:
    """Identifying strings of the audit area: patients, original patient folders and file names, the key, and
    every PHI string of the synthetic ground truth."""
    values = {v for vs in json.loads(phi_json.read_text()).values() for v in vs}
    rows = pq.read_table(audit / "inventory.parquet").to_pylist()
    for row in rows:
        path = PurePosixPath(row["path"])
        values.update({row["patient"], path.parts[0], path.name.split(".")[0]})
    for line in (audit / "pseudonyms.csv").read_text().splitlines()[1:]:
        values.add(line.split(",")[0])
    values.add(key_file.read_text().strip())
    return sorted(v for v in values if v)


def test_audit_area_is_owner_only(build: dict[str, Path]) -> None:
    audit = build["audit"]
    modes = {str(p.relative_to(audit)): stat.S_IMODE(p.stat().st_mode) for p in [audit, *audit.rglob("*")]}
    assert modes["."] == 0o700
    assert modes["pseudonyms.csv"] == modes["inventory.parquet"] == 0o600
    assert all(m == (0o700 if (audit / p).is_dir() else 0o600) for p, m in modes.items()), modes


def test_nothing_from_the_audit_area_reaches_store_report_or_logs(build: dict[str, Path], key_file: Path) -> None:
    phi = _audit_strings(build["audit"], build["phi"], key_file)
    assert len(phi) > 20
    log_dir = build["logs"]
    log_dir.mkdir(exist_ok=True)
    (log_dir / "build.log").write_bytes(build["log_file"].read_bytes())
    assert (log_dir / "build.log").stat().st_size > 0
    for name in ("store", "work_tables", "report", "logs", "prefect_home"):
        hits, _ = scan_tree(build[name], phi)
        assert hits == [], f"{name}: {hits[:5]}"
    control, _ = scan_tree(build["audit"], phi)  # the scanner does find them where they are
    assert {h.value for h in control} & set(phi)
