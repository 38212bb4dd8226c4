"""The flow's Dask LocalCluster: its workers, forked from a forkserver that imported the libraries, report to the
flow's Prefect API (configured or ephemeral) with the flow's module imported before their first task, and follow
the ephemeral server when its port was taken."""

from __future__ import annotations

from typing import Any

import pytest
from prefect.settings import PREFECT_API_URL, temporary_settings

from flows.cluster import LIBRARIES, local_cluster


def test_local_dask_workers_report_to_the_flow_api_with_the_flow_imported(prefect_harness: None) -> None:
    """Worker processes report to this process's API (the harness's here; in ephemeral mode the one server,
    started while the workers start) instead of each starting a server of its own, and have the flow's modules
    imported before their first task."""
    from distributed import Client

    def _worker_view() -> tuple[str | None, bool]:  # sent by value: running it imports nothing in the worker
        import os
        import sys

        return os.environ.get("PREFECT_API_URL"), "flows.curate" in sys.modules

    configured = PREFECT_API_URL.value()
    assert configured
    with local_cluster(1, preload="flows.curate") as (address, url), Client(address) as client:
        assert url == configured
        assert list(client.run(_worker_view).values()) == [(configured, True)]
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        assert not PREFECT_API_URL.value()
        with local_cluster(1, preload="flows.curate") as (address, url), Client(address) as client:
            assert url == PREFECT_API_URL.value()
            assert url.startswith("http://127.0.0.1:")
            assert list(client.run(_worker_view).values()) == [(url, True)]
        assert not PREFECT_API_URL.value()


def test_workers_are_forked_from_a_server_that_imported_the_libraries_but_not_prefect(prefect_harness: None) -> None:
    """Worker processes come from a forkserver that imported :data:`LIBRARIES` once (instead of each importing
    them); those never import Prefect, which would read its settings there, before a worker has its API URL."""
    import subprocess
    import sys

    from distributed import Client

    def _parent() -> str:
        import os

        import psutil

        return " ".join(psutil.Process(os.getppid()).cmdline())

    with local_cluster(2, preload="flows.curate") as (address, _), Client(address) as client:
        parents = set(client.run(_parent).values())
    assert len(parents) == 1
    parent = parents.pop()
    assert "forkserver" in parent
    assert all(repr(m) in parent for m in LIBRARIES)  # its preload list
    code = f"import sys, {', '.join(LIBRARIES)}; print(sorted(m for m in sys.modules if m.startswith('prefect')))"
    imported = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert imported.stdout.strip() == "[]"


def test_a_local_cluster_follows_the_api_server_when_its_port_was_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    """The ephemeral server's port is picked before the workers start, so they get its URL at once; when another
    process takes that port before the server binds it, the server starts on another one and the workers are
    started again with the URL it has (else every task would report to nothing)."""
    import distributed
    from prefect.server.api import server as api_server

    made: list[str] = []
    closed: list[str] = []

    class Cluster:  # records the URL its workers were given
        def __init__(self, *, env: dict[str, str], **_: Any) -> None:
            self.url, self.scheduler_address = env["PREFECT_API_URL"], f"tcp://cluster-{len(made)}"
            made.append(self.url)

        def __enter__(self) -> Cluster:
            return self

        def __exit__(self, *_: object) -> None:
            closed.append(self.url)

    class MovingServer:  # its picked port is taken when it starts
        port: int | None = None

        def find_available_port(self) -> int:
            return 4200

        @property
        def api_url(self) -> str:
            return f"http://127.0.0.1:{self.port}/api"

        def start(self) -> None:
            self.port = 4201

    monkeypatch.setattr(distributed, "LocalCluster", Cluster)
    monkeypatch.setattr(api_server, "SubprocessASGIServer", MovingServer)
    with temporary_settings(restore_defaults={PREFECT_API_URL}), local_cluster(2, "flows.curate") as (address, url):
        assert url == PREFECT_API_URL.value() == "http://127.0.0.1:4201/api"
        assert address == "tcp://cluster-1"
        assert closed == ["http://127.0.0.1:4200/api"]  # the first cluster's workers are gone
    assert made == ["http://127.0.0.1:4200/api", "http://127.0.0.1:4201/api"]
    assert closed == made
