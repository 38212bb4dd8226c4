"""Pictures of a registration a person can judge at a glance.

The registered scan's contour (its intersection with the plane) is drawn on axial, coronal and sagittal CBCT
slices through the scan's crowns, and its points on a panoramic-like view: the CBCT's maximum intensity in a
band along the arch (a parabola fitted to the scan), unrolled against arch position and height. The picture is
drawn into an array with numpy and labelled with PIL (:mod:`toothmcl_data.register.canvas`), not with
matplotlib, whose layout and rendering cost several times more than the picture's content.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import PIL.Image
from numpy.typing import NDArray
from PIL import ImageDraw

from toothmcl_data.register import canvas
from toothmcl_data.types import Mesh, Registration, Volume, apply_transform

WINDOW = (-200.0, 3200.0)
"""Display window of CBCT intensities (scanner units)."""
PANORAMA_BAND_MM = 6.0
"""Half-width of the band across the arch whose maximum the panoramic view shows."""
CONTOUR = "#00e5ff"
VIEW_MARGIN_MM = 12.0
"""The views show the CBCT within this margin (mm) around the registered scan: the jaw fills the picture
whatever the field of view (a clinical field holds the whole lower face)."""
SIZE = (960, 800)
"""Width and height of the picture (pixels)."""
LINE_PX = 18
"""Height of one line of the picture's title (pixels)."""


def plane_contour(
    vertices: NDArray[np.float64], faces: NDArray[np.int32], axis: int, value: float
) -> NDArray[np.float64]:
    """Segments (s, 2, 3) LPS mm where the triangle mesh ``vertices`` (n, 3) LPS mm / ``faces`` (m, 3) crosses
    the plane ``x[axis] == value``."""
    d = vertices[:, axis] - value
    above = d > 0
    # a triangle crosses when its corners are not all on one side (per corner column: no per-row reductions)
    a0, a1, a2 = above[faces[:, 0]], above[faces[:, 1]], above[faces[:, 2]]
    f = faces[(a0 != a1) | (a1 != a2)]
    t = d[f]
    s = t > 0
    # A crossing triangle has exactly two edges whose ends lie on different sides; take them in edge order
    # (0, 1), (1, 2), (2, 0), each point where the edge meets the plane.
    edges = ((0, 1), (1, 2), (2, 0))
    hits = np.stack([s[:, a] != s[:, b] for a, b in edges], axis=1)  # (s, 3)
    points = np.empty((len(f), 3, 3), dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):  # edges that do not cross (0/0) are not used
        for e, (a, b) in enumerate(edges):
            w = t[:, a] / (t[:, a] - t[:, b])
            va, vb = vertices[f[:, a]], vertices[f[:, b]]
            points[:, e] = va + w[:, None] * (vb - va)
    first = np.argmax(hits, axis=1)
    second = 2 - np.argmax(hits[:, ::-1], axis=1)
    rows = np.arange(len(f))
    segments = np.stack([points[rows, first], points[rows, second]], axis=1)
    return np.asarray(segments, dtype=np.float64).reshape(-1, 2, 3)


def _slice(
    cbct: Volume, axis: int, value: float, box: tuple[NDArray[np.float64], NDArray[np.float64]]
) -> tuple[NDArray[np.float32], tuple[float, float, float, float]]:
    """The CBCT slice nearest ``x[axis] == value`` of an axis-aligned LPS volume, cropped to the world ``box``
    (lo, hi) (3,) mm and transposed for imshow, and its extent in mm of the two other axes (voxel centres)."""
    centre = cbct.index_from_world(np.array([[value] * 3]))[0]
    k = int(np.clip(round(centre[axis]), 0, cbct.shape[axis] - 1))
    others = [a for a in range(3) if a != axis]
    lo, sp = cbct.affine[:3, 3], cbct.spacing
    first = [int(np.clip(np.ceil((box[0][a] - lo[a]) / sp[a]), 0, cbct.shape[a] - 1)) for a in others]
    last = [
        int(np.clip(np.floor((box[1][a] - lo[a]) / sp[a]), f, cbct.shape[a] - 1))
        for a, f in zip(others, first, strict=True)
    ]
    index: list[int | slice] = [slice(f, e + 1) for f, e in zip(first, last, strict=True)]
    index.insert(axis, k)
    image = np.asarray(cbct.array[tuple(index)]).astype(np.float32).T  # basic indexing: only the window is read
    ext = [(lo[a] + sp[a] * f, lo[a] + sp[a] * e) for a, f, e in zip(others, first, last, strict=True)]
    return image, (ext[0][0], ext[0][1], ext[1][0], ext[1][1])


