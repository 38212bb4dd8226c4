"""Fixtures for the model tests: a collated two-patient batch drawn from coarse synthetic patients."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import trimesh

from toothmcl_data.synth.config import SynthConfig
from toothmcl_data.synth.patient import SyntheticPatient, make_patient
from toothmcl_data.types import JAWS, apply_transform

# One intra-op thread: the tests run on small tensors on shared cores, where torch's thread pool oversubscribes
# (measured: a 40-step toy optimisation took 19 s with the default pool under load, 1.8 s with one thread).
torch.set_num_threads(1)

CROP = (96, 64, 32)
POINTS = 1024
SPACING_MM = 0.8


def sample_from_patient(patient: SyntheticPatient, rng: np.random.Generator, shift_mm: float = 0.0) -> dict[str, Any]:
    """A case-level stream sample (batch of one): a crop around the teeth's centroid, IOS points in the CBCT world
    (``shift_mm`` along x fakes a wrong registration)."""
    labels = patient.cbct_labels.array
    shape = np.array(CROP)
    centre = np.argwhere(labels > 0).mean(0).round().astype(int)
    lo = np.clip(centre - shape // 2, 0, np.array(labels.shape) - shape)
    crop = tuple(slice(a, a + s) for a, s in zip(lo, CROP, strict=True))
    offset = np.eye(4)
    offset[:3, 3] = lo
    ios, ios_labels = {}, {}
    for jaw in JAWS:
        mesh = patient.ios[jaw]
        world = apply_transform(patient.world_from_ios[jaw], mesh.vertices) + np.array([shift_mm, 0.0, 0.0])
        normals = trimesh.Trimesh(world, mesh.faces, process=False).vertex_normals
        pick = rng.choice(len(world), POINTS, replace=False)
        ios[jaw] = torch.from_numpy(np.concatenate([world[pick], normals[pick]], 1)).float()[None]
        assert mesh.labels is not None
        ios_labels[jaw] = torch.from_numpy(mesh.labels[pick].astype(np.int64))[None]
    return {
        "cbct": torch.from_numpy(patient.cbct.array[crop].astype(np.float32))[None, None],
        "cbct_labels": torch.from_numpy(labels[crop].astype(np.int64))[None],
        "world_from_crop": torch.from_numpy(patient.cbct.affine @ offset)[None],
        "ios": ios,
        "ios_labels": ios_labels,
        "case": [f"synth-{patient.index}"],
    }


def collate(samples: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("cbct", "cbct_labels", "world_from_crop"):
        out[key] = torch.cat([s[key] for s in samples])
    for key in ("ios", "ios_labels"):
        out[key] = {jaw: torch.cat([s[key][jaw] for s in samples]) for jaw in JAWS}
    out["case"] = [c for s in samples for c in s["case"]]
    return out


@pytest.fixture(scope="session")
def synth_patients() -> list[SyntheticPatient]:
    config = SynthConfig(spacing_mm=SPACING_MM, ios_resolution_mm=0.6)
    return [make_patient(config, np.random.default_rng(i), index=i) for i in range(2)]


@pytest.fixture(scope="session")
def synth_batch(synth_patients: list[SyntheticPatient]) -> dict[str, Any]:
    """Two patients, crops 96×64×32 at 0.8 mm, 1024 points per jaw."""
    rng = np.random.default_rng(0)
    return collate([sample_from_patient(p, rng) for p in synth_patients])


@pytest.fixture(scope="session")
def synth_tokens(synth_batch: dict[str, Any]) -> Any:
    """The tiny model's tokens (eval mode, seed 0) for ``synth_batch``."""
    from toothmcl_models.config import tiny
    from toothmcl_models.model import build

    model, _ = build(tiny(), seed=0)
    with torch.no_grad():
        return model.eval()(synth_batch)


def csv_rows(path: Path) -> list[dict[str, str]]:
    """The rows of a run's CSV (metrics.csv, seen-rank<r>.csv) as strings."""
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def published(factory: pytest.TempPathFactory, name: str, n: int) -> Path:
    """A store with ``n`` coarse synthetic patients (``tests.store.conftest.records``) published once."""
    from tests.store.conftest import records
    from toothmcl_data.store import publish

    path = factory.mktemp(name) / "store"
    publish(path, records(n), message=f"{n} coarse synthetic patients")
    return path
