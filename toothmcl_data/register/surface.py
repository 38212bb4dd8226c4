"""CBCT tooth crown surfaces as points with normals in LPS world mm.

The surface is placed where the intensity is half-way between the tooth and the tissue beside it, estimated
from the data along each surface normal: a fixed threshold nearer enamel shifts the surface by a good fraction of
a voxel, more than the registration's accuracy goal. Steps:

1. a rough iso-surface (marching cubes at an Otsu level between tooth and its neighbourhood);
2. at every vertex, an intensity profile along the normal (``± profile_mm``): the inner plateau (max inside),
   the outer plateau (min outside), and the sub-voxel crossing of their half-way level;
3. crowns are the tooth surface whose outside is air (an intraoral scanner sees nothing else), found by a
   data-derived split of the outer plateaus; teeth are told from bone by a split of the inner plateaus.

With an FDI label map each point takes the label of the tooth it bounds; without one (intensity path) points
carry FDI 0 and are split into upper and lower jaw by ``split.jaw_split`` (from the crowns' own occlusal
surfaces: one jaw or two, any head pose, open or closed bite).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from skimage.filters import threshold_otsu
from skimage.measure import marching_cubes

from toothmcl_data.errors import RegistrationError
from toothmcl_data.register import air_classes
from toothmcl_data.register.icp import Target
from toothmcl_data.register.split import jaw_split, up_axis
from toothmcl_data.types import Jaw, Volume, apply_transform

log = logging.getLogger(__name__)

UPPER_QUADRANTS = (1, 2, 5, 6)
METAL_PERCENTILE = 99.5
"""Volume intensities above this percentile are clipped before the class split (metal would get a class)."""
METAL_CONTRAST = 1.5
"""An air-facing crown point is metal-like (metal crown, implant) when its inner plateau stands above the air
beside it by more than this many times the typical crown's contrast (enamel ≈ 1, enamel lit by a streak ≈ 1.3,
titanium ≈ 1.7, crown metal ≈ 2.2 in the synthetic scanner); such points are crowns, kept out of the tooth/bone
split, which they would otherwise take for themselves."""

METAL_REACH = 3.0
"""Intensity path: the CBCT holds metal when its 99.9th percentile lies more than this many times the gap between
the two lower class splits above the tooth split (measured at 0.4 mm: 1.2-1.4 without metal, 2.2 on a Hounsfield
scale without metal, 3.4-4.5 with metal crowns or implants)."""


@dataclass(frozen=True, eq=False)
class ToothSurface:
    """Crown surface samples of one CBCT.

    points: (n, 3) float64 LPS world mm, on the half-way level. normals: (n, 3) float64 unit vectors pointing
    out of the tooth (towards lower intensity). fdi: (n,) int16 FDI of the tooth each point bounds (0 when the
    CBCT has no label map). upper: (n,) bool, True for upper-jaw crowns. level: median half-way level (scanner
    units). source: ``"labels"`` or ``"intensity"``. up: (3,) unit LPS superior direction estimated from the
    crowns' own arch (``split.up_axis``), not from the volume axes.
    """

    points: NDArray[np.float64]
    normals: NDArray[np.float64]
    fdi: NDArray[np.int16]
    upper: NDArray[np.bool_]
    level: float
    source: Literal["labels", "intensity"]
    up: NDArray[np.float64] = field(default_factory=lambda: np.array([0.0, 0.0, 1.0]))

    def select(self, keep: NDArray[np.bool_]) -> ToothSurface:
        """The points where ``keep`` (n,) bool is True."""
        return ToothSurface(
            self.points[keep], self.normals[keep], self.fdi[keep], self.upper[keep], self.level, self.source, self.up
        )

    def jaw(self, jaw: Jaw) -> ToothSurface:
        """The crowns of one jaw (selected once per surface: both scans of a case then share its ``target``)."""
        return self._jaws[jaw]

    @functools.cached_property
    def _jaws(self) -> dict[str, ToothSurface]:
        return {"upper": self.select(self.upper), "lower": self.select(~self.upper)}

    @functools.cached_property
    def target(self) -> Target:
        """The crowns as an ICP target (their k-d tree built once, on first use)."""
        return Target.of(self.points, self.normals)


def _sample(image: NDArray[np.float32], index: NDArray[np.floating]) -> NDArray[np.float32]:
    """Trilinear samples of ``image`` (I, J, K) at fractional voxel indices (..., 3); edge values outside."""
    flat = index.reshape(-1, 3).T
    out = ndimage.map_coordinates(image, flat, order=1, mode="nearest")
    return np.asarray(out.reshape(index.shape[:-1]), dtype=np.float32)


def refine_along_normals(
    image: NDArray[np.float32],
    affine: NDArray[np.float64],
    points: NDArray[np.float64],
    normals: NDArray[np.float64],
    half_mm: float,
) -> tuple[NDArray[np.float64], NDArray[np.float32], NDArray[np.float32], NDArray[np.bool_], NDArray[np.float32]]:
    """Move each point to the half-way level of its own intensity profile.

    image: (I, J, K) float32 intensities. affine: (4, 4) LPS mm from voxel index. points, normals: (n, 3) LPS
    mm and unit outward normals. half_mm: profile half-length.
    Returns refined points (n, 3) LPS mm, inner and outer plateaus (n,) float32, ok (n,) bool (a crossing
    was found within the profile), and the edge sharpness (n,) float32 (1/mm): the profile's slope at the
    crossing over the contrast ``inner − outer`` (a blurred step of width σ mm: ≈ 0.4/σ).
    """
    step = float(min(np.linalg.norm(affine[:3, :3], axis=0))) / 3.0
    s = np.arange(-half_mm, half_mm + step / 2, step)
    inv = np.linalg.inv(affine)
    start = apply_transform(inv, points).astype(np.float32)
    along = (normals @ inv[:3, :3].T).astype(np.float32)
    prof = _sample(image, start[:, None, :] + s.astype(np.float32)[None, :, None] * along[:, None, :])
    centre = int(np.argmin(np.abs(s)))
    inner_at = np.argmax(prof[:, : centre + 1], axis=1)
    inner = prof[np.arange(len(prof)), inner_at]
    outer = prof[:, centre:].min(axis=1)
    level = 0.5 * (inner + outer)
    below = prof < level[:, None]
    below &= np.arange(len(s))[None, :] > inner_at[:, None]
    found = below.any(axis=1)
    j = np.where(found, np.argmax(below, axis=1), 1)
    a = prof[np.arange(len(prof)), j - 1]
    b = prof[np.arange(len(prof)), j]
    frac = np.clip((a - level) / np.maximum(a - b, 1e-6), 0.0, 1.0)
    offset = s[j - 1] + frac * step
    ok = found & (np.abs(offset) < half_mm - step)
    sharp = (a - b) / np.float32(step) / np.maximum(inner - outer, np.float32(1e-6))
    return points + offset[:, None] * normals, inner, outer, ok, sharp.astype(np.float32)


BLUNT_EDGE = 0.8
"""Intensity path, metal in the CBCT: an air-facing candidate whose edge sharpness is below this fraction of the
median is the rim of a bright streak, not a crown (see ``_crowns``)."""


def _box(mask: NDArray[np.bool_], margin: int) -> tuple[tuple[slice, slice, slice], NDArray[np.intp]]:
    """Index box (slices) around the True voxels of ``mask`` (I, J, K), which holds at least one, grown by
    ``margin`` voxels on every side and clipped to the grid; and its first index (3,)."""
    lo, hi = np.zeros(3, dtype=np.intp), np.zeros(3, dtype=np.intp)
    for axis in range(3):
        hit = np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != axis)))
        lo[axis] = max(int(hit[0]) - margin, 0)
        hi[axis] = min(int(hit[-1]) + margin + 1, mask.shape[axis])
    return (slice(lo[0], hi[0]), slice(lo[1], hi[1]), slice(lo[2], hi[2])), lo


def _morph(mask: NDArray[np.bool_], iterations: int, *, erode: bool = False) -> NDArray[np.bool_]:
    """``scipy.ndimage.binary_dilation`` (or ``binary_erosion`` when ``erode``) of ``mask`` (I, J, K) bool with
    the 6-neighbour cross, ``iterations`` times, voxels outside the grid counting as False; the same result from
    shifted slices, several times faster."""
    out = mask
    for _ in range(iterations):
        prev, out = out, out.copy()
        for axis in range(3):
            head = tuple(slice(1, None) if a == axis else slice(None) for a in range(3))
            tail = tuple(slice(None, -1) if a == axis else slice(None) for a in range(3))
            if erode:
                out[head] &= prev[tail]
                out[tail] &= prev[head]
                out[tuple(0 if a == axis else slice(None) for a in range(3))] = False
                out[tuple(-1 if a == axis else slice(None) for a in range(3))] = False
            else:
                out[head] |= prev[tail]
                out[tail] |= prev[head]
    return out


def _shifted(affine: NDArray[np.float64], lo: NDArray[np.intp]) -> NDArray[np.float64]:
    """The (4, 4) affine of a sub-grid that starts at index ``lo`` (3,) of the grid of ``affine``."""
    out = affine.copy()
    out[:3, 3] = apply_transform(affine, lo[None].astype(np.float64))[0]
    return out


def _iso_surface(
    image: NDArray[np.float32], affine: NDArray[np.float64], level: float, mask: NDArray[np.bool_]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Marching cubes of ``image`` at ``level`` inside the bounding box of ``mask`` (I, J, K) bool: vertices
    (n, 3) LPS mm and unit normals pointing to lower intensity."""
    if not mask.any():
        return np.zeros((0, 3)), np.zeros((0, 3))
    box, lo = _box(mask, 1)
    sub = image[box]
    if not sub.min() < level < sub.max():
        return np.zeros((0, 3)), np.zeros((0, 3))
    verts, _, normals, _ = marching_cubes(sub, level=level, mask=mask[box], allow_degenerate=False)
    ijk = verts.astype(np.float64) + lo
    world = apply_transform(affine, ijk)
    # Normals in index space → world (the affine's inverse transpose); skimage's point to lower values.
    n_world = normals.astype(np.float64) @ np.linalg.inv(affine[:3, :3])
    n_world /= np.maximum(np.linalg.norm(n_world, axis=1, keepdims=True), 1e-12)
    return world, n_world


