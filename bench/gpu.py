"""Step time, peak GPU memory, samples/s and model FLOP utilisation of the ``paper`` presets on a GPU.

    torchrun --standalone --nproc-per-node G bench/gpu.py [--tasks pretrain,cbct,ios] [--set steps=20] [--json]
    python bench/gpu.py --config smoke --json   # CPU or GPU: tiny presets, a few steps, no MFU (proves the script)

What runs comes from ``bench/configs/gpu_<name>.yaml`` (``--config``, default ``paper``; or a YAML file) with
``--set KEY=VALUE`` overrides: the training presets timed, the timed and warm-up steps, whether MFU is reported and
the synthetic patients (:class:`GpuBenchConfig`).

For each of pretraining (``configs/pretrain_paper.yaml``: SwinUNETR-v2 feature 48 on 256×256×64 crops at 0.3 mm +
a Point Transformer per jaw on 24,000 points) and the two fine-tunings (``configs/finetune_{cbct,ios}_paper.yaml``)
it publishes a few synthetic patients (``toothmcl_data.synth.record``; rank 0, once per ``--out``), builds the
preset's training step (the module ``train_loop`` runs: model + loss), draws one batch per rank from the preset's
own stream (crops resampled to the preset's grid, points sampled as in training) and times optimiser steps exactly
as the loop does them: autocast in the preset's ``amp_dtype`` (bf16), backward, gradient clipping, AdamW + warm-up/
cosine, DDP over torchrun's ranks (NCCL on GPU, gloo on CPU). Data loading is excluded (the loader's workers run
beside the step in training), so the figures are the model's.

- step time: mean over ``steps`` timed steps after ``warmup`` untimed ones (``cuda.synchronize`` around each),
  the slowest rank's mean;
- peak memory: ``torch.cuda.max_memory_allocated`` over the timed steps (PyTorch's allocator; nvidia-smi shows
  more: the caching allocator's reserve and the CUDA context), the largest over ranks;
- samples/s: samples per step over all ranks / step time (pretraining: patients, each a CBCT crop + both jaw
  scans; CBCT fine-tuning: crops; IOS fine-tuning: jaw scans);
- MFU: model FLOPs per step (forward + backward, counted once by ``torch.utils.flop_counter.FlopCounterMode``:
  matrix multiplications, convolutions and attention, the usual MFU convention; the optimiser is not counted) /
  step time / the GPU's peak dense bf16 FLOP/s from :data:`PEAK_BF16_TFLOPS` (``--peak-tflops`` for other GPUs;
  unknown GPU or CPU: no MFU).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Dataset
from torch.utils.flop_counter import FlopCounterMode

from toothmcl_data.configdict import add_set_argument, config_from_yaml, preset_path, require_positive
from toothmcl_data.errors import ConfigError
from toothmcl_data.store import publish
from toothmcl_data.stream.collate import collate
from toothmcl_data.stream.dataset import CaseDataset
from toothmcl_data.synth.config import SynthConfig
from toothmcl_data.synth.record import synth_records
from toothmcl_models.config import OptimConfig
from toothmcl_models.distributed import setup_distributed, to_device
from toothmcl_models.finetune import SegmentationStep, make_dataset
from toothmcl_models.model import build
from toothmcl_models.pretrain import Pretrainer
from toothmcl_models.runconfig import DataConfig, PretrainConfig
from toothmcl_models.schedule import adamw_warmup_cosine
from toothmcl_models.segconfig import FinetuneConfig
from toothmcl_models.segmentation import build_segmenter
from toothmcl_models.trainloop import autocast_context, optimiser_step, uses_grad_scaler

TASKS = ("pretrain", "cbct", "ios")

PEAK_BF16_TFLOPS: tuple[tuple[str, float], ...] = (
    ("H200", 989.0),  # NVIDIA H200 SXM: dense bf16 (the 1,979 of the data sheet is with 2:4 sparsity)
    ("H100 80GB HBM3", 989.0),  # how torch names the H100 SXM
    ("H100 SXM", 989.0),
)
"""Peak dense bf16 tensor-core TFLOP/s by a substring of ``torch.cuda.get_device_name()``, first match wins."""

CONFIG_DIR = Path(__file__).parent / "configs"
"""The presets ``gpu_<name>.yaml``: ``paper`` (the default) and ``smoke``."""


@dataclass(frozen=True)
class GpuBenchConfig:
    """What one bench run times. The values live only in YAML (``bench/configs/gpu_<name>.yaml``, whose comments say
    why), so no field has a default."""

    preset: str
    """The training presets timed: ``configs/pretrain_<preset>.yaml`` and ``configs/finetune_{cbct,ios}_<preset>.yaml``
    (a name, or a YAML path for all three)."""
    steps: int
    """Timed optimiser steps per task."""
    warmup: int
    """Untimed steps before them."""
    mfu: bool
    """Report MFU against the GPU's peak bf16 FLOP/s (:func:`peak_tflops`); false: no MFU."""
    synth: SynthConfig
    """The synthetic patients published once into the bench's store."""

    def __post_init__(self) -> None:
        require_positive(self, "steps")
        if self.warmup < 0:
            raise ConfigError(f"GpuBenchConfig.warmup must be ≥ 0, got {self.warmup}")


