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
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from skimage.filters import threshold_otsu

from toothmcl_data.errors import RegistrationError
from toothmcl_data.register import air_classes
from toothmcl_data.register.field import grid_voxel_mm3, intensity_classes, teeth_field, without_metal_class
from toothmcl_data.register.icp import Target
from toothmcl_data.register.isosurface import Candidates, box_around, candidates, morph, near_points, shifted
from toothmcl_data.register.split import jaw_split, up_axis
from toothmcl_data.types import Jaw, Volume, apply_transform

log = logging.getLogger(__name__)

UPPER_QUADRANTS = (1, 2, 5, 6)
METAL_CONTRAST = 1.5
"""An air-facing crown point is metal-like (metal crown, implant) when its inner plateau stands above the air
beside it by more than this many times the typical crown's contrast (enamel ≈ 1, enamel lit by a streak ≈ 1.3,
titanium ≈ 1.7, crown metal ≈ 2.2 in the synthetic scanner); such points are crowns, kept out of the tooth/bone
split, which they would otherwise take for themselves."""
METAL_ROUNDS = 5
"""Intensity path: rounds of the metal-like test, each with the typical crown contrast of the points not yet
found metal-like (see ``_tooth_rule``)."""

METAL_SHARE = 0.4
"""Intensity path, metal crowns a quarter of the air-facing points or more (``_tooth_rule``): the upper class of
their contrasts is metal when it holds at most this fraction of them ... """
METAL_GAP = 2.0
"""... and its median stands at least this many times above the upper quartile of the others. Measured at 0.4 mm
on 122 ``bench/register.py`` patients (clinical seeds 7 and 11, fitted seed 0, all conditions): metal crowns and
implants 2.07-2.33 times with 1-25 % of the points (25 %: six metal crowns of 28 teeth); metal-free jaws at most
1.98 times, and above 1.9 with ≥ 49 % of them (bright crowns beside air-facing bone half as bright)."""
METAL_REACH = 3.0
"""Intensity path: the CBCT holds metal when ``METAL_MM3`` of it lie more than this many times the gap between the
two lower class splits above the tooth split. Measured at 0.4 mm on grids fitted to the jaws, the 99.99th percentile
lies 1.3 times that gap above it without metal (2.2 on a Hounsfield scale) and 4.7-6.3 times with metal crowns or
implants."""
METAL_MM3 = 250.0
"""See ``METAL_REACH``: measured at 0.4 mm, 0 mm³ lie that far above the tooth split without metal, 570-1060 mm³
with 2-6 metal crowns or implants, 385 with three metal-crowned front teeth, 167 with one metal-crowned canine. A
volume, not a percentile: the three front teeth were too few voxels to move the 99.9th percentile of the field,
which then missed them, and their streaks were taken for crowns. One crown's streaks are local, and the air window
of the streak mode (``_air_rule``) cost a clinical-field quadrant case its crowns there (the upper scan, right
before, failed QC 43 mm off): it takes two crowns or more."""


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


BLUNT_EDGE = 0.8
"""Intensity path, metal in the CBCT: an air-facing candidate whose edge sharpness is below this fraction of the
median is the rim of a bright streak, not a crown (see ``_air_rule``)."""
COARSE_MM = 0.8
"""Intensity path: a box of the bright voxels larger than ``COARSE_VOXELS`` is searched first on every
``stride``-th voxel, the largest stride that keeps the coarse voxels within this size (mm); the single-pass
extraction is tested down to 0.8 mm voxels (0.4 mm CBCTs: stride 2; 0.8 mm: no coarse pass)."""
COARSE_VOXELS = 16_000_000
"""Intensity path: the size (voxels) of the bright box above which the coarse pass is made. Measured at 0.4 mm: a
grid fitted to the jaws holds 6-11 M voxels (pose, open bite) and gains little (0.42 → 0.34 s CPU), so it keeps the
single pass and its exact points; a clinical 160 × 160 × 110 mm field's box held 33 M (2.9 → 0.8-1.3 s) before that
field was cut to its teeth (about 6-8 M, see ``field.teeth_field``): the coarse pass now serves a teeth box still
this large (finer voxels, e.g. 0.2 mm)."""
REGION_MM = 2.0
"""Intensity path, coarse pass: the full-resolution surface is computed within at least this distance (mm, per
axis) of the coarse crown points."""
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


