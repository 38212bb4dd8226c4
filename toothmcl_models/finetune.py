"""Fine-tune FDI segmentation on a published version: ``torchrun -m toothmcl_models.finetune {cbct,ios}``.

    torchrun --nproc-per-node 2 -m toothmcl_models.finetune cbct --store S --version V --config tiny --out DIR \
        [--init PRETRAIN_RUN_OR_CKPT] [--resume] [--max-steps N]

The loop is pretraining's (:mod:`toothmcl_models.trainloop`): DDP over torchrun's ranks (gloo on CPU, NCCL on
GPU), autocast on GPU (GradScaler for float16), gradient accumulation, AdamW with warm-up + cosine per optimiser
step, the world-size independent resumable sample order, atomic checkpoints with model/optimiser/scheduler/scaler/
sampler/RNG state and config, metrics in ``DIR/metrics.csv``, samples per rank in ``DIR/seen-rank<r>.csv``.
``--init`` copies a pretraining checkpoint's encoder(s) into the network (``segmentation.load_pretrained``);
without it training starts from scratch. Loss: cross-entropy + soft Dice (``seglosses``).

- ``cbct``: SwinUNETR-v2, background + 32 FDI teeth, on labelled CBCT crops (``stream.volumes.VolumeDataset``).
- ``ios``: Point Transformer encoder + decoder per jaw, 17 ``perjaw17`` classes (``stream.jaws.JawDataset``).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from toothmcl_data.configdict import add_set_argument
from toothmcl_data.errors import ConfigError
from toothmcl_data.stream.jaws import JawDataset
from toothmcl_data.stream.volumes import VolumeDataset
from toothmcl_models.checkpoint import load_checkpoint
from toothmcl_models.segconfig import FinetuneConfig
from toothmcl_models.seglosses import dice_ce_loss
from toothmcl_models.segmentation import (
    build_segmenter,
    cbct_class_table,
    fdi_to_classes,
    ios_class_table,
    load_pretrained,
)
from toothmcl_models.trainloop import train_loop


def make_dataset(store: str, version: str, config: FinetuneConfig) -> VolumeDataset | JawDataset:
    """The training stream of ``config.task`` (raises :class:`ConfigError` when it is empty)."""
    stream = config.data.stream(config.run.seed)
    seg = config.segment
    cases = list(seg.cases) if seg.cases is not None else None
    dataset: VolumeDataset | JawDataset
    if config.task == "cbct":
        dataset = VolumeDataset(
            store, version, config.data.split, stream, foreground_probability=seg.foreground_probability, cases=cases
        )
        what = "labelled CBCT"
    else:
        dataset = JawDataset(store, version, config.data.split, stream, jaws=seg.jaws, frame=seg.frame, cases=cases)
        what = f"labelled {'/'.join(seg.jaws)} IOS scan"
    if len(dataset) == 0:
        raise ConfigError(
            f"store {store} version {version} split {config.data.split!r} has no {what}; publish labelled cases "
            "or choose another split"
        )
    return dataset


class SegmentationStep(nn.Module):
    """Network and loss as one module (one DDP forward per step): batch → (loss, parts)."""

    def __init__(self, net: nn.Module, config: FinetuneConfig) -> None:
        super().__init__()
        self.net, self.config = net, config
        self.register_buffer("cbct_table", cbct_class_table(), persistent=False)
        for jaw in config.segment.jaws:
            self.register_buffer(f"table_{jaw}", ios_class_table(jaw), persistent=False)

    def _table(self, name: str) -> Tensor:
        table = getattr(self, "cbct_table" if name == "cbct" else f"table_{name}")
        if not isinstance(table, Tensor):
            raise ConfigError(f"no class table for {name!r}")
        return table

    def _loss(self, logits: Tensor, target: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        seg = self.config.segment
        return dice_ce_loss(
            logits,
            target,
            dice_weight=seg.dice_weight,
            ce_weight=seg.ce_weight,
            background_weight=seg.background_weight,
            foreground_weight=seg.foreground_weight,
        )

    def forward(self, batch: dict[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        if self.config.task == "cbct":
            logits = self.net(batch["cbct"])
            target = fdi_to_classes(batch["cbct_labels"], self._table("cbct"))
            return self._loss(logits, target)
        jaws: list[str] = list(batch["jaw"])
        total: Tensor | None = None
        parts: dict[str, Tensor] = {}
        for jaw in sorted(set(jaws)):
            rows = torch.tensor([i for i, j in enumerate(jaws) if j == jaw], device=batch["points"].device)
            logits = self.net(batch["points"][rows], jaw).transpose(1, 2)  # (b, K, N)
            target = fdi_to_classes(batch["labels"][rows], self._table(jaw))
            loss, p = self._loss(logits, target)
            weight = len(rows) / len(jaws)
            total = loss * weight if total is None else total + loss * weight
            for k, v in p.items():
                parts[k] = parts.get(k, torch.zeros((), device=v.device)) + v * weight
        if total is None:
            raise ConfigError("empty IOS batch")
        return total, parts


def finetune(
    store: str,
    version: str,
    config: FinetuneConfig,
    out: Path,
    *,
    init: Path | None = None,
    resume: bool = False,
    max_steps: int | None = None,
) -> dict[str, Any]:
    """Run (or resume) fine-tuning; returns the final step's metrics. ``init``: pretraining checkpoint (file or run
    folder) whose encoder(s) start the network; ``max_steps`` stops early without changing the schedule."""
    dataset = make_dataset(store, version, config)
    net = build_segmenter(config.task, config.cbct, config.ios, seed=config.run.seed, jaws=config.segment.jaws)
    loaded = load_pretrained(net, init) if init is not None and not resume else []
    last = train_loop(
        SegmentationStep(net, config),
        dataset,
        optim=config.optim,
        data=config.data,
        run=config.run,
        out=out,
        config=config.to_dict(),
        saved=net,
        extra_state={
            "task": config.task,
            "init": str(init) if init is not None else None,
            "store": store,
            "version": dataset.version.id,
        },
        resume=resume,
        max_steps=max_steps,
        name=f"fine-tuning {config.task}",
        find_unused_parameters=config.task == "ios",
    )
    last["pretrained_tensors"] = len(loaded)
    return last


def load_finetuned(checkpoint: Path) -> tuple[nn.Module, FinetuneConfig]:
    """The network of a fine-tuning checkpoint (a step-*.pt file, a checkpoints folder or the run folder), in eval
    mode, and its config."""
    if (checkpoint / "checkpoints").is_dir():
        checkpoint = checkpoint / "checkpoints"
    state = load_checkpoint(checkpoint)
    config = FinetuneConfig.from_dict(state["config"], str(checkpoint))
    net = build_segmenter(config.task, config.cbct, config.ios, seed=config.run.seed, jaws=config.segment.jaws)
    net.load_state_dict(state["module"])
    return net.eval(), config


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="torchrun -m toothmcl_models.finetune",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("task", choices=("cbct", "ios"))
    parser.add_argument("--store", required=True, help="store path or URL")
    parser.add_argument("--version", default="latest", help="version tag or id (default: latest)")
    parser.add_argument("--config", required=True, type=Path, help="run config YAML, or a preset: tiny, cpu, paper")
    parser.add_argument("--out", required=True, type=Path, help="run folder (metrics, checkpoints)")
    parser.add_argument("--init", type=Path, default=None, help="pretraining checkpoint or run folder (else scratch)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints/latest.pt")
    parser.add_argument("--max-steps", type=int, default=None, help="stop after this many steps (schedule kept)")
    add_set_argument(parser)
    args = parser.parse_args(argv)
    config = FinetuneConfig.from_yaml(args.config, args.task, args.set)
    try:
        result = finetune(
            args.store, args.version, config, args.out, init=args.init, resume=args.resume, max_steps=args.max_steps
        )
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    if int(os.environ.get("RANK", "0")) == 0:
        print(
            f"fine-tuning ({args.task}) stopped at step {result.get('step')}: "
            f"loss {result.get('loss', float('nan')):.4f}; {result['pretrained_tensors']} pretrained tensors "
            f"loaded; metrics in {args.out / 'metrics.csv'}"
        )


if __name__ == "__main__":
    main()
