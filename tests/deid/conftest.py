"""Fixtures for the de-identification tests: one small faulty synthetic drop, de-identified once per session."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from toothmcl_data.deid.run import DeidSummary, deidentify_drop
from toothmcl_data.synth.config import SynthConfig
from toothmcl_data.synth.drop import DropSummary, write_drop

KEY = b"toothmcl-test-key-0123456789abcdef"
COARSE = SynthConfig(spacing_mm=0.8, ios_resolution_mm=0.6)


@dataclass(frozen=True)
class DeidRun:
    drop: DropSummary
    summary: DeidSummary
    out: Path
    audit: Path


def run_drop(root: Path, *, patients: int, seed: int, bad_fraction: float) -> DeidRun:
    drop = write_drop(root / "synth", patients=patients, seed=seed, bad_fraction=bad_fraction, config=COARSE)
    out = root / "deid"
    summary = deidentify_drop(drop.drop, out, key=KEY)
    return DeidRun(drop=drop, summary=summary, out=out, audit=summary.audit)


@pytest.fixture(scope="session")
def faulty_run(tmp_path_factory: pytest.TempPathFactory) -> DeidRun:
    """12 coarse patients, every one with a fault: each of the 12 fault kinds appears once (seed 5)."""
    return run_drop(tmp_path_factory.mktemp("deid-drop"), patients=12, seed=5, bad_fraction=1.0)
