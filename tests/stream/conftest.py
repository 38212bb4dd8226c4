"""A two-patient store (coarse synthetic records of ``tests.store.conftest``, 1.2 mm CBCT) published once."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.store.conftest import records
from toothmcl_data.store import publish


def field(sample: Any, name: str) -> Any:
    """One entry of a stream sample, whether samples are mappings or typed objects."""
    return sample[name] if isinstance(sample, Mapping) else getattr(sample, name)


@pytest.fixture(scope="session")
def stream_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("stream") / "store"
    publish(path, records(2), message="two coarse synthetic patients")
    return path
