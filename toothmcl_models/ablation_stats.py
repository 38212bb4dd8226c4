"""Statistics and the picture of the ablation (:mod:`toothmcl_models.ablation`): paired pretrained − scratch
differences per (seed, test unit), their percentile bootstrap CI, the per-k summary and the metric-vs-k plot."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from toothmcl_models.ablation import AblationConfig

INITS = ("pretrained", "scratch")
HEADLINE = {"cbct": "tooth_dice", "ios": "miou"}
"""The metric of each modality the CI is reported for (issue 13: CBCT per-tooth Dice, IOS mIoU)."""
OTHERS = {
    "cbct": ("foreground_dice", "tooth_dice", "identification_rate", "detection_rate"),
    "ios": ("tsa", "tir", "tla", "miou"),
}
"""Every metric of each modality, averaged over seeds and test units in the summary (``all_metrics``)."""


def bootstrap_ci(
    values: Sequence[float], *, n: int = 10_000, level: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """(mean, low, high): the mean of ``values`` and its percentile bootstrap CI (``n`` resamples with replacement
    of the values, ``level`` two-sided). NaNs are dropped; no values → NaNs."""
    data = np.asarray([v for v in values if np.isfinite(v)], dtype=np.float64)
    if data.size == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, data.size, size=(n, data.size))].mean(1)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return float(data.mean()), float(low), float(high)


def paired_differences(rows: list[dict[str, Any]], task: str, k: int, metric: str) -> list[float]:
    """pretrained − scratch of ``metric`` for every (seed, test unit) of ``task`` at ``k`` (same seed, same unit)."""
    got: dict[tuple[int, str], dict[str, float]] = {}
    for r in rows:
        if r["task"] == task and r["k"] == k:
            got.setdefault((r["seed"], r["unit"]), {})[r["init"]] = float(r[metric])
    return [v["pretrained"] - v["scratch"] for _, v in sorted(got.items()) if len(v) == 2]


def summarise(rows: list[dict[str, Any]], config: AblationConfig) -> dict[str, Any]:
    """Per task and k: mean ± std over seeds of each init's mean over test units of the headline metric, the mean
    of every metric, and the paired difference of the headline metric with its bootstrap CI."""
    out: dict[str, Any] = {}
    for task, metric in HEADLINE.items():
        per_k: dict[str, Any] = {}
        for k in config.ks:
            entry: dict[str, Any] = {}
            for init in INITS:
                mine = [r for r in rows if (r["task"], r["k"], r["init"]) == (task, k, init)]
                per_seed = [float(np.nanmean([r[metric] for r in mine if r["seed"] == s])) for s in config.seeds]
                entry[init] = {
                    "mean": float(np.mean(per_seed)),
                    "std": float(np.std(per_seed, ddof=1)) if len(per_seed) > 1 else 0.0,
                    "all_metrics": {m: float(np.nanmean([r[m] for r in mine])) for m in OTHERS[task]},
                }
            diffs = paired_differences(rows, task, k, metric)
            mean, low, high = bootstrap_ci(diffs, n=config.bootstrap, seed=k)
            entry["difference"] = {"mean": mean, "ci95": [low, high], "units": len(diffs)}
            per_k[str(k)] = entry
        out[task] = {"metric": metric, "per_k": per_k}
    return out


def plot(report: dict[str, Any], path: Path) -> None:
    """CBCT per-tooth Dice and IOS mIoU vs k, pretrained and scratch (mean ± std over seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, task in zip(axes, ("cbct", "ios"), strict=True):
        summary = report["summary"][task]
        ks = [int(k) for k in summary["per_k"]]
        for init, colour in zip(INITS, ("tab:blue", "tab:gray"), strict=True):
            mean = [summary["per_k"][str(k)][init]["mean"] for k in ks]
            std = [summary["per_k"][str(k)][init]["std"] for k in ks]
            ax.errorbar(ks, mean, yerr=std, marker="o", capsize=3, color=colour, label=init)
        name = {"tooth_dice": "CBCT per-tooth Dice", "miou": "IOS mIoU"}[summary["metric"]]
        ax.set(xscale="log", xticks=ks, xticklabels=[str(k) for k in ks], xlabel="labelled patients k", ylabel=name)
        ax.minorticks_off()  # log-scale minor labels (3×10⁰, 6×10⁰) would sit between the k ticks
        ax.set_title(f"{name} on {len(report['test_cases'])} test patients")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
