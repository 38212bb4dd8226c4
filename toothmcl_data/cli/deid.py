"""``toothmcl-data deid``: de-identify a raw drop (``deid run``) and scan outputs for leaks (``deid scan``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from toothmcl_data.cli.output import emit, errors, progress
from toothmcl_data.configdict import SET_HELP

app = typer.Typer(
    help="De-identify a raw clinical drop (PS3.15 Basic Profile + keyed pseudonyms) and scan for PHI leaks.",
    no_args_is_help=True,
)


@app.command("run")
def run(
    raw: Annotated[str, typer.Argument(help="Raw drop: a folder or an fsspec URL (memory://, s3:// …).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="De-identified output folder (publishable).")],
    key_file: Annotated[Path | None, typer.Option("--key-file", help="File holding the secret key.")] = None,
    key_env: Annotated[str | None, typer.Option("--key-env", help="Environment variable holding the key.")] = None,
    audit: Annotated[
        Path | None, typer.Option("--audit", help="Restricted audit folder (default: OUT-audit beside OUT).")
    ] = None,
    manifest: Annotated[
        Path | None, typer.Option("--manifest", help="CSV path,patient_id (least trusted identity source).")
    ] = None,
    modified_dates: Annotated[
        bool, typer.Option("--modified-dates/--no-dates", help="Retain Longitudinal Temporal Info, Modified Dates.")
    ] = True,
    patient_characteristics: Annotated[
        bool, typer.Option("--retain-patient-characteristics", help="Keep sex, age, size, weight …")
    ] = False,
    device_identity: Annotated[bool, typer.Option("--retain-device-identity", help="Keep device identifiers.")] = False,
    clean_descriptors: Annotated[
        bool, typer.Option("--clean-descriptors", help="Keep descriptions with identifying values removed.")
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Plan only: discover and match, write nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    overrides: Annotated[
        list[str] | None,
        typer.Option("--set", metavar="KEY=VALUE", help=f"DeidOptions (after the flags above): {SET_HELP}."),
    ] = None,
) -> None:
    """De-identify the drop RAW into OUT: DICOM, NIfTI and meshes under pseudonyms, plus inventory tables.

    Every de-identification option is a ``DeidOptions`` field; the flags set the common ones, ``--set`` any
    (e.g. ``--set retain_safe_private=true --set 'safe_private=[["SIEMENS CT VA0  COAD", 18]]'``)."""
    from toothmcl_data.configdict import config_from_dict
    from toothmcl_data.deid.pseudonym import key_fingerprint, read_key
    from toothmcl_data.deid.run import deidentify_drop
    from toothmcl_data.deid.table import DeidOptions
    from toothmcl_data.io.plan import plan_files

    flags = {
        "retain_longitudinal_modified_dates": modified_dates,
        "retain_patient_characteristics": patient_characteristics,
        "retain_device_identity": device_identity,
        "clean_descriptors": clean_descriptors,
    }
    options = config_from_dict(DeidOptions, flags, where="deid run", overrides=overrides or [])
    key = read_key(key_file=key_file, key_env=key_env)
    plan = plan_files(raw, manifest=manifest)
    if dry_run:
        kinds: dict[str, int] = {}
        for record in plan.records:
            kinds[record.kind] = kinds.get(record.kind, 0) + 1
        emit(
            {
                "files": len(plan.records),
                "cases": len(plan.cases),
                "kinds": kinds,
                "key_fingerprint": key_fingerprint(key),
            },
            as_json=as_json,
            title=f"plan for {raw} (dry run, nothing written)",
        )
        return
    with progress("de-identifying cases", len(plan.cases), enabled=not as_json) as advance:
        summary = deidentify_drop(
            raw, out, key=key, audit=audit, options=options, plan=plan, progress=lambda done, total: advance(1)
        )
    emit(summary.to_dict(), as_json=as_json, title=f"de-identified drop in {out}")


@app.command("scan")
def scan(
    output: Annotated[Path, typer.Argument(help="Folder to scan (a de-identified output, or a raw drop).")],
    phi: Annotated[
        Path | None, typer.Option("--phi", help="PHI strings: phi.json, a JSON list, or one per line.")
    ] = None,
    phi_from: Annotated[
        str | None, typer.Option("--phi-from", help="Also pull PHI strings from this raw drop's headers and names.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Search every byte and name under OUTPUT for PHI strings; exit code 1 on any hit or unreadable file."""
    from toothmcl_data.deid.scan import load_phi, phi_from_drop_report, scan_tree

    if phi is None and phi_from is None:
        raise typer.BadParameter("give --phi FILE and/or --phi-from RAW")
    pulled, sources_unreadable = phi_from_drop_report(phi_from) if phi_from else ([], [])
    values = (load_phi(phi) if phi else []) + pulled
    found, skipped = scan_tree(output, values)
    hits = [h for h in found if h.where != "unreadable"]
    unreadable = [f"{h.path}: {h.value}" for h in found if h.where == "unreadable"]
    report = {
        "scanned": str(output),
        "phi_strings": len(values),
        "skipped_short": len(skipped),
        "hits": len(hits),
        "first_hits": [f"{h.path} [{h.where}]: {h.value}" for h in hits[:20]],
        "unreadable": len(unreadable),
        "unreadable_files": unreadable[:20],
        "phi_sources_unreadable": sources_unreadable[:20],
    }
    emit(report, as_json=as_json, title="leak scan")
    if hits or unreadable or sources_unreadable:
        errors.print(
            f"[red]{len(hits)} PHI hits, {len(unreadable)} files that cannot be searched, {len(sources_unreadable)} "
            f"drop files whose PHI cannot be pulled[/red] under {output}",
            markup=True,
            highlight=False,
        )
        sys.exit(1)