def load_config(path: Path = Path("paper"), overrides: Sequence[str] = ()) -> GpuBenchConfig:
    """The bench config of a YAML file, or of the preset ``bench/configs/gpu_<path>.yaml``, with ``--set``
    ``overrides``."""
    return config_from_yaml(GpuBenchConfig, preset_path(path, "gpu", CONFIG_DIR), overrides)


def peak_tflops(device: torch.device, override: float | None = None) -> float | None:
    """The device's peak dense bf16 TFLOP/s: ``override``, else the table's first match, else None (CPU too)."""
    if override is not None:
        return override
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in PEAK_BF16_TFLOPS if key in name), None)


def ensure_store(root: Path, synth: SynthConfig, patients: int, rank: int, world: int) -> Path:
    """``root/store`` with ``patients`` synthetic patients (rank 0 publishes it once; the others wait); a store
    drawn with another ``synth`` is refused."""
    store, done = root / "store", root / "store.done"
    if done.exists() and json.loads(done.read_text()) != synth.to_dict():
        raise ConfigError(f"{store}: drawn with other synth settings ({done}); pass another --out")
    if rank == 0 and not done.exists():
        names = [f"GPU{i:03d}" for i in range(patients)]
        publish(store, synth_records(synth, [[2026, i] for i in range(patients)], names), message="bench/gpu")
        done.write_text(json.dumps(synth.to_dict()))
    if world > 1:
        dist.barrier()
    return store


def task_configs(task: str, preset: str) -> tuple[Any, OptimConfig, DataConfig]:
    """(config, optim, data) of ``task`` in ``preset``, reading every case of the store (split None)."""
    if task == "pretrain":
        pre = PretrainConfig.from_yaml(Path(preset))
        pre = replace(pre, data=replace(pre.data, split=None, eval_splits=(), num_workers=0))
        return pre, pre.toothmcl.optim, pre.data
    ft = FinetuneConfig.from_yaml(Path(preset), task)
    ft = replace(ft, data=replace(ft.data, split=None, num_workers=0))
    return ft, ft.optim, ft.data


def build_step(task: str, config: Any) -> nn.Module:
    """The step module ``train_loop`` would run for ``task`` (batch → (loss, parts))."""
    if isinstance(config, PretrainConfig):
        model, loss = build(config.toothmcl, seed=config.run.seed)
        return Pretrainer(model, loss)
    net = build_segmenter(task, config.cbct, config.ios, seed=config.run.seed, jaws=config.segment.jaws)
    return SegmentationStep(net, config)


def one_batch(task: str, store: Path, config: Any, rank: int) -> dict[str, Any]:
    """This rank's batch of ``data.batch_size`` samples from the preset's stream (distinct samples per rank where
    the store has enough)."""
    data: DataConfig = config.data
    dataset: Dataset[Any]
    if task == "pretrain":
        dataset = CaseDataset(str(store), "latest", None, data.stream(config.run.seed))
    else:
        dataset = make_dataset(str(store), "latest", config)
    n = len(dataset)
    return collate([dataset[(rank * data.batch_size + i) % n] for i in range(data.batch_size)])


def count_flops(step: nn.Module, batch: dict[str, Any], optim: OptimConfig, device: torch.device) -> int:
    """FLOPs of one forward + backward of ``step`` on ``batch`` (``FlopCounterMode``; gradients cleared after)."""
    with FlopCounterMode(display=False) as counter:
        with autocast_context(optim, device):
            total, _ = step(batch)
        total.backward()
    step.zero_grad(set_to_none=True)
    return int(counter.get_total_flops())


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _reduce_max(values: list[float], world: int, device: torch.device) -> list[float]:
    if world == 1:
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return [float(v) for v in tensor.tolist()]


