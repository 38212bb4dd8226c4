"""``toothmcl-data export``: write a published version in the formats other tools read."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from toothmcl_data.cli.output import emit, progress

app = typer.Typer(help="Export a version for other tools (nnU-Net v2, MONAI, Teeth3DS, …).", no_args_is_help=True)

Store = Annotated[str, typer.Argument(help="Dataset store (folder or URL).")]
Version = Annotated[str, typer.Option("--version", help="'latest', a tag, or a snapshot id.")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="List what would be written; write nothing.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print the report as JSON.")]


# ------------------------------------------------------------------------ DICOM-SEG + NIfTI, 3D Slicer (e17b)
OutDir = Annotated[Path, typer.Option("--out", "-o", help="Output folder (one sub-folder per case).")]
Cases = Annotated[list[str] | None, typer.Option("--case", help="Only this case (pseudonym); repeatable.")]


def _case_count(store: str, version: str, cases: list[str] | None) -> int:
    from toothmcl_data.store import open_version

    return len(cases) if cases else len(open_version(store, version).case_ids())


@app.command("seg")
def seg(
    store: Store,
    out: OutDir,
    version: Version = "latest",
    work: Annotated[
        Path | None,
        typer.Option(
            help="The curation flow's working folder, for its de-identified DICOM series (default STORE.work)."
        ),
    ] = None,
    case: Cases = None,
    dry_run: DryRun = False,
    as_json: AsJson = False,
) -> None:
    """Per case with a CBCT label map: a DICOM Segmentation (one segment per FDI tooth, SNOMED CT codes)
    referencing its CBCT series (cbct/), and the label map as NIfTI (labels.nii.gz)."""
    from toothmcl_data.export.seg import export_seg

    with progress("exporting DICOM-SEG", _case_count(store, version, case), enabled=not as_json) as advance:
        done = export_seg(store, version, out, work=work, cases=case, dry_run=dry_run, progress=advance)
    report = {
        "out": str(out),
        "cases": len(done),
        "segments": sum(len(d.fdi_by_segment) for d in done),
        "sources": sorted({d.source for d in done if d.source}),
        "pseudonyms": [d.pseudonym for d in done],
    }
    emit(report, as_json=as_json, title=f"DICOM-SEG export{' (dry run)' if dry_run else ''} → {out}")


@app.command("slicer")
def slicer(
    store: Store,
    out: OutDir,
    version: Version = "latest",
    case: Cases = None,
    colors: Annotated[str, typer.Option(help="Colour table of catalogs/labelmaps written as .ctbl.")] = "fdi_colors",
    transform_suffix: Annotated[str, typer.Option(help="ITK transform file type: .h5 or .tfm.")] = ".h5",
    dry_run: DryRun = False,
    as_json: AsJson = False,
) -> None:
    """Per case a 3D Slicer folder: CBCT and label map (NIfTI), each scan as a model with per-vertex FDI labels
    (.vtp) and its registration as an ITK transform (.h5/.tfm) that places the scan on the CBCT."""
    from toothmcl_data.export.slicer import export_slicer

    with progress("exporting for 3D Slicer", _case_count(store, version, case), enabled=not as_json) as advance:
        done = export_slicer(
            store,
            version,
            out,
            cases=case,
            colors=colors,
            transform_suffix=transform_suffix,
            dry_run=dry_run,
            progress=advance,
        )
    report = {
        "out": str(out),
        "cases": len(done),
        "transforms": sum(len(d["registrations"]) for d in done),
        "files": sum(len(d["files"]) for d in done),
        "color_table": str(Path(out) / f"{colors}.ctbl"),
    }
    emit(report, as_json=as_json, title=f"3D Slicer export{' (dry run)' if dry_run else ''} → {out}")
