"""Benchmark: CBCT↔IOS registration under clinical variety, per condition and path, one thread.

Run: ``.venv/bin/python bench/register.py [--conditions all] [--patients 10] [--seed 0] [--json] [--peer]
[--field-mm clinical]``.
Threads are pinned to one before numpy loads. Conditions are the synth package's named conditions
(:data:`toothmcl_data.synth.conditions.CONDITION_NAMES`, ``all`` = every one of them) plus ``baseline`` (a
default patient, no condition); ``A+B`` draws patients with both A and B (conditions of different groups, e.g.
``fov_quadrant+implants``: an implant-planning field). For every condition, ``--patients`` synthetic patients are
drawn with it (seeded) and both IOS jaws registered from the scan's random pose on three paths:

- ``label map``: CBCT FDI label map and labelled scan;
- ``intensity only``: no label map, labelled scan;
- ``no labels``: no label map, unlabelled scan, jaw unknown;
- with ``--peer``, ``open3d peer (intensity only)``: what a user would write instead (Open3D FPFH features +
  RANSAC global registration + point-to-plane ICP), given the scan's labelled crowns and our intensity-path crown
  surface of that jaw.

Only the upper and lower jaw scans are registered (``ios_bite_scan``'s buccal bite scan is not a jaw scan).
The ground truth decides what counts: a jaw's *teeth in both modalities* are its scan's teeth whose crown lies
wholly inside the CBCT field of view and that have enough scan vertices (``variety["pairable"]``; for ``baseline``,
every tooth of the label map). A jaw with such teeth *succeeds* when all of their centroids land within
``SUCCESS_MM`` of the truth and QC did not fail it; a *false pass* is a QC ``pass`` that misses. A jaw with none of
them (outside the field of view, or only cut crowns) must not pass: a refusal (error), ``fail`` or ``review`` counts
as success, and a ``pass`` is a false pass unless it puts the jaw's cut crowns (those with voxels in the label map)
within ``SUCCESS_MM``. A *false review* is a QC ``review`` whose transform misses (streams trust ``review`` jaws by
default, ``StreamConfig.verdicts``); it is counted, not a failure. Errors (median, p95) are over the teeth in both
modalities, failures included; ``s_per_jaw`` is the CBCT crown surface plus the jaw fits, divided by the jaws
registered (wall clock), and ``cpu_s_per_jaw`` the same in CPU seconds of this process (``time.process_time``: what
a jaw costs one core, whatever else shares the machine)."""

from __future__ import annotations

import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"

import argparse
import importlib
import json
import sys
import time
from typing import Any

import numpy as np

from toothmcl_data.errors import ConfigError
from toothmcl_data.register import RegisterConfig, cbct_surface, register_jaw
from toothmcl_data.synth.conditions import CONDITION_NAMES, check_conditions
from toothmcl_data.synth.config import SynthConfig
from toothmcl_data.synth.head import parse_field
from toothmcl_data.synth.patient import SyntheticPatient, make_patient
from toothmcl_data.types import JAWS, Jaw, Mesh, apply_transform

SUCCESS_MM = 0.5
PATHS = ("label map", "intensity only", "no labels")
PEER = "open3d peer (intensity only)"

BASELINE = "baseline"
NAMES = (BASELINE, *CONDITION_NAMES)
POSED = ("pose_tilted", "bite_block", "bite_open")
"""Conditions that give the jaws poses: a clinical field of view (``--field-mm``) cannot hold them."""


def draw(name: str, config: SynthConfig, rng: np.random.Generator, index: int) -> SyntheticPatient:
    """Patient ``index`` drawn under condition ``name`` (``baseline``: none; ``A+B``: both)."""
    return make_patient(config, rng, index, conditions=() if name == BASELINE else tuple(name.split("+")))


