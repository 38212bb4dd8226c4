"""Benchmark: DICOM de-identification throughput per core, and its cost relative to plain pydicom read + write.

Goal (issue 3): ≥ 500 files/s/core and ≤ 1.2× the time of a plain ``dcmread`` + ``save_as`` of the same files.

Run: ``taskset -c 0 .venv/bin/python bench/deid.py [--slices 120] [--repeats 5]``. The process pins itself to one
CPU; files live in memory (no disk noise). Each repeat times both variants back to back on the same files; the
best repeat of each is reported, with the ratio, all measured in this run. "de-identify" is
``deidentify_dicom_bytes``, the function ``run.py`` writes every slice with (byte level for these files);
for reference, the pydicom path it falls back to (``deidentify_with_pydicom``) is timed in the same repeats.
"""

from __future__ import annotations

import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"

import argparse
import io
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom

from toothmcl_data.deid.dicom import DeidContext
from toothmcl_data.deid.files import deidentify_dicom_bytes, deidentify_with_pydicom
from toothmcl_data.deid.pseudonym import day_shift, pseudonym
from toothmcl_data.synth.dicom import write_series
from toothmcl_data.synth.identity import draw_identity
from toothmcl_data.types import Volume

GOAL_FILES_PER_S = 500.0
GOAL_RATIO = 1.2


def _files(slices: int, size: int) -> list[bytes]:
    rng = np.random.default_rng(0)
    array = rng.integers(0, 3000, size=(size, size, slices)).astype(np.int16)
    volume = Volume(array, np.diag([0.4, 0.4, 0.4, 1.0]))
    with tempfile.TemporaryDirectory() as tmp:
        written = write_series(Path(tmp), volume, draw_identity(rng, "P0000"), rng)
        return [Path(p).read_bytes() for p in written.paths]


def _plain(files: list[bytes]) -> float:
    start = time.perf_counter()
    for data in files:
        ds = pydicom.dcmread(io.BytesIO(data))
        out = io.BytesIO()
        ds.save_as(out, enforce_file_format=True)
    return time.perf_counter() - start


def _deid(files: list[bytes], ctx: DeidContext, deidentify: Callable[..., object] = deidentify_dicom_bytes) -> float:
    start = time.perf_counter()
    for data in files:
        deidentify(data, ctx)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--slices", type=int, default=200, help="files (slices) per repeat")
    parser.add_argument("--size", type=int, default=256, help="rows = columns of each slice")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    files = _files(args.slices, args.size)
    key = b"bench-key-0123456789abcdef"
    ctx = DeidContext(key=key, pseudonym=pseudonym(key, "P"), day_shift=day_shift(key, "P"))
    _deid(files[:5], ctx)  # warm caches (table load, imports)
    _plain(files[:5])
    plain, deid, fallback = [], [], []
    for _ in range(args.repeats):
        plain.append(_plain(files))
        deid.append(_deid(files, ctx))
        fallback.append(_deid(files, ctx, deidentify_with_pydicom))
    n = len(files)
    best_plain, best_deid = min(plain), min(deid)
    rate = n / best_deid
    ratio = best_deid / best_plain
    kib = sum(map(len, files)) / n / 1024
    print(f"files: {n} CT slices of {args.size}x{args.size} int16 ({kib:.0f} KiB each), 1 core")
    print(f"plain pydicom read+write : {n / best_plain:8.0f} files/s  ({best_plain * 1e3 / n:.3f} ms/file)")
    print(f"de-identify read+deid+write: {rate:8.0f} files/s/core  ({best_deid * 1e3 / n:.3f} ms/file)")
    print(
        f"(pydicom fallback path)    : {n / min(fallback):8.0f} files/s/core  ({min(fallback) * 1e3 / n:.3f} ms/file)"
    )
    print(f"throughput vs goal {GOAL_FILES_PER_S:.0f} files/s/core: {rate / GOAL_FILES_PER_S:.2f}x")
    print(f"time ratio deid / plain: {ratio:.3f} (goal <= {GOAL_RATIO})")


if __name__ == "__main__":
    main()
