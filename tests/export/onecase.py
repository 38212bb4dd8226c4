"""A one-case published store (coarse synthetic patient, ground-truth registrations) for the seg and slicer tests
(imported as fixtures by those test modules; not a conftest, so other export tests stay independent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.store.conftest import PROVENANCE, make_record
from toothmcl_data.store import CaseRecord, publish


@pytest.fixture(scope="session")
def record() -> CaseRecord:
    return make_record(0, "TM000000000001", variant=1)


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory, record: CaseRecord) -> Path:
    path = tmp_path_factory.mktemp("export") / "store"
    publish(path, [record], message="one case", provenance=PROVENANCE, tag="v1")
    return path
