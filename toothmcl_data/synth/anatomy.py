"""Draw a patient's dental anatomy: two arches, 28–32 teeth along them, restorations, crowding.

All positions are LPS world mm (+x patient left, +y posterior, +z superior). The arch curves lie in axial
planes; FDI quadrants 1 and 4 (patient right) are at smaller x than quadrants 2 and 3 (patient left), incisors
are anterior (smaller y) of molars, upper teeth point their crowns inferiorly (−z) and lower teeth superiorly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from scipy.spatial.transform import Rotation

from toothmcl_data.fdi import tooth
from toothmcl_data.synth.config import SynthConfig
from toothmcl_data.types import JAWS, Jaw, ToothType

Restoration = Literal["natural", "metal_crown", "implant"]

# Mean tooth sizes (mm) by jaw and position 1..8: mesiodistal width, buccolingual depth, crown height, root length.
_WIDTH = {
    "upper": (8.6, 6.6, 7.6, 7.0, 6.6, 10.2, 9.2, 8.6),
    "lower": (5.3, 5.8, 6.8, 7.0, 7.1, 11.0, 10.4, 10.0),
}
_DEPTH = {
    "upper": (7.0, 6.2, 8.0, 9.0, 9.0, 11.0, 10.8, 10.2),
    "lower": (5.9, 6.2, 7.6, 7.6, 8.0, 10.3, 10.0, 9.6),
}
_HEIGHT = {
    "upper": (10.2, 8.8, 10.0, 8.2, 7.6, 7.2, 7.0, 6.6),
    "lower": (8.8, 9.2, 10.4, 8.4, 7.8, 7.6, 7.2, 7.0),
}
_ROOT = {
    "upper": (13.0, 13.0, 17.0, 14.0, 14.0, 12.5, 12.0, 11.0),
    "lower": (12.5, 14.0, 16.0, 14.0, 14.5, 14.0, 13.0, 11.0),
}
# Number of roots by jaw and position.
_ROOTS = {"upper": (1, 1, 1, 2, 1, 3, 3, 3), "lower": (1, 1, 1, 1, 1, 2, 2, 2)}


@dataclass(frozen=True)
class ToothSpec:
    """One tooth's placement and size.

    cej: (3,) LPS mm, centre of the tooth at the cemento-enamel junction (crown/root boundary).
    occlusal: (3,) unit vector along the tooth's long axis, from the root apex towards the crown tip.
    mesial: (3,) unit vector along the arch towards the midline, orthogonal to ``occlusal``.
    Sizes in mm: crown ``width`` (mesiodistal), ``depth`` (buccolingual), ``height`` (CEJ to tip), root ``root``.
    """

    fdi: int
    cej: tuple[float, float, float]
    occlusal: tuple[float, float, float]
    mesial: tuple[float, float, float]
    width: float
    depth: float
    height: float
    root: float
    n_roots: int
    restoration: Restoration = "natural"

    @property
    def jaw(self) -> Jaw:
        return tooth(self.fdi).jaw

    @property
    def type(self) -> ToothType:
        return tooth(self.fdi).type

    def local_frame(self) -> NDArray[np.float64]:
        """(3, 3) rotation whose columns are the tooth's (mesial, buccal, occlusal) axes in LPS world."""
        w = np.asarray(self.occlusal)
        u = np.asarray(self.mesial)
        v = np.cross(w, u)
        # v = occlusal × mesial points buccally for quadrants 1 and 3, lingually for 2 and 4: make it buccal.
        if tooth(self.fdi).quadrant in (2, 4):
            v = -v
        return np.stack([u, v, w], axis=1)


@dataclass(frozen=True)
class Arch:
    """One dental arch: the curve ``y = y0 + depth · (|x − x0| / half_width) ** exponent`` at height ``cej_z``.

    All in LPS mm. The curve passes through the CEJ centres of the teeth.
    """

    jaw: Jaw
    x0: float
    y0: float
    cej_z: float
    half_width: float
    depth: float
    exponent: float

    def polyline(self, step: float = 0.1, extent: float = 48.0) -> NDArray[np.float64]:
        """(k, 2) float64 points (x, y) LPS mm along the curve, right (−x) to left (+x), ``step`` mm in x."""
        x = np.arange(-extent, extent + step / 2, step)
        y = self.y0 + self.depth * (np.abs(x) / self.half_width) ** self.exponent
        return np.stack([x + self.x0, y], axis=1)


