"""Benchmark: CBCT↔IOS registration under clinical variety, per condition and path, one thread.

Run: ``.venv/bin/python bench/register.py [--conditions all] [--patients 10] [--seed 0] [--json] [--peer]``.
Threads are pinned to one before numpy loads. For every condition, every synthetic patient is drawn (seeded),
the condition applied, and each jaw the CBCT shows registered from the scan's random pose on three paths:

- ``label map``: CBCT FDI label map and labelled scan;
- ``intensity only``: no label map, labelled scan;
- ``no labels``: no label map, unlabelled scan, jaw unknown;
- with ``--peer``, ``open3d peer (intensity only)``: what a user would write instead (Open3D FPFH features +
  RANSAC global registration + point-to-plane ICP), given the scan's labelled crowns and our intensity-path crown
  surface of that jaw (on the whole scan against both jaws' crowns it registered 0 of 8 synthetic jaws).

A jaw *succeeds* when every tooth centroid lands within ``SUCCESS_MM`` of the truth and QC did not fail it; a
*false pass* is a QC ``pass`` on a jaw that is off by ``SUCCESS_MM`` or more. Errors (median, p95) are over the
tooth centroids of every jaw, failures included; ``s_per_jaw`` is the CBCT crown surface plus the jaw fits,
divided by the jaws registered.

Conditions (perturbations of the synthetic patients, each seeded and with the truth carried along):
``baseline``; ``tilt`` (head pitched/rolled up to ±20°, yawed up to ±15° inside the grid); ``one_jaw`` (field of
view cut to one jaw, the other jaw's scan not registered); ``hu`` (HU-calibrated intensities: air ≈ −1000, random
gain/offset); ``metal`` (several metal crowns); ``tilt_one_jaw``. Conditions the ``synth`` package offers
(``toothmcl_data.synth.conditions``: ``NAMES`` and ``make_patient(name, config, rng, index)``) are added when it
is there, and override local ones of the same name.
"""

from __future__ import annotations

import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"

import argparse
import dataclasses
import importlib
import json
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import ndimage
from scipy.spatial.transform import Rotation

from toothmcl_data.register import RegisterConfig, cbct_surface, register_jaw
from toothmcl_data.synth.config import SynthConfig
from toothmcl_data.synth.patient import SyntheticPatient, make_patient
from toothmcl_data.types import Jaw, Mesh, Volume, apply_transform

SUCCESS_MM = 0.5
PATHS = ("label map", "intensity only", "no labels")
PEER = "open3d peer (intensity only)"

Perturb = Callable[[SyntheticPatient, np.random.Generator], tuple[SyntheticPatient, tuple[Jaw, ...]]]


def _turned(p: SyntheticPatient, rot: np.ndarray) -> SyntheticPatient:
    """The head turned by ``rot`` (3, 3) about the volume centre inside the same axis-aligned grid: CBCT (linear)
    and label map (nearest) resampled, the truth turned alike."""
    a = p.cbct.affine
    centre = apply_transform(a, (np.array(p.cbct.shape, dtype=np.float64)[None] - 1) / 2)[0]
    turn = np.eye(4)
    turn[:3, :3] = rot
    turn[:3, 3] = centre - rot @ centre
    # voxel index of the source for each output index: inv(a) @ inv(turn) @ a
    m = np.linalg.inv(a) @ np.linalg.inv(turn) @ a
    air = float(np.percentile(p.cbct.array[::4, ::4, ::4], 1))
    img = ndimage.affine_transform(p.cbct.array.astype(np.float32), m[:3, :3], m[:3, 3], order=1, cval=air)
    lab = ndimage.affine_transform(p.cbct_labels.array, m[:3, :3], m[:3, 3], order=0, cval=0)
    cbct = Volume(np.round(img).astype(p.cbct.array.dtype), a)
    labels = Volume(lab.astype(p.cbct_labels.array.dtype), a)
    truth = {j: turn @ T for j, T in p.world_from_ios.items()}
    return dataclasses.replace(p, cbct=cbct, cbct_labels=labels, world_from_ios=truth)


def tilt(p: SyntheticPatient, rng: np.random.Generator) -> tuple[SyntheticPatient, tuple[Jaw, ...]]:
    angles = [rng.uniform(-20, 20), rng.uniform(-20, 20), rng.uniform(-15, 15)]
    return _turned(p, Rotation.from_euler("xyz", angles, degrees=True).as_matrix()), ("upper", "lower")


