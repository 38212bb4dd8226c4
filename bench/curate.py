"""Benchmark curation against the I/O bound, all figures measured in one run.

1. **Raw bound per case**: decode each case's CBCT from its raw files (pydicom ``dcmread`` + ``pixel_array`` per
   slice of a series, nibabel for a NIfTI) and write the same array with the store's chunks, shards and codecs
   into a plain local zarr — what reading and writing the bytes costs (``bound``); ``bound_all_arrays`` also
   writes every other array the store keeps for the case (label map, scan arrays, tooth-pair crops and points).
2. **Stages per case**, in-process through the functions the flow's tasks call
   (:func:`toothmcl_data.curate.curate_case`, then ``finish_drop`` and ``publish``): ingest (plan share +
   reading/decoding the inputs), de-id, register, pair, figures, record, publish. During this run
   ``pydicom.dcmread`` and ``Source.read_bytes`` are counted per series file: a file's pixels must be decoded once.
3. **Prefect overhead per case**: the flow on the same drop (one thread, fresh store) minus the in-process wall,
   per case; the ephemeral API's start-up is measured apart (a no-op flow first) and not counted per case.
   Beside every wall figure, CPU seconds (``cpu_s_per_case``: the stage's thread in-process, ``other_threads``
   what the process spent beyond them (zarr's encoding threads while a record is saved), the flow process
   plus its children for Prefect; the bound's own process time): on a shared machine the wall is inflated by
   other processes, the CPU much less — compare both.
4. ``--dask-workers K``: wall of the flow on a Dask LocalCluster of 1 and of K worker processes (speed-up; and
   ``speedup_if_busy``, had the K run kept min(K, cores) cores busy), the cores its process tree kept busy (CPU/wall);
   a cluster started and stopped first (``dask_startup_s``) leaves both runs the forkserver their workers come from.
5. ``--rss-patients A,B``: peak RSS (process + its children) of the flow in a fresh process for A and B patients.

Run: ``PYTHONPATH=. .venv/bin/python bench/curate.py --patients 3 --json [--dask-workers 2] [--rss-patients 2,4]
[--field-mm clinical]`` (a clinical field of view, e.g. 160 × 160 × 110 mm, instead of the grid fitted to the jaws).
Threads are pinned to one per process. Timings on a shared machine are noisy: compare ratios from one run.
"""

from __future__ import annotations

import os
import tempfile

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLOSC_NTHREADS"):
    os.environ[_var] = "1"
_PREFECT = {
    "PREFECT_HOME": tempfile.mkdtemp(prefix="bench-curate-prefect-"),
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_LOGGING_LEVEL": "WARNING",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
}
for _k, _v in _PREFECT.items():
    os.environ.setdefault(_k, _v)

import argparse
import json
import secrets
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pydicom
import zarr

from flows.cluster import local_cluster
from toothmcl_data.curate import STAGES, curate_case, load_records
from toothmcl_data.deid.case import load_case_result
from toothmcl_data.deid.run import finish_drop
from toothmcl_data.io.fs import Source
from toothmcl_data.io.group import RawCase
from toothmcl_data.io.plan import plan_files
from toothmcl_data.store import layout as lay
from toothmcl_data.store import publish
from toothmcl_data.synth.config import SynthConfig
from toothmcl_data.synth.drop import write_drop
from toothmcl_data.synth.head import parse_field


# ------------------------------------------------------------------------------------------------ the bound
def bound_case(raw: RawCase, out: Path) -> dict[str, float]:
    """Seconds to decode the case's CBCT from its raw files and to write the same array as plain zarr."""
    source = raw.source
    t0, c0 = time.perf_counter(), time.process_time()
    array: np.ndarray[Any, Any] | None = None
    for unit in raw.cbct[:1]:
        if unit.kind == "series":
            slices = [pydicom.dcmread(source.full(r.path)) for r in unit.files]
            slices.sort(key=lambda ds: float(ds.ImagePositionPatient[2]))
            array = np.stack([ds.pixel_array.T for ds in slices], axis=-1)
        else:
            array = np.asarray(nib.load(source.full(unit.files[0].path)).dataobj)  # type: ignore[attr-defined]
    decode, decode_cpu = time.perf_counter() - t0, time.process_time() - c0
    t0, c0 = time.perf_counter(), time.process_time()
    if array is not None:
        store = zarr.storage.LocalStore(str(out))
        lay.create_volume(store, "cbct", array, lay.LayoutConfig(), {})
    write, write_cpu = time.perf_counter() - t0, time.process_time() - c0
    mb, cpu = 0 if array is None else array.nbytes / 1e6, decode_cpu + write_cpu
    return {"decode": decode, "zarr_write": write, "bound": decode + write, "bound_cpu": cpu, "mb": mb}


