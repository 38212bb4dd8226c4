"""Which outer plateaus of CBCT crown-surface candidates are air: soft tissue beside the crowns, metal streaks.

The crown surface (``register.surface``) keeps the tooth surface whose outside is air. These helpers split the
outer plateaus (the intensity just outside each candidate, scanner units) when one Otsu split is not enough: a
small field of view with little air (air and soft tissue in one class), and metal's dark streaks, which spread
the air beside the crowns far below air.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from skimage.filters import threshold_otsu

SOFT_TISSUE_GAP = 0.15
"""The low class of outer plateaus holds air and soft tissue (a small field of view ending at the cusp tips has
little air) when an Otsu split of it leaves halves whose medians lie this fraction of the way from the lower one
to the rough tooth level apart (measured at 0.4 mm: air ≈ 0, soft tissue ≈ 300, level ≈ 1400 → 0.21; noise
alone splits into halves ~1.6 σ apart)."""


def two_classes(low: NDArray[np.float32], level: float) -> bool:
    """Whether outer plateaus ``low`` (n,) form two classes (air and soft tissue) below the rough ``level``."""
    cut = float(threshold_otsu(low.astype(np.float64)))
    a, b = low[low < cut], low[low >= cut]
    if a.size < 10 or b.size < 10:
        return False
    lo = float(np.median(a))
    return float(np.median(b)) - lo > SOFT_TISSUE_GAP * (level - lo)


AIR_PEAK = 0.3
"""A histogram peak of the outer plateaus is prominent when at least this fraction of the highest one."""
AIR_RISE = 1.5
"""... and rises this many times above the lowest bin below it."""
AIR_WIDTHS = 3.0
"""The air window reaches at most this many of the air peak's lower half widths above the peak."""


def air_window(low: NDArray[np.float32], air: float, level: float) -> tuple[float, float]:
    """The outer plateaus taken for air when metal streaks spread the air beside the crowns: (floor, ceiling).

    low: (n,) outer plateaus below the first split ``air`` (air, soft tissue, dark streaks; the lowest tenth of
    their range, where streaks pile up at the scanner's floor, left out); ``level``: the rough tooth level. The air
    peak is the lowest prominent histogram peak; the ceiling splits what lies above it (air | soft tissue; at most
    ``AIR_WIDTHS`` half widths of the peak above it) unless ``air`` already does, the floor mirrors the ceiling
    about the peak. Below the floor a surface faces a dark
    streak, where air and streak-darkened soft tissue look alike (measured at 0.4 mm with 2-3x streaks: 24-30 %
    of the intensity-path crown points lay > 0.5 mm off the crowns, nearly all of them with outer plateaus far
    below air; 9-16 % with the window)."""
    base = float(low.min())
    body = low[low > base + 0.1 * (air - base)]
    if body.size < 50:
        return -np.inf, air
    hist, edges = np.histogram(body, bins=40)
    kernel = np.ones(3)
    smooth = np.convolve(hist, kernel, mode="same") / np.convolve(np.ones(len(hist)), kernel, mode="same")
    # Air is the lowest prominent peak (soft tissue beside the crowns can outnumber it): a local maximum at least
    # AIR_PEAK of the highest bin that rises AIR_RISE times above the lowest bin below it (streak tails are flat).
    below = np.minimum.accumulate(np.concatenate([[np.inf], smooth[:-1]]))
    padded = np.concatenate([[np.inf], smooth, [-np.inf]])
    tops = np.flatnonzero(
        (smooth >= padded[:-2])
        & (smooth >= padded[2:])
        & (smooth >= AIR_PEAK * smooth.max())
        & (smooth >= AIR_RISE * below)
    )
    if tops.size == 0:
        return -np.inf, air
    i = int(tops[0])
    peak = 0.5 * float(edges[i] + edges[i + 1])
    above = body[body >= peak]
    ceiling = air
    # Soft tissue lies at least SOFT_TISSUE_GAP of the way from air to the tooth ``level``: a first split nearer the
    # peak than that has already cut air from soft tissue, and splitting again would cut air itself (measured at
    # 0.4 mm: a split 88 above the peak, the ceiling then 43 above it; two thirds of the crowns lost, both jaws
    # failed).
    cut_before = air - peak < SOFT_TISSUE_GAP * (level - peak)
    if not cut_before and above.size >= 10 and float(above.max() - above.min()) > 1e-3:
        ceiling = min(air, float(threshold_otsu(above.astype(np.float64))))
    # Air's own spread: the half width of the peak on its lower side (soft tissue lies on the upper one).
    half = np.flatnonzero(smooth[:i] < 0.5 * smooth[i])
    width = float(edges[1] - edges[0]) * (i - (int(half[-1]) if half.size else 0))
    ceiling = min(ceiling, peak + AIR_WIDTHS * width)
    return peak - (ceiling - peak), ceiling
