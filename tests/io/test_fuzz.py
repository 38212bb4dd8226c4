"""A fixed-seed subset of the fuzzer (``bench/fuzz.py``): hostile variants of every input kind go through ingest
and de-identification with no crash, no hang, no reason that fails to name its file and no leak."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from toothmcl_data.synth.mutate import mutate
from toothmcl_data.synth.seeds import MESH_FORMATS, make_seeds

ROOT = Path(__file__).resolve().parents[2]


def _fuzz(*args: str) -> dict[str, Any]:
    env = os.environ | {"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "fuzz.py"), "--json", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    report: dict[str, Any] = json.loads(done.stdout)
    report["exit"] = done.returncode
    return report


def test_fixed_seed_subset_has_no_crash_hang_or_leak() -> None:
    report = _fuzz("--n", "48", "--seed", "7")
    counts = report["counts"]
    assert report["bad"] == [], report["bad"][:3]
    assert {k: counts[k] for k in ("unnamed", "bare_error", "leaked", "crashed", "hung")} == dict.fromkeys(
        ("unnamed", "bare_error", "leaked", "crashed", "hung"), 0
    )
    assert sum(counts.values()) == 48
    assert counts["quarantined"] >= 20  # most mutations must be caught, each with a reason naming its file
    assert counts["ingested"] >= 1
    assert {"dicom", "nifti", "json"} <= set(report["by_target"])
    assert report["exit"] == 0


def test_a_case_over_the_time_limit_counts_as_hung() -> None:
    report = _fuzz("--n", "1", "--seed", "7", "--timeout", "0.001")
    assert report["counts"]["hung"] == 1
    assert report["exit"] == 1


def test_seeds_are_valid_and_mutations_deterministic(tmp_path: Path) -> None:
    seeds = make_seeds(tmp_path / "a")
    again = make_seeds(tmp_path / "b")
    assert seeds.dicom == again.dicom
    assert seeds.nifti_gz == again.nifti_gz
    assert set(seeds.meshes) == set(MESH_FORMATS)
    first = mutate("dicom", "dicom", seeds.dicom[0], np.random.default_rng(3))
    assert first == mutate("dicom", "dicom", seeds.dicom[0], np.random.default_rng(3))
    assert first[1] != seeds.dicom[0]


@pytest.mark.parametrize("fmt", MESH_FORMATS)
def test_every_mesh_seed_reads_with_its_sidecar(tmp_path: Path, fmt: str) -> None:
    from toothmcl_data.io.mesh import read_mesh

    suffix, mesh, side = make_seeds(tmp_path / "s").meshes[fmt]
    (tmp_path / f"upper{suffix}").write_bytes(mesh)
    (tmp_path / "upper.json").write_bytes(side)
    read = read_mesh(tmp_path / f"upper{suffix}")
    assert read.jaw == "upper"
    assert len(read.vertices) == 30
    assert read.labels is not None
    assert sorted(set(read.labels.tolist())) == [0, 11]
