"""Disjoint cohorts of synthetic patients for training experiments (the pretraining ablation, benchmarks).

A cohort is a role (``pretrain``, ``labelled``, ``test``) and a number of patients; patient ``i`` of role ``r``
is drawn from ``np.random.default_rng([seed, ROLE_STREAMS[r], i])``, so the cohorts never share a patient, each
is independent of the others' sizes, and a labelled pool of 8 starts with the pool of 4 (k-subsets nest).

- :func:`publish_cohorts`: the labelled and test cohorts as one store of ground-truth records
  (:func:`toothmcl_data.synth.record.synth_record`: the generator's CBCT label map and registrations), pseudonyms
  ``L000…`` and ``T000…``;
- :func:`write_cohort_drop`: a cohort as a raw clinical drop (DICOM/NIfTI + STL/PLY/OBJ, planted PHI) for the
  curation flow (``toothmcl-data build``), the path users' data takes;
- :func:`publish_cohort_records`: the same cohort as ground-truth records instead (no curation);
- :func:`build_cohort_stores`: what the pretraining ablation (``toothmcl_models.ablation``) needs: the pretraining
  cohort curated by ``toothmcl-data build`` (run as a subprocess, the flow is a Prefect plugin this package never
  imports) or as records, and the labelled + test store.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from toothmcl_data.deid.audit import write_private
from toothmcl_data.errors import ConfigError
from toothmcl_data.store import publish
from toothmcl_data.synth.config import SynthConfig
from toothmcl_data.synth.drop import write_drop
from toothmcl_data.synth.record import synth_records

ROLE_STREAMS = {"pretrain": 101, "labelled": 102, "test": 103}
"""The middle entry of each role's seed list (any distinct constants)."""
PREFIXES = {"pretrain": "P", "labelled": "L", "test": "T"}


def cohort_seeds(seed: int, role: str, n: int) -> list[list[int]]:
    """Seed lists of the ``n`` patients of ``role``."""
    if role not in ROLE_STREAMS:
        raise ConfigError(f"unknown cohort role {role!r}; choose from {sorted(ROLE_STREAMS)}")
    if seed < 0 or n < 0:
        raise ConfigError(f"seed and cohort size must be ≥ 0, got seed {seed}, n {n}")
    return [[seed, ROLE_STREAMS[role], i] for i in range(n)]


def cohort_names(role: str, n: int) -> list[str]:
    """Pseudonyms of the ``n`` patients of ``role`` (``L000``, ``T001`` …)."""
    return [f"{PREFIXES[role]}{i:03d}" for i in range(n)]


def publish_cohort_records(
    store: Path, synth: SynthConfig, seed: int, sizes: dict[str, int], message: str = "synthetic cohorts"
) -> dict[str, list[str]]:
    """Publish the cohorts ``{role: n}`` (in ``ROLE_STREAMS`` order) to ``store`` as ground-truth records; returns
    the pseudonyms per role."""
    names: dict[str, list[str]] = {}
    seeds: list[Sequence[int]] = []
    for role in ROLE_STREAMS:
        if sizes.get(role, 0):
            names[role] = cohort_names(role, sizes[role])
            seeds += cohort_seeds(seed, role, sizes[role])
    unknown = sorted(set(sizes) - set(ROLE_STREAMS))
    if unknown:
        raise ConfigError(f"unknown cohort role(s) {unknown}; choose from {sorted(ROLE_STREAMS)}")
    flat = [n for role in names for n in names[role]]
    publish(store, synth_records(synth, seeds, flat), message=message)
    return names


def publish_cohorts(store: Path, synth: SynthConfig, seed: int, labelled: int, test: int) -> dict[str, list[str]]:
    """The labelled pool and the test patients in one store (ground-truth label maps and registrations)."""
    return publish_cohort_records(store, synth, seed, {"labelled": labelled, "test": test}, "labelled + test")


def write_cohort_drop(out: Path, synth: SynthConfig, seed: int, n: int) -> Path:
    """The pretraining cohort's ``n`` patients as a raw clinical drop under ``out/drop`` (``synth.drop.write_drop``
    with the cohort's seed stream, no faults); returns the drop folder for ``toothmcl-data build``."""
    write_drop(out, patients=n, seed=_drop_seed(seed), config=synth)
    return out / "drop"


def _drop_seed(seed: int) -> int:
    """``write_drop`` draws patient ``i`` from ``default_rng([s, i])``: a drop seed that no other cohort uses (the
    other cohorts draw from three-entry seed lists, so they cannot coincide with these two-entry ones)."""
    return seed * 1000 + ROLE_STREAMS["pretrain"]


@dataclass(frozen=True)
class CohortStores:
    """The stores of a pretraining experiment; ``pretrain`` shares no patient with ``downstream``."""

    pretrain: Path
    downstream: Path
    labelled: list[str]
    test: list[str]


def curate(drop: Path, store: Path, work: Path, tag: str) -> Path:
    """Run the curation flow (``toothmcl-data build``, beside this Python) on ``drop`` into ``store`` with a fresh
    pseudonymisation key and a private Prefect home under ``work``; raises :class:`ConfigError` with its stderr."""
    work.mkdir(parents=True, exist_ok=True)
    key = work / "key.txt"
    write_private(key, os.urandom(32).hex().encode())  # the build refuses a key file others can read
    env = {
        **os.environ,
        "PREFECT_HOME": str(work / "prefect"),
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    }
    cli = Path(sys.executable).parent / "toothmcl-data"
    args = [str(cli), "build", str(drop), "--store", str(store), "--key-file", str(key), "--tag", tag]
    done = subprocess.run([*args, "--no-figures", "--json"], env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ConfigError(f"curation failed ({' '.join(args)}); its stderr ends:\n{done.stderr[-2000:]}")
    return store


def build_cohort_stores(
    out: Path,
    seed: int,
    *,
    spacing_mm: float,
    ios_resolution_mm: float,
    pretrain: int,
    labelled: int,
    test: int,
    curated: bool = True,
) -> CohortStores:
    """``out/pretrain-store`` (the pretraining cohort: curated from a raw drop, or ground-truth records) and
    ``out/downstream-store`` (the labelled pool and the test patients, ground-truth label maps); every patient
    drawn with ``spacing_mm`` CBCT voxels and ``ios_resolution_mm`` scan sampling."""
    synth = SynthConfig(spacing_mm=spacing_mm, ios_resolution_mm=ios_resolution_mm)
    store = out / "pretrain-store"
    if curated:
        drop = write_cohort_drop(out / "pretrain-drop", synth, seed, pretrain)
        curate(drop, store, out / "pretrain-curation", "pretrain")
    else:
        publish_cohort_records(store, synth, seed, {"pretrain": pretrain}, "pretraining")
    names = publish_cohorts(out / "downstream-store", synth, seed, labelled, test)
    return CohortStores(store, out / "downstream-store", names["labelled"], names["test"])
