"""``toothmcl-data register``: register one intraoral scan into its CBCT and write the transform, QC and pictures."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from toothmcl_data.cli.output import emit, progress
from toothmcl_data.configdict import SET_HELP


def register(
    cbct: Annotated[Path, typer.Option("--cbct", help="CBCT: a DICOM series folder or a NIfTI file.")],
    ios: Annotated[Path, typer.Option("--ios", help="One jaw scan (STL, PLY, OBJ, VTP; Teeth3DS sidecar read).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder: transform.json, qc.json, registration.png.")],
    cbct_labels: Annotated[
        Path | None, typer.Option("--cbct-labels", help="FDI label map on the CBCT grid (NIfTI or DICOM folder).")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Register and report, write nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    overrides: Annotated[
        list[str] | None, typer.Option("--set", metavar="KEY=VALUE", help=f"RegisterConfig: {SET_HELP}.")
    ] = None,
) -> None:
    """Register the scan IOS into the CBCT; ios_to_cbct maps scan mm to the CBCT file's world (DICOM LPS, NIfTI RAS)."""
    from toothmcl_data.register.config import RegisterConfig
    from toothmcl_data.register.files import register_files

    config = RegisterConfig.from_dict({}, overrides or [])
    with progress("registering", 1, enabled=not as_json) as advance:
        report = register_files(cbct, ios, out, labels_path=cbct_labels, dry_run=dry_run, config=config)
        advance(1)
    emit(report, as_json=as_json, title=f"registration of {ios.name}")
