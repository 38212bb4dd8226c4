"""Disjoint cohorts of synthetic patients for training experiments (the pretraining ablation, benchmarks).

A cohort is a role (``pretrain``, ``labelled``, ``test``) and a number of patients; patient ``i`` of role ``r``
is drawn from ``np.random.default_rng([seed, ROLE_STREAMS[r], i])``, so the cohorts never share a patient, each
is independent of the others' sizes, and a labelled pool of 8 starts with the pool of 4 (k-subsets nest).

- :func:`publish_cohorts`: the labelled and test cohorts as one store of ground-truth records
  (:func:`toothmcl_data.synth.record.synth_record`: the generator's CBCT label map and registrations), pseudonyms
  ``L000…`` and ``T000…``;
- :func:`write_cohort_drop`: a cohort as a raw clinical drop (DICOM/NIfTI + STL/PLY/OBJ, planted PHI) for the
  curation flow (``toothmcl-data build``), the path users' data takes;
- :func:`publish_cohort_records`: the same cohort as ground-truth records instead (no curation).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

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
