"""Tiny public-format folders built from one coarse synthetic patient.

ToothFairy2 (nnU-Net): ``dataset.json`` + ``imagesTr/<case>_0000.mha`` + ``labelsTr/<case>.mha`` with ToothFairy2
ids (teeth = FDI, plus anatomy: the jaw bones as 1/2 where the CBCT is bone). Teeth3DS: ``<id>/<id>_<jaw>.obj`` +
``<id>/<id>_<jaw>.json`` and the official split files.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

from toothmcl_data.adapters.toothfairy2 import write_mha
from toothmcl_data.io.meshwrite import write_obj
from toothmcl_data.io.teeth3ds import write_teeth3ds_json
from toothmcl_data.synth.config import SynthConfig
from toothmcl_data.synth.patient import SyntheticPatient, make_patient
from toothmcl_data.types import Volume

COARSE = SynthConfig(spacing_mm=1.2, ios_resolution_mm=1.0, third_molar_probability=0.0)
TF2_LABELS = {
    "Background": 0, "Lower Jawbone": 1, "Upper Jawbone": 2, "Left Inferior Alveolar Canal": 3,
    "Upper Right Central Incisor": 11, "Upper Left Central Incisor": 21,
    "Lower Left Central Incisor": 31, "Lower Right Central Incisor": 41,
}  # fmt: skip
TF2_CASES = ("ToothFairy2F_001", "ToothFairy2P_002")
T3DS_IDS = ("01A6GW4A", "0EAKT1CU", "YNKZHRPO")


@lru_cache(maxsize=1)
def patient() -> SyntheticPatient:
    return make_patient(COARSE, np.random.default_rng(7), index=0)


def toothfairy2_labels(p: SyntheticPatient) -> np.ndarray:
    """ToothFairy2 ids: FDI teeth, bone (900–1600, not a tooth) as upper (2) / lower (1) jawbone by height."""
    teeth = p.cbct_labels.array.astype(np.uint8)
    bone = (p.cbct.array > 900) & (p.cbct.array < 1600) & (teeth == 0)
    k = np.arange(teeth.shape[2])[None, None, :]
    out = teeth.copy()
    out[bone & (k >= teeth.shape[2] // 2)] = 2
    out[bone & (k < teeth.shape[2] // 2)] = 1
    return out


def make_toothfairy2(root: Path) -> Path:
    p = patient()
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    for case in TF2_CASES:
        write_mha(root / "imagesTr" / f"{case}_0000.mha", p.cbct)
        write_mha(root / "labelsTr" / f"{case}.mha", Volume(toothfairy2_labels(p), p.cbct.affine))
    meta = {
        "channel_names": {"0": "CBCT"},
        "labels": TF2_LABELS,
        "numTraining": len(TF2_CASES),
        "file_ending": ".mha",
        "name": "ToothFairy2",
    }
    (root / "dataset.json").write_text(json.dumps(meta, indent=4))
    return root


def make_teeth3ds(root: Path) -> Path:
    p = patient()
    for i, pid in enumerate(T3DS_IDS):
        folder = root / pid
        folder.mkdir(parents=True)
        for jaw, mesh in p.ios.items():
            if i == 2 and jaw == "lower":
                continue  # one patient with the upper jaw only
            write_obj(folder / f"{pid}_{jaw}.obj", mesh.vertices, mesh.faces)
            assert mesh.labels is not None
            assert mesh.instances is not None
            write_teeth3ds_json(
                folder / f"{pid}_{jaw}.json", id_patient=pid, jaw=jaw, labels=mesh.labels, instances=mesh.instances
            )
    split = root / "Teeth3DS_train_test_split"
    split.mkdir()
    (split / "training_upper.txt").write_text(f"{T3DS_IDS[0]}_upper\n{T3DS_IDS[2]}_upper\n")
    (split / "training_lower.txt").write_text(f"{T3DS_IDS[0]}_lower\n")
    (split / "testing_upper.txt").write_text(f"{T3DS_IDS[1]}_upper\n")
    (split / "testing_lower.txt").write_text(f"{T3DS_IDS[1]}_lower\n")
    return root


@pytest.fixture
def toothfairy2_folder(tmp_path: Path) -> Path:
    return make_toothfairy2(tmp_path / "Dataset112_ToothFairy2")


@pytest.fixture
def teeth3ds_folder(tmp_path: Path) -> Path:
    return make_teeth3ds(tmp_path / "teeth3ds")
