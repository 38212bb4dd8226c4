"""ToothMCL contrastive pretraining on a published version: ``torchrun -m toothmcl_models.pretrain``.

    torchrun --nproc-per-node 2 -m toothmcl_models.pretrain --store S --version V --config tiny --out DIR

DDP over torchrun's ranks (gloo on CPU, NCCL on GPU), bfloat16 autocast on GPU, AdamW with warm-up + cosine
stepped per optimiser step. The global sample order is fixed by (seed, epoch) and independent of the number of
ranks (``toothmcl_data.stream.order``). Every ``checkpoint_every`` steps rank 0 writes a checkpoint with model, loss
(learnable scales/biases), optimiser, scheduler, AMP scaler, sampler state and config; ``--resume`` continues from
``DIR/checkpoints/latest.pt`` and reproduces the uninterrupted run. Metrics go to ``DIR/metrics.csv`` (and
TensorBoard when installed); ``DIR/seen-rank<r>.csv`` lists the samples each rank trained on.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from toothmcl_data.errors import ConfigError
from toothmcl_data.stream.collate import collate
from toothmcl_data.stream.dataset import CaseDataset
from toothmcl_data.stream.order import ResumableSampler
from toothmcl_models.checkpoint import restore_training, save_checkpoint, training_state
from toothmcl_models.distributed import mean_across_ranks, setup_distributed, to_device
from toothmcl_models.losses import ToothMCLLoss
from toothmcl_models.model import ToothMCL, build
from toothmcl_models.runconfig import PretrainConfig
from toothmcl_models.runlog import RunLog
from toothmcl_models.schedule import adamw_warmup_cosine


class Pretrainer(nn.Module):
    """Model and loss as one module, so DDP averages the loss's learnable scales and biases too."""

    def __init__(self, model: ToothMCL, loss: ToothMCLLoss) -> None:
        super().__init__()
        self.model, self.loss = model, loss

    def forward(self, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        out = self.model(batch)
        result = self.loss(out.cbct, out.ios)
        return result.total, result.parts


def pretrain(
    store: str, version: str, config: PretrainConfig, out: Path, *, resume: bool = False, max_steps: int | None = None
) -> dict[str, Any]:
    """Run (or resume) pretraining; returns the final step's metrics. ``max_steps`` stops early (for tests and
    interrupted runs) without changing the schedule."""
    rank, world, device = setup_distributed()
    if config.run.threads:
        torch.set_num_threads(config.run.threads)
    optim_cfg = config.toothmcl.optim
    dataset = CaseDataset(store, version, config.data.split, config.data.stream(config.run.seed))
    if len(dataset) == 0:
        raise ConfigError(
            f"store {store} version {version} split {config.data.split!r} has no case with a CBCT, both jaws "
            "registered and paired teeth; publish such cases or choose another split"
        )
    sampler = ResumableSampler(len(dataset), seed=config.run.seed, rank=rank, world_size=world)
    model, loss = build(config.toothmcl, seed=config.run.seed)
    module: nn.Module = Pretrainer(model, loss).to(device)
    params = [p for p in module.parameters() if p.requires_grad]
    optimizer, scheduler = adamw_warmup_cosine(params, optim_cfg)
    amp = optim_cfg.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler(device.type, enabled=False)  # bfloat16 needs no loss scaling; kept for resume
    step = 0
    ckpt_dir = out / "checkpoints"
    resumable = {"module": module, "optimizer": optimizer, "scheduler": scheduler, "scaler": scaler, "sampler": sampler}
    if resume:
        step = restore_training(ckpt_dir, config.to_dict(), **resumable)
    dataset.set_epoch(sampler.state.epoch)
    ddp: nn.Module = DistributedDataParallel(module) if world > 1 else module
    log = RunLog(out, enabled=rank == 0, resume_step=step if resume else None)
    seen = RunLog(out, resume_step=step if resume else None, filename=f"seen-rank{rank}.csv", tensorboard=False)

    def batches() -> Iterator[dict[str, Any]]:
        while True:
            loader = DataLoader(
                dataset,
                batch_size=config.data.batch_size,
                sampler=sampler,
                num_workers=config.data.num_workers,
                collate_fn=collate,
                drop_last=True,
            )
            yield from loader
            sampler.set_epoch(sampler.state.epoch + 1)
            dataset.set_epoch(sampler.state.epoch)

    last: dict[str, Any] = {}
    stop = optim_cfg.total_steps if max_steps is None else min(max_steps, optim_cfg.total_steps)
    source = batches()
    from rich.progress import Progress

    with Progress(disable=rank != 0) as bar:
        task = bar.add_task("pretraining", total=stop, completed=step)
        while step < stop:
            batch = next(source)
            epoch = sampler.state.epoch
            for index, case in zip(batch["index"], batch["case"], strict=True):
                seen.log(step + 1, {"epoch": epoch, "index": index, "case": case})
            autocast = torch.autocast("cuda", dtype=torch.bfloat16) if amp else nullcontext()
            with autocast:
                total, parts = ddp(to_device(batch, device))
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(total).backward()
            if optim_cfg.grad_clip:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(params, optim_cfg.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            sampler.advance(config.data.batch_size * world)
            step += 1
            metrics = {"loss": float(total.detach()), **{k: float(v) for k, v in parts.items()}}
            metrics = mean_across_ranks(metrics, world)
            last = {"step": step, "epoch": epoch, "lr": scheduler.get_last_lr()[0], **metrics}
            if step % config.run.log_every == 0 or step == stop:
                log.log(step, {k: v for k, v in last.items() if k != "step"})
            if rank == 0 and (step % config.run.checkpoint_every == 0 or step == stop):
                save_checkpoint(
                    ckpt_dir,
                    step,
                    {
                        **training_state(config.to_dict(), **resumable),
                        "store": store,
                        "version": dataset.version.id,
                    },
                )
            bar.update(task, completed=step, description=f"pretraining · loss {last['loss']:.4f}")
    seen.close()
    log.close()
    if world > 1:
        dist.barrier()
    return last


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="torchrun -m toothmcl_models.pretrain",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--store", required=True, help="store path or URL")
    parser.add_argument("--version", default="latest", help="version tag or id (default: latest)")
    parser.add_argument("--config", required=True, type=Path, help="run config YAML, or 'tiny' / 'paper'")
    parser.add_argument("--out", required=True, type=Path, help="run folder (metrics, checkpoints)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints/latest.pt")
    parser.add_argument("--max-steps", type=int, default=None, help="stop after this many steps (schedule kept)")
    args = parser.parse_args(argv)
    config = PretrainConfig.from_yaml(args.config)
    try:
        result = pretrain(args.store, args.version, config, args.out, resume=args.resume, max_steps=args.max_steps)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    if int(os.environ.get("RANK", "0")) == 0:
        print(
            f"pretraining stopped at step {result.get('step')}: loss {result.get('loss', float('nan')):.4f}; "
            f"metrics in {args.out / 'metrics.csv'}"
        )


if __name__ == "__main__":
    main()