def bound_arrays(records: list[str], out: Path) -> float:
    """Seconds per case to write every array the store keeps for a case (CBCT, label map, scan arrays, tooth-pair
    stacks) as plain zarr with the store's codecs, from the saved case records."""
    config = lay.LayoutConfig()
    total = 0.0
    for n, record in enumerate(load_records(records)):
        case = record.case
        arrays: dict[str, np.ndarray[Any, Any]] = {}
        for jaw, mesh in case.ios.items():
            arrays |= {f"{jaw}/vertices": mesh.vertices, f"{jaw}/faces": mesh.faces}
            if mesh.labels is not None:
                arrays[f"{jaw}/labels"] = mesh.labels
        if record.pairs:
            arrays["cbct_crop"] = np.stack([np.asarray(p.cbct_crop, dtype=np.int16) for p in record.pairs])
            arrays["label_crop"] = np.stack([np.asarray(p.label_crop, dtype=np.int16) for p in record.pairs])
            arrays["ios_points"] = np.stack([np.asarray(p.ios_points, dtype=np.float32) for p in record.pairs])
        # a saved record's volumes decode on first read: decoded here, before the clock starts
        named = (("cbct", case.cbct), ("labels", case.cbct_labels))
        volumes = {name: np.asarray(v.array) for name, v in named if v is not None}
        store = zarr.storage.LocalStore(str(out / f"{n}.zarr"))
        t0 = time.perf_counter()
        for name, volume in volumes.items():
            lay.create_volume(store, name, volume, config, {})
        for name, arr in arrays.items():
            lay.create_rows(store, name, np.asarray(arr), config)
        total += time.perf_counter() - t0
    return total / max(1, len(records))


# ---------------------------------------------------------------------------------------- counting reads
@contextmanager
def counted_reads() -> Iterator[dict[str, Counter[str]]]:
    """Count ``pydicom.dcmread`` (full reads: pixels decodable; header-only reads apart) and
    ``Source.read_bytes`` per file name while the block runs."""
    counts: dict[str, Counter[str]] = {"dcmread_full": Counter(), "dcmread_header": Counter(), "bytes": Counter()}
    real_dcmread, real_read_bytes = pydicom.dcmread, Source.read_bytes

    def dcmread(fp: Any, *args: Any, **kwargs: Any) -> Any:
        name = Path(str(fp)).name if isinstance(fp, str | os.PathLike) else f"<memory {id(fp)}>"
        ds = real_dcmread(fp, *args, **kwargs)
        if not isinstance(fp, str | os.PathLike):
            name = str(ds.get("SOPInstanceUID", name))
        kind = "dcmread_header" if kwargs.get("stop_before_pixels") else "dcmread_full"
        counts[kind][name] += 1
        return ds

    def read_bytes(self: Source, rel: str) -> bytes:
        counts["bytes"][rel] += 1
        return real_read_bytes(self, rel)

    pydicom.dcmread = dcmread
    Source.read_bytes = read_bytes  # type: ignore[method-assign]
    try:
        yield counts
    finally:
        pydicom.dcmread = real_dcmread
        Source.read_bytes = real_read_bytes  # type: ignore[method-assign]