TOOTH_HEADROOM = 1.3
"""Label path: when metal took the tooth/neighbour split (its level above the teeth's upper quartile), the shell
intensities are clipped this many times the teeth's upper quartile above the neighbourhood's median and split
again (enamel stays below the clip)."""
DARK_TAIL = 0.4
"""A split of the air class that keeps less than this fraction below it has cut off dark metal streaks (measured:
0.27 with 2-3x streaks; 0.55 without metal, where it separates air from soft tissue)."""


def _split(values: NDArray[np.float32], what: str, where: str) -> float:
    """Otsu split of a 1-D sample; raises RegistrationError when there is nothing to split."""
    if values.size < 10 or float(values.max() - values.min()) < 1e-3:
        raise RegistrationError(
            f"{where}: cannot estimate the {what} from {values.size} surface samples; expected a CBCT with visible "
            "tooth crowns next to air (check the volume is a dental CBCT and not empty or cropped)"
        )
    return float(threshold_otsu(values.astype(np.float64)))


def _crowns(
    image: NDArray[np.float32],
    affine: NDArray[np.float64],
    band: NDArray[np.bool_],
    level: float,
    profile_mm: float,
    where: str,
    dark_tail: bool = False,
    streaks: bool = False,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float32], NDArray[np.float32]]:
    """Crown points in ``band`` whose outside is air: refined points (n, 3) LPS mm, outward normals (n, 3),
    inner and outer plateaus (n,) float32. ``dark_tail``: guard the air split against metal's dark streaks
    (label-map path only: without a label map the band holds bone and soft tissue, and the guard fired on
    default patients at 0.8 mm, moving points off the crowns). ``streaks`` (intensity path, metal in the CBCT):
    air is a window about the air peak instead (``air_classes.air_window``), which also drops surfaces facing a
    dark streak."""
    pts, nrm = _iso_surface(image, affine, level, band)
    # Only surfaces with something darker than the rough level outside can face air (drops bone-bound roots).
    probe = apply_transform(np.linalg.inv(affine), pts + nrm * profile_mm)
    dark = _sample(image, probe[:, None, :])[:, 0] < level
    pts, nrm = pts[dark], nrm[dark]
    pts, inner, outer, ok, sharp = refine_along_normals(image, affine, pts, nrm, profile_mm)
    if not ok.any():
        raise RegistrationError(f"{where}: no tooth surface found at level {level:.0f}; is this a dental CBCT?")
    air = _split(outer[ok], "air level beside the crowns", where)
    # Air beside the crowns is the low class; a second split guards against soft tissue in the low class.
    low = outer[ok & (outer < air)]
    if streaks and low.size > 50:
        floor, air = air_classes.air_window(low, air)
        keep = ok & (outer > floor) & (outer < air)
        # A bright streak beside a crown lifts the air there: the half-way crossing then slides out along a
        # gentle slope, off the crown (measured at 0.4 mm with 2-3x streaks: points > 0.5 mm off the crowns
        # had a median sharpness 0.62x the crowns' own; 85 % of them below 0.8x, against 8 % of the others).
        if keep.sum() > 50:
            keep &= sharp > BLUNT_EDGE * float(np.median(sharp[keep]))
        return pts[keep], nrm[keep], inner[keep], outer[keep]
    if low.size > 50 and (
        float(np.percentile(low, 95) - np.percentile(low, 5)) > 0.25 * (level - float(low.min()))
        or air_classes.two_classes(low, level)
    ):
        second = _split(low, "air level beside the crowns", where)
        if dark_tail and np.mean(low < second) < DARK_TAIL:
            # The split cut off a dark tail (metal's dark streaks below air), not soft tissue above air: split
            # streaks | air | soft tissue and keep air.
            from skimage.filters import threshold_multiotsu

            second = float(threshold_multiotsu(low.astype(np.float64), classes=3)[1])
        air = min(air, second)
    keep = ok & (outer < air)
    return pts[keep], nrm[keep], inner[keep], outer[keep]


