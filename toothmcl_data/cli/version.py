"""``toothmcl-data version …``: create, list, show, diff, verify, tag, check out and garbage-collect versions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from toothmcl_data.cli.output import console, emit, progress

app = typer.Typer(help="Versions of a dataset store (Icechunk + Zarr + Parquet).", no_args_is_help=True)

Store = Annotated[str, typer.Argument(help="Store: a local path, or s3:// gs:// az:// URL.")]
Version = Annotated[str, typer.Argument(help="'latest', a tag, or a snapshot id.")]
Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Say what would be done; write nothing.")]


@app.command("create")
def create(store: Store, as_json: Json = False, dry_run: DryRun = False) -> None:
    """Create an empty store (a first version with no cases); publishing adds versions."""
    from toothmcl_data.store import create_store

    if dry_run:
        emit({"store": store, "would_create": True}, as_json=as_json, title="version create (dry run)")
        return
    emit(create_store(store).to_dict(), as_json=as_json, title="created")


@app.command("list")
def list_(store: Store, as_json: Json = False) -> None:
    """List versions, newest first."""
    from toothmcl_data.store import list_versions

    infos = [v.to_dict() for v in list_versions(store)]
    if as_json:
        emit({"versions": infos}, as_json=True)
        return
    for v in infos:
        tags = f" [{', '.join(v['tags'])}]" if v["tags"] else ""
        console.print(
            f"{v['id']}{tags}  {v['written_at'][:19]}  {v['n_cases']} cases  {v['content_hash'][:12]}  {v['message']}",
            highlight=False,
            markup=False,
        )


@app.command("show")
def show(store: Store, version: Version = "latest", as_json: Json = False) -> None:
    """Print a version's dataset card."""
    from toothmcl_data.store import open_version

    reader = open_version(store, version)
    if as_json:
        emit({"version": reader.info.to_dict(), "card": reader.card()}, as_json=True)
    else:
        print(reader.card_markdown())


@app.command("diff")
def diff(store: Store, a: Version, b: Version = "latest", as_json: Json = False) -> None:
    """Cases added / removed / changed from A to B, and per-table changes."""
    from toothmcl_data.store import diff_versions

    result = diff_versions(store, a, b)
    tables = result.pop("tables")
    result["tables changed"] = [k for k, v in tables.items() if v["changed"]]
    if as_json:
        result["tables"] = tables
    emit(result, as_json=as_json, title=f"diff {a} → {b}")


@app.command("verify")
def verify(store: Store, version: Version = "latest", as_json: Json = False) -> None:
    """Re-read a version and check every hash; exit code 1 when anything differs."""
    from toothmcl_data.store import open_version, verify_version

    n = len(open_version(store, version).case_ids())
    with progress("verifying cases", n, enabled=not as_json) as advance:
        report = verify_version(store, version, on_case=lambda _: advance())
    emit(report.to_dict(), as_json=as_json, title="verify")
    if not report.ok:
        raise typer.Exit(1)


@app.command("tag")
def tag(
    store: Store,
    name: Annotated[str, typer.Argument(help="Tag name.")],
    version: Version = "latest",
    as_json: Json = False,
    dry_run: DryRun = False,
) -> None:
    """Name a version (tags never move)."""
    from toothmcl_data.store import open_version, tag_version

    if dry_run:
        emit({"tag": name, "version": open_version(store, version).id}, as_json=as_json, title="tag (dry run)")
        return
    emit(tag_version(store, name, version).to_dict(), as_json=as_json, title="tagged")


@app.command("checkout")
def checkout(
    store: Store,
    version: Version,
    out: Annotated[Path, typer.Argument(help="Output folder.")],
    as_json: Json = False,
    dry_run: DryRun = False,
) -> None:
    """Write a version's tables as plain Parquet files plus card.json / card.md."""
    from toothmcl_data.store import checkout_version, open_version

    if dry_run:
        emit({"version": open_version(store, version).id, "out": str(out)}, as_json=as_json, title="checkout (dry run)")
        return
    emit(checkout_version(store, version, out), as_json=as_json, title="checked out")


@app.command("gc")
def gc(
    store: Store,
    grace: Annotated[
        float, typer.Option(help="Keep unreferenced objects younger than this many seconds (a publish may be running).")
    ] = 3600.0,
    as_json: Json = False,
    dry_run: DryRun = False,
) -> None:
    """Delete what no version references (e.g. chunks of a killed publish)."""
    from toothmcl_data.store import gc_store

    emit(gc_store(store, grace_seconds=grace, dry_run=dry_run), as_json=as_json, title="gc")
