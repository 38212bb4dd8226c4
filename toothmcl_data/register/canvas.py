"""A picture of panels drawn straight into an RGB array (numpy) and labelled with PIL: grey images on a mm scale,
lines and points in mm, tick marks with their mm values, titles.

What the registration pictures need and no more: matplotlib laid out, rasterised and anti-aliased ~40 artists per
picture (about a quarter of a second per jaw); this draws the same content in a few milliseconds. Coordinates on
a panel are mm (any two world axes); on the canvas, pixels (column, row) from the top-left corner.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
from numpy.typing import NDArray
from PIL import ImageColor, ImageDraw, ImageFont
from scipy import ndimage

TICK_PX = 4
"""Length of a tick mark (pixels), outside the panel."""
TICK_SPACING_PX = (45, 30)
"""Ticks are at least about this far apart (pixels) along a horizontal and a vertical axis (labels side by side
need more room than labels one above the other)."""


def font(size: int, *, bold: bool = False) -> ImageFont.FreeTypeFont:
    """DejaVu Sans (matplotlib's own font file, so no system font is needed) at ``size`` pixels. A new font object
    each call (~20 µs): pictures drawn in threads share no FreeType face."""
    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name), size)


@dataclass(frozen=True)
class Panel:
    """A rectangle of the canvas showing a mm range: pixel box ``left``, ``top``, ``width``, ``height``; ``x`` =
    (mm at the left edge, mm at the right edge), ``y`` = (mm at the top edge, mm at the bottom edge) — either
    order, so an axis may grow downwards (an axial view, anterior up) or upwards (height)."""

    left: int
    top: int
    width: int
    height: int
    x: tuple[float, float]
    y: tuple[float, float]

    @classmethod
    def fitted(
        cls, cell: tuple[int, int, int, int], x: tuple[float, float], y: tuple[float, float], *, equal: bool = True
    ) -> Panel:
        """The panel for mm ranges ``x``, ``y`` in the pixel ``cell`` (left, top, width, height): the whole cell,
        or with ``equal`` the largest box of one mm per pixel scale on both axes, centred in the cell."""
        left, top, width, height = cell
        if equal:
            sx, sy = abs(x[1] - x[0]), abs(y[1] - y[0])
            scale = min(width / max(sx, 1e-9), height / max(sy, 1e-9))
            w, h = max(1, round(sx * scale)), max(1, round(sy * scale))
            left, top, width, height = left + (width - w) // 2, top + (height - h) // 2, w, h
        return cls(left, top, width, height, (float(x[0]), float(x[1])), (float(y[0]), float(y[1])))

    def pixels(self, x: NDArray[np.float64], y: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Canvas (column, row) of mm positions ``x``, ``y`` (same shape); pixel centres at integers."""
        col = self.left - 0.5 + (np.asarray(x) - self.x[0]) / (self.x[1] - self.x[0]) * self.width
        row = self.top - 0.5 + (np.asarray(y) - self.y[0]) / (self.y[1] - self.y[0]) * self.height
        return col, row

    def mm(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """mm at the centres of the panel's pixel columns (width,) and rows (height,)."""
        cols = (np.arange(self.width) + 0.5) / self.width
        rows = (np.arange(self.height) + 0.5) / self.height
        return self.x[0] + cols * (self.x[1] - self.x[0]), self.y[0] + rows * (self.y[1] - self.y[0])


def paste_image(
    rgb: NDArray[np.uint8],
    panel: Panel,
    image: NDArray[np.floating] | NDArray[np.integer],
    origin: tuple[float, float],
    step: tuple[float, float],
    window: tuple[float, float],
    *,
    order: int = 0,
) -> None:
    """Fill ``panel`` of ``rgb`` (H, W, 3) uint8 with grey ``image`` (rows, columns): column c lies at x = origin[0]
    + c · step[0] mm, row r at y = origin[1] + r · step[1] mm (pixel centres). ``window`` (low, high) maps to
    black … white; ``order`` 0: nearest pixel, 1: bilinear. Beyond the image the edge value is repeated."""
    xs, ys = panel.mm()
    c = (xs - origin[0]) / step[0]
    r = (ys - origin[1]) / step[1]
    if order == 0:
        ci = np.clip(np.rint(c), 0, image.shape[1] - 1).astype(np.intp)
        ri = np.clip(np.rint(r), 0, image.shape[0] - 1).astype(np.intp)
        values = np.asarray(image, dtype=np.float32)[np.ix_(ri, ci)]
    else:
        grid = np.stack(np.meshgrid(r, c, indexing="ij"))
        values = ndimage.map_coordinates(np.asarray(image, dtype=np.float32), grid, order=1, mode="nearest")
    lo, hi = window
    grey = np.clip((values - lo) * (255.0 / (hi - lo)), 0, 255).astype(np.uint8)
    rgb[panel.top : panel.top + panel.height, panel.left : panel.left + panel.width] = grey[..., None]


def draw_segments(rgb: NDArray[np.uint8], panel: Panel, segments: NDArray[np.float64], colour: str) -> None:
    """Draw line ``segments`` (s, 2, 2) mm (two ends, each (x, y) on the panel's axes) one pixel wide, clipped to
    the panel."""
    if len(segments) == 0:
        return
    col, row = panel.pixels(segments[..., 0], segments[..., 1])  # (s, 2) each
    # two samples per pixel of length, each taking the pixel it falls in: no gaps
    longest = np.maximum(np.abs(col[:, 1] - col[:, 0]), np.abs(row[:, 1] - row[:, 0]))
    n = np.minimum(np.ceil(2 * longest).astype(np.intp) + 1, 8 * (panel.width + panel.height))  # bounded work
    which = np.repeat(np.arange(len(n)), n)
    t = (np.arange(len(which)) - np.repeat(np.cumsum(n) - n, n)) / np.maximum(np.repeat(n, n) - 1, 1)
    c = np.floor(col[which, 0] + t * (col[which, 1] - col[which, 0]) + 0.5).astype(np.intp)
    r = np.floor(row[which, 0] + t * (row[which, 1] - row[which, 0]) + 0.5).astype(np.intp)
    _paint(rgb, panel, c, r, colour, 1.0)


def draw_points(rgb: NDArray[np.uint8], panel: Panel, points: NDArray[np.float64], colour: str, alpha: float) -> None:
    """Mark ``points`` (n, 2) mm one pixel each, ``colour`` blended over the picture by ``alpha``."""
    col, row = panel.pixels(points[:, 0], points[:, 1])
    _paint(rgb, panel, np.floor(col + 0.5).astype(np.intp), np.floor(row + 0.5).astype(np.intp), colour, alpha)


def _paint(
    rgb: NDArray[np.uint8],
    panel: Panel,
    col: NDArray[np.intp],
    row: NDArray[np.intp],
    colour: str,
    alpha: float,
) -> None:
    inside = (
        (col >= panel.left) & (col < panel.left + panel.width) & (row >= panel.top) & (row < panel.top + panel.height)
    )
    col, row = col[inside], row[inside]
    paint = np.array(ImageColor.getrgb(colour)[:3], dtype=np.float32)
    if alpha >= 1.0:
        rgb[row, col] = paint.astype(np.uint8)
    else:
        rgb[row, col] = np.rint(rgb[row, col] * (1.0 - alpha) + paint * alpha).astype(np.uint8)


def ticks(a: float, b: float, length_px: int, spacing_px: int) -> tuple[NDArray[np.float64], int]:
    """Round mm values between ``a`` and ``b`` (either order) for an axis ``length_px`` long — steps of 1, 2, 2.5
    or 5 × 10^k, at least about ``spacing_px`` apart — and the decimals their labels need."""
    lo, hi = min(a, b), max(a, b)
    span = max(hi - lo, 1e-9)
    raw = span / max(1, length_px // spacing_px)
    mag = 10.0 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1.0, 2.0, 2.5, 5.0, 10.0) if m * mag >= raw * (1 - 1e-9))
    values = np.arange(math.ceil(lo / step - 1e-9), math.floor(hi / step + 1e-9) + 1) * step
    decimals = next((d for d in range(6) if abs(step * 10**d - round(step * 10**d)) < 1e-6), 6)
    return np.asarray(values, dtype=np.float64), decimals


def label(value: float, decimals: int) -> str:
    """A tick label as matplotlib writes it: a true minus sign, no ``-0``."""
    text = f"{value:.{decimals}f}"
    if float(text) == 0:
        text = text.lstrip("-")
    return text.replace("-", "\N{MINUS SIGN}")


def frame(draw: ImageDraw.ImageDraw, panel: Panel, *, size: int = 11) -> None:
    """A black frame around ``panel`` with mm ticks and labels on its left and bottom edges."""
    x0, y0 = panel.left - 1, panel.top - 1
    x1, y1 = panel.left + panel.width, panel.top + panel.height
    draw.rectangle((x0, y0, x1, y1), outline=(0, 0, 0))
    f = font(size)
    values, decimals = ticks(*panel.x, panel.width, TICK_SPACING_PX[0])
    cols, _ = panel.pixels(values, np.zeros_like(values))
    for v, c in zip(values, cols, strict=True):
        c = round(float(c))
        draw.line((c, y1, c, y1 + TICK_PX), fill=(0, 0, 0))
        draw.text((c, y1 + TICK_PX + 2), label(float(v), decimals), fill=(0, 0, 0), font=f, anchor="mt")
    values, decimals = ticks(*panel.y, panel.height, TICK_SPACING_PX[1])
    _, rows = panel.pixels(np.zeros_like(values), values)
    for v, r in zip(values, rows, strict=True):
        r = round(float(r))
        draw.line((x0 - TICK_PX, r, x0, r), fill=(0, 0, 0))
        draw.text((x0 - TICK_PX - 2, r), label(float(v), decimals), fill=(0, 0, 0), font=f, anchor="rm")
