"""Benchmark the versioned store, all figures measured in one run.

1. publish throughput (MB/s of raw array bytes) vs plain ``zarr`` writes of the same arrays with the same
   chunks, shards and codecs into a local directory — goal ≤ 1.3× the plain time;
2. random 96³ CBCT crop latency (median / p95 ms), store vs plain zarr;
3. tooth-pair read rate (random whole pairs: crop + label crop + points + transform + FDI, pairs/s);
4. peak RSS of a process publishing N and 10·N patients whose raw data is 10× a memory budget — goal: flat.

Run: ``.venv/bin/python bench/store.py [--cases 6] [--spacing 0.5] [--budget-mb 300]``. Threads pinned to one.
Cases are one synthetic patient (drawn once) with per-case noise, so every case is distinct content.
"""

from __future__ import annotations

import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLOSC_NTHREADS"):
    os.environ[var] = "1"

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import zarr
from numcodecs import blosc

from toothmcl_data.geometry import vertex_normals
from toothmcl_data.store import CaseRecord, open_version, publish
from toothmcl_data.store import layout as lay
from toothmcl_data.synth.config import SynthConfig
from toothmcl_data.synth.patient import make_patient
from toothmcl_data.types import Case, Mesh, Registration, ToothPair, Volume

blosc.set_nthreads(1)
CROP, N_POINTS = 64, 1024


def make_records(n: int, spacing: float, seed: int = 0) -> Iterator[CaseRecord]:
    """``n`` distinct cases from one drawn patient (noise added per case); one case in memory at a time."""
    config = SynthConfig(spacing_mm=spacing, ios_resolution_mm=0.4, third_molar_probability=0.0)
    p = make_patient(config, np.random.default_rng(seed))
    labels = p.cbct_labels.array
    fdis = sorted(set(np.unique(labels).tolist()) - {0})
    for i in range(n):
        rng = np.random.default_rng(1000 + i)
        cbct = (p.cbct.array + rng.integers(-8, 8, size=p.cbct.shape, dtype=np.int16)).astype(np.int16)
        name = f"B{i:05d}"
        ios = {
            j: Mesh(m.vertices, m.faces, frame=f"ios:{name}:{j}", labels=m.labels, instances=m.instances, jaw=j)
            for j, m in p.ios.items()
        }
        case = Case(name, Volume(cbct, p.cbct.affine), p.cbct_labels, ios, {"cbct": f"{i:064d}"})
        regs = {j: Registration(j, p.world_from_ios[j], 0.1, 0.2, 0.95, {}, "pass") for j in p.ios}
        pairs = []
        for fdi in fdis:
            c = np.clip(
                np.argwhere(labels == fdi).mean(axis=0).astype(int) - CROP // 2, 0, np.asarray(labels.shape) - CROP
            )
            sl = tuple(slice(int(a), int(a) + CROP) for a in c)
            pts = rng.normal(size=(N_POINTS, 6)).astype(np.float32)
            pairs.append(ToothPair(name, fdi, cbct[sl], labels[sl].astype(np.int16), np.eye(4), pts))
        yield CaseRecord(case, regs, pairs, [{"fdi": f} for f in fdis])


def raw_bytes(rec: CaseRecord) -> int:
    c = rec.case
    n = c.cbct.array.nbytes + c.cbct_labels.array.nbytes  # type: ignore[union-attr]
    n += sum(m.vertices.nbytes + m.faces.nbytes + 2 * m.labels.nbytes for m in c.ios.values())  # type: ignore[union-attr]
    return n + sum(p.cbct_crop.nbytes * 2 + p.ios_points.nbytes + 130 for p in rec.pairs)


def plain_zarr(out: Path, recs: list[CaseRecord], normals: list[dict]) -> float:
    """Write the same arrays with plain zarr (same layout helpers), return seconds."""
    cfg = lay.LayoutConfig()
    store = zarr.storage.LocalStore(out)
    t0 = time.perf_counter()
    slot = 0
    for rec, nrm in zip(recs, normals, strict=True):
        c, base = rec.case, f"cases/{rec.pseudonym}"
        for name, vol in (("cbct", c.cbct), ("cbct_labels", c.cbct_labels)):
            lay.create_volume(store, f"{base}/{name}", vol.array, cfg, {"affine": vol.affine.tolist()})  # type: ignore[union-attr]
        for jaw, m in c.ios.items():
            for name, arr in (
                ("vertices", m.vertices),
                ("faces", m.faces),
                ("normals", nrm[jaw]),
                ("labels", m.labels),
                ("instances", m.instances),
            ):
                lay.create_rows(store, f"{base}/ios/{jaw}/{name}", np.asarray(arr), cfg)
        if slot == 0:
            lay.create_pair_arrays(store, (CROP, CROP, CROP), N_POINTS, cfg, n_slots=len(recs) * 32)
        n = len(rec.pairs)
        for name, data in (
            ("cbct_crop", np.stack([p.cbct_crop for p in rec.pairs])),
            ("label_crop", np.stack([p.label_crop for p in rec.pairs])),
            ("ios_points", np.stack([p.ios_points for p in rec.pairs])),
            ("world_from_crop", np.stack([p.world_from_crop for p in rec.pairs])),
            ("fdi", np.asarray([p.fdi for p in rec.pairs], dtype=np.int16)),
        ):
            zarr.open_array(store, path=f"pairs/{name}", mode="r+")[slot : slot + n] = data
        slot += -(-n // cfg.pairs_per_shard) * cfg.pairs_per_shard
    return time.perf_counter() - t0


def crop_latency(arr: zarr.Array, rng: np.random.Generator, n: int = 40) -> tuple[float, float]:
    times = []
    for _ in range(n):
        c = [int(rng.integers(0, max(1, s - 96))) for s in arr.shape]
        t0 = time.perf_counter()
        np.asarray(arr[c[0] : c[0] + 96, c[1] : c[1] + 96, c[2] : c[2] + 96])
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1e3), float(np.percentile(times, 95) * 1e3)


