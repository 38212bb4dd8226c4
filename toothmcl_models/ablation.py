"""Does ToothMCL pretraining help downstream segmentation? A repeatable ablation on synthetic patients.

    python -m toothmcl_models.ablation [--full] [--seeds 3] [--k 2] [--out DIR] [--json]

1. Draw three disjoint sets of synthetic patients: ``pretrain`` (paired CBCT + both IOS jaws, registered by the
   exact ground-truth transforms), ``k`` labelled fine-tuning patients, and held-out ``test`` patients.
2. Pretrain the ToothMCL encoders on the pretraining pairs (one run). The contrastive objective needs tooth
   identities for its tokens, so those patients' label maps are used *by pretraining only*; no segmentation
   label of them reaches the downstream models.
3. For every seed, fine-tune CBCT (SwinUNETR) and IOS (Point Transformer) segmentation on the ``k`` labelled
   patients from the pretrained encoders and from scratch — same steps, data order, learning rate, seed.
4. Score the held-out patients: CBCT mean Dice over the GT teeth (whole volume, sliding window, native grid);
   IOS TSA, TIR, exp(−TLA) and mIoU per jaw scan (3DTeethSeg22 rules) — and print mean ± std over seeds.

The default preset is CPU-sized (tiny models, 1 mm voxels, 64×64×32 crops, 1024 points); ``--full`` is a GPU
preset (paper-sized encoders, 0.4 mm voxels, more patients and steps).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import trimesh

from toothmcl_data.store import CaseRecord, open_version, publish
from toothmcl_data.synth.config import SynthConfig
from toothmcl_data.synth.patient import SyntheticPatient, make_patient
from toothmcl_data.types import JAWS, Case, Mesh, Registration, ToothPair, apply_transform
from toothmcl_models.config import paper
from toothmcl_models.evaluate import mean_std, predict_mesh, predict_volume, score_mesh, score_volume
from toothmcl_models.finetune import finetune, load_finetuned
from toothmcl_models.pretrain import pretrain
from toothmcl_models.runconfig import PretrainConfig
from toothmcl_models.segconfig import FinetuneConfig
from toothmcl_models.segmentation import CBCTSegmenter, IOSSegmenter

log = logging.getLogger(__name__)

PAIR_CROP = 12
PAIR_POINTS = 32


@dataclass(frozen=True)
class AblationConfig:
    """Sizes of one ablation run."""

    pretrain_patients: int = 4
    k: int = 2
    test_patients: int = 2
    seeds: tuple[int, ...] = (1, 2, 3)
    """Fine-tuning seeds; pretraining uses seed 0, so no scratch network starts from the pretraining's own
    initial weights (seed 0 would draw the identical Swin encoder)."""
    synth_spacing_mm: float = 1.0
    ios_resolution_mm: float = 0.8
    crop_shape: tuple[int, int, int] = (64, 64, 32)
    spacing_mm: float = 1.0
    points: int = 1024
    pretrain_steps: int = 40
    cbct_steps: int = 30
    ios_steps: int = 50
    cbct_batch: int = 1
    ios_batch: int = 2
    lr: float = 2e-3
    threads: int = 2
    paper_model: bool = False


CPU = AblationConfig()
FULL = AblationConfig(
    pretrain_patients=40,
    k=4,
    test_patients=8,
    synth_spacing_mm=0.4,
    ios_resolution_mm=0.3,
    crop_shape=(128, 128, 64),
    spacing_mm=0.4,
    points=8192,
    pretrain_steps=2000,
    cbct_steps=600,
    ios_steps=600,
    cbct_batch=2,
    ios_batch=4,
    lr=2e-4,
    threads=0,
    paper_model=True,
)


def synth_record(patient: SyntheticPatient, pseudonym: str) -> CaseRecord:
    """A store record of a synthetic patient: CBCT + label map, both jaws in their scanner frames, registrations
    = the exact ground-truth transforms, and one tooth pair per tooth seen in both modalities (a small crop at the
    tooth's centroid and crown points; what the pretraining stream uses to place its crops)."""
    cbct, labels = patient.cbct, patient.cbct_labels
    ios: dict[Any, Mesh] = {}
    regs = {}
    pairs = []
    centroid_index = {}
    lab = labels.array
    for fdi in sorted(set(np.unique(lab).tolist()) - {0}):
        centroid_index[int(fdi)] = np.argwhere(lab == fdi).mean(0)
    for jaw in JAWS:
        mesh = patient.ios[jaw]
        ios[jaw] = Mesh(mesh.vertices, mesh.faces, f"ios:{pseudonym}:{jaw}", mesh.labels, mesh.instances, jaw=jaw)
        T = patient.world_from_ios[jaw]
        regs[jaw] = Registration(jaw, T, 0.0, 0.0, 1.0, {}, "pass")
        normals = trimesh.Trimesh(mesh.vertices, mesh.faces, process=False).vertex_normals @ T[:3, :3].T
        world = apply_transform(T, mesh.vertices)
        for fdi in sorted(set(np.unique(mesh.labels).tolist()) - {0}) if mesh.labels is not None else []:
            if fdi not in centroid_index:
                continue
            corner = np.round(centroid_index[fdi]).astype(int) - PAIR_CROP // 2
            idx = np.resize(np.flatnonzero(mesh.labels == fdi), PAIR_POINTS)
            world_from_crop = cbct.affine.copy()
            world_from_crop[:3, 3] = apply_transform(cbct.affine, corner[None].astype(float))[0]
            box = tuple(slice(max(c, 0), max(c, 0) + PAIR_CROP) for c in corner)
            crop = np.zeros((PAIR_CROP,) * 3, dtype=np.int16)
            lcrop = np.zeros_like(crop)
            part = cbct.array[box]
            crop[tuple(slice(0, s) for s in part.shape)] = part
            lcrop[tuple(slice(0, s) for s in part.shape)] = lab[box]
            points = np.concatenate([world[idx], normals[idx]], 1).astype(np.float32)
            pairs.append(ToothPair(pseudonym, int(fdi), crop, lcrop, world_from_crop, points))
    case = Case(pseudonym, cbct, labels, ios, {"cbct": f"synth-{patient.index}"})
    return CaseRecord(case, regs, pairs, attributes={"source": "synthetic"})


def _patients(config: AblationConfig, start: int, n: int) -> Iterator[SyntheticPatient]:
    synth = SynthConfig(spacing_mm=config.synth_spacing_mm, ios_resolution_mm=config.ios_resolution_mm)
    for i in range(start, start + n):
        yield make_patient(synth, np.random.default_rng(10_000 + i), index=i)


def build_stores(config: AblationConfig, out: Path) -> tuple[Path, Path, list[str], list[str]]:
    """Pretraining store, downstream store, the k labelled and the test pseudonyms."""
    pre, down = out / "pretrain-store", out / "downstream-store"
    n = config.pretrain_patients
    publish(pre, (synth_record(p, f"PRE{p.index:03d}") for p in _patients(config, 0, n)), message="pretraining")
    train = [f"FT{i:03d}" for i in range(config.k)]
    test = [f"TEST{i:03d}" for i in range(config.test_patients)]
    patients = _patients(config, n, config.k + config.test_patients)
    publish(down, (synth_record(p, name) for p, name in zip(patients, train + test, strict=True)), message="downstream")
    return pre, down, train, test


def pretrain_config(config: AblationConfig) -> PretrainConfig:
    base = PretrainConfig.from_yaml(Path("tiny"))
    model = paper() if config.paper_model else base.toothmcl
    optim = replace(model.optim, total_steps=config.pretrain_steps, warmup_steps=max(1, config.pretrain_steps // 20))
    data = replace(
        base.data, crop_shape=config.crop_shape, spacing_mm=config.spacing_mm, points=config.points, split=None
    )
    return replace(base, toothmcl=replace(model, optim=optim), data=data, run=replace(base.run, threads=config.threads))


def finetune_config(
    config: AblationConfig, task: str, pre: PretrainConfig, seed: int, cases: Sequence[str]
) -> FinetuneConfig:
    base = FinetuneConfig.from_yaml(Path("tiny"), task)
    steps = config.cbct_steps if task == "cbct" else config.ios_steps
    batch = config.cbct_batch if task == "cbct" else config.ios_batch
    return replace(
        base,
        cbct=pre.toothmcl.model.cbct,
        ios=pre.toothmcl.model.ios,
        segment=replace(base.segment, cases=tuple(cases)),
        optim=replace(base.optim, lr=config.lr, total_steps=steps, warmup_steps=max(1, steps // 10)),
        data=replace(
            base.data,
            split=None,
            crop_shape=config.crop_shape,
            spacing_mm=config.spacing_mm,
            points=config.points,
            batch_size=batch,
        ),
        run=replace(base.run, seed=seed, threads=config.threads, checkpoint_every=max(steps, 1), log_every=5),
    )


def score_cbct(run: Path, store: Path, cases: Sequence[str], config: AblationConfig) -> float:
    """Mean over test patients of the mean Dice over their GT teeth."""
    net, ft = load_finetuned(run / "checkpoints")
    if not isinstance(net, CBCTSegmenter):
        raise TypeError(f"{run}: not a CBCT run")
    version = open_version(store)
    dice = []
    for case in cases:
        cbct, labels = version.cbct(case), version.cbct_labels(case)
        if cbct is None or labels is None:
            continue
        pred = predict_volume(net, cbct, spacing_mm=ft.data.spacing_mm, roi=ft.data.crop_shape)
        dice.append(float(score_volume(pred, labels, case).summary()["mean_dice"]))
    return float(np.mean(dice))


def score_ios(run: Path, store: Path, cases: Sequence[str], config: AblationConfig) -> dict[str, float]:
    """Mean over test jaw scans of TSA, TIR, TLA (exp(−TLA)) and mIoU."""
    net, ft = load_finetuned(run / "checkpoints")
    if not isinstance(net, IOSSegmenter):
        raise TypeError(f"{run}: not an IOS run")
    version = open_version(store)
    rows = []
    for i, case in enumerate(cases):
        for jaw in ft.segment.jaws:
            mesh = version.ios(case, jaw)
            T = version.registration(case, jaw).world_from_ios
            labels, instances = predict_mesh(
                net, mesh, jaw, points=ft.data.points, rng=np.random.default_rng(i), world_from_mesh=T, k=3
            )
            rows.append(score_mesh(mesh, labels, instances, case).summary())
    return {k: float(np.nanmean([r[k] for r in rows])) for k in ("TSA", "TIR", "TLA", "mIoU")}


def run_ablation(config: AblationConfig, out: Path) -> dict[str, Any]:
    """Run everything in ``out``; returns per-seed scores and their mean ± std (also written to
    ``out/ablation.json``)."""
    if config.threads:
        torch.set_num_threads(config.threads)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    pre_store, store, train, test = build_stores(config, out)
    timings = {"stores_s": time.perf_counter() - t0}
    pre_cfg = pretrain_config(config)
    t = time.perf_counter()
    pre_result = pretrain(str(pre_store), "latest", pre_cfg, out / "pretrain")
    timings["pretrain_s"] = time.perf_counter() - t
    ckpt = out / "pretrain" / "checkpoints"
    per_seed: dict[str, list[dict[str, float]]] = {"pretrained": [], "scratch": []}
    t = time.perf_counter()
    for seed in config.seeds:
        for init_name, init in (("pretrained", ckpt), ("scratch", None)):
            scores: dict[str, float] = {"seed": float(seed)}
            for task in ("cbct", "ios"):
                run = out / f"{task}-{init_name}-seed{seed}"
                cfg = finetune_config(config, task, pre_cfg, seed, train)
                result = finetune(str(store), "latest", cfg, run, init=init)
                scores[f"{task}_final_loss"] = float(result["loss"])
                if task == "cbct":
                    scores["dice"] = score_cbct(run, store, test, config)
                else:
                    scores.update(score_ios(run, store, test, config))
            per_seed[init_name].append(scores)
            log.info("seed %d %s: %s", seed, init_name, scores)
    timings["finetune_and_score_s"] = time.perf_counter() - t
    summary = {
        init: {m: mean_std([s[m] for s in rows]) for m in ("dice", "TSA", "TIR", "TLA", "mIoU")}
        for init, rows in per_seed.items()
    }
    report = {
        "config": asdict(config),
        "pretrain_final": {k: v for k, v in pre_result.items() if isinstance(v, int | float)},
        "per_seed": per_seed,
        "summary": summary,
        "train_cases": train,
        "test_cases": test,
        "timings_s": timings,
    }
    (out / "ablation.json").write_text(json.dumps(report, indent=2, default=float))
    return report


def format_report(report: dict[str, Any]) -> str:
    """The summary as a Markdown table: metric × init, mean ± std over seeds."""
    lines = ["| metric | pretrained | scratch | Δ (pre − scratch) |", "| --- | --- | --- | --- |"]
    s = report["summary"]
    for metric in ("dice", "TSA", "TIR", "TLA", "mIoU"):
        (pm, ps), (sm, ss) = s["pretrained"][metric], s["scratch"][metric]
        delta = pm - sm if math.isfinite(pm) and math.isfinite(sm) else math.nan
        name = {"dice": "CBCT mean Dice", "TLA": "IOS exp(−TLA)"}.get(metric, f"IOS {metric}")
        lines.append(f"| {name} | {pm:.3f} ± {ps:.3f} | {sm:.3f} ± {ss:.3f} | {delta:+.3f} |")
    n = len(report["per_seed"]["pretrained"])
    t = report["timings_s"]
    lines.append(
        f"\n{n} seeds, k = {report['config']['k']} labelled patients, {len(report['test_cases'])} test patients; "
        f"pretraining loss {report['pretrain_final'].get('loss', float('nan')):.4f} after "
        f"{report['pretrain_final'].get('step')} steps; wall time: stores {t['stores_s']:.0f} s, pretraining "
        f"{t['pretrain_s']:.0f} s, fine-tuning + scoring {t['finetune_and_score_s']:.0f} s"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m toothmcl_models.ablation", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--full", action="store_true", help="GPU preset (paper-sized model, more data and steps)")
    parser.add_argument("--seeds", type=int, default=None, help="number of fine-tuning seeds (default 3)")
    parser.add_argument("--k", type=int, default=None, help="labelled fine-tuning patients")
    for name in ("pretrain-steps", "cbct-steps", "ios-steps"):
        parser.add_argument(f"--{name}", type=int, default=None, help=f"override the preset's {name.replace('-', ' ')}")
    parser.add_argument("--out", type=Path, default=Path("ablation-run"), help="work folder (stores, runs, JSON)")
    parser.add_argument("--json", action="store_true", help="print the whole report as JSON")
    args = parser.parse_args(argv)
    config = FULL if args.full else CPU
    if args.seeds is not None:
        config = replace(config, seeds=tuple(range(1, args.seeds + 1)))
    if args.k is not None:
        config = replace(config, k=args.k)
    for name in ("pretrain_steps", "cbct_steps", "ios_steps"):
        if getattr(args, name) is not None:
            config = replace(config, **{name: getattr(args, name)})
    report = run_ablation(config, args.out)
    print(json.dumps(report, indent=2, default=float) if args.json else format_report(report))


if __name__ == "__main__":
    main()
