"""Coarse synthetic patients for registration tests (0.8 mm CBCT, 0.6 mm scans), built once per session."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from toothmcl_data.register.surface import ToothSurface, cbct_surface
from toothmcl_data.synth.conditions import CONDITION_NAMES
from toothmcl_data.synth.config import SynthConfig
from toothmcl_data.synth.patient import SyntheticPatient, make_patient
from toothmcl_data.synth.shapes import crown_field, to_local
from toothmcl_data.types import Jaw, Mesh, apply_transform

COARSE = SynthConfig(
    spacing_mm=0.8,
    ios_resolution_mm=0.6,
    third_molar_probability=0.0,
    missing_tooth_probability=0.0,
    implant_probability=0.0,
    metal_crown_probability=0.0,
    ios_hole_probability=0.0,
)


def centroid_errors_mm(
    patient: SyntheticPatient, jaw: Jaw, world_from_ios: np.ndarray, teeth: Sequence[int] | None = None
) -> np.ndarray:
    """Per IOS tooth (of ``teeth``, FDI; default: every tooth of the scan), the distance (mm) between its crown
    centroid mapped by ``world_from_ios`` and by the truth."""
    mesh = patient.ios[jaw]
    assert mesh.labels is not None
    out = []
    for f in np.unique(mesh.labels[mesh.labels > 0]) if teeth is None else teeth:
        c = mesh.vertices[mesh.labels == f].mean(axis=0)[None]
        truth = apply_transform(patient.world_from_ios[jaw], c)
        out.append(float(np.linalg.norm(apply_transform(world_from_ios, c) - truth)))
    return np.array(out)


def distance_to_crowns(patient: SyntheticPatient, points: np.ndarray) -> np.ndarray:
    """Per point (n, 3) LPS mm, its distance (mm) to the nearest true crown surface of ``patient``."""
    d = np.full(len(points), np.inf)
    for spec in patient.anatomy.teeth:
        d = np.minimum(d, np.abs(crown_field(to_local(points, spec), spec)))
    return d


def bench_patient(config: SynthConfig, seed: int, condition: str, index: int) -> SyntheticPatient:
    """Patient ``index`` of ``bench/register.py --seed SEED``'s draws of ``condition`` (``A+B``: both) with
    ``config`` (the bench seeds each condition apart, as ``seed_offset`` there, and draws its patients in order)."""
    parts = tuple(condition.split("+"))
    offset = sum(1000 * (1 + CONDITION_NAMES.index(c)) * 1001**k for k, c in enumerate(parts))
    rng = np.random.default_rng(seed + offset)
    for i in range(index):
        make_patient(config, rng, i, conditions=parts)
    return make_patient(config, rng, index, conditions=parts)


def unlabelled(mesh: Mesh) -> Mesh:
    """The same scan without labels or instances."""
    return Mesh(mesh.vertices, mesh.faces, frame=mesh.frame, jaw=mesh.jaw)


@pytest.fixture(scope="session")
def coarse_patient() -> SyntheticPatient:
    """28 teeth, no restorations, random scanner poses (seed 11)."""
    return make_patient(COARSE, np.random.default_rng(11), index=0)


@pytest.fixture(scope="session")
def labelled_surface(coarse_patient: SyntheticPatient) -> ToothSurface:
    return cbct_surface(coarse_patient.cbct, coarse_patient.cbct_labels)


@pytest.fixture(scope="session")
def intensity_surface(coarse_patient: SyntheticPatient) -> ToothSurface:
    return cbct_surface(coarse_patient.cbct, None)
