"""The curation flow: raw drop → de-identify → register → pair → publish one immutable version.

Thin wiring: each task is one call into the library (:mod:`toothmcl_data.curate`). One task per case
(:func:`toothmcl_data.curate.curate_case`) de-identifies, registers and pairs it, so its series is read and
decoded once and its CBCT never crosses a process; tasks pass file references (record files), never large arrays.
Case tasks are cached on the inputs' content hashes + the code version + the configuration, so a re-run skips
every case already done; a case that fails a stage ends in the quarantine table with its reason while the others
complete. Cases run largest first; each case's record goes into the version as its task ends (in that order,
while the later cases still run), and the version is committed, and so visible, only when the run completes.

    python -m flows.curate RAW --store STORE --key-file K            # or: toothmcl-data build …
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext, TaskRunContext
from prefect.futures import PrefectFuture
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import BaseModel, Field

from flows.cluster import local_cluster
from toothmcl_data.curate import (
    CaseSummary,
    RunPublisher,
    curate_case,
    curation_config,
    curation_provenance,
    missing_outputs,
    nothing_to_publish,
    run_quarantine,
    stage_totals,
)
from toothmcl_data.deid.audit import private_dir
from toothmcl_data.deid.case import load_case_result
from toothmcl_data.deid.pseudonym import key_fingerprint, read_key
from toothmcl_data.deid.run import finish_drop
from toothmcl_data.errors import DependencyError
from toothmcl_data.io.discover import FileRecord, discover
from toothmcl_data.io.fs import open_source
from toothmcl_data.io.group import DropPlan, RawCase
from toothmcl_data.io.plan import plan_files
from toothmcl_data.provenance import code_version
from toothmcl_data.store import VersionInfo
from toothmcl_data.store.guard import exclusive

T = TypeVar("T")


class CurateParams(BaseModel):
    """Flow parameters (validated by pydantic; they appear in the Prefect UI — no secrets here)."""

    raw: str = Field(description="raw drop: folder or fsspec URL")
    store: str = Field(description="dataset store: folder or URL")
    key_file: str | None = Field(None, description="file holding the pseudonymisation key")
    key_env: str | None = Field(None, description="environment variable holding the key (instead of key_file)")
    work: str | None = Field(None, description="working folder for de-identified cases (default: STORE.work)")
    audit: str | None = Field(None, description="restricted audit folder (default: STORE.audit)")
    tag: str | None = Field(None, description="tag for the published version")
    message: str = Field("curated with toothmcl", description="version message")
    source: str = Field("", description="where the data comes from (dataset card)")
    licence: str = Field("", description="licence of the data (dataset card)")
    figures: bool = Field(True, description="draw a registration picture per jaw (STORE.work/figures)")
    overrides: list[str] = Field(
        default_factory=list, description="register.KEY=VALUE / pair.KEY=VALUE changes to the curation config"
    )

    def folders(self) -> tuple[Path, Path]:
        store = Path(self.store)
        work = Path(self.work) if self.work else store.with_name(store.name + ".work")
        audit = Path(self.audit) if self.audit else store.with_name(store.name + ".audit")
        return work, audit


def _key(params: CurateParams) -> bytes:
    return read_key(key_file=Path(params.key_file) if params.key_file else None, key_env=params.key_env)


def _hash(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]


class Held(Generic[T]):
    """A task argument that Prefect hands over without walking into it.

    Prefect walks every argument's lists, dicts and dataclasses on submit and again on run, looking for futures;
    a raw case holds hundreds of file records (a drop's plan thousands): measured with py-spy on the flow process,
    20 patients on a 2-worker LocalCluster, that walk took 1.3 s of its CPU, on cores the workers need. Prefect's
    own ``quote`` does not survive Dask's serialisation (it arrives as a plain tuple); this plain class does."""

    __slots__ = ("value",)

    def __init__(self, value: T) -> None:
        self.value = value


def _case_key(context: TaskRunContext, parameters: dict[str, Any]) -> str:
    raw_case = parameters["raw_case"].value
    files = sorted(f.sha256 for f in raw_case.files)
    where = [str(parameters["work"]), str(parameters["audit"])]
    figures = parameters["key_ref"].figures
    return "case-" + _hash(files, parameters["fingerprint"], where, figures, parameters["config"], code_version())


DISCOVER_BATCH = 1024
"""Most files per discovery task: a drop's files are hashed and their headers read in batches on the task runner's
workers (a clinic's drop holds ~300 files per patient), then grouped into cases in the flow. Each task costs the
run ~70 ms of Prefect's own CPU, so batches are large, and there are as many per worker thread (see
:func:`discovery_batches`)."""


_IDENTITY: dict[str, Any] = {"cache_policy": NO_CACHE, "persist_result": False}
"""Options of the planning tasks: their results name patients (header identity), so they stay in memory only."""


def _io_retry(task: Any, run: Any, state: Any) -> bool:
    return isinstance(state.data, OSError)


@task(name="list drop", retries=2, retry_condition_fn=_io_retry, **_IDENTITY)
def list_task(raw: str) -> list[str]:
    return open_source(raw).list_files()


@task(name="discover files", retries=2, retry_condition_fn=_io_retry, **_IDENTITY)
def discover_task(raw: str, files: list[str]) -> list[FileRecord]:
    return discover(open_source(raw), files=files)


@task(name="plan drop", **_IDENTITY)
def plan_task(raw: str, records: Held[list[FileRecord]]) -> DropPlan:
    return plan_files(raw, records=records.value)


def discovery_batches(files: int, slots: int, batch: int) -> int:
    """How many discovery tasks share ``files`` files among ``slots`` worker threads: a multiple of ``slots``
    (each thread gets as many, so none works on while the others wait), at most ``batch`` files each, at most one
    task per file. 2,100 files on 2 threads: 4 tasks of 525 (3 of 700 kept one thread busy for two)."""
    slots = max(1, slots)
    return min(files, slots * -(-files // (slots * batch)))


def _slots() -> int:
    """Tasks the flow's task runner runs at once: a Dask cluster's worker threads, else 2 (the flow's own thread
    pool's default)."""
    runner = FlowRunContext.get().task_runner  # type: ignore[union-attr]
    client = getattr(runner, "client", None)  # prefect-dask's DaskTaskRunner
    return sum(client.nthreads().values()) if client is not None else 2


def _plan(raw: str) -> DropPlan:
    files = list_task(raw)
    n = discovery_batches(len(files), _slots(), DISCOVER_BATCH)
    batches = [discover_task.submit(raw, files[i::n]) for i in range(n)]  # dealt out: scans and series in each
    return plan_task(raw, Held(sorted((r for b in batches for r in b.result()), key=lambda r: r.path)))


@task(name="curate case", cache_key_fn=_case_key, persist_result=True)
def case_task(
    raw_case: Held[RawCase], work: Path, audit: Path, key_ref: CurateParams, fingerprint: str, config: dict[str, Any]
) -> CaseSummary:
    """De-identify, register and pair one case in one task (its CBCT is read and decoded once and never
    leaves the worker); returns a summary without identity (results that name originals stay in the audit
    area, never in Prefect's result storage) — see :func:`toothmcl_data.curate.curate_case`."""
    return curate_case(raw_case.value, work, audit, key=_key(key_ref), figures=key_ref.figures, config=config)


@task(name="publish version", cache_policy=NO_CACHE)
def publish_task(
    params: CurateParams,
    version: Held[RunPublisher],
    quarantine: list[dict[str, Any]],
    fingerprint: str,
    config: dict[str, Any],
) -> VersionInfo:
    """Commit the run's version (its cases were written into it as they ended): tables, card, provenance."""
    work, _ = params.folders()
    provenance, inventory = curation_provenance(
        work,
        key_fingerprint=fingerprint,
        source=params.source,
        licence=params.licence,
        config=config,
    )
    return version.value.commit(
        message=params.message,
        inventory=inventory,
        quarantine=quarantine,
        provenance=provenance,
        tag=params.tag,
    )


@flow(name="curate", task_runner=ThreadPoolTaskRunner(max_workers=2), log_prints=True)  # type: ignore[arg-type]
def curate(params: CurateParams) -> dict[str, Any]:
    """Curate the drop ``params.raw`` into a new version of ``params.store``."""
    work, audit = params.folders()
    work.mkdir(parents=True, exist_ok=True)
    private_dir(audit)  # 0700: the audit area names originals
    # One build per working folder at a time (its tables are per run): a second build waits for the first.
    with exclusive(work / ".build.lock", f"working folder {work}: another build"):
        return _curate(params, work, audit)


def _curate(params: CurateParams, work: Path, audit: Path) -> dict[str, Any]:
    logger = get_run_logger()
    fingerprint = key_fingerprint(_key(params))
    config = curation_config(params.overrides)  # the run's RegisterConfig / PairConfig, as dicts
    plan = _plan(params.raw)
    logger.info("drop: %d files, %d cases", len(plan.records), len(plan.cases))
    # Largest cases first (by their files' bytes): the last to run are small ones, so the workers end together.
    order = sorted(range(len(plan.cases)), key=lambda i: -sum(f.size for f in plan.cases[i].files))

    def submit(i: int, refresh: bool = False) -> PrefectFuture[Any]:
        run = case_task.with_options(refresh_cache=True) if refresh else case_task
        return run.submit(Held(plan.cases[i]), work, audit, params, fingerprint, config)

    submitted = {i: submit(i) for i in order}
    futures: list[PrefectFuture[Any]] = [submitted[i] for i in range(len(plan.cases))]
    with RunPublisher(params.store) as version:
        everything, stale = _into_version(version, futures, order, lambda i: submit(i, refresh=True), work, audit)
        if stale:
            logger.warning("%d cached case results named deleted files: those cases were curated again", stale)
        finish_drop(plan, [load_case_result(work, audit, s["pseudonym"]) for s in everything], work, audit)
        summaries = [s for s in everything if s["written"]]
        hits = [f.state.name == "Cached" for f in futures]
        cached = sum(hits)
        logger.info("%d of %d case tasks were cache hits", cached, len(futures))
        computed = [not hit for hit in hits]  # a cache hit carries its first run's times: not summed
        stage_seconds = stage_totals(everything, computed)
        stage_cpu_seconds = stage_totals(everything, computed, "cpu_seconds")  # not inflated by other load
        quarantine = run_quarantine(work, summaries)
        if not version.written:  # never an empty version in silence: the whole drop was quarantined
            raise nothing_to_publish(params.raw, work, audit, len(everything), quarantine)
        info = publish_task(params, Held(version), quarantine, fingerprint, config)
    table = [
        {
            "case": s["pseudonym"],
            "pairs": s.get("pairs", 0),
            **{f"verdict_{j}": v for j, v in s["verdicts"].items()},
            "quarantined": s["reason"],
        }
        for s in summaries
    ]
    create_table_artifact(key="cases", table=table, description=f"cases of version {info.id}")
    create_table_artifact(
        key="quarantine",
        table=[{k: r[k] for k in ("unit", "case", "kind", "role", "n_files", "reason")} for r in quarantine]
        or [{"note": "nothing quarantined"}],
        description="quarantined input units (a series, a scan, a file, a case that failed registration/pairing)",
    )
    from toothmcl_data.store import open_version

    create_markdown_artifact(key="dataset-card", markdown=open_version(params.store, info.id).card_markdown())
    return {
        "version": info.id,
        "content_hash": info.content_hash,
        "tags": list(info.tags),
        "files": len(plan.records),
        "cases": len(everything),
        "published": version.written,
        "quarantined": len(everything) - version.written,
        "quarantined_units": len(quarantine),
        "quarantined_files": sum(int(r["n_files"]) for r in quarantine),
        "stats": info.stats,
        "case_tasks": len(futures),
        "cache_hits": cached,
        "stage_seconds": stage_seconds,
        "stage_cpu_seconds": stage_cpu_seconds,
    }


def _into_version(
    version: RunPublisher,
    futures: list[PrefectFuture[Any]],
    order: list[int],
    again: Callable[[int], PrefectFuture[Any]],
    work: Path,
    audit: Path,
) -> tuple[list[CaseSummary], int]:
    """Every case's summary (plan order), each case written into ``version`` as its task ends, in the ``order``
    the tasks were submitted (the version's layout does not depend on which worker finished first), while the
    later ones still run; and how many cached results named deleted record or audit files (a user starting over):
    those cases are curated again (``again(i)``, its new run replacing ``futures[i]``) and written last."""

    def add(summary: CaseSummary) -> None:
        record = summary["record"]
        if summary["written"] and record:
            version.add(record)

    everything: dict[int, CaseSummary] = {}
    stale = []
    for i in order:
        everything[i] = futures[i].result()
        if _gone(futures[i], everything[i], work, audit):
            futures[i] = again(i)
            stale.append(i)
        else:
            add(everything[i])
    for i in stale:
        everything[i] = futures[i].result()
        add(everything[i])
    return [everything[i] for i in range(len(futures))], len(stale)


def _gone(future: PrefectFuture[Any], summary: CaseSummary, work: Path, audit: Path) -> bool:
    return future.state.name == "Cached" and bool(missing_outputs(summary, work, audit))


def run_curate(
    params: CurateParams, *, dask_address: str | None = None, dask_workers: int = 0, threads: int = 2
) -> dict[str, Any]:
    """Run :func:`curate` on ``threads`` threads (default), on a Dask scheduler at ``dask_address``, or on a
    LocalCluster of ``dask_workers`` single-threaded worker processes."""
    if dask_address or dask_workers:
        try:
            from prefect_dask import DaskTaskRunner
        except ModuleNotFoundError as err:
            raise DependencyError(
                f"running the flow on Dask needs prefect-dask and distributed (missing: {err.name}): "
                "pip install 'toothmcl[flows]'"
            ) from err

        if dask_address:
            return curate.with_options(task_runner=DaskTaskRunner(address=dask_address))(params)  # type: ignore[arg-type]
        with local_cluster(dask_workers, preload="flows.curate") as (address, _):
            return curate.with_options(task_runner=DaskTaskRunner(address=address))(params)  # type: ignore[arg-type]
    if threads != 2:
        return curate.with_options(task_runner=ThreadPoolTaskRunner(max_workers=threads))(params)  # type: ignore[arg-type]
    return curate(params)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="curate a raw drop into a new store version")
    parser.add_argument("raw")
    parser.add_argument("--store", required=True)
    parser.add_argument("--key-file")
    parser.add_argument("--key-env")
    parser.add_argument("--tag")
    parser.add_argument("--dask-address")
    parser.add_argument("--dask-workers", type=int, default=0)
    a = parser.parse_args()
    print(
        json.dumps(
            run_curate(
                CurateParams(raw=a.raw, store=a.store, key_file=a.key_file, key_env=a.key_env, tag=a.tag),
                dask_address=a.dask_address,
                dask_workers=a.dask_workers,
            ),
            indent=2,
            default=str,
        )
    )
