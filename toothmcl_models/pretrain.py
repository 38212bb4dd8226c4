"""ToothMCL contrastive pretraining on a published version: ``torchrun -m toothmcl_models.pretrain``.

    torchrun --nproc-per-node 2 -m toothmcl_models.pretrain --store S --version V --config tiny --out DIR

The loop is :mod:`toothmcl_models.trainloop`'s, shared with fine-tuning: DDP over torchrun's ranks (gloo on CPU,
NCCL on GPU), autocast on GPU, gradient accumulation, AdamW with warm-up + cosine stepped per optimiser step, the
world-size independent resumable sample order, checkpoints with model, loss (learnable scales/biases), optimiser,
scheduler, AMP scaler, sampler state and config; ``--resume`` continues from ``DIR/checkpoints/latest.pt`` and
reproduces the uninterrupted run. Metrics go to ``DIR/metrics.csv`` (and TensorBoard when installed);
``DIR/seen-rank<r>.csv`` lists the samples each rank trained on.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from toothmcl_data.configdict import add_set_argument
from toothmcl_data.errors import ConfigError
from toothmcl_data.stream.dataset import CaseDataset
from toothmcl_models.losses import ToothMCLLoss
from toothmcl_models.model import ToothMCL, build
from toothmcl_models.retrieval import retrieval
from toothmcl_models.runconfig import PretrainConfig
from toothmcl_models.trainloop import Evaluate, train_loop


class Pretrainer(nn.Module):
    """Model and loss as one module, so DDP averages the loss's learnable scales and biases too."""

    def __init__(self, model: ToothMCL, loss: ToothMCLLoss) -> None:
        super().__init__()
        self.model, self.loss = model, loss

    def forward(self, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        out = self.model(batch)
        result = self.loss(out.cbct, out.ios)
        return result.total, result.parts


def retrieval_evaluation(store: str, version: str, config: PretrainConfig) -> Evaluate:
    """The loop's evaluation: tooth retrieval on the held-out ``data.eval_splits`` (``retrieval``)."""
    stream = config.data.stream(config.run.seed)

    def evaluate(module: nn.Module, device: torch.device) -> dict[str, float]:
        model = module.model if isinstance(module, Pretrainer) else module
        if not isinstance(model, ToothMCL):
            raise TypeError(f"retrieval evaluates a ToothMCL model, got {type(model).__name__}")
        found = retrieval(model, store, version, config.data.eval_splits, stream)
        return {
            "retrieval_cbct_to_ios_top1": found["cbct_to_ios_top1"],
            "retrieval_ios_to_cbct_top1": found["ios_to_cbct_top1"],
            "retrieval_teeth": found["n_teeth"],
        }

    return evaluate


def pretrain(
    store: str, version: str, config: PretrainConfig, out: Path, *, resume: bool = False, max_steps: int | None = None
) -> dict[str, Any]:
    """Run (or resume) pretraining; returns the final step's metrics. ``max_steps`` stops early (for tests and
    interrupted runs) without changing the schedule."""
    dataset = CaseDataset(store, version, config.data.split, config.data.stream(config.run.seed))
    if len(dataset) == 0:
        raise ConfigError(
            f"store {store} version {version} split {config.data.split!r} has no case with a CBCT, both jaws "
            "registered and paired teeth; publish such cases or choose another split"
        )
    model, loss = build(config.toothmcl, seed=config.run.seed)
    evaluate = retrieval_evaluation(store, version, config) if config.data.eval_splits else None
    return train_loop(
        Pretrainer(model, loss),
        dataset,
        optim=config.toothmcl.optim,
        data=config.data,
        run=config.run,
        out=out,
        config=config.to_dict(),
        extra_state={"store": store, "version": dataset.version.id},
        resume=resume,
        max_steps=max_steps,
        name="pretraining",
        evaluate=evaluate,
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="torchrun -m toothmcl_models.pretrain",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--store", required=True, help="store path or URL")
    parser.add_argument("--version", default="latest", help="version tag or id (default: latest)")
    parser.add_argument("--config", required=True, type=Path, help="run config YAML, or a preset: tiny, cpu, paper")
    parser.add_argument("--out", required=True, type=Path, help="run folder (metrics, checkpoints)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints/latest.pt")
    parser.add_argument("--max-steps", type=int, default=None, help="stop after this many steps (schedule kept)")
    add_set_argument(parser)
    args = parser.parse_args(argv)
    config = PretrainConfig.from_yaml(args.config, args.set)
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