# ---------------------------------------------------------------------------------- in-process pipeline
def in_process(drop: Path, base: Path, key: bytes) -> dict[str, Any]:
    """The flow's work without Prefect: stage seconds per case and read counts per series file."""
    work, audit, store = base / "store.work", base / "store.audit", base / "store"
    work.mkdir(parents=True)
    audit.mkdir(parents=True)
    t_all, c_all = time.perf_counter(), time.process_time()
    with counted_reads() as counts:
        t0, c0 = time.perf_counter(), time.process_time()
        plan = plan_files(str(drop))
        t_plan, c_plan = time.perf_counter() - t0, time.process_time() - c0
        summaries = [curate_case(raw, work, audit, key=key) for raw in plan.cases]
        t0, c0 = time.perf_counter(), time.process_time()
        finish_drop(plan, [load_case_result(work, audit, s["pseudonym"]) for s in summaries], work, audit)
        publish(store, load_records([s["record"] for s in summaries if s["record"]]), message="bench")
        t_publish, c_publish = time.perf_counter() - t0, time.process_time() - c0
    wall, cpu = time.perf_counter() - t_all, time.process_time() - c_all
    series_files = [r.path for c in plan.cases for u in c.cbct if u.kind == "series" for r in u.files]
    sops = {r.path: r.dicom.sop_uid for c in plan.cases for u in c.cbct for r in u.files if r.dicom is not None}
    full = [counts["dcmread_full"][sops[p]] for p in series_files]
    n = len(plan.cases)
    stages = {s: sum(x["seconds"][s] for x in summaries) / n for s in STAGES}
    stages["ingest"] += t_plan / n
    stages["publish"] = t_publish / n
    stages_cpu = {s: sum(x["cpu_seconds"][s] for x in summaries) / n for s in STAGES}
    stages_cpu["ingest"] += c_plan / n
    stages_cpu["publish"] = c_publish / n
    # The stage clock counts its own thread; zarr encodes a case's arrays (``record``) on threads of its own, and
    # their CPU shows only in the process's total: what the stages miss is counted apart, never dropped.
    stages_cpu["other_threads"] = max(0.0, cpu / n - sum(stages_cpu.values()))
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "stages_cpu": stages_cpu,
        "records": [s["record"] for s in summaries if s["record"]],
        "stages": stages,
        "plan_s_per_case": t_plan / n,
        "published": sum(1 for s in summaries if s["record"]),
        "quarantined": [s["reason"][:120] for s in summaries if s["written"] and not s["record"]],
        "verdicts": dict(Counter(v for s in summaries for v in s["verdicts"].values())),  # QC per registered jaw
        "reads_per_series_file": {
            "pixel_decodes": dict(Counter(full)),
            "header_parses": dict(Counter(counts["dcmread_header"][sops[p]] for p in series_files)),
            "byte_reads": dict(Counter(counts["bytes"][p] for p in series_files)),
        },
        "series_files": len(series_files),
        "full_dcmreads_per_series_file": sum(counts["dcmread_full"].values()) / max(1, len(series_files)),
    }


# --------------------------------------------------------------------------------------------- the flow
@contextmanager
def tree_cpu(every: float = 0.25) -> Iterator[dict[str, float]]:
    """``out["s"]``: CPU seconds of this process and all its descendants in the ``with`` body, those that ended in it
    too (Dask's workers; sampled every ``every`` s, so the last interval of one that ended may be missed)."""
    import psutil  # comes with distributed and prefect

    me, seen, stop, out = psutil.Process(), {}, threading.Event(), {}

    def sample() -> None:
        for proc in (me, *me.children(recursive=True)):
            with suppress(psutil.Error):  # handled: a process that ended meanwhile keeps its last sample
                t = proc.cpu_times()
                seen[proc.pid] = t.user + t.system

    sample()
    start = dict(seen)
    thread = threading.Thread(target=lambda: [sample() for _ in iter(lambda: stop.wait(every), True)], daemon=True)
    thread.start()
    yield out
    stop.set()
    thread.join()
    sample()
    out["s"] = sum(v - start.get(pid, 0.0) for pid, v in seen.items())


def run_flow(drop: Path, base: Path, key_file: Path, **kwargs: Any) -> tuple[float, dict[str, Any]]:
    """Wall seconds of the flow on ``drop`` and its result; ``result["cpu_s"]``: CPU seconds of this process and
    its descendants (the API server, Dask's scheduler and workers) during the run."""
    from flows.curate import CurateParams, run_curate

    params = CurateParams(raw=str(drop), store=str(base / "store"), key_file=str(key_file))
    with tree_cpu() as cpu:
        t0 = time.perf_counter()
        result = run_curate(params, **kwargs)
        wall = time.perf_counter() - t0
    return wall, result | {"cpu_s": cpu["s"]}


