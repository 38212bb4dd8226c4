"""Store records straight from synthetic patients' ground truth (the curation flow bypassed), for benchmarks and
experiments that need many labelled, registered patients fast (``bench/finetune.py``, ``bench/gpu.py``, the
pretraining ablation's downstream store).

Curated stores (``toothmcl-data synth`` + ``toothmcl-data build``) are the path users take; these records carry
the same tables but take the registrations and the CBCT label map from the generator instead of estimating them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from toothmcl_data.errors import ConfigError
from toothmcl_data.geometry import vertex_normals
from toothmcl_data.store.records import CaseRecord
from toothmcl_data.synth.config import SynthConfig
from toothmcl_data.synth.patient import SyntheticPatient, make_patient
from toothmcl_data.types import JAWS, Case, Mesh, Registration, ToothPair, apply_transform

PAIR_CROP = 12
"""Edge (voxels) of the small CBCT crop stored per tooth pair."""
PAIR_POINTS = 32
"""Crown points (xyz + normal) stored per tooth pair."""


def synth_record(patient: SyntheticPatient, pseudonym: str) -> CaseRecord:
    """A store record of a synthetic patient: CBCT + label map, both jaws in their scanner frames, registrations
    = the exact ground-truth transforms, and one tooth pair per tooth seen in both modalities (a small crop at the
    tooth's centroid and crown points in the CBCT world; what the pretraining stream uses to place its crops)."""
    cbct, labels = patient.cbct, patient.cbct_labels
    ios: dict[Any, Mesh] = {}
    regs = {}
    pairs = []
    lab = labels.array
    centroid_index = {int(fdi): np.argwhere(lab == fdi).mean(0) for fdi in sorted(set(np.unique(lab).tolist()) - {0})}
    for jaw in JAWS:
        mesh = patient.ios[jaw]
        ios[jaw] = Mesh(mesh.vertices, mesh.faces, f"ios:{pseudonym}:{jaw}", mesh.labels, mesh.instances, jaw=jaw)
        T = patient.world_from_ios[jaw]
        regs[jaw] = Registration(jaw, T, 0.0, 0.0, 1.0, {}, "pass")
        normals = vertex_normals(mesh.vertices, mesh.faces) @ T[:3, :3].T
        world = apply_transform(T, mesh.vertices)
        for fdi in sorted(set(np.unique(mesh.labels).tolist()) - {0}) if mesh.labels is not None else []:
            if fdi not in centroid_index:
                continue
            corner = np.round(centroid_index[fdi]).astype(int) - PAIR_CROP // 2
            idx = np.resize(np.flatnonzero(mesh.labels == fdi), PAIR_POINTS)
            world_from_crop = cbct.affine.copy()
            world_from_crop[:3, 3] = apply_transform(cbct.affine, corner[None].astype(float))[0]
            box = tuple(slice(max(c, 0), max(c, 0) + PAIR_CROP) for c in corner)
            crop = np.zeros((PAIR_CROP,) * 3, dtype=np.int16)
            lcrop = np.zeros_like(crop)
            part = cbct.array[box]
            crop[tuple(slice(0, s) for s in part.shape)] = part
            lcrop[tuple(slice(0, s) for s in part.shape)] = lab[box]
            points = np.concatenate([world[idx], normals[idx]], 1).astype(np.float32)
            pairs.append(ToothPair(pseudonym, int(fdi), crop, lcrop, world_from_crop, points))
    case = Case(pseudonym, cbct, labels, ios, {"cbct": f"synth-{patient.index}"})
    return CaseRecord(case, regs, pairs, attributes={"source": "synthetic"})


def synth_records(
    synth: SynthConfig, seeds: Sequence[Sequence[int] | int], names: Sequence[str]
) -> Iterator[CaseRecord]:
    """One record per name, patient ``i`` drawn from ``np.random.default_rng(seeds[i])`` (lazily, for publish)."""
    if len(seeds) != len(names):
        raise ConfigError(f"synth_records: {len(seeds)} seeds for {len(names)} names; give one seed per patient")
    for i, (seed, name) in enumerate(zip(seeds, names, strict=True)):
        yield synth_record(make_patient(synth, np.random.default_rng(seed), index=i), name)
