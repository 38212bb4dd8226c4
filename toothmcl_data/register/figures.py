"""Pictures of a registration a person can judge at a glance.

The registered scan's contour (its intersection with the plane) is drawn on axial, coronal and sagittal CBCT
slices through the scan's crowns, and its points on a panoramic-like view: the CBCT's maximum intensity in a
band along the arch (a parabola fitted to the scan), unrolled against arch position and height.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import PIL.Image
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from numpy.typing import NDArray
from scipy import ndimage

from toothmcl_data.types import Mesh, Registration, Volume, apply_transform

WINDOW = (-200.0, 3200.0)
"""Display window of CBCT intensities (scanner units)."""
PANORAMA_BAND_MM = 6.0
"""Half-width of the band across the arch whose maximum the panoramic view shows."""
CONTOUR = "#00e5ff"
VIEW_MARGIN_MM = 12.0
"""The views show the CBCT within this margin (mm) around the registered scan: the jaw fills the picture
whatever the field of view (a clinical field holds the whole lower face)."""
LAYOUT = {"left": 0.06, "right": 0.985, "bottom": 0.04, "top": 0.915, "wspace": 0.16, "hspace": 0.2}
"""Fixed margins of the 2 × 2 picture (fractions of the figure): room for the tick labels and titles, so no
layout pass (``tight_layout`` draws the figure once more) is needed."""


def plane_contour(
    vertices: NDArray[np.float64], faces: NDArray[np.int32], axis: int, value: float
) -> NDArray[np.float64]:
    """Segments (s, 2, 3) LPS mm where the triangle mesh ``vertices`` (n, 3) LPS mm / ``faces`` (m, 3) crosses
    the plane ``x[axis] == value``."""
    d = vertices[:, axis] - value
    tri = d[faces]
    side = tri > 0
    cross = side.any(axis=1) & ~side.all(axis=1)
    f, t, s = faces[cross], tri[cross], side[cross]
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
    plane = np.take(np.asarray(cbct.array), k, axis=axis)
    image = plane[first[0] : last[0] + 1, first[1] : last[1] + 1].astype(np.float32).T
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
    """Maximum-intensity panorama (z, x) along the parabola y(x) fitted to ``crown`` (n, 3) LPS mm; returns the
    image, the x samples (mm) and the z range (mm)."""
    coef = np.polyfit(crown[:, 0], crown[:, 1], 2)
    step = min(cbct.spacing)
    xs = np.arange(crown[:, 0].min() - 3, crown[:, 0].max() + 3, step)
    lo, hi = cbct.affine[2, 3], cbct.affine[2, 3] + cbct.spacing[2] * (cbct.shape[2] - 1)
    lo, hi = max(lo, heights[0]), max(min(hi, heights[1]), max(lo, heights[0]) + step)
    zs = np.arange(lo, hi, step)
    ys = np.polyval(coef, xs)
    slope = np.polyval(np.polyder(coef), xs)
    normal = np.stack([-slope, np.ones_like(slope)], axis=1) / np.hypot(slope, 1)[:, None]
    image = np.asarray(cbct.array)  # no float copy (map_coordinates interpolates in double whatever the dtype)
    best = np.full((len(zs), len(xs)), -np.inf, dtype=np.float32)
    # Index coordinates are affine in the offset across the arch: ijk(off) = ijk(0) + off · Δijk.
    on_arch = np.stack(
        [np.broadcast_to(xs, best.shape), np.broadcast_to(ys, best.shape), np.broadcast_to(zs[:, None], best.shape)],
        axis=-1,
    ).reshape(-1, 3)
    ijk0 = cbct.index_from_world(on_arch).T
    across = np.zeros((len(xs), 3))
    across[:, :2] = normal
    d_ijk = np.linalg.inv(cbct.affine)[:3, :3] @ np.broadcast_to(across, (*best.shape, 3)).reshape(-1, 3).T
    for off in np.arange(-PANORAMA_BAND_MM, PANORAMA_BAND_MM + step / 2, step):
        vals = ndimage.map_coordinates(
            image, ijk0 + off * d_ijk, output=np.float32, order=1, mode="constant", cval=WINDOW[0]
        )
        np.maximum(best, vals.reshape(best.shape), out=best)
    return best, xs, (float(zs[0]), float(zs[-1]))


def registration_png(cbct: Volume, mesh: Mesh, registration: Registration, path: Path, *, title: str = "") -> Path:
    """Write the overlay picture of one registered jaw and return ``path``.

    cbct: axis-aligned LPS volume; mesh: the scan in its own frame; registration: its ``world_from_ios``.
    """
    v = apply_transform(registration.world_from_ios, mesh.vertices)
    crown = v[mesh.labels > 0] if mesh.labels is not None and np.any(mesh.labels > 0) else v
    centre = np.median(crown, axis=0)
    box = _view_box(cbct, v)
    fig = Figure(figsize=(12, 10), dpi=80)  # not pyplot: no global figure registry (flow tasks draw in threads)
    axes = fig.subplots(2, 2)
    fig.subplots_adjust(**LAYOUT)
    views = [(2, "axial (x, y)", ("R", "L")), (1, "coronal (x, z)", ("R", "L")), (0, "sagittal (y, z)", ("A", "P"))]
    for ax, (axis, name, (left, right)) in zip(axes.ravel()[:3], views, strict=True):
        image, extent = _slice(cbct, axis, float(centre[axis]), box)
        origin = "upper" if axis == 2 else "lower"
        shown = (extent[0], extent[1], extent[3], extent[2]) if axis == 2 else extent
        ax.imshow(
            image, cmap="gray", vmin=WINDOW[0], vmax=WINDOW[1], extent=shown, origin=origin, interpolation="nearest"
        )
        seg = plane_contour(v, mesh.faces, axis, float(centre[axis]))
        others = [a for a in range(3) if a != axis]
        if len(seg):
            ax.add_collection(LineCollection(seg[:, :, others], colors=CONTOUR, linewidths=0.8))  # type: ignore[arg-type]
        ax.set_title(f"{name} at {'xyz'[axis]} = {centre[axis]:.1f} mm (LPS)", y=1.0)  # y: no tick-label search
        ax.text(0.02, 0.5, left, transform=ax.transAxes, color="yellow", fontsize=13, fontweight="bold")
        ax.text(0.95, 0.5, right, transform=ax.transAxes, color="yellow", fontsize=13, fontweight="bold")
    pano, xs, (z0, z1) = _panorama(cbct, crown, (float(box[0][2]), float(box[1][2])))
    ax = axes[1, 1]
    ax.imshow(
        pano, cmap="gray", vmin=WINDOW[0], vmax=WINDOW[1], extent=(xs[0], xs[-1], z0, z1), origin="lower", aspect="auto"
    )
    pick = crown[:: max(1, len(crown) // 4000)]
    ax.scatter(pick[:, 0], pick[:, 2], s=0.3, c=CONTOUR, alpha=0.5, linewidths=0)
    ax.set_title("panoramic-like view (max along the arch; x vs z, mm)", y=1.0)
    ax.set_ylim(z0, z1)
    r = registration
    fig.suptitle(
        (title + "\n" if title else "")
        + f"{r.jaw} jaw: {r.verdict.upper()}  rms {r.rms_mm:.3f} mm  p95 {r.p95_mm:.3f} mm  "
        + f"inliers {100 * r.inlier_fraction:.0f}%  {' '.join(r.flags)}"
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    rgb = np.asarray(canvas.buffer_rgba())[..., :3]  # opaque: the alpha channel says nothing
    PIL.Image.fromarray(np.ascontiguousarray(rgb)).save(path, format="png", compress_level=1)  # fast zlib level
    return path
