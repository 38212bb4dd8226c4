"""A Dask LocalCluster for a Prefect flow on this machine, its workers reporting to the flow's API."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager

from prefect.settings import PREFECT_API_URL, temporary_settings

LIBRARIES = ("distributed", "toothmcl_data.curate")
"""Modules the worker processes are forked with already imported (see :func:`forked_workers`): Dask's worker and
the library's curation stages (pydicom, zarr, scipy, pandas, trimesh, matplotlib: ~1.8 s of a worker's 2.7 s of
imports). Never Prefect, which reads its settings when imported, before a worker has its own environment."""


@contextmanager
def forked_workers() -> Iterator[None]:
    """While open, Dask's nannies start worker processes from a forkserver that imported :data:`LIBRARIES` once
    (Dask's ``distributed.worker.multiprocessing-method``; default ``spawn``, where every worker imports them
    itself). Measured with 2 workers and ``preload="flows.curate"``: the same 2.6 s to start, 3.4 instead of
    4.9 s of CPU, 116 instead of 200 MB unshared memory each. The forkserver is started by the first worker and
    lives as long as this process; where it was started before with other modules, or the platform has none
    (Windows), workers import what they need themselves, as with ``spawn``."""
    import dask
    from distributed.utils import get_mp_context

    if "forkserver" not in multiprocessing.get_all_start_methods():
        yield
        return
    with dask.config.set({"distributed.worker.multiprocessing-method": "forkserver"}):
        get_mp_context().set_forkserver_preload(list(LIBRARIES))  # after Dask's own choice, which it makes once
        yield


@contextmanager
def local_cluster(workers: int, preload: str) -> Iterator[tuple[str, str]]:
    """A LocalCluster of ``workers`` single-threaded worker processes for a flow whose tasks live in the module
    ``preload``: yields its scheduler's address and the Prefect API URL its workers report to.

    Worker processes do not see this process's settings; without ``PREFECT_API_URL`` each would start an
    ephemeral API server of its own on its first task (about 10 s each before any case runs, and several servers
    on one SQLite database). A configured API (``prefect server start``, a profile, the test harness) is passed on
    as it is. In ephemeral mode the process's one server is started on a thread while the workers start and import
    ``preload`` (Dask's ``preload``): about 3 s each, side by side instead of one after the other."""
    from distributed import LocalCluster
    from prefect.server.api.server import SubprocessASGIServer

    def cluster(url: str) -> LocalCluster:
        env = {"PREFECT_API_URL": url}
        return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, env=env, preload=[preload])

    url = PREFECT_API_URL.value()
    if url:
        with forked_workers(), cluster(url) as running:
            yield running.scheduler_address, url
        return
    server = SubprocessASGIServer()  # the process's ephemeral server (a singleton; Prefect stops it at exit)
    if server.port is None:
        server.port = server.find_available_port()
    url = server.api_url
    with forked_workers(), ExitStack() as stack:
        with ThreadPoolExecutor(1, thread_name_prefix="prefect-server") as pool:
            booting = pool.submit(server.start)
            running = stack.enter_context(cluster(url))
            booting.result()
        if server.api_url != url:  # the port was taken meanwhile and the server moved: the workers follow it
            stack.close()
            url = server.api_url
            running = stack.enter_context(cluster(url))
        with temporary_settings({PREFECT_API_URL: url}):
            yield running.scheduler_address, url
