"""The intensity classes of a CBCT (air and soft tissue | bone | tooth) and a clinical field cut to its teeth.

A clinical field of view (e.g. 160 × 160 × 110 mm: skull, sinuses, airway, air outside) is mostly not teeth: its
classes and air-facing bone surfaces would swamp the crowns, so the intensity path works in the box of its
tooth-bright voxels (:func:`teeth_field`). Volumes are (I, J, K) scanner intensities; boxes are voxel index ranges.
"""

from __future__ import annotations

import logging

import numpy as np
from numpy.typing import NDArray
from skimage.filters import threshold_multiotsu, threshold_otsu

from toothmcl_data.errors import RegistrationError
from toothmcl_data.register.isosurface import shifted
from toothmcl_data.types import Volume

log = logging.getLogger(__name__)

CLINICAL_VOXELS = 16_000_000
"""A CBCT of more voxels than this is a clinical field, cut to its teeth (:func:`teeth_field`); measured at 0.4 mm,
a grid fitted to the jaws holds 6-11 M voxels (pose, open bite), a 160 × 160 × 110 mm field 44 M."""
METAL_PERCENTILE = 99.5
"""Volume intensities above this percentile are clipped before the class split (metal would get a class)."""
STREAK_PERCENTILE = 10.0
"""... and those below this one (metal's dark streaks, far below air, would get a class: measured at 0.4 mm, one of
40 patients with metal crowns split streaks | air and soft tissue | bone and teeth, the tooth level at 715 instead
of about 1550; clipped, 1540, and the splits of patients without streaks move by less than 1 %)."""
METAL_CLASS_MM3 = 3000.0
"""Intensity path: the top intensity class is metal (implants, metal crowns), not teeth, when it holds less than
this (mm³) ... A small field (a quadrant: 3-6 teeth) with an implant or metal crowns holds more metal than
``METAL_PERCENTILE`` clips: the top class is then the metal alone, the tooth level lies above the natural crowns
(3,140 for teeth of median 1,750-2,080), and the crowns found are the metal's. Measured at 0.4 mm on clinical fields
(``bench/register.py --field-mm clinical``; seeds 7 and 17, all conditions and the quadrant and one-jaw
combinations with metal, 85 patients; seed 5, 12 patients each of ``fov_quadrant``, ``+implants``,
``+metal_crowns`` and ``fov_one_jaw+metal_crowns``): metal alone held the top class in 17 quadrant and one-jaw
fields, 188-1,560 mm³; where the teeth held it, 1,099-13,232 mm³ (one-jaw fields with metal crowns, their level
just above the natural teeth: 2,888-3,087); the top class of bone and teeth together (the classes then split air |
soft tissue | bone) 86,000-163,000 mm³."""
METAL_CLASS_GAP = 1.9
"""... and its median lies this many times farther above the low class's median than the middle class's 95th
percentile does: 1.94-3.37 where metal alone held the top class, 1.32-1.80 where the teeth held it (1.84-1.86 in
those two one-jaw fields, which are left as they are), 2.2 for bone and teeth together (ruled out by their size)."""
TEETH_MARGIN_MM = 10.0
"""A clinical field: the intensity classes and the crowns are found in the box of the tooth-bright voxels grown by
this much (mm) on every side (see :func:`teeth_field`)."""
TEETH_SPAN_MM = 100.0
"""A clinical field: the tooth-bright voxels of both jaws span at most this much along each axis
(an adult arch is about 60-70 mm wide and 50 mm deep). Measured at 0.4 mm on 160 × 160 × 110 mm fields
(``bench/register.py --field-mm clinical --seed 7``, 5 patients per condition): the teeth spanned 50-84 mm; the
first split of the bright class spanned 101-136 mm for 23 of 95 patients (bright cortical bone all over the skull:
every ``intensity_hu`` and ``mixed_dentition`` patient, 4 of 5 ``fov_one_jaw``). Most registered all the same, but
with few teeth (two edentulous spans, deciduous teeth) or one jaw's crowns among the skull's bone the crown rule took
enamel for metal: 7 jaw registrations of 3 patients ended 42-77 mm off (QC fail). Split again, those 23 boxes spanned
48-82 mm."""
TEETH_ROUNDS = 2
"""A clinical field: splits of the tooth-bright voxels tried (see ``TEETH_SPAN_MM``)."""
TEETH_MIN_MM3 = 1500.0
"""A clinical field: a split again leaving less than this much above it (mm³) fell on metal, not on the teeth: its
box is not taken. Measured as for ``TEETH_SPAN_MM``: the teeth's second splits left 2985-6153 mm³, those of patients
with metal crowns 198-523 mm³ (metal crowns themselves: up to 1060 mm³, see ``surface.METAL_MM3``)."""