def seed_offset(name: str) -> int:
    """A condition's seed offset (each condition's own seed, independent of which others run: groups of
    conditions can run apart and be merged); ``A+B`` gets its own, unlike A's and B's."""
    return sum(1000 * NAMES.index(part) * 1001**k for k, part in enumerate(name.split("+")))


def truth_teeth(p: SyntheticPatient, jaw: Jaw) -> tuple[list[int], list[int]]:
    """FDI codes of ``jaw``'s scan teeth (1) in both modalities and (2) merely with voxels in the label map."""
    labels = np.asarray(p.ios[jaw].labels)
    in_scan = {int(f) for f in np.unique(labels[labels > 0])}
    in_map = {int(v) for v in np.unique(np.asarray(p.cbct_labels.array)) if v > 0}
    both = set(p.variety["pairable"]) if p.variety else in_map
    return sorted(in_scan & both), sorted(in_scan & in_map)


def centroid_errors(mesh: Mesh, truth: np.ndarray, T: np.ndarray, teeth: list[int]) -> np.ndarray:
    """Per tooth of ``teeth`` (FDI), the distance (mm) between its scan crown centroid mapped by ``T`` and by
    ``truth``."""
    labels = np.asarray(mesh.labels)
    c = np.array([mesh.vertices[labels == f].mean(axis=0) for f in teeth]).reshape(-1, 3)
    return np.asarray(np.linalg.norm(apply_transform(T, c) - apply_transform(truth, c), axis=1))


def judge(p: SyntheticPatient, jaw: Jaw, T: np.ndarray, verdict: str, dt: float, cpu: float) -> dict[str, Any]:
    """One registered jaw's row: errors over its teeth in both modalities, success and false pass (see top);
    ``dt`` and ``cpu`` are its wall and CPU seconds."""
    both, visible = truth_teeth(p, jaw)
    truth, mesh = p.world_from_ios[jaw], p.ios[jaw]
    if both:
        err = centroid_errors(mesh, truth, T, both)
        right = bool(err.max() < SUCCESS_MM)
        return {"err": err, "ok": right and verdict not in ("fail", "error"), "false": verdict == "pass" and not right,
                "wrong": not right, "verdict": verdict, "s": dt, "cpu": cpu, "in_fov": True}  # fmt: skip
    right = bool(visible) and bool(centroid_errors(mesh, truth, T, visible).max() < SUCCESS_MM)
    false = verdict == "pass" and not right
    return {"err": np.zeros(0), "ok": not false, "false": false, "wrong": not right, "verdict": verdict, "s": dt,
            "cpu": cpu, "in_fov": False}  # fmt: skip


def peer(ios_points: np.ndarray, surface_points: np.ndarray, surface_normals: np.ndarray) -> np.ndarray:
    """Open3D FPFH + RANSAC + point-to-plane ICP (the user's baseline of issue 14) of IOS points (n, 3) onto CBCT
    crown points with normals (m, 3): world_from_ios (4, 4)."""
    o3d: Any = importlib.import_module("open3d")
    reg = o3d.pipelines.registration
    voxel = 1.0

    def prep(points: np.ndarray, normals: np.ndarray | None) -> tuple:
        pc = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points))
        if normals is not None:
            pc.normals = o3d.utility.Vector3dVector(normals)
        down = pc.voxel_down_sample(voxel)
        if normals is None:
            down.estimate_normals(o3d.geometry.KDTreeSearchParamHybrid(radius=2 * voxel, max_nn=30))
        feat = reg.compute_fpfh_feature(down, o3d.geometry.KDTreeSearchParamHybrid(radius=5 * voxel, max_nn=100))
        return pc, down, feat

    src_full, src, fs = prep(ios_points, None)
    dst_full, dst, fd = prep(surface_points, surface_normals)
    o3d.utility.random.seed(0)
    ransac = reg.registration_ransac_based_on_feature_matching(
        src, dst, fs, fd, False, 1.5 * voxel, reg.TransformationEstimationPointToPoint(False), 3,
        [reg.CorrespondenceCheckerBasedOnEdgeLength(0.9), reg.CorrespondenceCheckerBasedOnDistance(1.5 * voxel)],
        reg.RANSACConvergenceCriteria(100000, 0.999),
    )  # fmt: skip
    src_full.estimate_normals(o3d.geometry.KDTreeSearchParamHybrid(radius=1.0, max_nn=30))
    icp = reg.registration_icp(
        src_full, dst_full, 1.0, ransac.transformation, reg.TransformationEstimationPointToPlane()
    )
    return np.asarray(icp.transformation, dtype=np.float64)


