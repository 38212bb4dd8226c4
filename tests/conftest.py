"""Shared fixtures: tiny seeded synthetic patients and the path of the real fixtures in ../shared."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import trimesh

from toothmcl_data.synth.config import SynthConfig
from toothmcl_data.synth.patient import SyntheticPatient, make_patient
from toothmcl_data.types import apply_transform

SHARED_FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"
FDI = 16
ToothSample = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]
"""(image (64,64,64) float32 /2500, labels (64,64,64) int64 FDI, IOS points (N,6) world mm, point labels (N,),
world_from_crop (4,4)) for tooth 16 of the ``patient`` fixture."""


@pytest.fixture(scope="session")
def patient() -> SyntheticPatient:
    """One patient at the default 0.4 mm CBCT spacing, every tooth present (seed 7)."""
    config = SynthConfig(
        third_molar_probability=1.0,
        missing_tooth_probability=0.0,
        implant_probability=0.0,
        metal_crown_probability=0.0,
    )
    return make_patient(config, np.random.default_rng(7), index=0)


@pytest.fixture(scope="session")
def restored_patient() -> SyntheticPatient:
    """A coarse patient with missing teeth, an implant, a metal crown and crowding (seed 3)."""
    config = SynthConfig(
        spacing_mm=0.6,
        ios_resolution_mm=0.5,
        missing_tooth_probability=1.0,
        implant_probability=1.0,
        metal_crown_probability=1.0,
        crowding_probability=1.0,
    )
    return make_patient(config, np.random.default_rng(3), index=1)


@pytest.fixture(scope="session")
def tooth_sample(patient: SyntheticPatient) -> ToothSample:
    """A 64³ crop (0.4 mm, the CBCT grid) around tooth 16 and its IOS crown points in world mm."""
    labels = patient.cbct_labels.array
    centre = np.round(np.argwhere(labels == FDI).mean(axis=0)).astype(int)
    lo = centre - 32
    box = tuple(slice(a, a + 64) for a in lo)
    world_from_crop = patient.cbct.affine.copy()
    world_from_crop[:3, 3] = patient.cbct.world_from_index(lo[None].astype(float))[0]
    image = patient.cbct.array[box].astype(np.float32) / 2500.0
    mesh = patient.ios["upper"]
    world = apply_transform(patient.world_from_ios["upper"], mesh.vertices)
    normals = trimesh.Trimesh(world, mesh.faces, process=False).vertex_normals
    keep = mesh.labels == FDI
    points = np.concatenate([world[keep], normals[keep]], axis=1).astype(np.float32)
    return image, labels[box].astype(np.int64), points, mesh.labels[keep].astype(np.int64), world_from_crop
