"""``toothmcl-data export nnunet|monai|teeth3ds``: dry runs write nothing, reports are JSON, errors are one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from toothmcl_data.cli.app import app


def test_dry_run_then_export_each_format(export_store: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "nnUNet_raw" / "Dataset777_Teeth"
    dry = runner.invoke(app, ["export", "nnunet", str(export_store), "--version", "v1", "--out", str(out),
                              "--dry-run", "--json"])  # fmt: skip
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.output)["written"]["val"] == ["P0000", "P0004"]
    assert not out.exists()
    done = runner.invoke(app, ["export", "nnunet", str(export_store), "--version", "v1", "--out", str(out), "--json"])
    assert done.exit_code == 0, done.output
    report = json.loads(done.output)
    assert (report["numTraining"], report["n_classes"], report["dataset_id"]) == (3, 53, 777)
    assert (out / "dataset.json").is_file()
    monai = runner.invoke(app, ["export", "monai", str(export_store), "--out", str(tmp_path / "m"), "--json"])
    assert monai.exit_code == 0, monai.output
    assert json.loads(monai.output)["numTest"] == 1
    t3 = runner.invoke(app, ["export", "teeth3ds", str(export_store), "--out", str(tmp_path / "t"), "--json"])
    assert t3.exit_code == 0, t3.output
    t3_report = json.loads(t3.output)
    assert t3_report["files"] == 6 * 2 * 2 + 6  # 6 cases × 2 jaws × (OBJ + JSON), 3 splits × 2 jaws
    assert sorted(p.name for p in (tmp_path / "t").glob("*.txt")) == [
        "testing_lower.txt",
        "testing_upper.txt",
        "training_lower.txt",
        "training_upper.txt",
        "validation_lower.txt",
        "validation_upper.txt",
    ]


def test_console_script_prints_one_error_line(export_store: Path, tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "toothmcl-data"
    run = subprocess.run(
        [str(script), "export", "nnunet", str(export_store), "--out", str(tmp_path / "Task001_Teeth")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 2
    assert "error:" in run.stderr
    assert "must be DatasetNNN_Name" in run.stderr