def since(t0: float, c0: float, share: float, cpu_share: float) -> tuple[float, float]:
    """Wall and CPU seconds since ``t0`` (``perf_counter``) and ``c0`` (``process_time``), plus the jaw's share
    of the CBCT surface."""
    return time.perf_counter() - t0 + share, time.process_time() - c0 + cpu_share


def _stats(rows: list[dict], with_qc: bool) -> dict[str, Any]:
    errs = np.concatenate([r["err"] for r in rows]) * 1000 if rows else np.zeros(0)
    jaws = len(rows)
    return {
        "success_rate": float(np.mean([r["ok"] for r in rows])) if rows else None,
        "median_um": float(np.median(errs)) if errs.size else None,
        "p95_um": float(np.percentile(errs, 95)) if errs.size else None,
        "s_per_jaw": float(sum(r["s"] for r in rows) / jaws) if jaws else None,
        "cpu_s_per_jaw": float(sum(r["cpu"] for r in rows) / jaws) if jaws else None,
        "false_pass": int(sum(r["false"] for r in rows)) if with_qc else None,
        "false_review": int(sum(r["verdict"] == "review" and r["wrong"] for r in rows)) if with_qc else None,
        "verdicts": {v: sum(r["verdict"] == v for r in rows) for v in ("pass", "review", "fail", "error")},
        "jaws": jaws,
        "jaws_outside_fov": sum(not r["in_fov"] for r in rows),
    }


