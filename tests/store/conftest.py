"""Case records for store tests, built from coarse synthetic patients without the registration/pairing stages.

Registrations are the ground-truth transforms; tooth pairs are crops cut from the CBCT and label map at each
tooth's true centroid, with crown points taken from the IOS jaw mapped into world space.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from functools import lru_cache

import numpy as np
import pytest
import trimesh
from scipy import ndimage

from toothmcl_data.store import CaseRecord, Provenance
from toothmcl_data.synth.config import SynthConfig
from toothmcl_data.synth.patient import SyntheticPatient, make_patient
from toothmcl_data.types import Case, Mesh, Registration, ToothPair, Volume, apply_transform

CROP = 12
N_POINTS = 32
COARSE = SynthConfig(spacing_mm=1.2, ios_resolution_mm=1.0, third_molar_probability=0.0)


@lru_cache(maxsize=4)
def base_patient(index: int) -> SyntheticPatient:
    return make_patient(COARSE, np.random.default_rng(100 + index), index=index)


def _crop(arr: np.ndarray, corner: np.ndarray, size: int) -> np.ndarray:
    out = np.zeros((size, size, size), dtype=np.int16)
    src = [slice(max(c, 0), min(c + size, n)) for c, n in zip(corner, arr.shape, strict=True)]
    dst = [slice(s.start - c, s.stop - c) for s, c in zip(src, corner, strict=True)]
    out[tuple(dst)] = arr[tuple(src)]
    return out


@lru_cache(maxsize=4)
def _teeth(index: int) -> tuple[list[tuple[int, np.ndarray]], list[dict]]:
    """(fdi, corner index) of each tooth present in both modalities, and tooth-table rows."""
    p = base_patient(index)
    labels = p.cbct_labels.array
    fdis = sorted(set(np.unique(labels).tolist()) - {0})
    centroids = ndimage.center_of_mass(np.ones_like(labels), labels, fdis)
    in_ios = set()
    for mesh in p.ios.values():
        in_ios |= set(np.unique(mesh.labels).tolist())
    out, rows = [], []
    for fdi, c in zip(fdis, centroids, strict=True):
        centre_mm = apply_transform(p.cbct.affine, np.asarray([c]))[0]
        rows.append({"fdi": int(fdi), "centroid_mm": [round(float(x), 6) for x in centre_mm], "in_ios": fdi in in_ios})
        if fdi in in_ios:
            out.append((int(fdi), np.round(np.asarray(c)).astype(int) - CROP // 2))
    return out, rows


def make_record(index: int, pseudonym: str, variant: int = 0) -> CaseRecord:
    """A record for ``pseudonym`` from base patient ``index % 3``; ``variant`` perturbs the CBCT (new content)."""
    p = base_patient(index % 3)
    cbct = p.cbct.array.copy()
    if variant:
        cbct.flat[(variant * 7919) % cbct.size] += np.int16(variant)
    case_ios: dict = {}
    normals_world: dict = {}
    for jaw, mesh in p.ios.items():
        case_ios[jaw] = Mesh(
            mesh.vertices,
            mesh.faces,
            frame=f"ios:{pseudonym}:{jaw}",
            labels=mesh.labels,
            instances=mesh.instances,
            jaw=jaw,
        )
        n = trimesh.Trimesh(mesh.vertices, mesh.faces, process=False).vertex_normals
        normals_world[jaw] = n @ p.world_from_ios[jaw][:3, :3].T
    sources = {"cbct": hashlib.sha256(cbct.tobytes()).hexdigest()}
    case = Case(pseudonym, Volume(cbct, p.cbct.affine), p.cbct_labels, case_ios, sources)
    regs = {jaw: Registration(jaw, p.world_from_ios[jaw], 0.05, 0.1, 0.99, {11: 0.04}, "pass") for jaw in p.ios}
    teeth, rows = _teeth(index % 3)
    pairs = []
    for fdi, corner in teeth:
        jaw = "upper" if fdi // 10 in (1, 2) else "lower"
        mesh = p.ios[jaw]
        idx = np.flatnonzero(mesh.labels == fdi)[:N_POINTS]
        idx = np.resize(idx, N_POINTS)
        xyz = apply_transform(p.world_from_ios[jaw], mesh.vertices[idx])
        points = np.concatenate([xyz, normals_world[jaw][idx]], axis=1).astype(np.float32)
        world_from_crop = p.cbct.affine.copy()
        world_from_crop[:3, 3] = apply_transform(p.cbct.affine, corner[None].astype(float))[0]
        pairs.append(
            ToothPair(
                pseudonym,
                fdi,
                _crop(cbct, corner, CROP),
                _crop(p.cbct_labels.array, corner, CROP),
                world_from_crop,
                points,
            )
        )
    return CaseRecord(case, regs, pairs, rows, {"site": "A" if index % 2 else "B"})


def records(n: int, start: int = 0, variant: int = 0) -> Iterator[CaseRecord]:
    """``n`` records with pseudonyms P0000…, each a distinct case (its index is the CBCT variant)."""
    for i in range(start, start + n):
        yield make_record(i, f"P{i:04d}", variant=variant * 1000 + i + 1)


PROVENANCE = Provenance(
    code_version="test",
    config={"synth": COARSE.to_dict()},
    input_hashes={"drop": "0" * 64},
    key_fingerprint="fp-test",
    source="synthetic",
    licence="CC0-1.0",
)


@pytest.fixture
def store(tmp_path):
    return tmp_path / "store"
