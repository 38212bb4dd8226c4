"""Acceptance: a publish killed at random moments leaves the store intact; readers see consistent versions."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.store.conftest import PROVENANCE, records
from toothmcl_data.store import gc_store, list_versions, open_version, publish, verify_version

ROOT = Path(__file__).resolve().parents[2]
READER = """
import sys, hashlib, numpy as np
from toothmcl_data.store import open_version
store, pinned, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
first = None
for _ in range(rounds):
    r = open_version(store, pinned)
    h = hashlib.sha256()
    for p in r.case_ids():
        h.update(np.asarray(r.cbct(p).array).tobytes())
    pairs = r.pairs()
    h.update(np.asarray(pairs.cbct_crop[...]).tobytes())
    digest = h.hexdigest()
    first = first or digest
    if digest != first:
        print("INCONSISTENT", flush=True); sys.exit(1)
    latest = open_version(store, "latest")
    ids, card = latest.case_ids(), latest.card()
    if len(ids) != card["counts"]["patients"] or len(latest.pairs()) != card["counts"]["pairs"]:
        print("TORN", latest.id, flush=True); sys.exit(1)
print("OK", first, flush=True)
"""


def _child(store: Path, n: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.store.publish_child", str(store), str(n)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


def _wait_ready(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == "ready", line


def _crash_runs(tmp_path: Path, moments: int, seed: int) -> list[int]:
    template = tmp_path / "template"
    v1 = publish(template, records(3), message="3 cases", provenance=PROVENANCE, tag="v1")
    reference = tmp_path / "reference"
    shutil.copytree(template, reference)
    proc = _child(reference, 6)  # timed in a child, as the runs to be killed
    _wait_ready(proc)
    t0 = time.perf_counter()
    out, _ = proc.communicate(timeout=120)
    duration = time.perf_counter() - t0
    expected = out.split()[-1]
    assert proc.returncode == 0
    assert len(expected) == 64
    v1_crop = np.asarray(open_version(template, "v1").pairs().cbct_crop[...])
    rng = np.random.default_rng(seed)
    outcomes = []
    for i in range(moments):
        store = tmp_path / f"run{i}"
        shutil.copytree(template, store)
        proc = _child(store, 6)
        _wait_ready(proc)
        time.sleep(float(rng.uniform(0.0, 1.1 * duration)))
        proc.send_signal(signal.SIGKILL)
        code = proc.wait(timeout=30)
        assert code in (-signal.SIGKILL, 0), code  # killed, or finished just before the signal
        committed = [v.id for v in list_versions(store)]
        outcomes.append(len(committed))
        # the previous version reads back unchanged and verifies
        prev = open_version(store, "v1")
        assert (prev.id, prev.content_hash) == (v1.id, v1.content_hash)
        np.testing.assert_array_equal(prev.pairs().cbct_crop[...], v1_crop)
        assert verify_version(store, "v1").ok
        assert verify_version(store, "latest").ok
        # re-running the publish completes with the same content hash; gc keeps every version intact
        again = publish(store, records(6), message="6 cases", provenance=PROVENANCE)
        assert again.content_hash == expected
        gc_store(store, grace_seconds=0)
        assert verify_version(store, "v1").ok
        assert verify_version(store).ok
        shutil.rmtree(store)
    # 1 = killed before the commit (or before anything), 2 = after it; report the spread on failure
    assert set(outcomes) <= {1, 2}, outcomes
    return outcomes


def test_publish_killed_at_three_moments_leaves_store_intact(tmp_path):
    _crash_runs(tmp_path, moments=3, seed=1)


@pytest.mark.slow
def test_publish_killed_at_twenty_moments_leaves_store_intact(tmp_path):
    outcomes = _crash_runs(tmp_path, moments=20, seed=2)
    assert set(outcomes) == {1, 2}, outcomes  # kills landed both before and after the commit


def test_two_readers_see_consistent_data_while_a_writer_publishes(tmp_path):
    store = tmp_path / "store"
    v1 = publish(store, records(3), message="3", provenance=PROVENANCE)
    readers = [
        subprocess.Popen(
            [sys.executable, "-c", READER, str(store), v1.id, "15"], cwd=ROOT, stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    for n in (5, 7, 4):  # add, add, remove: versions change under the readers
        publish(store, records(n), message=f"{n}", provenance=PROVENANCE)
    outs = [r.communicate(timeout=120)[0] for r in readers]
    assert all(r.returncode == 0 for r in readers), outs
    assert outs[0].split()[0] == "OK"
    assert outs[0].split()[1] == outs[1].split()[1]
    assert len(list_versions(store)) == 4
