"""A Dask LocalCluster for a Prefect flow on this machine, its workers reporting to the flow's API."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager

from prefect.settings import PREFECT_API_URL, temporary_settings


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
        with cluster(url) as running:
            yield running.scheduler_address, url
        return
    server = SubprocessASGIServer()  # the process's ephemeral server (a singleton; Prefect stops it at exit)
    if server.port is None:
        server.port = server.find_available_port()
    url = server.api_url
    with ExitStack() as stack:
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