def rss_child(store: str, n: int, spacing: float) -> None:
    """(child) publish n cases streamed, print peak RSS MB."""
    publish(store, make_records(n, spacing), message=f"{n}")
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=6, help="cases for throughput / read figures")
    parser.add_argument("--spacing", type=float, default=0.5, help="CBCT voxel size of the synthetic patient (mm)")
    parser.add_argument("--budget-mb", type=float, default=300.0, help="memory budget for the RSS figure")
    parser.add_argument("--rss-child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        rss_child(args.rss_child[0], int(args.rss_child[1]), args.spacing)
        return
    tmp = Path(tempfile.mkdtemp(prefix="bench-store-"))
    recs = list(make_records(args.cases, args.spacing))
    per_case = raw_bytes(recs[0])
    total = sum(raw_bytes(r) for r in recs)
    normals = [{j: vertex_normals(m.vertices, m.faces).astype(np.float32) for j, m in r.case.ios.items()} for r in recs]
    print(
        f"cases: {args.cases}, raw {per_case / 1e6:.1f} MB per case (CBCT {recs[0].case.cbct.shape}, "  # type: ignore[union-attr]
        f"{len(recs[0].pairs)} pairs of {CROP}³ + {N_POINTS} points)"
    )
    publish(tmp / "warm-up", recs[:1], message="warm-up")  # one-time imports (pyarrow → pandas) off the clock
    plain_zarr(tmp / "warm-up.zarr", recs[:1], normals[:1])
    t_plain = plain_zarr(tmp / "plain.zarr", recs, normals)
    t0 = time.perf_counter()
    info = publish(tmp / "store", recs, message="bench")
    t_store = time.perf_counter() - t0
    print(
        f"publish: store {t_store:.2f} s ({total / 1e6 / t_store:.0f} MB/s raw), plain zarr {t_plain:.2f} s "
        f"({total / 1e6 / t_plain:.0f} MB/s) -> ratio {t_store / t_plain:.2f}x (goal <= 1.3x); "
        f"{info.stats['bytes_written'] / 1e6:.0f} MB chunks written"
    )
    rng = np.random.default_rng(0)
    reader = open_version(tmp / "store")
    arr = reader.cbct_array(recs[0].pseudonym)
    med, p95 = crop_latency(arr, rng)  # type: ignore[arg-type]
    pmed, pp95 = crop_latency(zarr.open_array(tmp / "plain.zarr", path=f"cases/{recs[0].pseudonym}/cbct"), rng)
    print(
        f"random 96³ crop: store median {med:.1f} ms p95 {p95:.1f} ms; plain zarr median {pmed:.1f} ms "
        f"p95 {pp95:.1f} ms"
    )
    pairs = reader.pairs()
    slots = rng.choice(pairs.slots, size=min(200, len(pairs)), replace=False)
    t0 = time.perf_counter()
    for s in slots:
        pairs.read(int(s))  # crop, label crop, points; transform / FDI / case from the index read once
    rate = len(slots) / (time.perf_counter() - t0)
    plain = {
        n: zarr.open_array(tmp / "plain.zarr", path=f"pairs/{n}") for n in ("cbct_crop", "label_crop", "ios_points")
    }
    t0 = time.perf_counter()
    for s in slots:
        for a in plain.values():
            np.asarray(a[int(s)])
    plain_rate = len(slots) / (time.perf_counter() - t0)
    print(
        f"tooth-pair reads: {rate:.0f} pairs/s ({rate * (2 * CROP**3 * 2 + N_POINTS * 24) / 1e6:.0f} MB/s), "
        f"plain zarr {plain_rate:.0f} pairs/s; one process, random order"
    )
    del recs, normals
    n_small = max(1, int(args.budget_mb * 1e6 // per_case))
    n_big = 10 * n_small
    peaks = {}
    for n in (n_small, n_big):
        out = subprocess.run(
            [sys.executable, __file__, "--spacing", str(args.spacing), "--rss-child", str(tmp / f"rss{n}"), str(n)],
            check=True,
            capture_output=True,
            text=True,
        )
        peaks[n] = float(out.stdout.split()[-1])
    print(
        f"peak RSS publishing {n_small} cases ({n_small * per_case / 1e6:.0f} MB raw, budget "
        f"{args.budget_mb:.0f} MB): {peaks[n_small]:.0f} MB; {n_big} cases ({n_big * per_case / 1e6:.0f} MB raw, "
        f"10x): {peaks[n_big]:.0f} MB -> ratio {peaks[n_big] / peaks[n_small]:.2f} (goal: flat, ~1.0)"
    )
    subprocess.run(["rm", "-rf", str(tmp)], check=False)


if __name__ == "__main__":
    main()
