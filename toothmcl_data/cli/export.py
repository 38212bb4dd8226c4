"""``toothmcl-data export``: write a published version in the formats other tools read."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from toothmcl_data.cli.output import emit, progress

app = typer.Typer(help="Export a version for other tools (nnU-Net v2, MONAI, Teeth3DS, …).", no_args_is_help=True)

Store = Annotated[str, typer.Argument(help="Dataset store (folder or URL).")]
Version = Annotated[str, typer.Option("--version", help="'latest', a tag, or a snapshot id.")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="List what would be written; write nothing.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print the report as JSON.")]
Out = Annotated[Path, typer.Option("--out", "-o", help="Output folder; must be absent or empty.")]
Preprocessed = Annotated[
    Path | None, typer.Option("--preprocessed", help="nnUNet_preprocessed folder: also write splits_final.json there.")
]
ChannelName = Annotated[str, typer.Option("--channel-name", help="channel_names['0']; 'CT' = nnU-Net's CT norm.")]
Labels = Annotated[str, typer.Option("--labels", help="Label values: 'classes' (fdi_classes, 0..52) or 'fdi'.")]


def _run(name: str, store: str, version: str, as_json: bool, export: Any, **kwargs: Any) -> None:
    """Open the version, run ``export(reader, progress=…, **kwargs)`` with a bar per case, print its report."""
    from toothmcl_data.export.cases import plan_cases
    from toothmcl_data.store import open_version

    reader = open_version(store, version)
    with progress(f"exporting {name}", len(plan_cases(reader)), enabled=not as_json) as advance:
        report = export(reader, progress=advance, **kwargs)
    title = f"{name} export{' (dry run)' if kwargs.get('dry_run') else ''} → {report.out}"
    data = report.to_dict()
    if not as_json:
        data = {k: v for k, v in data.items() if k not in ("written",)}
    emit(data, as_json=as_json, title=title)


# --- nnU-Net v2, MONAI, Teeth3DS ------------------------------------------------------------------------------
@app.command("nnunet")
def nnunet(
    store: Store,
    out: Out,
    version: Version = "latest",
    preprocessed: Preprocessed = None,
    channel_name: ChannelName = "CT",
    dry_run: DryRun = False,
    as_json: AsJson = False,
) -> None:
    """nnU-Net v2 raw dataset in OUT = nnUNet_raw/DatasetNNN_Name: imagesTr/labelsTr (train + val), imagesTs (test),
    dataset.json, splits_final.json (the version's split)."""
    from toothmcl_data.export.nnunet import export_nnunet

    _run("nnU-Net", store, version, as_json, export_nnunet, out=out, preprocessed=preprocessed,
         channel_name=channel_name, dry_run=dry_run)  # fmt: skip


@app.command("monai")
def monai(
    store: Store,
    out: Out,
    version: Version = "latest",
    labels: Labels = "classes",
    dry_run: DryRun = False,
    as_json: AsJson = False,
) -> None:
    """MONAI datalist OUT/datalist.json (Decathlon layout: training / validation / test = the version's split) and
    OUT/images, OUT/labels NIfTI files."""
    from toothmcl_data.export.monai import export_monai

    _run("MONAI", store, version, as_json, export_monai, out=out, values=labels, dry_run=dry_run)


@app.command("teeth3ds")
def teeth3ds(
    store: Store, out: Out, version: Version = "latest", dry_run: DryRun = False, as_json: AsJson = False
) -> None:
    """Intraoral scans as Teeth3DS OUT/<case>/<case>_<jaw>.obj + per-vertex .json (vertex order kept), split files."""
    from toothmcl_data.export.teeth3ds import export_teeth3ds

    _run("Teeth3DS", store, version, as_json, export_teeth3ds, out=out, dry_run=dry_run)


# --- end of the nnU-Net / MONAI / Teeth3DS block --------------------------------------------------------------


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
