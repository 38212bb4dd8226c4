"""The stages of curating one case and their clock: wall and thread-CPU seconds per stage."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

STAGES = ("ingest", "deid", "register", "pair", "figures", "record")
"""Per-case stages timed by :func:`toothmcl_data.curate.curate_case` (seconds): ``ingest`` reads and decodes the
raw inputs (and the de-identified meshes back), ``deid`` de-identifies and writes them, ``register`` extracts the
CBCT surface and registers each jaw, ``pair`` pairs the teeth, ``figures`` draws the registration pictures,
``record`` saves the case record for publishing."""


class StageClock:
    """Wall seconds per stage, and CPU seconds of the calling thread (``time.thread_time``: unlike the wall, not
    inflated by other processes on a shared machine, nor by the other task threads of the same flow).

    ``seconds`` and ``cpu_seconds`` map every name of :data:`STAGES` to its total (0.0 until timed)."""

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(STAGES, 0.0)
        self.cpu_seconds = dict.fromkeys(STAGES, 0.0)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Add the time spent in the ``with`` block to stage ``name`` (also when the block raises)."""
        t0, c0 = time.perf_counter(), time.thread_time()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - t0
            self.cpu_seconds[name] += time.thread_time() - c0

    def add(self, seconds: dict[str, float], cpu: float) -> None:
        """Add wall ``seconds`` measured elsewhere per stage, and ``cpu`` thread-CPU seconds spent over all of
        them, split between the stages as their wall seconds split (all to the first when no wall was measured)."""
        wall = sum(seconds.values())
        for i, (name, value) in enumerate(seconds.items()):
            self.seconds[name] += value
            self.cpu_seconds[name] += cpu * (value / wall if wall > 0 else float(i == 0))
