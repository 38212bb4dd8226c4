"""Prefect for flow tests: a temporary PREFECT_HOME, no telemetry, one test harness for the session."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# Set before any test module imports Prefect (its settings are read on import); a loaded CI machine starts the
# ephemeral API slowly, so give it time.
os.environ.update(
    {
        "PREFECT_HOME": tempfile.mkdtemp(prefix="prefect-home-"),
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    }
)


@pytest.fixture(scope="session", autouse=True)
def prefect_harness() -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):  # a loaded CI machine starts it slowly
        yield


@pytest.fixture(scope="session")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("key") / "key.txt"
    path.write_text("a-test-key-that-is-long-enough-for-hmac-0123456789\n")
    path.chmod(0o600)  # read_key refuses a key file others can read
    return path
