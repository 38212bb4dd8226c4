"""A coarse registered patient for pairing tests (0.8 mm CBCT, 0.6 mm scans), built once per session."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from tests.register.conftest import COARSE
from toothmcl_data.pair.config import PairConfig
from toothmcl_data.register import register_jaw
from toothmcl_data.register.surface import ToothSurface, cbct_surface
from toothmcl_data.synth.patient import SyntheticPatient, make_patient
from toothmcl_data.types import Case, Jaw, Mesh, Registration

SMALL = PairConfig(crop_mm=(14.4, 14.4, 24.0), spacing_mm=0.6, points=128)


@dataclass(frozen=True)
class Registered:
    patient: SyntheticPatient
    surface: ToothSurface
    registrations: dict[Jaw, Registration]

    def case(self, lower: Mesh | None = None) -> Case:
        meshes: dict[Jaw, Mesh] = dict(self.patient.ios)
        if lower is not None:
            meshes["lower"] = lower
        return Case("P001", self.patient.cbct, self.patient.cbct_labels, meshes)


@pytest.fixture(scope="session")
def registered() -> Registered:
    p = make_patient(COARSE, np.random.default_rng(11), index=0)
    surface = cbct_surface(p.cbct, p.cbct_labels)
    regs: dict[Jaw, Registration] = {
        jaw: register_jaw(p.cbct, mesh, cbct_labels=p.cbct_labels, surface=surface) for jaw, mesh in p.ios.items()
    }
    return Registered(p, surface, regs)
