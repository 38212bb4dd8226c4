"""Does ToothMCL pretraining help when labels are scarce? Pretrained vs scratch fine-tuning on synthetic patients.

    python -m toothmcl_models.ablation [--config cpu|FILE] [--set KEY=VALUE ...] [--out DIR] [--json]

The run's sizes come from ``configs/ablation_<name>.yaml`` (default ``cpu``) or a YAML file naming every key of
:class:`AblationConfig`, then the ``--set`` overrides (``--set ks=[1,2] --set seeds=[1] --set cbct_steps=20``).

1. Three disjoint cohorts (``toothmcl_data.cohorts``): ``pretrain_patients`` paired patients (≥ 4 × the
   largest k), a labelled pool of ``max(ks)`` and ``test_patients`` held-out ones. The pretraining cohort goes
   through the curation flow as users' data does (``write_cohort_drop`` + ``toothmcl-data build``: de-
   identification, registration, CBCT tooth identities transferred from the IOS labels) into its own store, so
   pretraining never sees a labelled or a test patient; ``--set curated=false`` publishes ground-truth records
   instead. The labelled pool and the test patients are another store (ground-truth label maps).
2. Pretrain once (``configs/pretrain_cpu.yaml``, every case of the pretraining store, ``pretrain_steps``).
3. For each k, each seed, each modality: fine-tune on the first k labelled patients (the k-subsets nest) from the
   pretrained encoder(s) and from scratch with the same config: steps, schedule, seed (so the same decoder
   initialisation and the same sample order and augmentation; checked: the two runs' ``seen-rank0.csv`` must be
   identical, else the run stops). Presets ``configs/finetune_{cbct,ios}_cpu.yaml`` with ``cbct_steps`` /
   ``ios_steps`` steps and their warm-up scaled down.
4. Score every test patient: CBCT whole-volume sliding-window inference on the native grid (foreground Dice, mean
   per-tooth Dice over its FDI teeth, identification rate); IOS each jaw scan in its own scanner frame (TSA, TIR,
   mIoU). Per k: the mean paired difference pretrained − scratch over (seed, test patient) units for CBCT tooth
   Dice and over (seed, test scan) units for IOS mIoU, with a 95 % percentile bootstrap CI (``bootstrap_ci``).
5. ``DIR/ablation.json`` (everything, per unit), ``DIR/ablation.png`` (metric vs k, both inits, mean ± std over
   seeds), a Markdown table on stdout; ``timings_s`` holds the measured seconds per step of each phase.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import resource
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch

from toothmcl_data.cohorts import build_cohort_stores
from toothmcl_data.configdict import add_set_argument, config_from_dict, preset_path, read_yaml
from toothmcl_data.errors import ConfigError
from toothmcl_data.store import open_version
from toothmcl_data.types import JAWS
from toothmcl_models.ablation_stats import INITS, plot, summarise
from toothmcl_models.finetune import finetune, load_finetuned
from toothmcl_models.pretrain import pretrain
from toothmcl_models.runconfig import CONFIG_DIR, PretrainConfig
from toothmcl_models.scoring import score_cbct_cases, score_ios_cases
from toothmcl_models.segconfig import FinetuneConfig
from toothmcl_models.segmentation import CBCTSegmenter, IOSSegmenter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AblationConfig:
    """Sizes of one ablation run. The values live only in YAML: the presets ``configs/ablation_<name>.yaml``
    (:func:`load_config`; ``cpu``: ≤ 90 min on 2 idle cores, its comments give the budget arithmetic from measured
    per-step times), so no field has a default and a config file names every key."""

    ks: tuple[int, ...]
    """Labelled patients per fine-tuning (nested subsets of one pool of ``max(ks)``)."""
    pretrain_patients: int
    """Paired pretraining patients: ≥ 4 × max(ks) (checked)."""
    test_patients: int
    """Held-out patients."""
    seeds: tuple[int, ...]
    """Fine-tuning seeds; pretraining uses seed 0, so no scratch network starts from the pretraining's own initial
    weights."""
    data_seed: int
    """Draws the cohorts."""
    curated: bool
    """Pretraining store through ``toothmcl-data build`` (else ground-truth records)."""
    synth_spacing_mm: float
    """CBCT voxel of every drawn patient (mm)."""
    ios_resolution_mm: float
    """IOS surface extraction step of every drawn patient (mm)."""
    pretrain_steps: int
    """Pretraining optimiser steps (one run, every case of the pretraining store)."""
    cbct_steps: int
    """Optimiser steps of each CBCT fine-tuning run."""
    ios_steps: int
    """Optimiser steps of each IOS fine-tuning run."""
    cbct_batch: int
    """Crops per CBCT fine-tuning step."""
    ios_batch: int
    """Jaw scans per IOS fine-tuning step."""
    threads: int
    """Torch threads."""
    bootstrap: int
    """Bootstrap resamples of each CI."""
    keep_checkpoints: bool
    """Keep the fine-tuning checkpoints (else deleted after scoring)."""
    overrides: dict[str, Any]
    """Extra ``data`` fields for every run (tests: smaller crops/points)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "ks", tuple(sorted(set(self.ks))))
        object.__setattr__(self, "seeds", tuple(self.seeds))
        if not self.ks or min(self.ks) < 1 or not self.seeds or self.test_patients < 1:
            raise ConfigError(f"ablation: ks and seeds must be non-empty, k ≥ 1, test_patients ≥ 1, got {self}")
        if self.pretrain_patients < 4 * max(self.ks):
            raise ConfigError(
                f"ablation: pretraining needs ≥ 4 × max(k) = {4 * max(self.ks)} paired patients, got "
                f"{self.pretrain_patients}; raise pretrain_patients or lower ks (--set pretrain_patients=N)"
            )
        if min(self.pretrain_steps, self.cbct_steps, self.ios_steps) < 1:
            raise ConfigError("ablation: step counts must be ≥ 1")


