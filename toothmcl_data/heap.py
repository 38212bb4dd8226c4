"""The process's C heap (glibc malloc), one place for both directions:

- :func:`release_memory`: give a finished curation case's memory back (garbage collection + heap trimming), so a
  long-lived worker's RSS stays flat over cases;
- :func:`keep_freed_memory`: keep freed memory in the process instead (training), so large tensors freed and
  allocated again every step are not page-faulted in anew each time;
- :func:`heap_for_mid_size_arrays`: glibc's own ceiling for a curation case, also where the environment (a Dask
  worker's ``MALLOC_TRIM_THRESHOLD_``) switched its dynamic thresholds off.

All three talk to glibc through ctypes and do nothing where it is absent (macOS, musl)."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from typing import Any


def release_memory(*, collect: bool = True) -> None:
    """Collect garbage and hand freed heap pages back to the system (glibc ``malloc_trim``; a no-op elsewhere).
    ``collect=False``: only the trim, where what was just dropped holds no large object in a reference cycle.

    Without it a long-lived worker's RSS creeps up by a few MB per case (freed arrays stay in the C heap), so
    the peak grows with the number of cases; with it the RSS returns to its baseline after each case.

    The first call also freezes what survives its collection (``gc.freeze``: the imported libraries, hundreds of
    thousands of objects, that every full collection would otherwise walk again — 0.16 s CPU each with Prefect,
    pandas and matplotlib loaded); later collections walk only objects made since. Frozen objects are still
    freed by reference counting; only a cycle among them would stay."""
    global _FROZEN
    if collect:
        gc.collect()
        if not _FROZEN:
            gc.freeze()
            _FROZEN = True
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3


def keep_freed_memory(threshold_bytes: int = 1 << 30) -> bool:
    """Raise glibc's mmap and trim thresholds to ``threshold_bytes`` (≤ 2 GiB − 1) for this process.

    glibc serves blocks above its mmap threshold (at most 32 MiB by its own dynamic rule) with a fresh ``mmap``,
    unmaps them on free, and trims the heap top above its trim threshold. A CPU training step allocates and frees
    the same large tensors every time (a 2 × 33-class logit/softmax/gradient of a 64×64×32 crop is ~35 MB each), so
    every step page-faulted them in again: measured on the CBCT CPU preset, 2 cores, 40 steps
    (``bench/finetune.py --modality cbct --train 2 --test 1 --cbct-steps 40``): 12.6 M minor page faults, 25 s of
    system time, 0.97 train-min; with both thresholds at 1 GiB 0.4 M faults, 1.3 s system time, 0.74 train-min
    (−24 %), peak RSS 1.55 → 1.75 GB. Same as ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` set before
    start. Not used by curation, which trims on purpose (measured there: 85 → 82 s for ``bench/curate.py
    --patients 3``, too little to trade the flat RSS for).

    Returns whether the allocator took the setting; False (nothing changed) without glibc's ``mallopt``.
    Process-wide and idempotent; memory freed stays reusable by the process."""
    return _thresholds(threshold_bytes, threshold_bytes)


MMAP_CEILING = 32 << 20
"""glibc's largest dynamic mmap threshold on 64-bit systems (``DEFAULT_MMAP_THRESHOLD_MAX``, 32 MiB)."""


def heap_for_mid_size_arrays() -> bool:
    """Serve blocks up to 32 MiB from the heap and trim its top only above 64 MiB: the values glibc's dynamic
    thresholds reach by themselves once such blocks have been freed (``MMAP_CEILING`` and twice it).

    Any ``MALLOC_*_`` setting in the environment switches the dynamic thresholds off, and Dask's nanny starts every
    worker with ``MALLOC_TRIM_THRESHOLD_=65536`` (``distributed.nanny.pre-spawn-environ``): the mmap threshold then
    stays at 128 KiB, so every array above it (a tooth crop, a KD-tree query's result) is a fresh ``mmap``,
    page-faulted in and unmapped again. Measured on 2 clinical-field cases in one process (the stages of
    ``bench/curate.py``'s in-process pass): 8.1 s CPU without the variable, 13.2 s with it (pair 0.50 → 0.87 s,
    record 1.07 → 1.9 s per case), 8.4 s with it after this call; on Dask (``bench/curate.py --patients 20
    --dask-workers 2``, two runs of one session) 1 worker 94.1 → 76.1 s, 2 workers 59.9 → 50.0 s.
    :func:`~toothmcl_data.curate.curate_case` calls it, so a worker of any Dask cluster curates as fast as one
    process; each case still ends with :func:`release_memory`.

    Returns whether the allocator took the setting (False without glibc's ``mallopt``). Process-wide, idempotent;
    lowers what :func:`keep_freed_memory` set."""
    return _thresholds(MMAP_CEILING, 2 * MMAP_CEILING)


def _thresholds(mmap_bytes: int, trim_bytes: int) -> bool:
    if _LIBC is None or not hasattr(_LIBC, "mallopt"):
        return False
    _LIBC.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    took = _LIBC.mallopt(M_MMAP_THRESHOLD, mmap_bytes) and _LIBC.mallopt(M_TRIM_THRESHOLD, trim_bytes)
    return bool(took)


def _libc() -> Any:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "malloc_trim") else None
    except OSError:  # handled: no C library to tune or trim the heap with; the default allocator stays
        return None


_LIBC = _libc()
_FROZEN = False
