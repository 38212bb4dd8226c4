"""One small published version that exercises every export path, built once per test session.

Cases (split by SplitConfig(fractions=(0.4, 0.3, 0.3)) — keyed, so fixed): P0001 train (its CBCT on an oblique
grid: rotated 30° about z, k axis reversed), P0002 train without a CBCT label map, P0000 val, P0004 val (tooth
11 relabelled as deciduous 51), P0003 test (no tooth-table row for 36), IOS0001 val with intraoral scans only.
Registration residuals differ per case (upper rms = 0.1 mm × (n + 1) for P000n, lower half that), and the
quarantine table holds three rows with two reasons.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tests.store.conftest import PROVENANCE, base_patient, records
from toothmcl_data.store import CaseRecord, SplitConfig, publish
from toothmcl_data.types import Case, Mesh, Registration, Volume

SPLITS = SplitConfig(fractions=(0.4, 0.3, 0.3))
EXPECTED_SPLITS = {"P0000": "val", "P0001": "train", "P0002": "train", "P0003": "test", "P0004": "val"}
EXPECTED_SPLITS["IOS0001"] = "val"
QUARANTINE = [
    {"case": "Q1", "role": "cbct", "reason": "truncated DICOM"},
    {"case": "Q2", "role": "cbct", "reason": "truncated DICOM"},
    {"case": "Q3", "role": "ios:upper", "reason": "empty mesh"},
]


def oblique(affine: np.ndarray) -> np.ndarray:
    """``affine`` (4, 4) LPS with its axes rotated 30° about z and the k axis reversed (det < 0)."""
    c, s = np.cos(np.pi / 6), np.sin(np.pi / 6)
    rotation = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, -1.0]])
    out = affine.copy()
    out[:3, :3] = rotation @ affine[:3, :3]
    return out


def _variant(record: CaseRecord, index: int) -> CaseRecord:
    case = record.case
    assert case.cbct is not None
    assert case.cbct_labels is not None
    regs = {
        jaw: Registration(
            jaw, reg.world_from_ios, 0.1 * (index + 1) / (1 if jaw == "upper" else 2), 0.2, 0.99, {}, "pass"
        )
        for jaw, reg in record.registrations.items()
    }
    if index == 1:
        affine = oblique(case.cbct.affine)
        case = replace(case, cbct=Volume(case.cbct.array, affine), cbct_labels=Volume(case.cbct_labels.array, affine))
    elif index == 2:
        case = replace(case, cbct_labels=None)
    elif index == 3:
        record = replace(record, teeth=[t for t in record.teeth if t["fdi"] != 36])
    elif index == 4:
        labels = np.asarray(case.cbct_labels.array).copy()
        labels[labels == 11] = 51
        case = replace(case, cbct_labels=Volume(labels, case.cbct_labels.affine))
    return replace(record, case=case, registrations=regs)


def ios_only_record() -> CaseRecord:
    p = base_patient(1)
    ios = {
        jaw: Mesh(m.vertices, m.faces, frame=f"ios:IOS0001:{jaw}", labels=m.labels, instances=m.instances, jaw=jaw)
        for jaw, m in p.ios.items()
    }
    return CaseRecord(Case("IOS0001", None, None, ios, {"ios:upper": "0" * 64}), attributes={"site": "C"})


def build_export_store(store: Path) -> Path:
    """Publish the version described in this module's docstring at ``store`` (tag ``v1``)."""
    recs = [_variant(r, i) for i, r in enumerate(records(5))] + [ios_only_record()]
    publish(
        store, recs, message="export fixture", provenance=PROVENANCE, splits=SPLITS, tag="v1", quarantine=QUARANTINE
    )
    return store


@pytest.fixture(scope="session")
def export_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The store (tag ``v1``) described in this module's docstring."""
    return build_export_store(tmp_path_factory.mktemp("export") / "store")