def _view_box(cbct: Volume, v: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """World box (lo, hi) (3,) mm the views show: the registered scan ``v`` (n, 3) ± :data:`VIEW_MARGIN_MM`
    within the volume; an axis on which that leaves under two voxels (a scan registered far off) shows the
    volume's whole extent."""
    lo = cbct.affine[:3, 3]
    hi = lo + np.asarray(cbct.spacing) * (np.asarray(cbct.shape) - 1)
    a = np.maximum(v.min(axis=0) - VIEW_MARGIN_MM, lo)
    b = np.minimum(v.max(axis=0) + VIEW_MARGIN_MM, hi)
    thin = b - a < 2 * np.asarray(cbct.spacing)
    return np.where(thin, lo, a), np.where(thin, hi, b)


def _panorama(
    cbct: Volume, crown: NDArray[np.float64], heights: tuple[float, float]
) -> tuple[NDArray[np.float32], NDArray[np.float64], tuple[float, float]]:
    """Maximum-intensity panorama (z, x) along the parabola y(x) fitted to ``crown`` (n, 3) LPS mm of the
    axis-aligned ``cbct`` (as the slices assume); returns the image (float32), the x samples (mm) and the z range
    (mm). ``heights``: the z range (mm) wanted, kept within the volume."""
    coef = np.polyfit(crown[:, 0], crown[:, 1], 2)
    step = min(cbct.spacing)
    xs = np.arange(crown[:, 0].min() - 3, crown[:, 0].max() + 3, step)
    lo, hi = cbct.affine[2, 3], cbct.affine[2, 3] + cbct.spacing[2] * (cbct.shape[2] - 1)
    lo, hi = max(lo, heights[0]), max(min(hi, heights[1]), max(lo, heights[0]) + step)
    zs = np.arange(lo, hi, step)
    ys = np.polyval(coef, xs)
    slope = np.polyval(np.polyder(coef), xs)
    normal = np.stack([-slope, np.ones_like(slope)], axis=1) / np.hypot(slope, 1)[:, None]
    offsets = np.arange(-PANORAMA_BAND_MM, PANORAMA_BAND_MM + step / 2, step)
    # Trilinear samples (mode "constant": WINDOW[0] off the grid) of the band: on an axis-aligned grid the index
    # across the arch (i, j) does not depend on the height and k depends on the height alone, so each (offset,
    # x) column is interpolated in (i, j) on the k slab the heights need, then in k.
    across = np.stack([xs + offsets[:, None] * normal[:, 0], ys + offsets[:, None] * normal[:, 1]], axis=-1)
    flat = across.reshape(-1, 2)
    ij = cbct.index_from_world(np.column_stack([flat, np.full(len(flat), zs[0])]))[:, :2]
    k = cbct.index_from_world(np.column_stack([np.full((len(zs), 2), flat[0]), zs]))[:, 2]
    (i0, fi), (j0, fj), (k0, fk) = (_cell(c, n) for c, n in zip((ij[:, 0], ij[:, 1], k), cbct.shape, strict=True))
    slab = np.asarray(cbct.array[:, :, int(k0.min()) : int(k0.max()) + 2])
    i1, j1 = np.minimum(i0 + 1, cbct.shape[0] - 1), np.minimum(j0 + 1, cbct.shape[1] - 1)
    wi, wj = fi[:, None], fj[:, None]
    column = (slab[i0, j0] * (1 - wi) + slab[i1, j0] * wi) * (1 - wj) + (
        slab[i0, j1] * (1 - wi) + slab[i1, j1] * wi
    ) * wj
    kk = k0 - int(k0.min())
    values = column[:, kk] * (1 - fk) + column[:, np.minimum(kk + 1, column.shape[1] - 1)] * fk
    values[~_inside(ij[:, 0], cbct.shape[0]) | ~_inside(ij[:, 1], cbct.shape[1])] = WINDOW[0]
    values[:, ~_inside(k, cbct.shape[2])] = WINDOW[0]
    best = values.reshape(len(offsets), len(xs), len(zs)).max(axis=0).T.astype(np.float32)
    return best, xs, (float(zs[0]), float(zs[-1]))


def _cell(index: NDArray[np.float64], n: int) -> tuple[NDArray[np.intp], NDArray[np.float32]]:
    """Lower voxel (clipped to 0 … n - 2) and float32 weight of the upper one for fractional ``index`` on an axis of
    ``n`` voxels (an index of n - 1 is voxel n - 2 at weight 1)."""
    low = np.clip(np.floor(index), 0, max(n - 2, 0)).astype(np.intp)
    return low, (index - low).astype(np.float32)


def _inside(index: NDArray[np.float64], n: int) -> NDArray[np.bool_]:
    return (index >= 0) & (index <= n - 1)


def registration_png(cbct: Volume, mesh: Mesh, registration: Registration, path: Path, *, title: str = "") -> Path:
    """Write the overlay picture of one registered jaw (960 × 800 RGB PNG) and return ``path``.

    cbct: axis-aligned LPS volume; mesh: the scan in its own frame; registration: its ``world_from_ios``.
    Drawn with numpy and PIL (:mod:`toothmcl_data.register.canvas`): a title with the QC verdict and residuals,
    three slices (nearest voxel, mm ticks, orientation letters) with the scan's contour, the panorama with the
    scan's crown points.
    """
    v = apply_transform(registration.world_from_ios, mesh.vertices)
    crown = v[mesh.labels > 0] if mesh.labels is not None and np.any(mesh.labels > 0) else v
    centre = np.median(crown, axis=0)
    box = _view_box(cbct, v)
    r = registration
    qc = (
        f"{r.jaw} jaw: {r.verdict.upper()}  rms {r.rms_mm:.3f} mm  p95 {r.p95_mm:.3f} mm  "
        + f"inliers {100 * r.inlier_fraction:.0f}%  {' '.join(r.flags)}".rstrip()
    )
    lines = [*title.splitlines(), qc]
    cells = _cells(len(lines))
    rgb = np.full((SIZE[1], SIZE[0], 3), 255, dtype=np.uint8)
    panels: list[tuple[canvas.Panel, str, tuple[str, str]]] = []
    views = [(2, "axial (x, y)", ("R", "L")), (1, "coronal (x, z)", ("R", "L")), (0, "sagittal (y, z)", ("A", "P"))]
    sp = cbct.spacing
    for cell, (axis, name, letters) in zip(cells[:3], views, strict=True):
        image, ext = _slice(cbct, axis, float(centre[axis]), box)
        a, b = (c for c in range(3) if c != axis)
        x = (ext[0] - sp[a] / 2, ext[1] + sp[a] / 2)
        # axial: anterior (small y) up; coronal, sagittal: superior (large z) up
        y = (ext[2] - sp[b] / 2, ext[3] + sp[b] / 2) if axis == 2 else (ext[3] + sp[b] / 2, ext[2] - sp[b] / 2)
        panel = canvas.Panel.fitted(cell, x, y)
        canvas.paste_image(rgb, panel, image, (ext[0], ext[2]), (sp[a], sp[b]), WINDOW)
        seg = plane_contour(v, mesh.faces, axis, float(centre[axis]))
        canvas.draw_segments(rgb, panel, seg[:, :, [a, b]], CONTOUR)
        panels.append((panel, f"{name} at {'xyz'[axis]} = {centre[axis]:.1f} mm (LPS)", letters))
    pano, xs, (z0, z1) = _panorama(cbct, crown, (float(box[0][2]), float(box[1][2])))
    step = float(xs[1] - xs[0]) if len(xs) > 1 else min(sp)
    panel = canvas.Panel.fitted(
        cells[3], (xs[0] - step / 2, xs[-1] + step / 2), (z1 + step / 2, z0 - step / 2), equal=False
    )
    canvas.paste_image(rgb, panel, pano, (float(xs[0]), z0), (step, step), WINDOW, order=1)
    pick = crown[:: max(1, len(crown) // 4000)]
    canvas.draw_points(rgb, panel, pick[:, [0, 2]], CONTOUR, alpha=0.5)
    panels.append((panel, "panoramic-like view (max along the arch; x vs z, mm)", ("", "")))
    picture = PIL.Image.fromarray(rgb)
    draw = ImageDraw.Draw(picture)
    big, name_font, bold = canvas.font(15), canvas.font(14), canvas.font(15, bold=True)
    for i, line in enumerate(lines):
        draw.text((SIZE[0] // 2, 6 + LINE_PX * i), line, fill=(0, 0, 0), font=big, anchor="mt")
    for panel, name, (left, right) in panels:
        canvas.frame(draw, panel)
        draw.text((panel.left + panel.width // 2, panel.top - 6), name, fill=(0, 0, 0), font=name_font, anchor="ms")
        middle = panel.top + panel.height // 2
        for text, at in ((left, 0.02), (right, 0.95)):
            draw.text((panel.left + round(at * panel.width), middle), text, fill=(255, 255, 0), font=bold, anchor="ls")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    picture.save(path, format="png", compress_level=1)  # fast zlib level
    return path


def _cells(title_lines: int) -> list[tuple[int, int, int, int]]:
    """Pixel boxes (left, top, width, height) of the four panels in reading order, below ``title_lines`` lines of
    title; room is left for each panel's title above it and for its tick labels left of and below it."""
    left, gap_x, right = 52, 62, 14
    top = 6 + LINE_PX * title_lines + 26
    gap_y, bottom = 54, 28
    w = (SIZE[0] - left - gap_x - right) // 2
    h = (SIZE[1] - top - gap_y - bottom) // 2
    return [(left + col * (w + gap_x), top + row * (h + gap_y), w, h) for row in range(2) for col in range(2)]
