"""Acceptance on 30 synthetic patients at 0.4 mm (random poses, 20 µm scan noise): slow, run with ``-m slow``."""

from __future__ import annotations

import numpy as np
import pytest

from tests.register.conftest import centroid_errors_mm
from toothmcl_data.fdi import mirror_labels
from toothmcl_data.pair import PairConfig, pair_case
from toothmcl_data.pair.transfer import labels_from_cbct
from toothmcl_data.register import cbct_surface, register_jaw
from toothmcl_data.register.sample import vertex_normals
from toothmcl_data.synth.config import SynthConfig
from toothmcl_data.synth.patient import make_patient
from toothmcl_data.types import Case, Mesh, apply_transform

PLANT = PairConfig(crop_mm=(8.0, 8.0, 8.0), spacing_mm=1.0, points=32)


@pytest.mark.slow
def test_thirty_patients_register_pair_and_flag() -> None:
    rng = np.random.default_rng(2026)
    config = SynthConfig(ios_noise_mm=0.02)
    errors, transfer, intensity_errors = [], [], []
    for i in range(30):
        p = make_patient(config, rng, index=i)
        surface = cbct_surface(p.cbct, p.cbct_labels)
        regs = {jaw: register_jaw(p.cbct, m, cbct_labels=p.cbct_labels, surface=surface) for jaw, m in p.ios.items()}
        for jaw, reg in regs.items():
            err = centroid_errors_mm(p, jaw, reg.world_from_ios)
            errors.append(err)
            assert err.max() < 0.5, (i, jaw, err.max())  # success
            assert reg.verdict != "pass" or err.max() < 0.5  # a failure is never a pass
            mesh = p.ios[jaw]
            T = reg.world_from_ios
            v, n = apply_transform(T, mesh.vertices), vertex_normals(mesh) @ T[:3, :3].T
            got = labels_from_cbct(p.cbct, p.cbct_labels, v, n, surface.level, PairConfig().surface_gate_mm)
            truth = np.asarray(mesh.labels)
            transfer.append(float(np.mean(got[truth > 0] == truth[truth > 0])))
        lower = p.ios["lower"]
        mirrored = Mesh(lower.vertices, lower.faces, labels=mirror_labels(np.asarray(lower.labels)), jaw="lower")
        res = pair_case(Case(f"P{i}", p.cbct, p.cbct_labels, {"lower": mirrored}), {"lower": regs["lower"]}, PLANT)
        assert "lower:mirror" in res.flags
        assert not res.pairs
        if i < 5:  # the intensity path (no label map) on its own
            bare = cbct_surface(p.cbct, None)
            for jaw, m in p.ios.items():
                reg = register_jaw(p.cbct, m, surface=bare)
                intensity_errors.append(centroid_errors_mm(p, jaw, reg.world_from_ios))
    e = np.concatenate(errors)
    assert np.median(e) <= 0.050
    assert np.percentile(e, 95) <= 0.150
    assert min(transfer) >= 0.98
    ie = np.concatenate(intensity_errors)
    assert ie.max() < 0.5
    assert np.median(ie) <= 0.050
