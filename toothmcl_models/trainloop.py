"""The one training loop of pretraining and fine-tuning: a fix here lands in both.

``train_loop(step_module, dataset, …)`` runs ``step_module(batch) -> (loss, parts)`` for ``optim.total_steps``
optimiser steps (or fewer: ``max_steps`` stops early without changing the schedule) and owns everything around it:

- processes: DDP over torchrun's ranks (gloo on CPU, NCCL on GPU); ``find_unused_parameters`` for modules that
  leave parts unused on a step (the IOS segmenter's other jaw);
- samples: the world-size independent, resumable order (``toothmcl_data.stream.order``); every rank takes the same
  number of positions per epoch (the order is padded), ``drop_last`` only when a rank's share of an epoch holds a
  full batch — so a rank with fewer samples than a batch still gets (smaller) batches instead of spinning forever;
  the sampler advances by the global number of samples each micro-batch consumed, the same way for every task;
- precision: autocast on CUDA in ``optim.amp_dtype`` (bfloat16, or float16 with a ``GradScaler``; the scaler is
  always built and checkpointed so resumes see the same state); CPU runs in float32;
- steps: ``optim.accumulate`` micro-batches per optimiser step (loss divided by it; DDP syncs on the last one),
  gradient clipping after unscaling, AdamW with warm-up + cosine stepped per optimiser step, no weight decay on
  biases, norms and learnable scalars (:func:`toothmcl_models.schedule.param_groups`);
- modes: ``train()`` for every step, ``eval()`` inside ``evaluate`` (then back), RNG states untouched by it;
- state: rank 0 checkpoints model / optimiser / scheduler / scaler / sampler / RNG / config every
  ``run.checkpoint_every`` steps and at the end (``checkpoint``); ``resume`` continues from ``out/checkpoints``
  and reproduces the uninterrupted run;
- logs: ``out/metrics.csv`` (+ TensorBoard) every ``run.log_every`` steps with loss, parts (averaged over micro-
  batches and ranks), lr and epoch; ``out/seen-rank<r>.csv`` lists the samples each rank trained on; ``evaluate``
  (rank 0) adds its metrics at step 0 (before training), every ``run.eval_every`` steps and at the end.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset

from toothmcl_data.errors import ConfigError
from toothmcl_data.heap import keep_freed_memory
from toothmcl_data.stream.collate import collate
from toothmcl_data.stream.order import ResumableSampler
from toothmcl_models.checkpoint import restore_training, save_checkpoint, training_state
from toothmcl_models.config import OptimConfig
from toothmcl_models.distributed import mean_across_ranks, setup_distributed, to_device
from toothmcl_models.runconfig import DataConfig, RunConfig
from toothmcl_models.runlog import RunLog
from toothmcl_models.schedule import adamw_warmup_cosine

StepOutput = tuple[Tensor, Mapping[str, Any]]
Evaluate = Callable[[nn.Module, torch.device], dict[str, float]]


def autocast_context(optim: OptimConfig, device: torch.device) -> Any:
    """Autocast on CUDA in ``optim.amp_dtype`` when ``optim.amp``; a no-op elsewhere (CPU runs in float32)."""
    if optim.amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=getattr(torch, optim.amp_dtype))
    return nullcontext()


def uses_grad_scaler(optim: OptimConfig, device: torch.device) -> bool:
    """float16 autocast needs loss scaling; bfloat16 (same exponent range as float32) does not."""
    return optim.amp and device.type == "cuda" and optim.amp_dtype == "float16"


def drop_last(sampler: ResumableSampler, batch_size: int) -> bool:
    """Drop an epoch's short last batch only when every rank's share of the epoch holds a full batch."""
    return sampler.epoch_size // sampler.world_size >= batch_size


def _epochs(dataset: Dataset[Any], sampler: ResumableSampler, data: DataConfig) -> Iterator[dict[str, Any]]:
    """Batches forever, epoch after epoch, from the sampler's current position."""
    while True:
        loader = DataLoader(
            dataset,
            batch_size=data.batch_size,
            sampler=sampler,
            num_workers=data.num_workers,
            collate_fn=collate,
            drop_last=drop_last(sampler, data.batch_size),
        )
        yielded = False
        for batch in loader:
            yielded = True
            yield batch
        if not yielded and sampler.state.consumed == 0:  # cannot happen with drop_last() above; never spin
            raise ConfigError(f"an epoch of {sampler.n} samples gave rank {sampler.rank} no batch of {data.batch_size}")
        sampler.set_epoch(sampler.state.epoch + 1)
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(sampler.state.epoch)


def optimiser_step(
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
    params: list[nn.Parameter],
    grad_clip: float,
) -> None:
    """After backward: unscale and clip the global gradient norm (when ``grad_clip``), step the optimiser through
    the scaler, update the scaler, step the schedule (``bench/gpu.py`` times exactly this)."""
    if grad_clip:
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(params, grad_clip)
    scaler.step(optimizer)
    scaler.update()
    scheduler.step()


def _scalar(value: Any) -> float:
    return float(value.detach()) if isinstance(value, Tensor) else float(value)


