"""Faults during curation: a drop whose every series is bad, a missing ``flows`` extra, a Dask worker killed
mid-build, two builds publishing into one store at once, and a build SIGKILLed at random moments then rerun.

The last three start real processes (Dask workers, build commands) and are ``slow``; README's fault table gives
the measured runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from flows.curate import CurateParams, run_curate
from tests.deid.test_quarantine_units import TILT, _series
from toothmcl_data.errors import InputError, VersionNotFoundError
from toothmcl_data.store import list_versions, open_version, verify_version
from toothmcl_data.synth.config import SynthConfig
from toothmcl_data.synth.drop import write_drop

ROOT = Path(__file__).resolve().parents[2]
COARSE = SynthConfig(spacing_mm=0.8, ios_resolution_mm=0.6, nifti_fraction=0.0)
BUILD = "from toothmcl_data.cli.app import main; main()"


def _all_bad(root: Path) -> Path:
    """Four patients, each one bad series of 4 files (gantry tilt, duplicate position, two gaps): 16 files."""
    _series(root / "P1" / "CT", "Alpha^Anna", [0.0, 0.5, 1.0, 1.5], iop=TILT)
    _series(root / "P2" / "CT", "Beta^Bob", [0.0, 0.5, 0.5, 1.0])
    _series(root / "P3" / "CT", "Gamma^Gus", [0.0, 0.5, 1.5, 2.0])
    _series(root / "P4" / "CT", "Delta^Dora", [0.0, 0.5, 1.0, 3.0])
    return root


def test_a_drop_whose_every_series_is_bad_publishes_nothing_and_says_where_the_reasons_are(
    tmp_path: Path, key_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    drop = _all_bad(tmp_path / "drop")
    store = tmp_path / "store"
    params = CurateParams(raw=str(drop), store=str(store), key_file=str(key_file), figures=False)
    with pytest.raises(InputError, match=r"no case can be published — 4 cases found, 4 input units \(16 files\)") as e:
        run_curate(params)
    assert str(tmp_path / "store.work" / "tables" / "quarantine.parquet") in str(e.value)
    assert "No version was published" in str(e.value)
    with pytest.raises(VersionNotFoundError):
        list_versions(store)  # no empty version in silence
    import pyarrow.parquet as pq

    rows = pq.read_table(tmp_path / "store.work" / "tables" / "quarantine.parquet").to_pylist()
    assert sorted(r["n_files"] for r in rows) == [4, 4, 4, 4]
    # the command: one error line, exit code 2, no traceback
    from toothmcl_data.cli.app import main

    monkeypatch.setattr(sys, "argv", ["toothmcl-data", "build", str(drop), "--store", str(store), "--key-file",
                                      str(key_file), "--no-figures"])  # fmt: skip
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 2
    err = capsys.readouterr().err.replace("\n", "")  # the console wraps long lines
    assert err.startswith("error: build")
    assert "be published — 4 cases found" in err
    assert "quarantine.parquet" in err
    assert "Traceback" not in err


def test_build_without_the_flows_extra_says_what_to_install(tmp_path: Path) -> None:
    code = "import sys; sys.modules['prefect'] = None; " + BUILD  # Prefect not installed
    done = subprocess.run(
        [sys.executable, "-c", code, "build", str(tmp_path), "--store", str(tmp_path / "s")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "pip install 'toothmcl[flows]'" in done.stderr
    assert "prefect" in done.stderr
    assert "Traceback" not in done.stderr


# ----------------------------------------------------------------------------------------------- slow runs
@pytest.fixture(scope="module")
def small_drop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("small")
    write_drop(out, patients=2, seed=5, bad_fraction=0.0, config=COARSE)
    return out / "drop"


@pytest.fixture(scope="module")
def undisturbed(small_drop: Path, key_file: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    store = tmp_path_factory.mktemp("undisturbed") / "store"
    t0 = time.perf_counter()
    result = run_curate(CurateParams(raw=str(small_drop), store=str(store), key_file=str(key_file), figures=False))
    return {**result, "seconds": time.perf_counter() - t0}


def _dask_workers() -> list[Any]:
    """This process's Dask worker processes: forked by the forkserver it started (``flows.cluster``), or spawned."""
    import psutil

    procs = psutil.Process().children(recursive=True)
    servers = {p.pid for p in procs if p.ppid() == os.getpid() and "forkserver" in " ".join(p.cmdline())}
    return [p for p in procs if p.ppid() in servers or "spawn_main" in " ".join(p.cmdline())]