def intensity_classes(volume: NDArray[np.generic], where: str) -> tuple[NDArray[np.float32], NDArray[np.float64], int]:
    """Three intensity classes of ``volume`` (I, J, K) — air/soft, bone, tooth — from a strided copy of at most
    about 2 M voxels: that copy (float32, I/s, J/s, K/s), the two class splits (2,), metal clipped, and s."""
    stride = max(1, int(np.ceil((volume.size / 2e6) ** (1 / 3))))
    grid = np.asarray(volume[::stride, ::stride, ::stride], dtype=np.float32)
    sample = grid.ravel()
    try:
        # Metal (crowns, implants: a few voxels far above enamel) and its dark streaks would take classes of their
        # own: clip both tails.
        low, high = np.percentile(sample, [STREAK_PERCENTILE, METAL_PERCENTILE])
        splits = _three_classes(sample, low, high)
    except ValueError as err:
        raise RegistrationError(
            f"{where}: cannot split the CBCT intensities into air, bone and tooth ({err}); expected a dental CBCT"
        ) from err
    return grid, splits, stride


def _three_classes(values: NDArray[np.float32], low: float, high: float) -> NDArray[np.float64]:
    """The two multi-Otsu splits (2,) of ``values`` clipped to [``low``, ``high``]; ValueError when they cannot be
    split (too few distinct values)."""
    return np.asarray(threshold_multiotsu(np.clip(values, low, high).astype(np.float64), classes=3), np.float64)


def without_metal_class(
    grid: NDArray[np.float32], splits: NDArray[np.float64], voxel_mm3: float
) -> NDArray[np.float64]:
    """The class splits (2,) of :func:`intensity_classes`' copy ``grid`` (voxels of ``voxel_mm3`` mm³ each), split
    again without the top class when metal took it (``METAL_CLASS_MM3``, ``METAL_CLASS_GAP``); else ``splits``."""
    sample = grid.ravel()
    top = sample > splits[1]
    if not top.any() or top.sum() * voxel_mm3 >= METAL_CLASS_MM3:
        return splits
    base = float(np.median(sample[sample <= splits[0]]))
    middle = sample[(sample > splits[0]) & ~top]
    if middle.size == 0:
        return splits
    if float(np.median(sample[top])) - base < METAL_CLASS_GAP * (float(np.percentile(middle, 95)) - base):
        return splits
    try:  # as intensity_classes does, without the metal (so without its upper clip)
        return _three_classes(sample[~top], float(np.percentile(sample, STREAK_PERCENTILE)), np.inf)
    except ValueError:  # handled: too few distinct values under the metal to split again; the first splits stand
        return splits


def grid_voxel_mm3(cbct: Volume, stride: int) -> float:
    """Volume (mm³) of one voxel of :func:`intensity_classes`' copy of ``cbct`` taken at ``stride``."""
    return abs(float(np.linalg.det(cbct.affine[:3, :3]))) * stride**3


def teeth_field(cbct: Volume, where: str) -> Volume:
    """A CBCT of more than ``CLINICAL_VOXELS`` voxels (a clinical field: skull, airway, sinuses, outside air) cut to
    the box of its tooth-bright voxels grown by ``TEETH_MARGIN_MM``; a smaller CBCT as it is.

    Over a whole head the three classes fall between air, soft tissue and bone (outside air is a third of the
    field), not between bone and tooth, and the air-facing bright surfaces are mostly bone: the crown rules then
    class enamel as metal (measured: 2 of 3 ``metal_crowns`` patients failed without a label map). Teeth are the
    brightest structures but metal: the split of the bright class (metal clipped at its 99th percentile) marks
    them, and the box spans the 0.5-99.5th percentiles of their positions (a stray bright voxel does not widen
    it). Where cortical bone is bright too and the teeth few (gaps, small deciduous teeth), that split falls
    between bone and bright bone all over the skull: a box wider than ``TEETH_SPAN_MM`` along an axis is not the
    teeth's, and the voxels above the split are split again (``TEETH_ROUNDS``). Measured on 160 × 160 × 110 mm
    fields at 0.4 mm: the box holds every crown of the label map."""
    volume = np.asarray(cbct.array)
    if volume.size < CLINICAL_VOXELS:
        return cbct
    grid, splits, stride = intensity_classes(volume, where)
    floor, box = splits[1], None
    voxel_mm3 = grid_voxel_mm3(cbct, stride)
    for _ in range(TEETH_ROUNDS):
        bright = grid[grid > floor]
        if bright.size < 100:
            break
        floor = threshold_otsu(np.minimum(bright, np.percentile(bright, 99)).astype(np.float64))
        at = np.argwhere(grid > floor) * stride
        if len(at) < 100 or (box is not None and len(at) * voxel_mm3 < TEETH_MIN_MM3):
            break  # too few voxels for the teeth: metal, which the split took for itself
        box = np.percentile(at, 0.5, axis=0), np.percentile(at, 99.5, axis=0) + stride
        if np.all((box[1] - box[0]) * np.asarray(cbct.spacing) <= TEETH_SPAN_MM):
            break
    if box is None:
        return cbct
    margin = int(np.ceil(TEETH_MARGIN_MM / min(cbct.spacing)))
    lo = np.maximum(np.floor(box[0]).astype(np.intp) - margin, 0)
    hi = np.minimum(np.ceil(box[1]).astype(np.intp) + margin, volume.shape)
    if np.prod(hi - lo) >= 0.8 * volume.size:
        return cbct
    log.debug("%s: clinical field %s cut to the teeth's box %s..%s", where, volume.shape, lo, hi)
    return Volume(volume[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]], shifted(cbct.affine, lo))
