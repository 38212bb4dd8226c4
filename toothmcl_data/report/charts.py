"""Charts of a dataset version for the QC report: FDI histogram, distributions, and a montage of tooth pairs.

Each function takes plain arrays (no store access) and writes one PNG, returning its path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from numpy.typing import NDArray

from toothmcl_data.fdi import PERMANENT_FDI, load_color_table
from toothmcl_data.report.preview import WINDOW
from toothmcl_data.types import Affine4x4, apply_transform


def _save(fig: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def fdi_histogram_png(counts: Mapping[int, int], path: Path, *, title: str = "teeth per FDI number") -> Path:
    """Bar chart of ``counts`` (FDI → number) over all 32 permanent teeth, bars in the FDI colours."""
    colours = load_color_table().colors_for(np.array(PERMANENT_FDI)) / 255.0
    fig, ax = plt.subplots(figsize=(11, 3.2))
    ax.bar([str(f) for f in PERMANENT_FDI], [counts.get(f, 0) for f in PERMANENT_FDI], color=colours)
    ax.set_xlabel("FDI")
    ax.set_ylabel("count")
    ax.set_title(title)
    ax.tick_params(axis="x", labelsize=7)
    return _save(fig, path)


def distribution_png(values: Sequence[float] | NDArray[np.floating], path: Path, *, xlabel: str, title: str) -> Path:
    """Histogram of ``values`` with its median marked (an empty chart says so)."""
    data = np.asarray(values, dtype=np.float64)
    data = data[np.isfinite(data)]
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    if data.size:
        ax.hist(data, bins=min(30, max(5, data.size // 2)), color="#4c72b0")
        median = float(np.median(data))
        ax.axvline(median, color="#c44e52", linestyle="--", label=f"median {median:.3g}")
        ax.legend()
    else:
        ax.text(0.5, 0.5, "no values", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("count")
    ax.set_title(title)
    return _save(fig, path)


@dataclass(frozen=True, eq=False)
class PairView:
    """What the montage draws of one tooth pair.

    cbct_crop / label_crop: (X, Y, Z) on the crop grid; world_from_crop (4, 4) LPS; ios_points (N, 6) LPS mm.
    """

    title: str
    cbct_crop: NDArray[np.generic]
    label_crop: NDArray[np.generic]
    world_from_crop: Affine4x4
    ios_points: NDArray[np.floating]


def pair_montage_png(pairs: Sequence[PairView], path: Path, *, columns: int = 6, band_mm: float = 0.6) -> Path:
    """A grid: per tooth pair, the coronal CBCT slice (x–z plane) through the crop centre with the label outline,
    and the IOS points lying within ``band_mm`` of that plane drawn on top, so their fit shows at a glance."""
    rows = max(1, -(-len(pairs) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(2.3 * columns, 2.6 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, pair in zip(axes.ravel(), pairs, strict=False):
        j = pair.cbct_crop.shape[1] // 2
        image = np.asarray(pair.cbct_crop[:, j, :], dtype=np.float32).T
        ax.imshow(image, cmap="gray", vmin=WINDOW[0], vmax=WINDOW[1], origin="lower", interpolation="nearest")
        ax.contour(np.asarray(pair.label_crop[:, j, :]).T > 0, levels=[0.5], colors=["#ffd54f"], linewidths=0.6)
        idx = apply_transform(np.linalg.inv(pair.world_from_crop), np.asarray(pair.ios_points)[:, :3])
        spacing = float(np.linalg.norm(pair.world_from_crop[:3, 1]))
        near = np.abs(idx[:, 1] - j) * spacing < band_mm
        ax.scatter(idx[near, 0], idx[near, 2], s=1.5, c="#00e5ff", linewidths=0)
        ax.set_title(pair.title, fontsize=8)
    fig.suptitle(
        "coronal CBCT slice · label outline (yellow) · IOS points near the slice (cyan)", fontsize=8, wrap=True
    )
    return _save(fig, path)
