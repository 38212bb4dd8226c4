"""``toothmcl-data report``: the static QC page of one version."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from toothmcl_data.cli.output import emit


def report(
    store: Annotated[str, typer.Argument(help="Dataset store (folder or URL).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for index.html and its PNGs (replaced).")],
    version: Annotated[str, typer.Option(help="Version tag or id.")] = "latest",
    max_cases: Annotated[int, typer.Option(help="Cases with registration overlays.")] = 12,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Write the QC report (card, tables, charts, registration overlays, tooth-pair montage, quarantine)."""
    from toothmcl_data.report.html import report_summary, write_report

    emit(report_summary(write_report(store, version, out, max_cases=max_cases)), as_json=as_json, title="report")