def one_jaw(p: SyntheticPatient, rng: np.random.Generator) -> tuple[SyntheticPatient, tuple[Jaw, ...]]:
    """The grid cut (along its third axis) 1 mm past the occlusal plane to one jaw, chosen at random."""
    jaw: Jaw = "upper" if rng.random() < 0.5 else "lower"
    lab = np.asarray(p.cbct_labels.array)
    k_up = np.flatnonzero(np.isin(lab // 10, (1, 2, 5, 6)).any(axis=(0, 1)))
    k_lo = np.flatnonzero(np.isin(lab // 10, (3, 4, 7, 8)).any(axis=(0, 1)))
    # +k is superior in the synthetic grids; the occlusal plane lies between the two jaws' crown tips
    cut = int(np.rint(0.5 * (k_up.min() + k_lo.max())))
    margin = max(1, round(1.0 / min(p.cbct.spacing)))
    ks = slice(max(cut - margin, 0), None) if jaw == "upper" else slice(0, cut + margin + 1)
    a = p.cbct.affine.copy()
    a[:3, 3] = apply_transform(p.cbct.affine, np.array([[0.0, 0.0, float(ks.start or 0)]]))[0]
    lab_cut = np.where(np.isin(lab[:, :, ks] // 10, (1, 2, 5, 6) if jaw == "upper" else (3, 4, 7, 8)), lab[:, :, ks], 0)
    cbct = Volume(np.ascontiguousarray(p.cbct.array[:, :, ks]), a)
    labels = Volume(np.ascontiguousarray(lab_cut.astype(lab.dtype)), a)
    return dataclasses.replace(p, cbct=cbct, cbct_labels=labels), (jaw,)


def hu(p: SyntheticPatient, rng: np.random.Generator) -> tuple[SyntheticPatient, tuple[Jaw, ...]]:
    """HU-calibrated: air → ≈ −1000, a random gain; stored int16."""
    gain = rng.uniform(0.7, 1.4)
    img = np.clip(p.cbct.array.astype(np.float32) * gain - 1000.0 + rng.uniform(-30, 30), -32768, 32767)
    return dataclasses.replace(p, cbct=Volume(np.round(img).astype(np.int16), p.cbct.affine)), ("upper", "lower")


def tilt_one_jaw(p: SyntheticPatient, rng: np.random.Generator) -> tuple[SyntheticPatient, tuple[Jaw, ...]]:
    q, jaws = one_jaw(p, rng)
    return tilt(q, rng)[0], jaws


def _same(p: SyntheticPatient, rng: np.random.Generator) -> tuple[SyntheticPatient, tuple[Jaw, ...]]:
    return p, ("upper", "lower")


LOCAL: dict[str, tuple[dict[str, float], Perturb]] = {
    "baseline": ({}, _same),
    "tilt": ({}, tilt),
    "one_jaw": ({}, one_jaw),
    "hu": ({}, hu),
    "metal": ({"metal_crown_probability": 0.25, "implant_probability": 0.1}, _same),
    "tilt_one_jaw": ({}, tilt_one_jaw),
}


def conditions() -> dict[str, Callable[[SynthConfig, np.random.Generator, int], tuple[SyntheticPatient, tuple]]]:
    """Every condition by name: the local ones, then the synth package's (when it offers any)."""
    out: dict[str, Callable[[SynthConfig, np.random.Generator, int], tuple[SyntheticPatient, tuple]]] = {}
    for name, (overrides, perturb) in LOCAL.items():

        def make(config: SynthConfig, rng: np.random.Generator, index: int, o=overrides, f=perturb) -> tuple:
            return f(make_patient(dataclasses.replace(config, **o), rng, index), rng)

        out[name] = make
    try:
        synth = importlib.import_module("toothmcl_data.synth.conditions")
    except ImportError:
        return out
    for name in getattr(synth, "NAMES", ()):

        def make_synth(config: SynthConfig, rng: np.random.Generator, index: int, n: str = name) -> tuple:
            p = synth.make_patient(n, config, rng, index)
            return p, tuple(j for j in ("upper", "lower") if j in p.ios and j in p.world_from_ios)

        out[name] = make_synth
    return out


def centroid_errors(mesh: Mesh, truth: np.ndarray, T: np.ndarray) -> np.ndarray:
    """Per scan tooth, the distance (mm) between its crown centroid mapped by ``T`` and by ``truth``."""
    labels = np.asarray(mesh.labels)
    c = np.array([mesh.vertices[labels == f].mean(axis=0) for f in np.unique(labels[labels > 0])])
    return np.asarray(np.linalg.norm(apply_transform(T, c) - apply_transform(truth, c), axis=1))


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


def _stats(rows: list[dict], with_qc: bool) -> dict[str, Any]:
    errs = np.concatenate([r["err"] for r in rows]) * 1000 if rows else np.zeros(0)
    jaws = len(rows)
    return {
        "success_rate": float(np.mean([r["ok"] and r["verdict"] != "fail" for r in rows])) if rows else None,
        "correct_rate": float(np.mean([r["ok"] for r in rows])) if rows else None,
        "median_um": float(np.median(errs)) if errs.size else None,
        "p95_um": float(np.percentile(errs, 95)) if errs.size else None,
        "s_per_jaw": float(sum(r["s"] for r in rows) / jaws) if jaws else None,
        "false_pass": int(sum(r["verdict"] == "pass" and not r["ok"] for r in rows)) if with_qc else None,
        "verdicts": {v: sum(r["verdict"] == v for r in rows) for v in ("pass", "review", "fail", "error")},
        "jaws": jaws,
    }


def run_condition(
    make: Callable, n: int, seed: int, config: SynthConfig, reg_config: RegisterConfig, with_peer: bool, log: bool
) -> dict[str, dict]:
    rng = np.random.default_rng(seed)
    rows: dict[str, list[dict]] = {p: [] for p in (*PATHS, *((PEER,) if with_peer else ()))}
    for i in range(n):
        p, jaws = make(config, rng, i)
        for path in PATHS:
            labels = p.cbct_labels if path == "label map" else None
            t0 = time.perf_counter()
            surface = cbct_surface(p.cbct, labels)
            share = (time.perf_counter() - t0) / len(jaws)
            for jaw in jaws:
                mesh = p.ios[jaw]
                scan = Mesh(mesh.vertices, mesh.faces, frame=mesh.frame) if path == "no labels" else mesh
                t0 = time.perf_counter()
                verdict: str
                try:
                    r = register_jaw(p.cbct, scan, cbct_labels=labels, config=reg_config, surface=surface)
                    T, verdict = r.world_from_ios, r.verdict
                except Exception as err:  # a refusal is a failure the user sees, never a pass
                    T, verdict = np.eye(4), "error"
                    if log:
                        print(f"  patient {i} {path} {jaw}: {type(err).__name__}: {err}", flush=True)
                dt = time.perf_counter() - t0 + share
                err_mm = centroid_errors(mesh, p.world_from_ios[jaw], T)
                rows[path].append({"err": err_mm, "ok": bool(err_mm.max() < SUCCESS_MM), "verdict": verdict, "s": dt})
                if log:
                    print(
                        f"  patient {i} {path:15s} {jaw}: max {err_mm.max():8.3f} mm {verdict:6s} {dt:.2f} s",
                        flush=True,
                    )
            if path == "intensity only" and with_peer:
                for jaw in jaws:
                    t0 = time.perf_counter()
                    m = p.ios[jaw]
                    crowns = np.asarray(m.labels) > 0
                    js = surface.jaw(jaw)  # the peer has no jaw split of its own: it gets ours
                    T = peer(m.vertices[crowns], js.points, js.normals)
                    dt = time.perf_counter() - t0 + share
                    err_mm = centroid_errors(p.ios[jaw], p.world_from_ios[jaw], T)
                    rows[PEER].append({"err": err_mm, "ok": bool(err_mm.max() < SUCCESS_MM), "verdict": "-", "s": dt})
    return {path: _stats(r, path != PEER) for path, r in rows.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conditions", default="all", help="comma-separated names, or 'all'")
    parser.add_argument("--patients", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--spacing", type=float, default=0.4)
    parser.add_argument("--json", action="store_true", help="print only the JSON summary")
    parser.add_argument("--peer", action="store_true", help="also run the Open3D FPFH+RANSAC+ICP baseline")
    parser.add_argument("--verbose", action="store_true", help="one line per jaw")
    args = parser.parse_args()
    known = conditions()
    names = list(known) if args.conditions == "all" else [c.strip() for c in args.conditions.split(",") if c.strip()]
    unknown = [c for c in names if c not in known]
    if unknown:
        parser.error(f"unknown conditions {unknown}; known: {sorted(known)}")
    config = SynthConfig(spacing_mm=args.spacing, ios_noise_mm=0.02)
    out: dict[str, dict] = {"conditions": {}}
    for k, name in enumerate(names):
        t0 = time.perf_counter()
        res = run_condition(
            known[name], args.patients, args.seed + 1000 * k, config, RegisterConfig(), args.peer, args.verbose
        )
        out["conditions"][name] = res
        if not args.json:
            print(f"{name} ({args.patients} patients, {time.perf_counter() - t0:.0f} s)")
            for path, s in res.items():
                print(
                    f"  {path:26s} success {100 * (s['success_rate'] or 0):5.1f}% (transform right "
                    f"{100 * (s['correct_rate'] or 0):5.1f}%)  median {s['median_um'] or 0:8.1f} µm  p95 "
                    f"{s['p95_um'] or 0:8.1f} µm  {s['s_per_jaw'] or 0:.2f} s/jaw  false pass {s['false_pass']}  "
                    f"{s['verdicts']}",
                    flush=True,
                )
    out["meta"] = {"patients": args.patients, "seed": args.seed, "spacing_mm": args.spacing, "threads": 1}
    if args.json:
        print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
