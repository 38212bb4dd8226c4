"""Render a synthetic patient's CBCT volume and FDI label map from its anatomy.

Tissues get CBCT-like raw intensities (air ≈ 0, soft tissue ≈ 350, trabecular bone ≈ 900, cortical ≈ 1500,
dentin ≈ 1900, enamel ≈ 2700, titanium ≈ 4500, crown metal ≈ 6000, bite block ≈ 500), then the scanner's blur,
metal streaks and noise. The grid is axis-aligned LPS with isotropic ``config.spacing_mm`` voxels. An
:class:`IntensityScale` turns this into Hounsfield units (air −1000, clipped at 3071) or a vendor's raw scale
(``gain · value + offset``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from toothmcl_data.synth.anatomy import Anatomy, ToothSpec
from toothmcl_data.synth.config import SynthConfig
from toothmcl_data.synth.shapes import ArchCoordinates, gingiva_height, to_local, tooth_field
from toothmcl_data.types import JAWS, Jaw, Volume

AIR, SOFT, BONE, CORTEX, DENTIN, ENAMEL, PULP, METAL, TITANIUM, BLOCK = range(10)
INTENSITY = np.array([0.0, 350.0, 900.0, 1500.0, 1900.0, 2700.0, 350.0, 6000.0, 4500.0, 500.0], dtype=np.float32)
"""Raw scanner value of each tissue class (air ≈ 0)."""
INTENSITY_HU = np.array([-1000.0, 40.0, 700.0, 1500.0, 1600.0, 2500.0, 40.0, 3071.0, 3071.0, 150.0], dtype=np.float32)
"""Hounsfield units of each tissue class (metal at the 12-bit ceiling 3071)."""


@dataclass(frozen=True)
class IntensityScale:
    """How the scanner reports intensity. ``raw``: the raw table (air ≈ 0); ``hu``: Hounsfield units, tissue
    contrasts (value + 1000) times ``gain``, clipped to [−1024, 3071]; ``vendor``: ``gain · raw + offset``."""

    kind: Literal["raw", "hu", "vendor"] = "raw"
    gain: float = 1.0
    offset: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "air": self.air}

    @property
    def air(self) -> float:
        """The nominal value of air on this scale."""
        return -1000.0 if self.kind == "hu" else self.offset

    @classmethod
    def draw(cls, kind: Literal["hu", "vendor"], rng: np.random.Generator) -> IntensityScale:
        """HU with gain 0.9–1.1, or a vendor scale with gain 0.3–3 and offset −2000…+1500."""
        if kind == "hu":
            return cls("hu", float(rng.uniform(0.9, 1.1)), -1000.0)
        return cls("vendor", float(np.exp(rng.uniform(np.log(0.3), np.log(3.0)))), float(rng.uniform(-2000, 1500)))


MARGIN_MM = 10.0
FACE_MM = 16.0
"""The skin of the face lies this far (mm) buccal of the tooth band; beyond it is air."""
ENAMEL_MM = 1.1
PULP_MM = 1.8
PDL_MM = 0.25


def grid_affine(anatomy: Anatomy, spacing: float) -> tuple[NDArray[np.float64], tuple[int, int, int]]:
    """The CBCT grid covering both arches with roots and bone: (4, 4) LPS affine and shape (I, J, K)."""
    cej = np.array([t.cej for t in anatomy.teeth])
    upper, lower = anatomy.arch("upper"), anatomy.arch("lower")
    lo = np.array([cej[:, 0].min() - MARGIN_MM - 4, cej[:, 1].min() - MARGIN_MM - 4, lower.cej_z - 28.0])
    hi = np.array([cej[:, 0].max() + MARGIN_MM + 4, cej[:, 1].max() + MARGIN_MM, upper.cej_z + 24.0])
    shape = tuple(int(n) for n in np.ceil((hi - lo) / spacing).astype(int) + 1)
    affine = np.diag([spacing, spacing, spacing, 1.0])
    affine[:3, 3] = np.round(lo / spacing) * spacing
    return affine, (shape[0], shape[1], shape[2])


def tissue_map(
    anatomy: Anatomy, affine: NDArray[np.float64], shape: tuple[int, int, int]
) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
    """Tissue classes (I, J, K) uint8 (AIR … TITANIUM) and the FDI label map (I, J, K) uint8 on the grid."""
    spacing = float(affine[0, 0])
    x = affine[0, 3] + spacing * np.arange(shape[0])
    y = affine[1, 3] + spacing * np.arange(shape[1])
    z = affine[2, 3] + spacing * np.arange(shape[2])
    xy = np.stack(np.meshgrid(x, y, indexing="ij"), axis=-1).reshape(-1, 2)
    occlusal_z = 0.5 * (anatomy.arch("upper").cej_z + anatomy.arch("lower").cej_z)
    tissue = np.full(shape, SOFT, dtype=np.uint8)
    for jaw in JAWS:
        zs = z > occlusal_z if jaw == "upper" else z <= occlusal_z
        tissue[:, :, zs] = jaw_tissue(anatomy, jaw, xy, shape[:2], z[zs])
    add_cortex(tissue, spacing)
    labels = np.zeros(shape, dtype=np.uint8)
    paint_teeth(anatomy.teeth, affine, shape, tissue, labels)
    return tissue, labels


def add_cortex(tissue: NDArray[np.uint8], spacing: float) -> None:
    """Turn the outer 1 mm of the bone in ``tissue`` (I, J, K) into cortex, in place."""
    bone = tissue == BONE
    shell = bone & ~ndimage.binary_erosion(bone, iterations=max(1, round(1.0 / spacing)))
    tissue[shell] = CORTEX


def jaw_tissue(
    anatomy: Anatomy, jaw: Jaw, xy: NDArray[np.float64], shape2: tuple[int, int], z: NDArray[np.float64]
) -> NDArray[np.uint8]:
    """Soft tissue, air and bone of ``jaw`` (no teeth) on the columns ``xy`` ((I·J, 2) anatomy-frame mm, an
    I × J grid ``shape2``) at heights ``z`` (K,) mm: (I, J, K) uint8 tissue classes."""
    return jaw_part(anatomy, jaw, jaw_columns(anatomy, jaw, xy, shape2), z)


def jaw_columns(
    anatomy: Anatomy, jaw: Jaw, xy: NDArray[np.float64], shape2: tuple[int, int]
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Per column of an I × J grid ``shape2`` (``xy`` (I·J, 2) anatomy-frame mm): the gingiva height ``top``,
    the signed distance ``d`` from the arch (mm, + buccal) and the half-width ``band`` of the tooth band, each
    (I, J) float64 — what :func:`jaw_part` needs at any height."""
    arch = anatomy.arch(jaw)
    coords = ArchCoordinates(arch)
    d, s = coords(xy)
    teeth = anatomy.jaw_teeth(jaw)
    top = gingiva_height(d, s, arch, teeth, coords).reshape(shape2)
    band = np.interp(s, *_band(teeth, coords)).reshape(shape2)
    return top, d.reshape(shape2), band


