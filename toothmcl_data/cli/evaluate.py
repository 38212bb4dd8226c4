"""``toothmcl-data evaluate``: score segmentations — IOS by the 3DTeethSeg22 rules, CBCT by Dice / HD95."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from toothmcl_data.cli.output import emit, progress

app = typer.Typer(
    help="Score tooth segmentations: IOS (3DTeethSeg22 TSA/TLA/TIR + mIoU) and CBCT (Dice, HD95, identification).",
    no_args_is_help=True,
)

AsJson = Annotated[bool, typer.Option("--json", help="Print as JSON.")]
Scheme = Annotated[str, typer.Option("--scheme", help="Label scheme of the GT files (e.g. fdi, toothfairy2).")]
PredScheme = Annotated[
    str | None, typer.Option("--pred-scheme", help="Label scheme of the predictions (default: --scheme).")
]
Out = Annotated[Path, typer.Option("--out", help="Table to write: <name>.csv or <name>.parquet (+ <name>.md).")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="List the case pairs found; write nothing.")]


@app.command("ios")
def ios(
    mesh: Annotated[Path, typer.Option("--mesh", help="The scan (OBJ/PLY/STL/VTP) the labels belong to.")],
    gt: Annotated[Path, typer.Option("--gt", help="Ground-truth Teeth3DS JSON.")],
    pred: Annotated[Path, typer.Option("--pred", help="Predicted Teeth3DS JSON.")],
    as_json: AsJson = False,
) -> None:
    """Score one scan: TSA, TLA (as exp(-TLA)), TIR, score (their mean) as the challenge computes them; mIoU."""
    from toothmcl_data.metrics.inputs import score_ios_files

    emit(score_ios_files(mesh, gt, pred).to_dict(), as_json=as_json, title=f"IOS scores: {pred.name}")


@app.command("cbct")
def cbct(
    gt: Annotated[Path, typer.Option("--gt", help="Ground-truth label volume (NIfTI/MHA/NRRD or DICOM folder).")],
    pred: Annotated[Path, typer.Option("--pred", help="Predicted label volume on the same grid.")],
    scheme: Scheme = "fdi",
    pred_scheme: PredScheme = None,
    as_json: AsJson = False,
) -> None:
    """Score one CBCT label map: Dice per tooth and mean, HD95 (mm), identification accuracy, per tooth group."""
    from toothmcl_data.metrics.inputs import score_cbct_files

    scores = score_cbct_files(gt, pred, scheme=scheme, pred_scheme=pred_scheme).to_dict()
    emit(scores, as_json=as_json, title=f"CBCT scores: {pred.name}")


def _plan(cases: list[Any], out: Path, as_json: bool) -> None:
    from toothmcl_data.metrics.tables import table_paths

    pairs = {c.key: str(c.pred) if c.pred else "missing prediction" for c in cases}
    emit({"cases": pairs, "would_write": [str(p) for p in table_paths(out)]}, as_json=as_json, title="dry run")


def _report(rows: list[dict[str, Any]], columns: tuple[str, ...], out: Path, as_json: bool) -> None:
    from toothmcl_data.metrics.tables import summarize, write_table

    paths = write_table(rows, columns, out)
    report = {
        "mean": {k: v for k, v in summarize(rows, columns).items() if k != "case"},
        "cases": len(rows),
        "not_ok": {r["case"]: r["status"] for r in rows if r["status"] != "ok"},
        "written": [str(p) for p in paths],
    }
    emit(report, as_json=as_json, title="evaluation")


@app.command("ios-folder")
def ios_folder(
    gt: Annotated[Path, typer.Option("--gt", help="Folder of scans with Teeth3DS GT sidecars (<stem>.json).")],
    pred: Annotated[Path, typer.Option("--pred", help="Folder of predicted <stem>.json files.")],
    out: Out,
    dry_run: DryRun = False,
    as_json: AsJson = False,
) -> None:
    """Score every scan of a folder and write a table (one row per scan, the challenge's means last)."""
    from toothmcl_data.metrics.tables import IOS_COLUMNS, find_ios_cases, score_ios_cases

    cases = find_ios_cases(gt, pred)
    if dry_run:
        _plan(cases, out, as_json)
        return
    with progress("scoring scans", len(cases), enabled=not as_json) as advance:
        rows = score_ios_cases(cases, advance)
    _report(rows, IOS_COLUMNS, out, as_json)


@app.command("cbct-folder")
def cbct_folder(
    gt: Annotated[Path, typer.Option("--gt", help="Folder of GT label volumes (files or DICOM folders).")],
    pred: Annotated[Path, typer.Option("--pred", help="Folder of predicted label volumes, same case names.")],
    out: Out,
    scheme: Scheme = "fdi",
    pred_scheme: PredScheme = None,
    dry_run: DryRun = False,
    as_json: AsJson = False,
) -> None:
    """Score every CBCT case of a folder and write a table (one row per case, means last)."""
    from toothmcl_data.metrics.tables import CBCT_COLUMNS, find_cbct_cases, score_cbct_cases

    cases = find_cbct_cases(gt, pred)
    if dry_run:
        _plan(cases, out, as_json)
        return
    with progress("scoring volumes", len(cases), enabled=not as_json) as advance:
        rows = score_cbct_cases(cases, scheme=scheme, pred_scheme=pred_scheme, advance=advance)
    _report(rows, CBCT_COLUMNS, out, as_json)
