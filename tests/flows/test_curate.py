"""The curation flow on a synthetic drop: publishes a version, a re-run is all cache hits, Dask gives the same
content hash as threads, and the build CLI runs the same flow. A held task argument is neither walked by Prefect
nor changed by pickling (Dask's way to a worker)."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path
from typing import Any

import pytest
from prefect.utilities.collections import visit_collection
from typer.testing import CliRunner

from flows.curate import CurateParams, Held, discovery_batches, run_curate
from toothmcl_data.cli.app import app
from toothmcl_data.store import list_versions, open_version
from toothmcl_data.synth.config import SynthConfig
from toothmcl_data.synth.drop import write_drop

COARSE = SynthConfig(spacing_mm=0.8, ios_resolution_mm=0.6, nifti_fraction=0.0)


def test_a_held_argument_is_not_walked_by_prefect_and_survives_pickling() -> None:
    records = [{"path": f"s{i}.dcm", "tags": [i, i + 1]} for i in range(3)]
    seen: list[Any] = []
    visit_collection([Held(records)], lambda e: seen.append(e), return_data=False)
    assert len(seen) == 2  # the list, then the holder: nothing inside it
    assert isinstance(seen[1], Held)
    seen.clear()
    visit_collection([records], lambda e: seen.append(e), return_data=False)
    assert len(seen) > 10  # the same records unheld: every dict, list and value visited
    assert pickle.loads(pickle.dumps(Held(records))).value == records


@pytest.mark.parametrize(
    ("files", "slots", "tasks"),
    [(2100, 2, 4), (2100, 1, 3), (1500, 2, 2), (30000, 8, 32), (3, 2, 2), (1, 4, 1), (0, 2, 0)],
)
def test_discovery_tasks_are_shared_evenly_by_the_worker_threads(files: int, slots: int, tasks: int) -> None:
    n = discovery_batches(files, slots, batch=1024)
    assert n == tasks
    sizes = [len(range(i, files, n)) for i in range(n)]  # the flow deals files[i::n] to task i
    assert sum(sizes) == files
    assert all(0 < s <= 1024 for s in sizes)
    if files >= slots:
        assert n % slots == 0  # every thread gets as many tasks


@pytest.fixture(scope="module")
def drop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    write_drop(out, patients=3, seed=21, bad_fraction=0.34, config=COARSE)
    return out / "drop"


@pytest.fixture(scope="module")
def threaded(drop: Path, key_file: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("threaded")
    params = CurateParams(raw=str(drop), store=str(base / "store"), key_file=str(key_file), tag="v1")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("flows.curate.DISCOVER_BATCH", 40)  # the drop's files discovered in several tasks
        first = run_curate(params)
    second = run_curate(params)
    return {"params": params, "first": first, "second": second}


def test_flow_publishes_a_version_and_rerun_is_all_cache_hits(threaded: dict[str, Any]) -> None:
    first, second = threaded["first"], threaded["second"]
    files = sum(1 for p in Path(threaded["params"].raw).rglob("*") if p.is_file())
    assert first["files"] == second["files"] == files > 40  # every file, whether discovered in batches or not
    assert first["cases"] == 3
    assert first["published"] + first["quarantined"] == 3
    assert first["cache_hits"] == 0
    assert second["cache_hits"] == second["case_tasks"] == first["case_tasks"]
    assert second["version"] == first["version"]  # nothing changed: no new commit
    versions = list_versions(threaded["params"].store)
    assert "v1" in {t for v in versions for t in v.tags}
    reader = open_version(threaded["params"].store, "v1")
    assert len(reader.case_ids()) == first["published"]
    assert reader.table("inventory").num_rows > 100
    assert len(reader.pairs()) > 0
    # every curated case carries a CBCT tooth label map: the drop has none, so it comes from the registered scans
    cases = reader.table("cases").to_pylist()
    assert all(r["has_labels"] and r["cbct_labels_source"] == "ios" for r in cases)
    sources = {r.get("cbct_label_source") for r in reader.table("teeth").to_pylist() if r["paired"]}
    assert sources == {"ios"}
    # the cases ran largest first (their files' bytes) and went into the version in that order, whichever worker
    # ended first: their pair slots follow it
    size: dict[str, int] = {}
    for row in reader.table("inventory").to_pylist():
        size[row["case"]] = size.get(row["case"], 0) + row["size"]
    in_slots = [size[r["pseudonym"]] for r in sorted(cases, key=lambda r: r["pair_slot_start"])]
    assert len(in_slots) >= 2
    assert in_slots == sorted(in_slots, reverse=True)


def test_a_cached_case_whose_folders_were_deleted_is_curated_again(
    drop: Path, key_file: Path, tmp_path: Path, threaded: dict[str, Any]
) -> None:
    """Deleting a build's store, working and audit folders and building again (a user starting over) must curate
    every case again: the cached case results name record files and audit records that are gone."""
    params = CurateParams(raw=str(drop), store=str(tmp_path / "store"), key_file=str(key_file))
    run_curate(params)
    work, audit = params.folders()
    for folder in (work, audit, Path(params.store)):
        shutil.rmtree(folder)
    again = run_curate(params)
    assert again["cache_hits"] == 0
    assert again["published"] == threaded["first"]["published"]
    assert again["content_hash"] == threaded["first"]["content_hash"]
    published = open_version(params.store, again["version"]).case_ids()
    assert sorted(p.stem for p in (work / "records").iterdir()) == sorted(published)


@pytest.mark.slow
def test_dask_local_cluster_gives_the_same_content_hash(
    drop: Path, key_file: Path, tmp_path: Path, threaded: dict[str, Any]
) -> None:
    params = CurateParams(raw=str(drop), store=str(tmp_path / "store"), key_file=str(key_file))
    result = run_curate(params, dask_workers=2)
    assert result["content_hash"] == threaded["first"]["content_hash"]


def test_build_cli_runs_the_flow(drop: Path, key_file: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    dry = runner.invoke(
        app, ["build", str(drop), "--store", str(tmp_path / "s"), "--key-file", str(key_file), "--dry-run", "--json"]
    )
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.output)["cases"] == 3
    assert not (tmp_path / "s").exists()


def test_build_set_is_checked_before_any_work(drop: Path, key_file: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["build", str(drop), "--store", str(tmp_path / "s"), "--key-file", str(key_file), "--dry-run"]
    bad = runner.invoke(app, [*args, "--set", "register.inlier_mmm=0.3"])
    assert bad.exit_code != 0
    assert "from --set register.inlier_mmm=0.3" in str(bad.exception) + bad.output
    assert not (tmp_path / "s").exists()
    good = runner.invoke(app, [*args, "--set", "register.inlier_mm=0.3", "--json"])
    assert good.exit_code == 0, good.output