def surface_from_labels(cbct: Volume, labels: Volume, *, profile_mm: float = 1.2, where: str = "CBCT") -> ToothSurface:
    """Crown surface of every labelled tooth; each point carries the FDI of the tooth it bounds.

    cbct: scanner intensities (I, J, K), LPS. labels: FDI label map on the same grid (0 = not a tooth).
    """
    if labels.shape != cbct.shape or not np.allclose(labels.affine, cbct.affine, atol=1e-4):
        raise RegistrationError(
            f"{where}: label map grid {labels.shape} does not match the CBCT grid {cbct.shape} (or their affines "
            "differ); resample the label map onto the CBCT grid first"
        )
    lab = np.asarray(labels.array)
    teeth = lab > 0
    if not teeth.any():
        raise RegistrationError(f"{where}: the label map holds no tooth (all 0); pass cbct_labels=None instead")
    spacing = min(cbct.spacing)
    grow = max(1, round(1.5 / spacing))
    box, lo = _box(teeth, 2 * grow + 2)
    affine = _shifted(cbct.affine, lo)
    image = np.asarray(cbct.array[box], dtype=np.float32)
    lab, teeth = lab[box], teeth[box]
    near = _morph(teeth, grow)
    shell = image[near & ~_morph(teeth, grow, erode=True)]
    level = _split(shell, "tooth/neighbour level", where)
    quartile = float(np.percentile(image[teeth], 75))
    if level > quartile:
        # Metal crowns (a few percent of the tooth voxels, far above enamel) took the split for themselves and
        # left the natural crowns below the level: split again with what lies well above the teeth's upper
        # quartile (enamel or dentin unless most crowns are metal) clipped, measured from the neighbourhood's
        # median so that any intensity scale works. Measured: 6 metal crowns of 29 teeth at 0.4 mm left crown
        # points on 2 of the 23 natural crowns without this, on all 23 with it.
        ref = float(np.median(image[near & ~teeth]))
        level = _split(np.minimum(shell, ref + TOOTH_HEADROOM * (quartile - ref)), "tooth/neighbour level", where)
    pts, nrm, inner, outer = _crowns(image, affine, near, level, profile_mm, where, dark_tail=True)
    # Each point bounds the tooth just inside it: the first label met 0.5–2 voxels inwards.
    fdi = np.zeros(len(pts), dtype=np.int16)
    for depth in (0.5, 1.0, 1.5, 2.0):
        inside = np.rint(apply_transform(np.linalg.inv(affine), pts - nrm * depth * spacing)).astype(int)
        inside = np.clip(inside, 0, np.array(lab.shape) - 1)
        found = lab[inside[:, 0], inside[:, 1], inside[:, 2]].astype(np.int16)
        fdi = np.where(fdi > 0, fdi, found)
    keep = fdi > 0
    upper = np.isin(fdi // 10, UPPER_QUADRANTS)
    half = float(np.median(0.5 * (inner + outer)))
    log.debug("%s: %d crown points from labels, half-way level %.0f", where, int(keep.sum()), half)
    up = up_axis(pts[keep])
    return ToothSurface(pts[keep], nrm[keep], fdi[keep], upper[keep], half, "labels", up)


def surface_from_intensity(cbct: Volume, *, profile_mm: float = 1.2, where: str = "CBCT") -> ToothSurface:
    """Crown surfaces of a CBCT without a label map: tooth vs its surroundings from the intensities alone.

    cbct: scanner intensities (I, J, K), LPS. Points carry FDI 0; ``up`` and ``upper`` from ``split``.
    """
    image = np.asarray(cbct.array, dtype=np.float32)
    stride = max(1, int(np.ceil((image.size / 2e6) ** (1 / 3))))
    sample = image[::stride, ::stride, ::stride].ravel()
    # Three classes over the volume: air/soft, bone, tooth; the rough surface is the upper split.
    from skimage.filters import threshold_multiotsu

    try:
        # Metal (crowns, implants: a few voxels far above enamel) would take a class of its own: clip it.
        clipped = np.minimum(sample, np.percentile(sample, METAL_PERCENTILE))
        splits = threshold_multiotsu(clipped.astype(np.float64), classes=3)
    except ValueError as err:
        raise RegistrationError(
            f"{where}: cannot split the CBCT intensities into air, bone and tooth ({err}); expected a dental CBCT"
        ) from err
    level = float(splits[1])
    bright = image > level
    spacing = min(cbct.spacing)
    grow = max(1, round(1.0 / spacing))
    affine = cbct.affine
    if bright.any():  # work in the box of the bright voxels, with room for the band, the profiles and the probe
        box, first = _box(bright, grow + int(np.ceil(profile_mm / spacing)) + 2)
        image, bright, affine = image[box], bright[box], _shifted(cbct.affine, first)
    band = _morph(bright, grow)
    # Metal (far above the tooth class) casts dark streaks below air: then air is a window (see _crowns).
    metal_floor = level + METAL_REACH * (level - float(splits[0]))
    has_metal = float(np.percentile(sample, 99.9)) > metal_floor
    pts, nrm, inner, outer = _crowns(image, affine, band, level, profile_mm, where, streaks=has_metal)
    # Air-facing bright surfaces are crowns (enamel, metal) or bone (nasal floor, bone edges): split them. Metal
    # is a crown but would take the split for itself when it is more than a few percent of the points (one metal
    # crown of 28 teeth is ~7%): the split is made without metal-like points, which are kept as crowns. The
    # typical crown contrast is the upper quartile of the inner plateaus (crowns, unless bone makes up most).
    air = float(np.median(outer))
    metal = inner - air > METAL_CONTRAST * (float(np.percentile(inner, 75)) - air)
    rest = inner[~metal]
    tooth = _split(np.minimum(rest, np.percentile(rest, 95)), "tooth level", where)
    lo, hi = inner[inner <= tooth], inner[inner > tooth]
    if lo.size and hi.size and float(np.median(hi) - np.median(lo)) > 0.2 * float(np.median(hi) - np.median(outer)):
        keep = inner > tooth
        pts, nrm, inner, outer = pts[keep], nrm[keep], inner[keep], outer[keep]
    half = float(np.median(0.5 * (inner + outer)))
    up = up_axis(pts)
    upper = jaw_split(pts, nrm, up)
    log.debug("%s: %d crown points from intensity (%d upper), half-way level %.0f", where, len(pts), upper.sum(), half)
    return ToothSurface(pts, nrm, np.zeros(len(pts), dtype=np.int16), upper, half, "intensity", up)


def cbct_surface(
    cbct: Volume, labels: Volume | None = None, *, profile_mm: float = 1.2, where: str = "CBCT"
) -> ToothSurface:
    """Crown surface from the label map when there is one, else from intensity alone."""
    if labels is not None:
        return surface_from_labels(cbct, labels, profile_mm=profile_mm, where=where)
    return surface_from_intensity(cbct, profile_mm=profile_mm, where=where)
