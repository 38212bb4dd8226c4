"""``toothmcl-data import``: bring public datasets (ToothFairy2, Teeth3DS) into a store version."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from toothmcl_data.cli.output import emit, progress

app = typer.Typer(
    help="Import public datasets into the store's next version (other cases are kept).", no_args_is_help=True
)

Src = Annotated[Path, typer.Argument(help="The dataset folder as downloaded.", exists=True, file_okay=False)]
Store = Annotated[str, typer.Option("--store", help="Store path or URL (created when missing).")]
Tag = Annotated[str | None, typer.Option("--tag", help="Tag the new version.")]
Limit = Annotated[int | None, typer.Option("--limit", min=1, help="Import only the first N cases (sorted by id).")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="List what would be imported; write nothing.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print as JSON.")]


@app.command("toothfairy2")
def toothfairy2(
    src: Src, store: Store, tag: Tag = None, limit: Limit = None, dry_run: DryRun = False, as_json: AsJson = False
) -> None:
    """Import a ToothFairy2 nnU-Net folder (dataset.json, imagesTr/*_0000.mha, labelsTr/*.mha) as CBCT-only cases."""
    from toothmcl_data.adapters import toothfairy2 as adapter

    cases = adapter.scan_folder(src)[:limit]
    ids = [c.case_id for c in cases]
    if dry_run:
        emit({"source": "toothfairy2", "cases": len(ids), "ids": ids, "store": store}, as_json=as_json, title="dry run")
        return
    with progress("importing ToothFairy2", len(ids), enabled=not as_json) as advance:
        info = adapter.import_folder(src, store, tag=tag, limit=limit, progress=advance)
    emit(
        {"source": "toothfairy2", "cases": len(ids), **info.to_dict()}, as_json=as_json, title=f"imported into {store}"
    )


@app.command("teeth3ds")
def teeth3ds(
    src: Src, store: Store, tag: Tag = None, limit: Limit = None, dry_run: DryRun = False, as_json: AsJson = False
) -> None:
    """Import Teeth3DS / 3DTeethSeg22 scans (<id>/<id>_<jaw>.obj + .json, official split files) as IOS-only cases."""
    from toothmcl_data.adapters import teeth3ds as adapter

    scans = adapter.scan_folder(src)
    patients = sorted({s.patient for s in scans})[:limit]
    if dry_run:
        emit(
            {"source": "teeth3ds", "cases": len(patients), "scans": sum(s.patient in patients for s in scans),
             "ids": patients, "store": store},
            as_json=as_json,
            title="dry run",
        )  # fmt: skip
        return
    with progress("importing Teeth3DS", len(patients), enabled=not as_json) as advance:
        info = adapter.import_folder(src, store, tag=tag, limit=limit, progress=advance)
    emit(
        {"source": "teeth3ds", "cases": len(patients), **info.to_dict()},
        as_json=as_json,
        title=f"imported into {store}",
    )