def jaw_part(
    anatomy: Anatomy,
    jaw: Jaw,
    columns: tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]],
    z: NDArray[np.float64],
) -> NDArray[np.uint8]:
    """(I, J, K) uint8 tissue classes of ``jaw`` at heights ``z`` (K,) mm over the columns of
    :func:`jaw_columns`."""
    arch = anatomy.arch(jaw)
    top, d2, band = columns
    h = (arch.cej_z - z) if jaw == "upper" else (z - arch.cej_z)  # along the occlusal axis
    hh = h[None, None, :]
    below = top[..., None] - hh  # depth under the gingiva surface (mm)
    reach = (band + 0.3)[..., None] + 0.3 * np.clip(-hh - 1.0, 0.0, 12.0)  # the alveolar process flares
    part = np.full(below.shape, SOFT, dtype=np.uint8)
    part[((np.abs(d2) < band + 2.5)[..., None] & (below < 0)) | (d2 > band + FACE_MM)[..., None]] = AIR
    if jaw == "upper":
        alveolar = (d2[..., None] < reach) & (d2[..., None] > -reach) & (hh > -22.0)
        palate = (d2 < -band)[..., None] & (below < 6.0)
        part[(below > 6.0) & (d2 < -band - 4.0)[..., None]] = AIR  # nasal cavity above the palate
        part[(below > 2.0) & (alveolar | palate)] = BONE
    else:
        bottom = np.sqrt(1.0 - np.clip((-hh - 14.0) / 12.0, 0.0, 1.0) ** 2)  # rounded lower border
        part[(below > 2.0) & (np.abs(d2)[..., None] < reach * bottom)] = BONE
    return part


