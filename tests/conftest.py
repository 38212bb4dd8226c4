"""Shared fixtures: tiny seeded synthetic patients and the path of the real fixtures in ../shared."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from toothmcl_data.synth.config import SynthConfig
from toothmcl_data.synth.patient import SyntheticPatient, make_patient

SHARED_FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"


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