def load_config(path: Path = Path("cpu"), overrides: Sequence[str] = ()) -> AblationConfig:
    """The ablation config of a YAML file, or of the preset ``configs/ablation_<path>.yaml``, with ``--set``
    ``overrides``."""
    path = preset_path(path, "ablation", CONFIG_DIR)
    return config_from_dict(AblationConfig, read_yaml(path), str(path), overrides)


CPU = load_config()
"""The CPU preset (``configs/ablation_cpu.yaml``)."""


def build_stores(config: AblationConfig, out: Path) -> tuple[Path, Path, list[str], list[str]]:
    """(pretraining store, downstream store, labelled pool, test pseudonyms); the stores share no patient."""
    stores = build_cohort_stores(
        out,
        config.data_seed,
        spacing_mm=config.synth_spacing_mm,
        ios_resolution_mm=config.ios_resolution_mm,
        pretrain=config.pretrain_patients,
        labelled=max(config.ks),
        test=config.test_patients,
        curated=config.curated,
    )
    return stores.pretrain, stores.downstream, stores.labelled, stores.test


def pretrain_config(config: AblationConfig) -> PretrainConfig:
    """``configs/pretrain_cpu.yaml`` on every case of the pretraining store, ``pretrain_steps`` steps."""
    base = PretrainConfig.from_yaml(Path("cpu"))
    steps = config.pretrain_steps
    optim = replace(
        base.toothmcl.optim, total_steps=steps, warmup_steps=min(base.toothmcl.optim.warmup_steps, steps // 10)
    )
    data = replace(base.data, split=None, eval_splits=(), **config.overrides)
    run = replace(base.run, threads=config.threads, checkpoint_every=steps, log_every=10)
    return replace(base, toothmcl=replace(base.toothmcl, optim=optim), data=data, run=run)


def finetune_config(
    config: AblationConfig, task: str, pre: PretrainConfig, seed: int, cases: Sequence[str]
) -> FinetuneConfig:
    """The CPU fine-tuning preset of ``task`` on ``cases`` with the pretraining's encoder sections; the same for
    both inits."""
    base = FinetuneConfig.from_yaml(Path("cpu"), task)
    steps = config.cbct_steps if task == "cbct" else config.ios_steps
    batch = config.cbct_batch if task == "cbct" else config.ios_batch
    overrides = {k: v for k, v in config.overrides.items() if k in ("crop_shape", "spacing_mm", "points")}
    return replace(
        base,
        cbct=pre.toothmcl.model.cbct,
        ios=pre.toothmcl.model.ios,
        segment=replace(base.segment, cases=tuple(cases)),
        optim=replace(base.optim, total_steps=steps, warmup_steps=min(base.optim.warmup_steps, steps // 10)),
        data=replace(base.data, split=None, batch_size=batch, **overrides),
        run=replace(base.run, seed=seed, threads=config.threads, checkpoint_every=steps, log_every=10),
    )


def _clock() -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process and its finished children: user + system, all threads)."""
    child = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.perf_counter(), time.process_time() + child.ru_utime + child.ru_stime


def _add(timings: dict[str, float], name: str, start: tuple[float, float]) -> None:
    """Add the wall and CPU seconds since ``start`` to ``timings[name + '_s']`` and ``[name + '_cpu_s']``."""
    wall, cpu = _clock()
    timings[f"{name}_s"] = timings.get(f"{name}_s", 0.0) + wall - start[0]
    timings[f"{name}_cpu_s"] = timings.get(f"{name}_cpu_s", 0.0) + cpu - start[1]


def seen_order(run: Path) -> list[tuple[str, str, str, str]]:
    """(step, epoch, index, case) of every sample the run trained on, in order (``seen-rank0.csv``)."""
    with (run / "seen-rank0.csv").open() as fh:
        return [(r["step"], r["epoch"], r["index"], r["case"]) for r in csv.DictReader(fh)]


def score_units(task: str, run: Path, store: Path, cases: Sequence[str], seed: int) -> list[dict[str, Any]]:
    """One row per test unit: CBCT per patient (whole volume, native grid), IOS per jaw scan (own scanner frame)."""
    net, ft = load_finetuned(run)
    version = open_version(store)
    expected = CBCTSegmenter if task == "cbct" else IOSSegmenter
    if not isinstance(net, expected):
        raise ConfigError(
            f"fine-tuning run {run} holds a {type(net).__name__}, expected a {expected.__name__} for the {task} arm; "
            "its folder was overwritten by the other task — rerun the ablation into an empty --out"
        )
    if isinstance(net, CBCTSegmenter):
        return [
            {
                "unit": case,
                **score_cbct_cases(net, version, [case], spacing_mm=ft.data.spacing_mm, roi=ft.data.crop_shape),
            }
            for case in cases
        ]
    rows = []
    for case in cases:
        for jaw in JAWS:
            scan = version.ios(case, jaw)
            figures = score_ios_cases(net, [(case, scan)], points=ft.data.points, frame=ft.segment.frame, seed=seed)
            rows.append({"unit": f"{case}:{jaw}", **figures})
    return rows


def _train_pair(
    task: str, k: int, seed: int, config: AblationConfig, pre: PretrainConfig, paths: dict[str, Any]
) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Fine-tune ``task`` on k patients from both inits with one config, check the sample orders match, score."""
    cfg = finetune_config(config, task, pre, seed, paths["labelled"][:k])
    rows: list[dict[str, Any]] = []
    seconds: dict[str, float] = {}
    orders = {}
    for init in INITS:
        run = paths["out"] / "runs" / f"{task}-k{k}-seed{seed}-{init}"
        if run.exists():
            shutil.rmtree(run)
        start = _clock()
        finetune(str(paths["down"]), "latest", cfg, run, init=paths["ckpt"] if init == "pretrained" else None)
        _add(seconds, f"{task}_train", start)
        orders[init] = seen_order(run)
        start = _clock()
        for row in score_units(task, run, paths["down"], paths["test"], seed):
            rows.append({"task": task, "k": k, "seed": seed, "init": init, **row})
        _add(seconds, f"{task}_score", start)
        if not config.keep_checkpoints:
            shutil.rmtree(run / "checkpoints", ignore_errors=True)
    if orders["pretrained"] != orders["scratch"]:
        raise RuntimeError(f"{task} k={k} seed={seed}: pretrained and scratch runs saw different samples or orders")
    return rows, seconds


def run_ablation(config: AblationConfig, out: Path) -> dict[str, Any]:
    """Run everything in ``out``; returns the report (also ``out/ablation.json``, the plot ``out/ablation.png``)."""
    if config.threads:
        torch.set_num_threads(config.threads)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    t0 = _clock()
    pre_store, down, labelled, test = build_stores(config, out)
    _add(timings, "stores", t0)
    pre = pretrain_config(config)
    start = _clock()
    if (out / "pretrain").exists():
        shutil.rmtree(out / "pretrain")
    (out / "rows.jsonl").unlink(missing_ok=True)
    pre_result = pretrain(str(pre_store), "latest", pre, out / "pretrain")
    _add(timings, "pretrain", start)
    paths = {"out": out, "down": down, "labelled": labelled, "test": test, "ckpt": out / "pretrain" / "checkpoints"}
    rows: list[dict[str, Any]] = []
    for k in config.ks:
        for seed in config.seeds:
            for task in ("cbct", "ios"):
                got, seconds = _train_pair(task, k, seed, config, pre, paths)
                rows += got
                with (out / "rows.jsonl").open("a") as partial:  # what a run cut short still leaves
                    partial.writelines(json.dumps(row, default=float) + "\n" for row in got)
                for name, value in seconds.items():
                    timings[name] = timings.get(name, 0.0) + value
                log.info("k=%d seed=%d %s done", k, seed, task)
    _add(timings, "total", t0)
    runs = len(config.ks) * len(config.seeds) * len(INITS)
    per_step = {
        f"{name}{kind}": timings[f"{phase}{kind}"] / count
        for kind in ("_s", "_cpu_s")
        for name, phase, count in (
            ("pretrain_per_step", "pretrain", config.pretrain_steps),
            ("cbct_per_step", "cbct_train", runs * config.cbct_steps),
            ("ios_per_step", "ios_train", runs * config.ios_steps),
            ("cbct_score_per_patient", "cbct_score", runs * config.test_patients),
            ("ios_score_per_patient", "ios_score", runs * config.test_patients),
            ("stores_per_patient", "stores", config.pretrain_patients + max(config.ks) + config.test_patients),
        )
    }
    report = {
        "config": asdict(config),
        "pretrain_store": str(pre_store),
        "pretrain_cases": open_version(pre_store).table("cases").num_rows,
        "labelled_pool": labelled,
        "test_cases": test,
        "pretrain_final": {k: v for k, v in pre_result.items() if isinstance(v, int | float)},
        "rows": rows,
        "summary": summarise(rows, config),
        "timings_s": timings,
        "measured": per_step,
    }
    (out / "ablation.json").write_text(json.dumps(report, indent=2, default=float))
    plot(report, out / "ablation.png")
    report["plot"] = str(out / "ablation.png")
    return report


def estimate_minutes(config: AblationConfig, measured: dict[str, float], kind: str = "_s") -> float:
    """Minutes ``config`` takes at the rates of ``measured`` (``report['measured']``): patients × store seconds per
    patient + pretraining steps × s/step + runs × (steps × s/step + test patients × scoring s/patient) per
    modality. ``kind``: ``_s``
    (wall seconds, as loaded as the machine was) or ``_cpu_s`` (CPU seconds: what one idle core would take)."""
    runs = len(config.ks) * len(config.seeds) * len(INITS)
    patients = config.pretrain_patients + max(config.ks) + config.test_patients
    names = ("stores_per_patient", "pretrain_per_step", "cbct_per_step", "ios_per_step", "cbct_score_per_patient")
    m = {name: measured[f"{name}{kind}"] for name in (*names, "ios_score_per_patient")}
    seconds = (
        patients * m["stores_per_patient"]
        + config.pretrain_steps * m["pretrain_per_step"]
        + runs * (config.cbct_steps * m["cbct_per_step"] + config.test_patients * m["cbct_score_per_patient"])
        + runs * (config.ios_steps * m["ios_per_step"] + config.test_patients * m["ios_score_per_patient"])
    )
    return seconds / 60.0


def format_report(report: dict[str, Any]) -> str:
    """Markdown: per k, each init's mean ± std over seeds and the paired difference with its 95 % CI."""
    lines = [
        "| k | CBCT tooth Dice pretrained | scratch | Δ [95 % CI] | IOS mIoU pretrained | scratch | Δ [95 % CI] |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    s = report["summary"]
    for k in s["cbct"]["per_k"]:
        cells = [k]
        for task in ("cbct", "ios"):
            e = s[task]["per_k"][k]
            d = e["difference"]
            cells += [
                f"{e['pretrained']['mean']:.3f} ± {e['pretrained']['std']:.3f}",
                f"{e['scratch']['mean']:.3f} ± {e['scratch']['std']:.3f}",
                f"{d['mean']:+.3f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}] (n={d['units']})",
            ]
        lines.append("| " + " | ".join(cells) + " |")
    c, t, m = report["config"], report["timings_s"], report["measured"]
    lines.append(
        f"\n{len(c['seeds'])} seeds, {report['pretrain_cases']} of {c['pretrain_patients']} pretraining patients "
        f"{'published by the curation flow' if c['curated'] else '(ground-truth records)'}, "
        f"{len(report['test_cases'])} test patients; "
        f"steps: pretraining {c['pretrain_steps']}, CBCT {c['cbct_steps']}, IOS {c['ios_steps']}; wall (CPU) seconds: "
        f"stores {t['stores_s']:.0f} ({t['stores_cpu_s']:.0f}), pretraining {t['pretrain_s']:.0f} "
        f"({t['pretrain_cpu_s']:.0f}), total {t['total_s']:.0f} ({t['total_cpu_s']:.0f}); per step wall (CPU): "
        f"pretraining {m['pretrain_per_step_s']:.2f} ({m['pretrain_per_step_cpu_s']:.2f}) s, CBCT "
        f"{m['cbct_per_step_s']:.2f} ({m['cbct_per_step_cpu_s']:.2f}) s, IOS {m['ios_per_step_s']:.2f} "
        f"({m['ios_per_step_cpu_s']:.2f}) s; scoring per test patient CBCT {m['cbct_score_per_patient_s']:.1f} "
        f"({m['cbct_score_per_patient_cpu_s']:.1f}) s, IOS {m['ios_score_per_patient_s']:.1f} "
        f"({m['ios_score_per_patient_cpu_s']:.1f}) s. The default CPU preset at these rates: "
        f"{estimate_minutes(CPU, m):.0f} min wall as loaded, {estimate_minutes(CPU, m, '_cpu_s'):.0f} min of CPU time"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m toothmcl_models.ablation", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--config", type=Path, default=Path("cpu"), help="ablation YAML or a preset (default cpu)")
    add_set_argument(parser)
    parser.add_argument("--out", type=Path, default=Path("ablation-run"), help="work folder (stores, runs, JSON, PNG)")
    parser.add_argument("--json", action="store_true", help="print the whole report as JSON")
    args = parser.parse_args(argv)
    report = run_ablation(load_config(args.config, args.set), args.out)
    print(json.dumps(report, indent=2, default=float) if args.json else format_report(report))


if __name__ == "__main__":
    main()