@dataclass(frozen=True)
class CrownRule:
    """Which refined candidates are crowns (thresholds in scanner units, ``-inf``: no bound): a crossing was
    found, the outer plateau lies in (``floor``, ``air``), the edge sharpness (1/mm) is above ``sharp`` and the
    inner plateau above ``tooth``. Estimated from one set of candidates, it can be applied to another."""

    air: float
    floor: float = -np.inf
    sharp: float = -np.inf
    tooth: float = -np.inf

    def keep(self, c: Candidates) -> NDArray[np.bool_]:
        """(n,) bool: the candidates ``c`` that are crowns."""
        out: NDArray[np.bool_] = c.ok & (c.outer > self.floor) & (c.outer < self.air)
        return out & (c.sharp > self.sharp) & (c.inner > self.tooth)


def _air_rule(c: Candidates, level: float, where: str, dark_tail: bool = False, streaks: bool = False) -> CrownRule:
    """The rule for candidates ``c`` whose outside is air. ``dark_tail``: guard the air split against metal's dark
    streaks (label-map path only: without a label map the band holds bone and soft tissue, and the guard fired on
    default patients at 0.8 mm, moving points off the crowns). ``streaks`` (intensity path, metal in the CBCT):
    air is a window about the air peak instead (``air_classes.air_window``), which also drops surfaces facing a
    dark streak."""
    ok, outer = c.ok, c.outer
    if not ok.any():
        raise RegistrationError(f"{where}: no tooth surface found at level {level:.0f}; is this a dental CBCT?")
    air = _split(outer[ok], "air level beside the crowns", where)
    # Air beside the crowns is the low class; a second split guards against soft tissue in the low class.
    low = outer[ok & (outer < air)]
    if streaks and low.size > 50:
        floor, air = air_classes.air_window(low, air, level)
        rule = CrownRule(air, floor)
        keep = rule.keep(c)
        # A bright streak beside a crown lifts the air there: the half-way crossing then slides out along a
        # gentle slope, off the crown (measured at 0.4 mm with 2-3x streaks: points > 0.5 mm off the crowns
        # had a median sharpness 0.62x the crowns' own; 85 % of them below 0.8x, against 8 % of the others).
        if keep.sum() > 50:
            rule = CrownRule(air, floor, BLUNT_EDGE * float(np.median(c.sharp[keep])))
        return rule
    if low.size > 50 and (
        float(np.percentile(low, 95) - np.percentile(low, 5)) > 0.25 * (level - float(low.min()))
        or air_classes.two_classes(low, level)
    ):
        second = _split(low, "air level beside the crowns", where)
        if dark_tail and np.mean(low < second) < DARK_TAIL:
            # The split cut off a dark tail (metal's dark streaks below air), not soft tissue above air: air ends
            # at the ceiling of the air window (a split of streaks | air | soft tissue in three classes fell
            # between deep and shallow streaks with 2-3x streaks at 0.4 mm, 146 below air: one patient's lower
            # crowns, beside air, kept 146 points and failed QC 1.1 mm off).
            second = air_classes.air_window(low, air, level)[1]
        air = min(air, second)
    return CrownRule(air)


