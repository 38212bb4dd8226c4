"""release_memory: collects unreachable cycles and freezes what survives the first call. keep_freed_memory: a big
CPU tensor freed and allocated again no longer page-faults in every time. heap_for_mid_size_arrays: the same for
mid-size arrays in a process started as Dask starts its workers (``MALLOC_TRIM_THRESHOLD_`` set)."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import weakref

import pytest

from toothmcl_data.heap import heap_for_mid_size_arrays, keep_freed_memory, release_memory


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def test_a_cycle_is_collected_and_survivors_are_frozen() -> None:
    a, b = _Node(), _Node()
    a.other, b.other = b, a  # a cycle: reference counting alone never frees it
    gone = weakref.ref(a)
    del a, b
    release_memory()
    assert gone() is None
    assert gc.get_freeze_count() > 0  # the first call froze the survivors (imported modules …)
    release_memory()  # idempotent
    assert gc.get_freeze_count() > 0


MEASURE = """
import resource

def faults(rounds, step):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(rounds):
        step()
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

def measure(step, setting, rounds):  # prints page faults before and after the setting, and whether it took
    faults(4, step)
    before = faults(rounds, step)
    took = setting()
    faults(4, step)
    print(before, faults(rounds, step), took)
"""

PROBE = (
    MEASURE
    + """
import torch
from toothmcl_data.heap import keep_freed_memory

torch.set_num_threads(1)
logits = torch.randn(2, 33, 64, 64, 32)  # a CPU preset step's logits: 35 MB, above glibc's 32 MiB dynamic limit
# two 35 MB temporaries allocated and freed, as every step does
measure(lambda: torch.softmax(logits * 2, dim=1).sum(), keep_freed_memory, 12)
"""
)


def _faults(probe: str, env: dict[str, str] | None = None) -> tuple[int, int]:
    """Page faults a probe script printed before and after its heap setting (skips where mallopt refused it)."""
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env)
    before, after, took = done.stdout.split()
    if took != "True":
        pytest.skip("this libc refused the thresholds (mallopt returned 0): nothing to measure")
    return int(before), int(after)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt is Linux-only")
def test_freed_tensor_memory_is_reused_without_new_page_faults() -> None:
    default, tuned = _faults(PROBE)
    # default: ~17,000 fresh pages per round (each temporary mmapped anew); tuned: mostly reused heap memory (measured
    # 0 in most rounds, 8,448 in a few while the heap's free chunks settle)
    assert default > 150_000, default
    assert tuned < default / 3, (default, tuned)


def test_is_idempotent() -> None:
    assert keep_freed_memory() == keep_freed_memory()


MID_SIZE_PROBE = (
    MEASURE
    + """
import numpy as np
from toothmcl_data.heap import heap_for_mid_size_arrays

def step():
    a = np.ones((64, 64, 256), dtype=np.int16)  # 2 MiB: a tooth crop's size class
    b = a * 2
    del a, b

measure(step, heap_for_mid_size_arrays, 50)
"""
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt is Linux-only")
def test_mid_size_arrays_come_from_the_heap_in_a_process_started_as_dask_starts_its_workers() -> None:
    env = os.environ | {"MALLOC_TRIM_THRESHOLD_": "65536"}  # distributed.nanny.pre-spawn-environ
    fixed, served = _faults(MID_SIZE_PROBE, env)
    # fixed 128 KiB mmap threshold: two 2 MiB arrays mmapped and faulted in anew per round (~1,000 pages);
    # from the heap: the same pages again
    assert fixed > 50 * 500, fixed
    assert served < fixed / 10, (fixed, served)
    assert heap_for_mid_size_arrays() == heap_for_mid_size_arrays()  # idempotent
