"""Implicit shapes of synthetic teeth and gingiva: approximate signed distances in mm (negative inside).

The CBCT and the intraoral scan of a synthetic patient are both cut from these same fields, so the scan's
surface lies exactly where the CBCT's tooth/air and gingiva/air boundaries are — the ground truth of the pair.

Tooth-local coordinates ``(u, v, w)`` (mm): ``u`` mesial, ``v`` buccal, ``w`` along the long axis from the CEJ
(``w > 0`` crown, ``w < 0`` root). Arch coordinates of a point in the axial plane: ``d`` signed distance to the arch
curve (positive buccal/outside), ``s`` arc length from the midline (negative on the patient's right).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from toothmcl_data.synth.anatomy import Arch, ToothSpec

FloatArray = NDArray[np.float64]

IMPLANT_RADIUS = 1.9
IMPLANT_LENGTH = 11.0


def to_local(points: FloatArray, spec: ToothSpec) -> FloatArray:
    """(n, 3) LPS mm → (n, 3) tooth-local ``(u, v, w)`` mm of ``spec``."""
    return (np.asarray(points) - np.asarray(spec.cej)) @ spec.local_frame()


def _smin(a: FloatArray, b: FloatArray, k: float) -> FloatArray:
    """Polynomial smooth minimum (smooth union of two distance fields), blend width ``k`` mm."""
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return b * (1 - h) + a * h - k * h * (1 - h)


def _superellipsoid(
    u: FloatArray, v: FloatArray, w: FloatArray, abc: tuple[float, float, float], p: float
) -> FloatArray:
    """First-order distance ``(g − 1) / |∇g|`` to the superellipsoid ``|u/a|^p + |v/b|^p + |w/c|^p = 1``."""
    a, b, c = abc
    qu, qv, qw = np.abs(u) / a + 1e-9, np.abs(v) / b + 1e-9, np.abs(w) / c + 1e-9
    g = (qu**p + qv**p + qw**p) ** (1.0 / p)
    scale = g ** (1.0 - p)
    grad = scale * np.sqrt((qu ** (p - 1) / a) ** 2 + (qv ** (p - 1) / b) ** 2 + (qw ** (p - 1) / c) ** 2)
    return (g - 1.0) / np.maximum(grad, 1e-9)


def _round_cone(uvw: FloatArray, top: FloatArray, apex: FloatArray, r_top: float, r_apex: float) -> FloatArray:
    """Distance to a tapered capsule from ``top`` (radius ``r_top``) to ``apex`` (radius ``r_apex``), mm."""
    axis = apex - top
    length2 = float(axis @ axis)
    t = np.clip((uvw - top) @ axis / length2, 0.0, 1.0)
    nearest = top + t[:, None] * axis
    return np.linalg.norm(uvw - nearest, axis=1) - (r_top + (r_apex - r_top) * t)


def crown_field(uvw: FloatArray, spec: ToothSpec) -> FloatArray:
    """(n,) distance (mm) to the crown of ``spec`` at tooth-local points ``uvw`` (n, 3)."""
    u, v, w = uvw[:, 0], uvw[:, 1], uvw[:, 2]
    a, b, h = spec.width * 0.5, spec.depth * 0.48, spec.height
    kind = spec.type
    centre, c = 0.42 * h, 0.58 * h
    t = np.clip((w - centre) / c, 0.0, 1.0)  # 0 at the bulge, 1 at the tip
    if kind == "incisor":
        field = _superellipsoid(u, v / (1 - 0.6 * t), w - centre, (a, b, c), 2.3)
    elif kind == "canine":
        field = _superellipsoid(u / (1 - 0.45 * t), v / (1 - 0.35 * t), w - centre, (a, b, c), 2.0)
    else:
        top = 0.9 * h if kind == "premolar" else 0.86 * h
        c = top - centre
        field = _superellipsoid(u, v, w - centre, (a, b, c), 2.4 if kind == "premolar" else 3.0)
        if kind == "premolar":
            cusps = [(0.0, 0.42 * b), (0.0, -0.42 * b)]
        else:
            cusps = [(sx * 0.45 * a, sy * 0.45 * b) for sx in (-1, 1) for sy in (-1, 1)]
        radius = 0.34 * min(a, b)
        for cu, cv in cusps:
            cusp = np.sqrt((u - cu) ** 2 + (v - cv) ** 2 + (w - (h - radius)) ** 2) - radius
            field = _smin(field, cusp, 0.8)
    return field


def tooth_field(uvw: FloatArray, spec: ToothSpec) -> FloatArray:
    """(n,) distance (mm) to the whole tooth (crown, roots or implant fixture) at tooth-local points (n, 3)."""
    crown = crown_field(uvw, spec)
    a, b = spec.width * 0.47, spec.depth * 0.47
    if spec.restoration == "implant":
        axial = np.maximum(np.maximum(-uvw[:, 2] - IMPLANT_LENGTH, uvw[:, 2] - 0.5), 0.0)
        radial = np.hypot(uvw[:, 0], uvw[:, 1]) - IMPLANT_RADIUS
        fixture = np.where(axial > 0, np.hypot(axial, np.maximum(radial, 0.0)), radial)
        return np.minimum(crown, fixture)
    n = spec.n_roots
    if n == 1:
        roots = [((0.0, 0.0), (0.0, 0.0), 0.72 * min(a, b))]
    elif n == 2 and spec.type == "premolar":
        roots = [
            ((0.0, 0.35 * b), (0.0, 0.45 * b), 0.5 * min(a, b)),
            ((0.0, -0.35 * b), (0.0, -0.45 * b), 0.5 * min(a, b)),
        ]
    elif n == 2:
        roots = [((0.42 * a, 0.0), (0.5 * a, 0.0), 0.45 * a), ((-0.42 * a, 0.0), (-0.5 * a, 0.0), 0.45 * a)]
    else:
        r = 0.4 * min(a, b)
        roots = [
            ((0.4 * a, 0.35 * b), (0.5 * a, 0.45 * b), r),
            ((-0.4 * a, 0.35 * b), (-0.5 * a, 0.45 * b), r),
            ((0.0, -0.45 * b), (0.0, -0.6 * b), r * 1.15),
        ]
    field = crown
    for (tu, tv), (au, av), r_top in roots:
        cone = _round_cone(uvw, np.array([tu, tv, 0.1 * spec.height]), np.array([au, av, -spec.root]), r_top, 0.8)
        field = _smin(field, cone, 1.2)
    return field


class ArchCoordinates:
    """Maps axial-plane points (x, y) LPS mm to arch coordinates ``(d, s)`` of one arch curve."""

    def __init__(self, arch: Arch, step: float = 0.05) -> None:
        line = arch.polyline(step=step)
        self._line = line
        self._tree = cKDTree(line)
        arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(line, axis=0), axis=1))])
        mid = int(np.argmin(np.abs(line[:, 0] - arch.x0)))
        self._s = arc - arc[mid]
        tangent = np.gradient(line, axis=0)
        tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
        self._normal = np.stack([tangent[:, 1], -tangent[:, 0]], axis=1)  # outward: towards anterior / lateral

    def __call__(self, xy: FloatArray) -> tuple[FloatArray, FloatArray]:
        """(n, 2) points → ``d`` (n,) signed distance (mm, + buccal) and ``s`` (n,) arc position (mm)."""
        _, idx = self._tree.query(xy)
        d = np.einsum("ij,ij->i", xy - self._line[idx], self._normal[idx])
        return d, self._s[idx]


def gingiva_height(
    d: FloatArray, s: FloatArray, arch: Arch, teeth: tuple[ToothSpec, ...], coords: ArchCoordinates
) -> FloatArray:
    """(n,) height (mm, along the occlusal direction from the arch's CEJ plane) of the gingiva surface above
    each axial-plane point given by its arch coordinates ``d``, ``s`` (n,).

    Flat at 0.8 mm over the band the teeth stand in, with papillae rising 1.8 mm between neighbouring teeth,
    falling into the vestibule buccally, into the palatal vault (upper) or the floor of the mouth (lower)
    lingually, and behind the last molars.
    """
    ts = np.array([coords(np.asarray(t.cej[:2])[None])[1][0] for t in teeth])
    order = np.argsort(ts)
    ts = ts[order]
    depth = np.array([teeth[i].depth for i in order])
    half = np.array([teeth[i].width / 2 for i in order])
    band = np.interp(s, ts, depth / 2 + 1.2)
    top = np.full_like(d, 0.8)
    for k in range(len(ts) - 1):
        if ts[k + 1] - ts[k] < 1.3 * (half[k] + half[k + 1]):  # neighbours, not a gap
            contact = ts[k] + half[k] + 0.5 * (ts[k + 1] - ts[k] - half[k] - half[k + 1])
            top += 1.8 * np.exp(-(((s - contact) / 1.3) ** 2))
    buccal = np.maximum(d - band, 0.0)
    lingual = np.maximum(-d - band, 0.0)
    top -= 0.8 * buccal**2
    if arch.jaw == "upper":
        top -= 9.0 * (1.0 - np.exp(-((lingual / 6.0) ** 2))) + 0.08 * lingual
    else:
        top -= 0.8 * lingual**2
    beyond = np.maximum(s - (ts[-1] + half[-1] + 3.0), 0.0) + np.maximum(ts[0] - half[0] - 3.0 - s, 0.0)
    top -= 0.8 * beyond**2
    return np.maximum(top, -60.0)