def bench_task(
    task: str, preset: str, store: Path, *, steps: int, warmup: int, peak: float | None, world: int, rank: int
) -> dict[str, Any]:
    """Time ``steps`` optimiser steps of ``task`` (after ``warmup``); figures as the module docstring says."""
    _, _, device = setup_distributed()
    config, optim, data = task_configs(task, preset)
    step_module = build_step(task, config)
    step_module.to(device)
    params_m = sum(p.numel() for p in step_module.parameters()) / 1e6
    batch = to_device(one_batch(task, store, config, rank), device)
    flops = count_flops(step_module, batch, optim, device)
    ddp: nn.Module = (
        DistributedDataParallel(step_module, find_unused_parameters=task == "ios") if world > 1 else step_module
    )
    optimizer, scheduler = adamw_warmup_cosine(step_module, optim)
    scaler = torch.amp.GradScaler(device.type, enabled=uses_grad_scaler(optim, device))
    trainable = [p for p in step_module.parameters() if p.requires_grad]
    times: list[float] = []
    for i in range(warmup + steps):
        if i == warmup and device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        _sync(device)
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        with autocast_context(optim, device):
            total, _ = ddp(batch)
        scaler.scale(total).backward()
        optimiser_step(optimizer, scheduler, scaler, trainable, optim.grad_clip)
        _sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    memory = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    step_s, memory = _reduce_max([statistics.fmean(times), memory], world, device)
    samples = data.batch_size * world
    achieved = flops / step_s / 1e12
    shape = {"crop_shape": list(data.crop_shape), "spacing_mm": data.spacing_mm} if task != "ios" else {}
    if task != "cbct":
        shape["points_per_jaw"] = data.points
    return {
        "step_s": step_s,
        "step_s_min": min(times),
        "peak_memory_gib": memory if device.type == "cuda" else None,
        "samples_per_s": samples / step_s,
        "batch_per_rank": data.batch_size,
        "flops_per_step_per_rank": flops,
        "tflops_per_s_per_rank": achieved,
        "mfu": achieved / peak if peak else None,
        "params_m": params_m,
        "loss_finite": bool(torch.isfinite(total.detach()).item()),
        **shape,
    }


def run_bench(args: argparse.Namespace) -> dict[str, Any]:
    rank, world, device = setup_distributed()
    if args.threads:
        torch.set_num_threads(args.threads)
    config: GpuBenchConfig = args.config
    preset, steps, warmup = config.preset, config.steps, config.warmup
    patients = max(2, world * 2)
    store = ensure_store(args.out / f"{Path(preset).stem}-{patients}", config.synth, patients, rank, world)
    peak = peak_tflops(device, args.peak_tflops) if config.mfu else None
    report: dict[str, Any] = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "world_size": world,
        "backend": dist.get_backend() if dist.is_initialized() else None,
        "preset": preset,
        "amp_dtype": "bfloat16 autocast" if device.type == "cuda" else "float32 (CPU)",
        "peak_tflops": peak,
        "steps": steps,
        "warmup": warmup,
    }
    for task in args.tasks:
        torch.manual_seed(0)
        report[task] = bench_task(task, preset, store, steps=steps, warmup=warmup, peak=peak, world=world, rank=rank)
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return report


def format_report(report: dict[str, Any]) -> str:
    lines = [
        f"{report['device']} × {report['world_size']} ({report['backend'] or 'one process'}), preset "
        f"{report['preset']}, {report['amp_dtype']}, peak {report['peak_tflops'] or 'n/a'} TFLOP/s per GPU",
        "| task | step (s) | peak memory (GiB) | samples/s | TFLOP/s per rank | MFU |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for task in TASKS:
        if task not in report:
            continue
        r = report[task]
        memory = f"{r['peak_memory_gib']:.1f}" if r["peak_memory_gib"] is not None else "n/a"
        mfu = f"{100 * r['mfu']:.1f} %" if r["mfu"] is not None else "n/a"
        lines.append(
            f"| {task} | {r['step_s']:.3f} | {memory} | {r['samples_per_s']:.2f} | "
            f"{r['tflops_per_s_per_rank']:.3g} | {mfu} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="torchrun --standalone --nproc-per-node G bench/gpu.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--tasks", default=",".join(TASKS), help="comma-separated: pretrain, cbct, ios (default all)")
    parser.add_argument("--config", type=Path, default=Path("paper"), help="bench YAML or a preset: paper, smoke")
    add_set_argument(parser)
    parser.add_argument("--peak-tflops", type=float, default=None, help="peak bf16 TFLOP/s per GPU (else the table)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    parser.add_argument("--out", type=Path, default=Path("bench-gpu"), help="work folder (the synthetic store)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    args.tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    unknown = sorted(set(args.tasks) - set(TASKS))
    if unknown:
        parser.error(f"unknown task(s) {unknown}; choose from {', '.join(TASKS)}")
    args.config = load_config(args.config, args.set)
    try:
        report = run_bench(args)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps(report, indent=2) if args.json else format_report(report))


if __name__ == "__main__":
    main()