@pytest.mark.slow
def test_a_dask_worker_killed_mid_build_is_survived_with_the_same_content_hash(
    small_drop: Path, key_file: Path, tmp_path: Path, undisturbed: dict[str, Any]
) -> None:
    store = tmp_path / "store"
    killed: list[int] = []

    def kill_a_worker() -> None:
        cases = tmp_path / "store.work" / "cases"
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:  # a case is being de-identified: a worker is busy
            if cases.is_dir() and any(p.name.startswith(".tmp-") for p in cases.iterdir()):
                break
            time.sleep(0.05)
        workers = _dask_workers()
        if workers:
            workers[0].send_signal(signal.SIGKILL)
            killed.append(workers[0].pid)

    killer = threading.Thread(target=kill_a_worker, daemon=True)
    killer.start()
    params = CurateParams(raw=str(small_drop), store=str(store), key_file=str(key_file), figures=False)
    result = run_curate(params, dask_workers=2)
    killer.join(timeout=5)
    assert killed, "no Dask worker was found to kill"
    assert result["content_hash"] == undisturbed["content_hash"]
    assert verify_version(store).ok


def _build(drop: Path, store: Path, key_file: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", BUILD, "build", str(drop), "--store", str(store), "--key-file", str(key_file),
         "--no-figures", "--json", *extra],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        start_new_session=True,
    )  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("own_work", [False, True], ids=["shared-work", "own-work"])
def test_two_builds_into_one_store_at_once_serialise_and_never_mix(
    tmp_path: Path, key_file: Path, own_work: bool
) -> None:
    drops = []
    for n, seed in ((1, 31), (2, 32)):
        write_drop(tmp_path / f"synth{n}", patients=n, seed=seed, bad_fraction=0.0, config=COARSE)
        drops.append(tmp_path / f"synth{n}" / "drop")
    store = tmp_path / "store"
    procs = [
        _build(d, store, key_file, *(["--work", str(tmp_path / f"work{i}")] if own_work else []))
        for i, d in enumerate(drops)
    ]
    outs = [p.communicate(timeout=900) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    results = [json.loads(o[0]) for o in outs]
    assert {r["published"] for r in results} == {1, 2}
    versions = list_versions(store)
    assert len(versions) == 2  # one after the other, on one line of history
    for r in results:
        reader = open_version(store, r["version"])
        assert len(reader.case_ids()) == r["published"]  # each version holds exactly one drop's cases
        assert reader.content_hash == r["content_hash"]
        assert verify_version(store, r["version"]).ok


def _killed_then_rerun(drop: Path, store: Path, key_file: Path, after: float) -> tuple[str, str]:
    proc = _build(drop, store, key_file)
    try:
        _, err = proc.communicate(timeout=after)
        assert proc.returncode == 0, err[-3000:]  # a build that ends before the signal must have succeeded
        outcome = "finished"
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the build and everything it started
        proc.communicate()
        outcome = "killed"
    again = _build(drop, store, key_file)
    out, err = again.communicate(timeout=900)
    assert again.returncode == 0, err[-3000:]
    assert verify_version(store).ok
    return outcome, json.loads(out)["content_hash"]


@pytest.mark.slow
def test_build_sigkilled_at_twenty_random_moments_then_rerun_gives_the_undisturbed_hash(
    small_drop: Path, key_file: Path, tmp_path: Path, undisturbed: dict[str, Any]
) -> None:
    timed = _build(small_drop, tmp_path / "timed" / "store", key_file)  # how long a build command runs here
    t0 = time.perf_counter()
    out, err = timed.communicate(timeout=900)
    seconds = time.perf_counter() - t0
    assert timed.returncode == 0, err[-3000:]
    assert json.loads(out)["content_hash"] == undisturbed["content_hash"]
    rng = np.random.default_rng(15)
    moments = sorted(float(t) for t in rng.uniform(0.5, 0.9 * seconds, size=20))
    outcomes = []
    for n, after in enumerate(moments):
        outcome, content_hash = _killed_then_rerun(small_drop, tmp_path / f"run{n}" / "store", key_file, after)
        outcomes.append((round(after, 1), outcome))
        assert content_hash == undisturbed["content_hash"], outcomes
    print(f"undisturbed build command {seconds:.1f} s; kill moments (s) and outcomes:", outcomes)
    # most moments land inside the build; on a loaded machine build times vary 2×, so some runs end first
    assert sum(o == "killed" for _, o in outcomes) >= 10, outcomes
