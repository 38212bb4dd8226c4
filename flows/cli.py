"""``toothmcl-data build``: the curation flow from the command line (ephemeral Prefect, no server needed).

Registered into the ``toothmcl-data`` app through the ``toothmcl_data.commands`` entry point, so the library
itself never imports Prefect.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from toothmcl_data.cli.output import emit
from toothmcl_data.curate import curation_config
from toothmcl_data.errors import DependencyError

FLOW_PACKAGES = frozenset({"prefect", "prefect_dask", "distributed", "dask", "pydantic"})
"""Top-level modules of the ``flows`` extra: a missing one means the extra is not installed."""


def build(
    raw: Annotated[str, typer.Argument(help="Raw drop: a folder or an fsspec URL.")],
    store: Annotated[Path, typer.Option(help="Dataset store to publish into (created when missing).")],
    key_file: Annotated[Path | None, typer.Option(help="File holding the pseudonymisation key.")] = None,
    key_env: Annotated[str | None, typer.Option(help="Environment variable holding the key.")] = None,
    tag: Annotated[str | None, typer.Option(help="Tag for the new version.")] = None,
    work: Annotated[Path | None, typer.Option(help="Working folder (default: STORE.work).")] = None,
    audit: Annotated[Path | None, typer.Option(help="Restricted audit folder (default: STORE.audit).")] = None,
    message: Annotated[str, typer.Option(help="Version message.")] = "curated with toothmcl",
    source: Annotated[str, typer.Option(help="Where the data comes from (dataset card).")] = "",
    licence: Annotated[str, typer.Option(help="Licence of the data (dataset card).")] = "",
    dask_address: Annotated[str | None, typer.Option(help="Run tasks on this Dask scheduler (tcp://…).")] = None,
    dask_workers: Annotated[
        int, typer.Option(help="Run tasks on a Dask LocalCluster with this many workers (0: threads).")
    ] = 0,
    figures: Annotated[bool, typer.Option(help="Draw a registration picture per jaw under the working folder.")] = True,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Plan the drop and report; write nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    overrides: Annotated[
        list[str] | None,
        typer.Option("--set", help="Change the curation config: register.KEY=VALUE or pair.KEY=VALUE; repeatable."),
    ] = None,
) -> None:
    """Curate RAW (de-identify → register → pair) and publish a new version of STORE."""
    try:
        from flows.curate import CurateParams, run_curate
    except ModuleNotFoundError as err:
        if (err.name or "").partition(".")[0] not in FLOW_PACKAGES:
            raise
        raise DependencyError(
            f"`toothmcl-data build` runs the Prefect curation flow, which needs the flows extra (missing module "
            f"{err.name!r}): pip install 'toothmcl[flows]'"
        ) from err

    params = CurateParams(
        raw=raw,
        store=str(store),
        key_file=str(key_file) if key_file else None,
        key_env=key_env,
        work=str(work) if work else None,
        audit=str(audit) if audit else None,
        tag=tag,
        message=message,
        source=source,
        licence=licence,
        figures=figures,
        overrides=overrides or [],
    )
    curation_config(params.overrides)  # a wrong key stops here, before any work
    if dry_run:
        from toothmcl_data.io.plan import plan_files

        plan = plan_files(raw)
        emit(
            {"files": len(plan.records), "cases": len(plan.cases), "store": str(store), "written": False},
            as_json=as_json,
            title="build (dry run)",
        )
        return
    result = run_curate(params, dask_address=dask_address, dask_workers=dask_workers)
    emit(result, as_json=as_json, title=f"published into {store}")