@dataclass(frozen=True)
class Anatomy:
    """A patient's teeth and arches (world LPS mm); ``missing`` are FDI codes of absent permanent teeth."""

    arches: tuple[Arch, Arch]
    teeth: tuple[ToothSpec, ...]
    missing: tuple[int, ...]
    crowding: bool

    def arch(self, jaw: Jaw) -> Arch:
        return self.arches[JAWS.index(jaw)]

    def jaw_teeth(self, jaw: Jaw) -> tuple[ToothSpec, ...]:
        return tuple(t for t in self.teeth if t.jaw == jaw)


def _arc_positions(arch: Arch, widths: NDArray[np.float64]) -> NDArray[np.float64]:
    """Points (8, 2) on the right half (x < x0) of ``arch`` whose arc lengths from the midline are the tooth centres."""
    line = arch.polyline()
    right = line[line[:, 0] <= arch.x0][::-1]  # midline → patient right
    seg = np.linalg.norm(np.diff(right, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    centres = np.cumsum(widths) - widths / 2
    x = np.interp(centres, s, right[:, 0])
    y = np.interp(centres, s, right[:, 1])
    return np.stack([x, y], axis=1)


def draw_anatomy(config: SynthConfig, rng: np.random.Generator) -> Anatomy:
    """Draw one patient's anatomy. Deterministic for a given ``rng`` state."""
    centre = rng.uniform(-15.0, 15.0, size=3)
    scale = rng.uniform(0.93, 1.07)
    gap = 0.45  # half the vertical gap between opposing cusp tips (mm)
    upper_h = float(np.mean(_HEIGHT["upper"])) * scale
    lower_h = float(np.mean(_HEIGHT["lower"])) * scale
    exponent = rng.uniform(1.7, 2.3)
    upper = Arch(
        "upper",
        centre[0],
        centre[1] - 2.0,
        centre[2] + gap + upper_h,
        27.0 * scale * rng.uniform(0.95, 1.05),
        30.0 * scale,
        exponent,
    )
    lower = Arch(
        "lower",
        centre[0],
        centre[1] + 0.5,
        centre[2] - gap - lower_h,
        upper.half_width - 2.5,
        upper.depth - 1.5,
        exponent + rng.uniform(-0.1, 0.1),
    )

    crowding = bool(rng.random() < config.crowding_probability)
    candidates = [t for t in range(11, 49) if t % 10 in range(1, 8)]
    missing: set[int] = {q * 10 + 8 for q in (1, 2, 3, 4) if rng.random() >= config.third_molar_probability}
    if rng.random() < config.missing_tooth_probability:
        missing |= {int(c) for c in rng.choice(candidates, size=int(rng.integers(1, 4)), replace=False)}
    gaps = sorted(missing - {18, 28, 38, 48})
    implant = int(rng.choice(gaps)) if gaps and rng.random() < config.implant_probability else None
    if implant is not None:
        missing.discard(implant)

    teeth: list[ToothSpec] = []
    for arch in (upper, lower):
        jaw = arch.jaw
        sizes = scale * rng.uniform(0.96, 1.04, size=(4, 8))
        widths = np.asarray(_WIDTH[jaw]) * sizes[0]
        right = _arc_positions(arch, widths)
        for quadrant in (1, 2) if jaw == "upper" else (4, 3):
            sign = 1.0 if quadrant in (2, 3) else -1.0  # patient left is +x in LPS
            for pos in range(1, 9):
                fdi = quadrant * 10 + pos
                if fdi in missing:
                    continue
                x = arch.x0 + sign * (arch.x0 - right[pos - 1, 0])
                y = right[pos - 1, 1]
                teeth.append(_place(arch, fdi, x, y, sizes[:, pos - 1], pos, crowding, rng))
    metal = [t.fdi for t in teeth if t.fdi != implant]
    metal_crown = int(rng.choice(metal)) if rng.random() < config.metal_crown_probability else None
    final = tuple(
        _with_restoration(t, "implant" if t.fdi == implant else "metal_crown" if t.fdi == metal_crown else "natural")
        for t in sorted(teeth, key=lambda t: t.fdi)
    )
    return Anatomy(arches=(upper, lower), teeth=final, missing=tuple(sorted(missing)), crowding=crowding)


def _with_restoration(t: ToothSpec, restoration: Restoration) -> ToothSpec:
    return ToothSpec(t.fdi, t.cej, t.occlusal, t.mesial, t.width, t.depth, t.height, t.root, t.n_roots, restoration)


def _place(
    arch: Arch,
    fdi: int,
    x: float,
    y: float,
    size: NDArray[np.float64],
    pos: int,
    crowding: bool,
    rng: np.random.Generator,
) -> ToothSpec:
    """Place tooth ``fdi`` with its CEJ centre at (x, y) on ``arch``, tilted and rotated a little."""
    jaw = arch.jaw
    # Arch tangent at x (towards +x) and outward (buccal) normal, in the axial plane.
    dx = x - arch.x0
    slope = arch.depth * arch.exponent * np.abs(dx) ** (arch.exponent - 1) / arch.half_width**arch.exponent
    slope *= np.sign(dx)
    tangent = np.array([1.0, slope, 0.0]) / np.hypot(1.0, slope)
    buccal = np.array([slope, -1.0, 0.0]) / np.hypot(1.0, slope)
    mesial = -tangent if dx > 0 else tangent
    occlusal = np.array([0.0, 0.0, -1.0 if jaw == "upper" else 1.0])
    # Crown inclination: incisors lean buccally, molars lean slightly lingually; plus small random tilts.
    lean = {1: 12.0, 2: 10.0, 3: 6.0, 4: 3.0, 5: 2.0, 6: -2.0, 7: -3.0, 8: -4.0}[pos] + rng.normal(0, 2.0)
    tip = rng.normal(0, 2.5)
    spin = rng.normal(0, 3.0)
    shift = rng.normal(0, 0.15, size=2)
    if crowding and pos <= 3:
        spin += rng.uniform(-20, 20)
        shift += rng.uniform(-1.0, 1.0, size=2) * np.array([0.3, 1.0])
    rot = (
        Rotation.from_rotvec(np.radians(lean) * np.cross(occlusal, buccal))
        * Rotation.from_rotvec(np.radians(tip) * buccal)
        * Rotation.from_rotvec(np.radians(spin) * occlusal)
    )
    occ = rot.apply(occlusal)
    mes = rot.apply(mesial)
    mes = mes - occ * float(mes @ occ)
    mes /= np.linalg.norm(mes)
    cej = np.array([x, y, arch.cej_z]) + shift[0] * tangent + shift[1] * buccal + np.array([0, 0, rng.normal(0, 0.2)])
    # Keep the crown tip on the occlusal plane: the CEJ moves with the tooth's height.
    height = _HEIGHT[jaw][pos - 1] * size[2]
    mean_height = float(np.mean(_HEIGHT[jaw])) * float(np.mean(size))
    cej = cej - occlusal * (height - mean_height)
    return ToothSpec(
        fdi=fdi,
        cej=(float(cej[0]), float(cej[1]), float(cej[2])),
        occlusal=(float(occ[0]), float(occ[1]), float(occ[2])),
        mesial=(float(mes[0]), float(mes[1]), float(mes[2])),
        width=float(_WIDTH[jaw][pos - 1] * size[0]),
        depth=float(_DEPTH[jaw][pos - 1] * size[1]),
        height=float(height),
        root=float(_ROOT[jaw][pos - 1] * size[3]),
        n_roots=_ROOTS[jaw][pos - 1],
    )