def prefect_startup() -> float:
    from prefect import flow

    @flow(name="bench-noop")
    def noop() -> int:
        return 0

    t0 = time.perf_counter()
    noop()
    return time.perf_counter() - t0


def subdrop(drop: Path, patients: list[str], out: Path) -> Path:
    """A drop holding only ``patients``' folders (hard links: no bytes copied)."""
    for folder in sorted(drop.iterdir()):
        for patient in sorted(folder.iterdir()):
            if any(p.casefold() in patient.name.casefold() for p in patients):
                shutil.copytree(patient, out / folder.name / patient.name, copy_function=os.link)
    return out


def peak_rss(drop: Path, base: Path, key_file: Path, dask_workers: int) -> dict[str, float]:
    """Peak RSS in MB of a fresh process running the flow on ``drop``: the flow process itself (``flow``) and
    the largest of its children (``children``: the ephemeral Prefect API server, Dask workers)."""
    code = (
        "import json, resource, sys\n"
        "from flows.curate import CurateParams, run_curate\n"
        "p = CurateParams(raw=sys.argv[1], store=sys.argv[2], key_file=sys.argv[3])\n"
        "run_curate(p, dask_workers=int(sys.argv[4]))\n"
        "r = [resource.getrusage(w).ru_maxrss for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]\n"
        "print(json.dumps(r))\n"
    )
    args = [sys.executable, "-c", code, str(drop), str(base / "store"), str(key_file), str(dask_workers)]
    done = subprocess.run(
        args, capture_output=True, text=True, check=True, env=os.environ | {"PYTHONPATH": os.getcwd()}
    )
    self_kb, children_kb = json.loads(done.stdout.strip().splitlines()[-1])
    return {"flow": round(self_kb / 1024, 1), "children": round(children_kb / 1024, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--spacing", type=float, default=0.4)
    ap.add_argument("--field-mm", help="synthetic CBCTs' field of view: 'clinical' (160,160,110) or X,Y,Z mm")
    ap.add_argument("--nifti-fraction", type=float, default=0.0, help="share of CBCTs as NIfTI (rest: DICOM)")
    ap.add_argument("--dask-workers", type=int, default=0, help="also time the flow on 1 and K Dask workers")
    ap.add_argument("--rss-patients", default="", help="A,B: peak RSS of the flow for A and B patients")
    ap.add_argument("--no-flow", action="store_true", help="skip the Prefect runs")
    ap.add_argument("--keep", type=Path, help="work here and keep it (default: a temporary folder)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    rss_sizes = [int(x) for x in a.rss_patients.split(",") if x]
    root = a.keep or Path(tempfile.mkdtemp(prefix="bench-curate-"))
    root.mkdir(parents=True, exist_ok=True)
    key_file = root / "key.txt"
    key_file.write_text(secrets.token_hex(32) + "\n")
    key_file.chmod(0o600)  # read_key refuses a key file others can read
    key = key_file.read_text().strip().encode()
    try:
        n_synth = max([a.patients, *rss_sizes])
        field = parse_field(a.field_mm) if a.field_mm else None
        config = SynthConfig(spacing_mm=a.spacing, nifti_fraction=a.nifti_fraction, field_mm=field)
        t0 = time.perf_counter()
        write_drop(root / "synth", patients=n_synth, seed=a.seed, config=config)
        synth_s = time.perf_counter() - t0
        full_drop = root / "synth" / "drop"
        patients = sorted({c.patient for c in plan_files(str(full_drop)).cases})
        drop = subdrop(full_drop, patients[: a.patients], root / "drop") if n_synth > a.patients else full_drop
        plan = plan_files(str(drop))
        bounds = [bound_case(c, root / "bound" / f"{i}.zarr") for i, c in enumerate(plan.cases)]
        n = len(plan.cases)
        bound = {k: sum(b[k] for b in bounds) / n for k in ("decode", "zarr_write", "bound", "bound_cpu", "mb")}
        inproc = in_process(drop, root / "inproc", key)
        bound["zarr_write_all_arrays"] = bound_arrays(inproc.pop("records"), root / "bound_all")
        bound["bound_all_arrays"] = bound["decode"] + bound["zarr_write_all_arrays"]
        out: dict[str, Any] = {
            "patients": n,
            "spacing_mm": a.spacing,
            "field_mm": field,
            "synth_s": round(synth_s, 2),
            "bound_s_per_case": {k: round(v, 3) for k, v in bound.items()},
            "in_process": inproc,
        }
        per_case, per_case_cpu = dict(inproc["stages"]), dict(inproc["stages_cpu"])
        if not a.no_flow:
            out["prefect_startup_s"] = prefect_startup()
            with tree_cpu() as idle_cpu:
                time.sleep(5.0)  # the API server's CPU while no flow runs
            idle = idle_cpu["s"] / 5.0
            wall, result = run_flow(drop, root / "flow1", key_file, threads=1)
            per_case["prefect_overhead"] = max(0.0, (wall - inproc["wall_s"]) / n)
            per_case_cpu["prefect_overhead"] = max(0.0, (result["cpu_s"] - inproc["cpu_s"]) / n)
            # The API server burns CPU while idle too (its loop services): that share grows with the flow's wall
            # time (slower on a loaded machine, larger volumes), not with the work per case; shown apart.
            out["api_server_idle_cpu_per_s"] = idle
            out["prefect_overhead_cpu_without_idle_server"] = max(
                0.0, (result["cpu_s"] - inproc["cpu_s"] - idle * wall) / n
            )
            out["flow"] = {
                "wall_s": wall,
                "cpu_s": result["cpu_s"],
                "threads": 1,
                "published": result["published"],
                "stages": result["stage_seconds"],
                "stages_cpu": result["stage_cpu_seconds"],
            }
            if a.dask_workers:  # Dask's forkserver is started once per process: by a cluster before both runs
                t0 = time.perf_counter()
                with local_cluster(1, preload="flows.curate"):
                    out["dask_startup_s"] = time.perf_counter() - t0
                k, ks = a.dask_workers, dict.fromkeys((1, a.dask_workers))  # 1 first, then K
                runs = {j: run_flow(drop, root / f"dask{j}", key_file, dask_workers=j) for j in ks}
                walls, cpu = {j: w for j, (w, _) in runs.items()}, {j: r["cpu_s"] for j, (_, r) in runs.items()}
                out["dask"] = {
                    "wall_s": {str(j): round(v, 2) for j, v in walls.items()},
                    # the process tree's CPU (API server, scheduler, workers) per second: cores busy on average
                    "cores_busy": {str(j): round(cpu[j] / walls[j], 3) for j in ks},
                    "speedup": round(walls[1] / walls[k], 3),
                    "speedup_if_busy": round(walls[1] * min(k, os.cpu_count() or 1) / cpu[k], 3),
                }
        if rss_sizes:
            rss = {}
            for size in rss_sizes:
                d = subdrop(full_drop, patients[:size], root / f"rss{size}" / "drop")
                rss[str(size)] = peak_rss(d, root / f"rss{size}", key_file, a.dask_workers)
            out["peak_rss_mb"] = rss
        total = sum(per_case.values())
        out["s_per_case"] = {k: round(v, 3) for k, v in per_case.items()} | {"total": round(total, 3)}
        total_cpu = sum(per_case_cpu.values())
        out["cpu_s_per_case"] = {k: round(v, 3) for k, v in per_case_cpu.items()} | {"total": round(total_cpu, 3)}
        io_stages = sum(per_case.get(k, 0.0) for k in ("ingest", "deid", "record", "publish"))
        out["ratio_to_bound"] = {
            "total": round(total / bound["bound"], 2),
            "ingest+deid+record+publish": round(io_stages / bound["bound"], 2),
            "total_vs_all_arrays": round(total / bound["bound_all_arrays"], 2),
            "ingest+deid+record+publish_vs_all_arrays": round(io_stages / bound["bound_all_arrays"], 2),
            "total_cpu_vs_bound_cpu": round(total_cpu / bound["bound_cpu"], 2),
        }
        out["load_avg"] = os.getloadavg()
    finally:
        if a.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    if a.json:
        print(json.dumps(out, indent=1, default=lambda x: round(x, 3) if isinstance(x, float) else str(x)))
    else:
        for k, v in out.items():
            print(f"{k}: {v}")


if __name__ == "__main__":
    main()