def run_evaluate(evaluate: Evaluate, module: nn.Module, device: torch.device) -> dict[str, float]:
    """``evaluate(module)`` in eval mode without touching the RNG streams training draws from; back to train()."""
    was_training = module.training
    module.eval()
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), torch.no_grad():
            return {f"eval_{k}": float(v) for k, v in evaluate(module, device).items()}
    finally:
        module.train(was_training)


def train_loop(
    step_module: nn.Module,
    dataset: Dataset[Any],
    *,
    optim: OptimConfig,
    data: DataConfig,
    run: RunConfig,
    out: Path,
    config: dict[str, Any],
    saved: nn.Module | None = None,
    extra_state: Mapping[str, Any] | None = None,
    resume: bool = False,
    max_steps: int | None = None,
    name: str = "training",
    find_unused_parameters: bool = False,
    evaluate: Evaluate | None = None,
    evaluated: nn.Module | None = None,
) -> dict[str, Any]:
    """Train ``step_module`` (batch → (loss, parts)) on ``dataset``; returns the last step's metrics.

    ``config``: the run's config as a dict (stored in checkpoints; a resume must use the same). ``saved``: the
    module whose ``state_dict`` is checkpointed under ``"module"`` (default ``step_module``); ``extra_state``:
    more checkpoint entries (store, version, task …). ``evaluate(module, device) -> {name: value}`` runs on rank 0
    on ``evaluated`` (default ``saved``) at step 0, every ``run.eval_every`` steps and at the end.
    """
    rank, world, device = setup_distributed()
    if run.threads:
        torch.set_num_threads(run.threads)
    if device.type == "cpu":
        keep_freed_memory()
    sampler = ResumableSampler(len(dataset), seed=run.seed, rank=rank, world_size=world)  # type: ignore[arg-type]
    saved = step_module if saved is None else saved
    evaluated = saved if evaluated is None else evaluated
    step_module.to(device)
    optimizer, scheduler = adamw_warmup_cosine(step_module, optim)
    params = [p for p in step_module.parameters() if p.requires_grad]
    scaler = torch.amp.GradScaler(device.type, enabled=uses_grad_scaler(optim, device))
    resumable = {"module": saved, "optimizer": optimizer, "scheduler": scheduler, "scaler": scaler, "sampler": sampler}
    ckpt_dir = out / "checkpoints"
    step = restore_training(ckpt_dir, config, **resumable) if resume else 0
    if hasattr(dataset, "set_epoch"):
        dataset.set_epoch(sampler.state.epoch)
    ddp: nn.Module = (
        DistributedDataParallel(step_module, find_unused_parameters=find_unused_parameters)
        if world > 1
        else step_module
    )
    log = RunLog(out, enabled=rank == 0, resume_step=step if resume else None)
    seen = RunLog(out, resume_step=step if resume else None, filename=f"seen-rank{rank}.csv", tensorboard=False)
    stop = optim.total_steps if max_steps is None else min(max_steps, optim.total_steps)
    source = _epochs(dataset, sampler, data)
    last: dict[str, Any] = {}

    def evaluation(at: int) -> dict[str, float]:
        values = run_evaluate(evaluate, evaluated, device) if evaluate is not None and rank == 0 else {}
        if world > 1:
            dist.barrier()
        return values

    if evaluate is not None and not resume:
        before = evaluation(0)
        if before:
            log.log(0, before)
    from rich.progress import Progress

    with Progress(disable=rank != 0 or not os.isatty(2)) as bar:
        task = bar.add_task(name, total=stop, completed=step)
        while step < stop:
            step_module.train()
            optimizer.zero_grad(set_to_none=True)
            sums: dict[str, float] = {}
            epoch = sampler.state.epoch
            for micro in range(optim.accumulate):
                batch = next(source)
                epoch = sampler.state.epoch
                for index, case in zip(batch.get("index", []), batch["case"], strict=False):
                    seen.log(step + 1, {"epoch": epoch, "index": int(index), "case": case})
                sync = micro == optim.accumulate - 1 or world == 1
                with nullcontext() if sync else ddp.no_sync(), autocast_context(optim, device):  # type: ignore[operator]
                    total, parts = ddp(to_device(batch, device))
                scaler.scale(total / optim.accumulate).backward()
                sampler.advance(len(batch["case"]) * world)
                for key, value in {"loss": total, **parts}.items():
                    sums[key] = sums.get(key, 0.0) + _scalar(value) / optim.accumulate
            optimiser_step(optimizer, scheduler, scaler, params, optim.grad_clip)
            step += 1
            last = {"step": step, "epoch": epoch, "lr": scheduler.get_last_lr()[0], **mean_across_ranks(sums, world)}
            if evaluate is not None and ((run.eval_every and step % run.eval_every == 0) or step == stop):
                last.update(evaluation(step))
            if step % run.log_every == 0 or step == stop:
                log.log(step, {k: v for k, v in last.items() if k != "step"})
            if rank == 0 and (step % run.checkpoint_every == 0 or step == stop):
                state = {**training_state(config, **resumable), **dict(extra_state or {})}
                save_checkpoint(ckpt_dir, step, state)
            bar.update(task, completed=step, description=f"{name} · loss {last['loss']:.4f}")
    seen.close()
    log.close()
    if world > 1:
        dist.barrier()
    return last