def _band(teeth: tuple, coords: ArchCoordinates) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    ts = np.array([coords(np.asarray(t.cej[:2])[None])[1][0] for t in teeth])
    order = np.argsort(ts)
    return ts[order], np.array([teeth[i].depth / 2 + 1.2 for i in order])


def paint_teeth(
    teeth: tuple[ToothSpec, ...],
    affine: NDArray[np.float64],
    shape: tuple[int, int, int],
    tissue: NDArray[np.uint8],
    labels: NDArray[np.uint8],
) -> None:
    """Write ``teeth`` (specs in the grid's world mm) into ``tissue`` and ``labels`` in place; overlaps go to the
    tooth whose surface is deeper."""
    spacing = float(affine[0, 0])
    best = np.full(shape, np.inf, dtype=np.float32)
    for spec in teeth:
        reach = max(spec.width, spec.depth) / 2 + spec.height + spec.root + 2.0
        centre = np.asarray(spec.cej) + np.asarray(spec.occlusal) * (spec.height - spec.root) / 2
        half = np.array([max(spec.width, spec.depth) / 2 + 2.5] * 2 + [reach / 2 + 1.0])
        lo = np.maximum(np.floor((centre - half - affine[:3, 3]) / spacing).astype(int), 0)
        hi = np.minimum(np.ceil((centre + half - affine[:3, 3]) / spacing).astype(int) + 1, shape)
        if np.any(hi <= lo):
            continue
        idx = np.stack(np.meshgrid(*[np.arange(a, b) for a, b in zip(lo, hi, strict=True)], indexing="ij"), -1)
        pts = affine[:3, 3] + spacing * idx.reshape(-1, 3)
        uvw = to_local(pts, spec)
        f = tooth_field(uvw, spec).reshape(idx.shape[:3])
        w = uvw[:, 2].reshape(idx.shape[:3])
        box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
        t, lab, b = tissue[box], labels[box], best[box]
        inside = (f < 0) & (f < b)
        in_bone = (t == BONE) | (t == CORTEX)
        t[(f >= 0) & (f < PDL_MM) & in_bone] = SOFT  # periodontal ligament space
        if spec.restoration == "implant":
            cls = np.where(w > 0.5, METAL, TITANIUM)
            label = inside & (w > -0.5)
        else:
            cls = np.where((f > -ENAMEL_MM) & (w > 0.3), ENAMEL, np.where(f < -PULP_MM, PULP, DENTIN))
            if spec.restoration == "metal_crown":
                cls = np.where((w > 0.0) & (f > -1.6), METAL, cls)
            label = inside
        t[inside] = cls[inside]
        lab[inside & ~label] = 0
        lab[label] = spec.fdi
        b[inside] = f[inside]


