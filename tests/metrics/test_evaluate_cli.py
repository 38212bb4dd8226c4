"""``toothmcl-data evaluate``: single scans and volumes from files, folder runs writing CSV/Parquet + Markdown."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.metrics.conftest import SPACING
from toothmcl_data.cli.app import app
from toothmcl_data.errors import InputError, LabelSchemeError
from toothmcl_data.io.meshwrite import write_obj
from toothmcl_data.io.teeth3ds import write_teeth3ds_json
from toothmcl_data.io.volume import write_nifti
from toothmcl_data.metrics.tables import IOS_COLUMNS, markdown_table, summarize
from toothmcl_data.types import Volume

runner = CliRunner()
Scan = tuple[np.ndarray, np.ndarray, np.ndarray]
FACES = np.array([[0, 1, 2], [4, 5, 6], [8, 9, 0]])
AFFINE = np.diag([*SPACING, 1.0])
AFFINE[:3, 3] = [-10.0, 5.0, 2.0]


def _write_scan(folder: Path, stem: str, scan: Scan) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    v, lab, inst = scan
    write_obj(folder / f"{stem}.obj", v, FACES)
    write_teeth3ds_json(folder / f"{stem}.json", id_patient="X", jaw="upper", labels=lab, instances=inst)
    return folder / f"{stem}.obj", folder / f"{stem}.json"


def _write_pred(path: Path, labels: np.ndarray, instances: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_teeth3ds_json(path, id_patient="", jaw="upper", labels=labels, instances=instances)
    return path


def _invoke(*args: str) -> dict:
    result = runner.invoke(app, ["evaluate", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


@pytest.mark.parametrize("cmd", ["ios", "cbct", "ios-folder", "cbct-folder"])
def test_help(cmd: str) -> None:
    result = runner.invoke(app, ["evaluate", cmd, "--help"])
    assert result.exit_code == 0, result.output
    assert "--json" in result.output


def test_evaluate_ios_json(tmp_path: Path, scan: Scan) -> None:
    mesh, gt = _write_scan(tmp_path / "gt", "A_upper", scan)
    _, lab, inst = scan
    perfect = _invoke("ios", "--mesh", str(mesh), "--gt", str(gt), "--pred", str(gt))
    assert {k: perfect[k] for k in ("TSA", "TLA", "TIR", "score", "mIoU")} == dict.fromkeys(
        ("TSA", "TLA", "TIR", "score", "mIoU"), 1.0
    )
    swapped = np.where(lab == 11, 21, np.where(lab == 21, 11, lab))
    pred = _write_pred(tmp_path / "pred" / "A_upper.json", swapped, inst)
    out = _invoke("ios", "--mesh", str(mesh), "--gt", str(gt), "--pred", str(pred))
    # swapped 11 ↔ 21 (see test_ios.py): TSA 1, TLA 1, TIR 0, score 2/3, mIoU 0
    assert (out["TSA"], out["TLA"], out["TIR"], out["mIoU"]) == (1.0, 1.0, 0.0, 0.0)
    assert out["score"] == pytest.approx(2 / 3)


def test_evaluate_ios_rejects_wrong_vertex_count(tmp_path: Path, scan: Scan) -> None:
    mesh, gt = _write_scan(tmp_path, "A_upper", scan)
    pred = _write_pred(tmp_path / "p" / "A_upper.json", np.zeros(9, int), np.zeros(9, int))
    result = runner.invoke(app, ["evaluate", "ios", "--mesh", str(mesh), "--gt", str(gt), "--pred", str(pred)])
    assert result.exit_code != 0
    assert "has 9 labels but" in str(result.exception)
    assert "has 10 vertices" in str(result.exception)


def _write_volume(path: Path, array: np.ndarray, affine: np.ndarray = AFFINE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_nifti(path, Volume(array=array.astype(np.int16), affine=affine))
    return path


def test_evaluate_cbct_json(tmp_path: Path, label_map: np.ndarray) -> None:
    gt = _write_volume(tmp_path / "gt.nii.gz", label_map)
    pred = label_map.copy()
    pred[pred == 16] = 0
    pr = _write_volume(tmp_path / "pred.nii.gz", pred)
    out = _invoke("cbct", "--gt", str(gt), "--pred", str(pr))
    assert out["dice"] == {"11": 1.0, "16": 0.0, "21": 1.0}
    assert out["mean_dice"] == pytest.approx(2 / 3)
    assert out["identification_accuracy"] == pytest.approx(2 / 3)
    assert out["missed"] == [16]
    assert out["spacing_mm"] == pytest.approx(list(SPACING))


def test_evaluate_cbct_scheme_toothfairy2(tmp_path: Path, label_map: np.ndarray) -> None:
    tf2 = label_map.copy()
    tf2[15:, 15:, 15:] = 1  # ToothFairy2 "Lower Jawbone": anatomy, background in FDI
    gt = _write_volume(tmp_path / "gt.nii.gz", tf2)
    out = _invoke("cbct", "--gt", str(gt), "--pred", str(gt), "--scheme", "toothfairy2")
    assert out["mean_dice"] == 1.0
    assert sorted(out["dice"]) == ["11", "16", "21"]
    result = runner.invoke(app, ["evaluate", "cbct", "--gt", str(gt), "--pred", str(gt)])
    assert isinstance(result.exception, LabelSchemeError)
    assert "not codes of label scheme 'fdi'" in str(result.exception)
    assert "pass --scheme to change it" in str(result.exception)


def test_evaluate_cbct_affine_mismatch(tmp_path: Path, label_map: np.ndarray) -> None:
    gt = _write_volume(tmp_path / "gt.nii.gz", label_map)
    moved = AFFINE.copy()
    moved[0, 3] += 0.5
    pr = _write_volume(tmp_path / "pred.nii.gz", label_map, moved)
    result = runner.invoke(app, ["evaluate", "cbct", "--gt", str(gt), "--pred", str(pr)])
    assert isinstance(result.exception, InputError)
    msg = str(result.exception)
    assert "have different affines (largest difference 0.5 mm, tolerance 0.001 mm)" in msg
    assert "resample it onto that grid" in msg
    short = _write_volume(tmp_path / "short.nii.gz", label_map[:, :, :10])
    result = runner.invoke(app, ["evaluate", "cbct", "--gt", str(gt), "--pred", str(short)])
    assert "has shape (20, 20, 10) but ground truth" in str(result.exception)


def test_error_exit_code_2(tmp_path: Path) -> None:
    code = "import sys; from toothmcl_data.cli.app import main; sys.argv = ['toothmcl-data', *sys.argv[1:]]; main()"
    missing = tmp_path / "nope.nii.gz"
    proc = subprocess.run(
        [sys.executable, "-c", code, "evaluate", "cbct", "--gt", str(missing), "--pred", str(missing)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert " ".join(proc.stderr.split()) == f"error: label volume {missing} does not exist; check the path"


def test_ios_folder_table(tmp_path: Path, scan: Scan) -> None:
    v, lab, inst = scan
    _write_scan(tmp_path / "gt" / "A", "A_upper", scan)
    _write_scan(tmp_path / "gt" / "B", "B_upper", scan)
    _write_scan(tmp_path / "gt" / "C", "C_upper", (v, lab, np.zeros_like(inst)))  # GT without teeth: error row
    _write_pred(tmp_path / "pred" / "A_upper.json", lab, inst)  # B has no prediction → challenge zeros
    out = tmp_path / "ios.csv"
    folders = ["--gt", str(tmp_path / "gt"), "--pred", str(tmp_path / "pred")]
    plan = _invoke("ios-folder", *folders, "--out", str(out), "--dry-run")
    assert plan["cases"]["B_upper"] == "missing prediction"
    assert not out.exists()
    report = _invoke("ios-folder", *folders, "--out", str(out))
    rows = list(csv.DictReader(out.open()))
    assert [r["case"] for r in rows] == ["A_upper", "B_upper", "C_upper"]
    assert (rows[0]["status"], float(rows[0]["score"])) == ("ok", 1.0)
    assert (rows[1]["status"], float(rows[1]["TSA"])) == ("missing prediction (scored 0)", 0.0)
    assert rows[2]["status"].startswith(f"error: ground truth {tmp_path / 'gt' / 'C' / 'C_upper.json'}: no tooth")
    assert rows[2]["TSA"] == ""
    # means over the 2 scored scans: (1 + 0) / 2 for every metric; the error row is left out
    assert report["mean"]["score"] == 0.5
    assert report["mean"]["status"] == "2 scored / 3 cases"
    md = out.with_suffix(".md").read_text()
    assert md.splitlines()[0] == "| " + " | ".join(IOS_COLUMNS) + " |"
    assert "| **mean** | **2 scored / 3 cases** | **0.5000** |" in md


def test_cbct_folder_table_csv_and_parquet(tmp_path: Path, label_map: np.ndarray) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    _write_volume(tmp_path / "gt" / "case1.nii.gz", label_map)
    _write_volume(tmp_path / "gt" / "case2.nii.gz", label_map)
    _write_volume(tmp_path / "pred" / "case1.nii.gz", np.where(label_map == 16, 0, label_map))
    _write_volume(tmp_path / "pred" / "case2.nii.gz", label_map[:, :, :10])  # wrong grid → scored as empty
    args = ["cbct-folder", "--gt", str(tmp_path / "gt"), "--pred", str(tmp_path / "pred")]
    report = _invoke(*args, "--out", str(tmp_path / "t.parquet"))
    table = pq.read_table(tmp_path / "t.parquet").to_pylist()
    assert [r["case"] for r in table] == ["case1", "case2"]
    assert table[0]["mean_dice"] == pytest.approx(2 / 3)
    assert table[0]["missed"] == "16"
    assert (table[0]["dice_molar"], table[0]["dice_incisor"]) == (0.0, 1.0)
    assert table[1]["status"].startswith("prediction unusable (scored as empty): prediction ")
    assert (table[1]["mean_dice"], table[1]["mean_hd95_mm"]) == (0.0, None)
    assert report["mean"]["mean_dice"] == pytest.approx(1 / 3)
    assert report["mean"]["mean_hd95_mm"] == 0.0
    _invoke(*args, "--out", str(tmp_path / "t.csv"))
    first = (tmp_path / "t.csv").read_bytes()
    _invoke(*args, "--out", str(tmp_path / "t.csv"))
    assert (tmp_path / "t.csv").read_bytes() == first  # deterministic
    assert (tmp_path / "t.md").read_text().count("\n") == 2 + 2 + 1


def test_table_format_is_checked(tmp_path: Path, scan: Scan) -> None:
    _write_scan(tmp_path / "gt", "A_upper", scan)
    (tmp_path / "pred").mkdir()
    result = runner.invoke(
        app,
        ["evaluate", "ios-folder", "--gt", str(tmp_path / "gt"), "--pred", str(tmp_path / "pred"), "--out", "x.xlsx"],
    )
    assert "unknown format '.xlsx'; name it <something>.csv or .parquet" in str(result.exception)


def test_summarize_and_markdown() -> None:
    rows: list[dict[str, Any]] = [
        {"case": "a", "status": "ok", "TSA": 1.0, "TLA": 0.5, "TIR": 0.0, "score": 0.5, "mIoU": math.nan},
        {"case": "b|c", "status": "error: x", "TSA": None},
    ]
    s = summarize(rows, IOS_COLUMNS)
    assert (s["score"], s["mIoU"], s["status"]) == (0.5, None, "1 scored / 2 cases")
    md = markdown_table(rows, IOS_COLUMNS, s)
    assert "| b\\|c | error: x |" in md


def test_dicom_series_ground_truth_against_nifti_prediction(tmp_path: Path, label_map: np.ndarray) -> None:
    from toothmcl_data.synth.dicom import write_series
    from toothmcl_data.synth.identity import draw_identity

    rng = np.random.default_rng(0)
    small = label_map[:, :, :8]  # 8 slices keep the series small; teeth 11 and 21 are whole, 16 is cut
    write_series(tmp_path / "gt", Volume(array=small, affine=AFFINE), draw_identity(rng, "P1"), rng, style="uid.dcm")
    pred = _write_volume(tmp_path / "pred.nii.gz", np.where(small == 21, 0, small))
    out = _invoke("cbct", "--gt", str(tmp_path / "gt"), "--pred", str(pred))
    assert out["dice"] == {"11": 1.0, "21": 0.0}
    assert out["spacing_mm"] == pytest.approx(list(SPACING))