def _metal_rounds(contrast: NDArray[np.float32], metal: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """The metal-like points (n,) bool among air-facing candidates of ``contrast`` (n,) (inner plateau − air),
    from ``metal`` (n,) bool: those above ``METAL_CONTRAST`` times the upper quartile of the others, found again
    until they no longer change (``METAL_ROUNDS`` at most)."""
    for _ in range(METAL_ROUNDS):
        found = contrast > METAL_CONTRAST * float(np.percentile(contrast[~metal], 75))
        if np.array_equal(found, metal):
            break
        metal = found
    return metal


def _tooth_rule(c: Candidates, rule: CrownRule, where: str) -> CrownRule:
    """Intensity path: ``rule`` with the tooth bound from the air-facing candidates ``c`` (those ``rule`` keeps).

    Air-facing bright surfaces are crowns (enamel, metal) or bone (nasal floor, bone edges): split them. Metal is a
    crown but would take the split for itself when it is more than a few percent of the points (one metal crown of
    28 teeth is ~7%): the split is made without metal-like points, which are kept as crowns. The typical crown
    contrast is the upper quartile of the inner plateaus (crowns, unless bone makes up most) that are not metal-like
    (``_metal_rounds``). With many metal crowns (6 of 28 teeth: a quarter of the points) that quartile lies on metal
    itself; metal is then the upper class of the contrasts, when a minority far above the rest (``METAL_SHARE``,
    ``METAL_GAP``)."""
    inner, outer = c.inner, c.outer
    contrast = inner - float(np.median(outer))
    metal = _metal_rounds(contrast, np.zeros(len(inner), dtype=bool))
    if not metal.any() and np.ptp(contrast) > 0:
        # Metal crowns a quarter of the points or more: the upper quartile lay on metal and nothing stood above
        # it. Metal is then the upper class of the contrasts, a minority far above the rest.
        top = contrast > threshold_otsu(contrast.astype(np.float64))
        if top.mean() <= METAL_SHARE and np.median(contrast[top]) >= METAL_GAP * np.percentile(contrast[~top], 75):
            metal = _metal_rounds(contrast, top)
    rest = inner[~metal]
    tooth = _split(np.minimum(rest, np.percentile(rest, 95)), "tooth level", where)
    lo, hi = inner[inner <= tooth], inner[inner > tooth]
    if lo.size and hi.size and float(np.median(hi) - np.median(lo)) > 0.2 * float(np.median(hi) - np.median(outer)):
        return replace(rule, tooth=tooth)
    return rule


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
    box, lo = box_around(teeth, 2 * grow + 2)
    affine = shifted(cbct.affine, lo)
    image = np.asarray(cbct.array[box], dtype=np.float32)
    lab, teeth = lab[box], teeth[box]
    near = morph(teeth, grow)
    shell = image[near & ~morph(teeth, grow, erode=True)]
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
    c = candidates(image, affine, level, profile_mm, near)
    c = c.select(_air_rule(c, level, where, dark_tail=True).keep(c))
    pts, nrm = c.points, c.normals
    # Each point bounds the tooth just inside it: the first label met 0.5–2 voxels inwards.
    fdi = np.zeros(len(pts), dtype=np.int16)
    for depth in (0.5, 1.0, 1.5, 2.0):
        inside = np.rint(apply_transform(np.linalg.inv(affine), pts - nrm * depth * spacing)).astype(int)
        inside = np.clip(inside, 0, np.array(lab.shape) - 1)
        found = lab[inside[:, 0], inside[:, 1], inside[:, 2]].astype(np.int16)
        fdi = np.where(fdi > 0, fdi, found)
    keep = fdi > 0
    upper = np.isin(fdi // 10, UPPER_QUADRANTS)
    half = float(np.median(0.5 * (c.inner + c.outer)))
    log.debug("%s: %d crown points from labels, half-way level %.0f", where, int(keep.sum()), half)
    up = up_axis(pts[keep])
    return ToothSurface(pts[keep], nrm[keep], fdi[keep], upper[keep], half, "labels", up)


def _intensity_crowns(
    image: NDArray[np.float32], affine: NDArray[np.float64], level: float, profile_mm: float, where: str, metal: bool
) -> Candidates:
    """Intensity path: the crowns among the iso-surface at ``level`` of ``image`` (I, J, K) float32, the box of
    the bright voxels (``affine`` (4, 4) LPS mm from its voxel index). ``metal``: the CBCT holds metal.

    A large box (a clinical field: the skull's bone surfaces dwarf the crowns) is searched coarsely first: the
    iso-surface on every ``stride``-th voxel, refined on the full image, gives the crown rule (the same splits of
    the same kind of candidates, about ``stride²`` times fewer of them) and where the crowns are; the full-resolution
    iso-surface is then computed only within ``REGION_MM`` of those crowns and kept where the rule says crown."""
    spacing = float(min(np.linalg.norm(affine[:3, :3], axis=0)))
    stride, grow = int(COARSE_MM / spacing + 1e-6), max(1, round(1.0 / spacing))
    if stride < 2 or image.size < COARSE_VOXELS:
        band = morph(image > level, grow)
        c = candidates(image, affine, level, profile_mm, band)
        rule = _air_rule(c, level, where, streaks=metal)
        air_facing = c.select(rule.keep(c))
        return air_facing.select(_tooth_rule(air_facing, rule, where).keep(air_facing))
    coarse = candidates(image, affine, level, profile_mm, stride=stride)
    rule = _air_rule(coarse, level, where, streaks=metal)
    rule = _tooth_rule(coarse.select(rule.keep(coarse)), rule, where)
    found = coarse.points[rule.keep(coarse)]
    if len(found) == 0:
        raise RegistrationError(f"{where}: no crown surface found at level {level:.0f}; is this a dental CBCT?")
    at, region = near_points(found, affine, image.shape, REGION_MM)
    # Within the region, the cubes of the single pass: those near bright voxels (the mask shapes the normals of
    # the vertices on its border, and the band passes within a voxel or two of the surface).
    lo, hi = np.maximum(at - grow, 0), np.minimum(at + region.shape + grow, image.shape)
    near = morph(image[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] > level, grow)
    start = at - lo
    region &= near[tuple(slice(a, a + n) for a, n in zip(start, region.shape, strict=True))]
    fine = candidates(image, affine, level, profile_mm, region, at=at)
    return fine.select(rule.keep(fine))


def surface_from_intensity(cbct: Volume, *, profile_mm: float = 1.2, where: str = "CBCT") -> ToothSurface:
    """Crown surfaces of a CBCT without a label map: tooth vs its surroundings from the intensities alone.

    cbct: scanner intensities (I, J, K), LPS. Points carry FDI 0; ``up`` and ``upper`` from ``split``.
    """
    cbct = teeth_field(cbct, where)
    volume = np.asarray(cbct.array)
    grid, splits, stride = intensity_classes(volume, where)
    splits = without_metal_class(grid, splits, grid_voxel_mm3(cbct, stride))  # metal filling a small field
    level = float(splits[1])
    # Work in the box of the bright voxels, with room for the band, the profiles and the probe (the volume is not
    # copied as a whole: a clinical field is 40-50 M voxels).
    bright = volume > np.float32(level)
    spacing = min(cbct.spacing)
    affine = cbct.affine
    if bright.any():
        box, first = box_around(bright, max(1, round(1.0 / spacing)) + int(np.ceil(profile_mm / spacing)) + 2)
        volume, affine = volume[box], shifted(cbct.affine, first)
    image = np.asarray(volume, dtype=np.float32)
    # Metal (far above the tooth class) casts dark streaks below air: then air is a window (see _air_rule).
    metal_floor = level + METAL_REACH * (level - float(splits[0]))
    has_metal = int(np.count_nonzero(grid > metal_floor)) * grid_voxel_mm3(cbct, stride) >= METAL_MM3
    c = _intensity_crowns(image, affine, level, profile_mm, where, has_metal)
    pts, nrm = c.points, c.normals
    half = float(np.median(0.5 * (c.inner + c.outer)))
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