def render_cbct(
    anatomy: Anatomy,
    config: SynthConfig,
    rng: np.random.Generator,
    *,
    grid: tuple[NDArray[np.float64], tuple[int, int, int]] | None = None,
    scale: IntensityScale = IntensityScale(),
    streak_strength: float = 1.0,
) -> tuple[Volume, Volume]:
    """CBCT (int16 scanner values, LPS) and FDI label map (uint8) of ``anatomy``.

    grid: (affine, shape) of the field of view (default: both jaws whole, :func:`full_grid`; the tissues of a
    ``config.field_mm`` clinical field are :func:`toothmcl_data.synth.head.head_tissue_map`'s); scale: the
    scanner's intensity scale; streak_strength: multiplies the metal streak amplitude.
    """
    affine, shape = full_grid(anatomy, config.spacing_mm, config.field_mm) if grid is None else grid
    if config.field_mm is not None:
        from toothmcl_data.synth.head import head_tissue_map  # head builds on this module

        tissue, labels = head_tissue_map(anatomy, affine, shape)
    elif anatomy.poses is None:
        tissue, labels = tissue_map(anatomy, affine, shape)
    else:
        from toothmcl_data.synth.posed import posed_tissue_map  # posed builds on this module

        tissue, labels = posed_tissue_map(anatomy, affine, shape)
    if scale.kind == "hu":
        image = (-1000.0 + scale.gain * (INTENSITY_HU + 1000.0)).astype(np.float32)[tissue]
    else:
        image = INTENSITY[tissue]
    trabecular = tissue == BONE
    image[trabecular] += rng.normal(0.0, 120.0, size=int(trabecular.sum())).astype(np.float32)
    if config.cbct_blur_mm > 0:
        image = ndimage.gaussian_filter(image, sigma=config.cbct_blur_mm / config.spacing_mm)
    image += _streaks(tissue, affine, rng, streak_strength)
    image += rng.normal(0.0, config.cbct_noise, size=shape).astype(np.float32)
    lo, hi = -1000, 30000
    if scale.kind == "hu":
        lo, hi = -1024, 3071
    elif scale.kind == "vendor":
        image = image * np.float32(scale.gain) + np.float32(scale.offset)
        lo, hi = -32000, 32000
    values = np.clip(np.rint(image), lo, hi).astype(np.int16)
    return Volume(values, affine), Volume(labels, affine.copy())


def full_grid(
    anatomy: Anatomy, spacing: float, field_mm: tuple[float, float, float] | None = None
) -> tuple[NDArray[np.float64], tuple[int, int, int]]:
    """The grid covering both jaws with roots and bone, posed or not: (4, 4) LPS affine and shape; with
    ``field_mm`` the clinical field of that size around them (:func:`toothmcl_data.synth.head.field_grid`)."""
    if field_mm is not None:
        from toothmcl_data.synth.head import field_grid

        return field_grid(anatomy, spacing, field_mm)
    if anatomy.poses is None:
        return grid_affine(anatomy, spacing)
    from toothmcl_data.synth.posed import posed_grid

    return posed_grid(anatomy, spacing)


def _streaks(
    tissue: NDArray[np.uint8], affine: NDArray[np.float64], rng: np.random.Generator, strength: float = 1.0
) -> NDArray[np.float32]:
    """Metal streak artefacts: bright/dark rays fanning out from metal in each axial slice it appears in."""
    out = np.zeros(tissue.shape, dtype=np.float32)
    metal = (tissue == METAL) | (tissue == TITANIUM)
    if not metal.any():
        return out
    spacing = float(affine[0, 0])
    ii, jj = np.meshgrid(np.arange(tissue.shape[0]), np.arange(tissue.shape[1]), indexing="ij")
    rays = int(rng.integers(7, 13))
    phase = rng.uniform(0, 2 * np.pi)
    for k in np.flatnonzero(metal.any(axis=(0, 1))):
        ci, cj = np.argwhere(metal[:, :, k]).mean(axis=0)
        r = np.hypot(ii - ci, jj - cj) * spacing
        theta = np.arctan2(jj - cj, ii - ci)
        amount = metal[:, :, k].sum() * spacing**2  # mm² of metal in this slice
        pattern = np.cos(rays * theta + phase) * np.exp(-r / 18.0) * (r > 2.0)
        out[:, :, k] = (min(60.0 * amount * strength, 900.0 * strength) * pattern).astype(np.float32)
    return out
