"""Reading pictures back: pixels of one colour, their bounding box, the panels of a figure."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
from scipy import ndimage


def rgb(path: Path) -> np.ndarray:
    """(H, W, 3) float in [0, 1] of a PNG."""
    return np.asarray(mpimg.imread(path)[..., :3], dtype=np.float64)


def near(image: np.ndarray, colour: np.ndarray | tuple[float, ...], tol: float = 0.02) -> np.ndarray:
    """(H, W) bool: pixels within ``tol`` of ``colour`` (RGB in [0, 1]) in every channel."""
    return np.all(np.abs(image - np.asarray(colour, dtype=np.float64)) <= tol, axis=-1)


def box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) pixel rows/columns of a mask's True pixels, inclusive."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    assert len(rows), "no pixel of that colour"
    return int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])


def panels(mask: np.ndarray, n: int) -> list[tuple[int, int, int, int]]:
    """Boxes of the ``n`` largest connected regions of ``mask``, left to right."""
    labels, count = ndimage.label(mask)
    sizes = ndimage.sum(mask, labels, range(1, count + 1))
    biggest = np.argsort(sizes)[::-1][:n] + 1
    return sorted((box(labels == b) for b in biggest), key=lambda b: b[2])