def run_condition(
    name: str,
    n: int,
    seed: int,
    config: SynthConfig,
    reg_config: RegisterConfig,
    with_peer: bool,
    log: bool,
    paths: tuple[str, ...] = PATHS,
) -> dict[str, dict]:
    rng = np.random.default_rng(seed)
    rows: dict[str, list[dict]] = {p: [] for p in (*paths, *((PEER,) if with_peer else ()))}
    for i in range(n):
        p = draw(name, config, rng, i)
        for path in paths:
            labels = p.cbct_labels if path == "label map" else None
            t0, c0 = time.perf_counter(), time.process_time()
            surface = cbct_surface(p.cbct, labels)
            share = (time.perf_counter() - t0) / len(JAWS)
            cpu_share = (time.process_time() - c0) / len(JAWS)
            for jaw in JAWS:
                mesh = p.ios[jaw]
                scan = Mesh(mesh.vertices, mesh.faces, frame=mesh.frame) if path == "no labels" else mesh
                t0, c0 = time.perf_counter(), time.process_time()
                try:
                    r = register_jaw(p.cbct, scan, cbct_labels=labels, config=reg_config, surface=surface)
                    T, verdict = r.world_from_ios, str(r.verdict)
                except Exception as err:  # a refusal: never a pass
                    T, verdict = np.eye(4), "error"
                    if log:
                        print(f"  patient {i} {path} {jaw}: {type(err).__name__}: {err}", file=sys.stderr, flush=True)
                row = judge(p, jaw, T, verdict, *since(t0, c0, share, cpu_share))
                rows[path].append(row)
                if log:
                    worst = f"{row['err'].max():8.3f} mm" if row["err"].size else "(no teeth in FOV)"
                    print(
                        f"  patient {i} {path:15s} {jaw}: max {worst} {verdict:6s} {row['s']:.2f} s"
                        f" ({row['cpu']:.2f} s CPU)",
                        file=sys.stderr,
                        flush=True,
                    )
            if path == "intensity only" and with_peer:
                for jaw in JAWS:
                    t0, c0 = time.perf_counter(), time.process_time()
                    m = p.ios[jaw]
                    js = surface.jaw(jaw)  # the peer has no jaw split of its own: it gets ours
                    if len(js.points) < 50:
                        rows[PEER].append(judge(p, jaw, np.eye(4), "error", *since(t0, c0, share, cpu_share)))
                        continue
                    T = peer(m.vertices[np.asarray(m.labels) > 0], js.points, js.normals)
                    rows[PEER].append(judge(p, jaw, T, "-", *since(t0, c0, share, cpu_share)))
    return {path: _stats(r, path != PEER) for path, r in rows.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conditions", default="all", help=f"comma-separated names, or 'all' ({', '.join(NAMES)})")
    parser.add_argument("--patients", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--spacing", type=float, default=0.4)
    parser.add_argument("--json", action="store_true", help="print only the JSON summary")
    parser.add_argument("--peer", action="store_true", help="also run the Open3D FPFH+RANSAC+ICP baseline")
    parser.add_argument("--verbose", action="store_true", help="one line per jaw (on stderr)")
    parser.add_argument("--paths", default=",".join(PATHS), help=f"comma-separated subset of: {', '.join(PATHS)}")
    parser.add_argument(
        "--field-mm",
        help="CBCTs in a clinical field of view: 'clinical' (160,160,110) or X,Y,Z mm (skips the posed conditions "
        f"{', '.join(POSED)}, which cannot be placed in one)",
    )
    args = parser.parse_args()
    names = list(NAMES) if args.conditions == "all" else [c.strip() for c in args.conditions.split(",") if c.strip()]
    unknown = [c for c in names if c != BASELINE and not set(c.split("+")) <= set(CONDITION_NAMES)]
    if unknown:
        parser.error(f"unknown conditions {unknown}; known: {', '.join(NAMES)} (combine with '+')")
    try:
        for name in names:
            check_conditions(name.split("+") if name != BASELINE else [])
    except ConfigError as err:
        parser.error(str(err))
    paths = tuple(q.strip() for q in args.paths.split(",") if q.strip())
    if not paths or set(paths) - set(PATHS):
        parser.error(f"unknown paths {sorted(set(paths) - set(PATHS))}; known: {', '.join(PATHS)}")
    field = parse_field(args.field_mm) if args.field_mm else None
    if field is not None:
        names = [c for c in names if not set(c.split("+")) & set(POSED)]
    config = SynthConfig(spacing_mm=args.spacing, ios_noise_mm=0.02, field_mm=field)
    out: dict[str, dict] = {"conditions": {}}
    for name in names:
        t0 = time.perf_counter()
        res = run_condition(
            name, args.patients, args.seed + seed_offset(name), config, RegisterConfig(), args.peer,
            args.verbose, paths,
        )  # fmt: skip
        out["conditions"][name] = res
        if not args.json:
            print(f"{name} ({args.patients} patients, {time.perf_counter() - t0:.0f} s)")
            for path, s in res.items():
                print(
                    f"  {path:26s} success {100 * (s['success_rate'] or 0):5.1f}%  median {s['median_um'] or 0:8.1f}"
                    f" µm  p95 {s['p95_um'] or 0:8.1f} µm  {s['s_per_jaw'] or 0:.2f} s/jaw"
                    f" ({s['cpu_s_per_jaw'] or 0:.2f} s CPU)  false pass "
                    f"{s['false_pass']}  false review {s['false_review']}  {s['verdicts']}"
                    f"  outside FOV {s['jaws_outside_fov']}/{s['jaws']}",
                    flush=True,
                )
    out["meta"] = {
        "patients": args.patients, "seed": args.seed, "spacing_mm": args.spacing, "threads": 1, "field_mm": field,
    }  # fmt: skip
    if args.json:
        print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
