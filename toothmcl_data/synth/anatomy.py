"""Draw a patient's dental anatomy: two arches, 28–32 teeth along them, restorations, crowding.

All positions are LPS mm (+x patient left, +y posterior, +z superior) of the **anatomy frame**, which is the
CBCT world unless a condition (head pose, an opened mandible) gives a jaw a pose: then
``Anatomy.world_from_jaw(jaw)`` maps that jaw's anatomy-frame mm into the world. The arch curves lie in axial
planes of the anatomy frame; FDI quadrants 1/5 and 4/8 (patient right) are at smaller x than quadrants 2/6 and
3/7 (patient left), incisors are anterior (smaller y) of molars, upper teeth point their crowns inferiorly (−z)
and lower teeth superiorly. Conditions (:mod:`toothmcl_data.synth.conditions`) of the ``anatomy`` group draw
after the default draws, so a patient without conditions is drawn exactly as before they existed.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from scipy.spatial.transform import Rotation

from toothmcl_data.fdi import tooth
from toothmcl_data.synth import dimensions as dims
from toothmcl_data.synth.config import SynthConfig
from toothmcl_data.types import JAWS, Affine4x4, Jaw, ToothType, apply_transform

Restoration = Literal["natural", "metal_crown", "implant"]

Dentition = Literal["permanent", "mixed", "primary"]


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
        if tooth(self.fdi).quadrant in (2, 4, 6, 8):
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
class BiteBlock:
    """A radiolucent bite block between the incisors: an axis-aligned box in the upper jaw's anatomy frame.

    lo, hi: (3,) LPS mm corners of the box (the handle reaches out anteriorly, beyond the lips).
    """

    lo: tuple[float, float, float]
    hi: tuple[float, float, float]


@dataclass(frozen=True, eq=False)
class Anatomy:
    """A patient's teeth and arches (anatomy-frame LPS mm, see the module docstring).

    missing: FDI codes of absent permanent teeth (empty for a primary or mixed dentition).
    poses: None (the anatomy frame is the world) or per jaw (upper, lower) the (4, 4) ``world_from_jaw``.
    block: a bite block, if the patient bites on one. dentition: ``permanent``, ``mixed`` or ``primary``.
    params: what the anatomy conditions drew (JSON-able), for the ground truth.
    """

    arches: tuple[Arch, Arch]
    teeth: tuple[ToothSpec, ...]
    missing: tuple[int, ...]
    crowding: bool
    poses: tuple[Affine4x4, Affine4x4] | None = None
    block: BiteBlock | None = None
    dentition: Dentition = "permanent"
    params: dict[str, Any] = field(default_factory=dict)

    def arch(self, jaw: Jaw) -> Arch:
        return self.arches[JAWS.index(jaw)]

    def jaw_teeth(self, jaw: Jaw) -> tuple[ToothSpec, ...]:
        return tuple(t for t in self.teeth if t.jaw == jaw)

    def world_from_jaw(self, jaw: Jaw) -> Affine4x4:
        """(4, 4) rigid transform from ``jaw``'s anatomy-frame mm to CBCT LPS world mm (identity if unposed)."""
        return np.eye(4) if self.poses is None else np.asarray(self.poses[JAWS.index(jaw)], dtype=np.float64)

    def world_teeth(self) -> tuple[ToothSpec, ...]:
        """The teeth with CEJ and axes in CBCT LPS world mm (the same objects when the anatomy is unposed)."""
        if self.poses is None:
            return self.teeth
        return tuple(posed_spec(t, self.world_from_jaw(t.jaw)) for t in self.teeth)


def posed_spec(spec: ToothSpec, T: Affine4x4) -> ToothSpec:
    """``spec`` moved by the rigid transform ``T`` (4, 4): CEJ mapped, axes rotated."""
    cej = apply_transform(T, np.asarray(spec.cej)[None])[0]
    occ = T[:3, :3] @ np.asarray(spec.occlusal)
    mes = T[:3, :3] @ np.asarray(spec.mesial)
    return replace(
        spec,
        cej=(float(cej[0]), float(cej[1]), float(cej[2])),
        occlusal=(float(occ[0]), float(occ[1]), float(occ[2])),
        mesial=(float(mes[0]), float(mes[1]), float(mes[2])),
    )


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


def draw_anatomy(
    config: SynthConfig,
    rng: np.random.Generator,
    conditions: Collection[str] = (),
    crng: np.random.Generator | None = None,
) -> Anatomy:
    """Draw one patient's anatomy. Deterministic for a given ``rng`` state.

    ``conditions``: names from :mod:`toothmcl_data.synth.conditions`; those of the ``anatomy`` group act here,
    drawing their parameters from ``crng`` (default: a child spawned from ``rng``, which leaves ``rng``'s stream
    untouched), so a patient whose conditions change nothing here has the default patient's anatomy.
    """
    conds = frozenset(conditions)
    if crng is None:
        crng = rng.spawn(1)[0] if conds else rng
    params: dict[str, Any] = {}
    centre = rng.uniform(-15.0, 15.0, size=3)
    scale = rng.uniform(0.93, 1.07)
    gap = 0.45  # half the vertical gap between opposing cusp tips (mm)
    dentition: Dentition = "permanent"
    arch_scale = 1.0
    if "mixed_dentition" in conds:
        dentition = "primary" if crng.random() < 1 / 3 else "mixed"
        arch_scale = float(crng.uniform(0.80, 0.90))
        params.update(dentition=dentition, arch_scale=arch_scale)
    slots = dims.SLOTS[dentition]
    tall = {jaw: _slot_table(jaw, slots, dims.HEIGHT, dims.D_HEIGHT) for jaw in JAWS}
    upper_h = (float(np.mean(dims.HEIGHT["upper"])) if dentition == "permanent" else max(tall["upper"])) * scale
    lower_h = (float(np.mean(dims.HEIGHT["lower"])) if dentition == "permanent" else max(tall["lower"])) * scale
    exponent = rng.uniform(1.7, 2.3)
    upper = Arch(
        "upper",
        centre[0],
        centre[1] - 2.0,
        centre[2] + gap + upper_h,
        27.0 * scale * arch_scale * rng.uniform(0.95, 1.05),
        30.0 * scale * arch_scale,
        exponent,
    )
    lower = Arch(
        "lower",
        centre[0],
        centre[1] + 0.5,
        centre[2] - gap - lower_h,
        upper.half_width - 2.5 * arch_scale,
        upper.depth - 1.5 * arch_scale,
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
    implants = set() if implant is None else {implant}
    crowd_scale = (1.0, 1.0)
    if "crowding" in conds:
        crowding, crowd_scale = True, (1.75, 1.5)
    missing, implants = _condition_gaps(conds, missing, implants, candidates, crng, params)
    if dentition != "permanent":
        missing, implants = set(), set()

    teeth: list[ToothSpec] = []
    for arch in (upper, lower):
        jaw = arch.jaw
        sizes = scale * rng.uniform(0.96, 1.04, size=(4, len(slots)))
        widths = np.asarray(_slot_table(jaw, slots, dims.WIDTH, dims.D_WIDTH)) * sizes[0]
        right = _arc_positions(arch, widths)
        for quadrant in (1, 2) if jaw == "upper" else (4, 3):
            sign = 1.0 if quadrant in (2, 3) else -1.0  # patient left is +x in LPS
            for k, (pos, primary) in enumerate(slots):
                fdi = (quadrant + 4 if primary else quadrant) * 10 + pos
                if fdi in missing:
                    continue
                x = arch.x0 + sign * (arch.x0 - right[k, 0])
                y = right[k, 1]
                level = dentition == "permanent"
                teeth.append(_place(arch, fdi, x, y, sizes[:, k], pos, crowding, rng, crowd_scale, level))
    metal = [t.fdi for t in teeth if t.fdi not in implants]
    metal_crown = int(rng.choice(metal)) if rng.random() < config.metal_crown_probability else None
    metals = set() if metal_crown is None else {metal_crown}
    if "metal_crowns" in conds:
        metals = {int(f) for f in crng.choice(metal, size=int(crng.integers(3, 7)), replace=False)}
        params.update(metal_crowns=sorted(metals), streak_strength=float(crng.uniform(2.0, 3.0)))
    if dentition != "permanent":
        metals = set()
    final = tuple(
        _with_restoration(t, "implant" if t.fdi in implants else "metal_crown" if t.fdi in metals else "natural")
        for t in sorted(teeth, key=lambda t: t.fdi)
    )
    return Anatomy(
        arches=(upper, lower),
        teeth=final,
        missing=tuple(sorted(missing)),
        crowding=crowding,
        dentition=dentition,
        params=params,
    )


def _slot_table(
    jaw: Jaw, slots: tuple[tuple[int, bool], ...], permanent: dict[str, tuple], primary: dict[str, tuple]
) -> list[float]:
    return [float((primary if d else permanent)[jaw][p - 1]) for p, d in slots]


def _condition_gaps(
    conds: frozenset[str],
    missing: set[int],
    implants: set[int],
    candidates: list[int],
    crng: np.random.Generator,
    params: dict[str, Any],
) -> tuple[set[int], set[int]]:
    """Missing teeth and implants after the ``missing_third_molar``, ``edentulous`` and ``implants`` conditions."""
    third = {18, 28, 38, 48}
    if "missing_third_molar" in conds:
        gone = int(crng.choice(sorted(third)))
        missing = (missing - third) | {gone}
        params["missing_third_molar"] = gone
    if "edentulous" in conds:
        missing = missing | third
        spans = []
        for quadrant in crng.choice([1, 2, 3, 4], size=int(crng.integers(1, 3)), replace=False):
            length = int(crng.integers(2, 5))
            first = int(crng.integers(1, 8 - length + 1))
            span = [int(quadrant) * 10 + p for p in range(first, first + length)]
            spans.append(span)
            missing |= set(span)
        implants = set()
        params["edentulous_spans"] = spans
    if "implants" in conds:
        implants = {int(f) for f in crng.choice(candidates, size=int(crng.integers(2, 4)), replace=False)}
        missing = missing - implants
        params["implants"] = sorted(implants)
    return missing, implants


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
    crowd_scale: tuple[float, float] = (1.0, 1.0),
    level: bool = True,
) -> ToothSpec:
    """Place tooth ``fdi`` with its CEJ centre at (x, y) on ``arch``, tilted and rotated a little.

    ``level``: keep the crown tip on the occlusal plane (permanent dentition); otherwise the CEJ stays on the
    arch's CEJ plane. ``crowd_scale``: multiplies the crowding rotation and displacement.
    """
    jaw = arch.jaw
    primary = tooth(fdi).deciduous
    # Arch tangent at x (towards +x) and outward (buccal) normal, in the axial plane.
    dx = x - arch.x0
    slope = arch.depth * arch.exponent * np.abs(dx) ** (arch.exponent - 1) / arch.half_width**arch.exponent
    slope *= np.sign(dx)
    tangent = np.array([1.0, slope, 0.0]) / np.hypot(1.0, slope)
    buccal = np.array([slope, -1.0, 0.0]) / np.hypot(1.0, slope)
    mesial = -tangent if dx > 0 else tangent
    occlusal = np.array([0.0, 0.0, -1.0 if jaw == "upper" else 1.0])
    # Crown inclination: incisors lean buccally, molars lean slightly lingually; plus small random tilts.
    lean = (dims.D_LEAN if primary else dims.LEAN)[pos - 1] + rng.normal(0, 2.0)
    tip = rng.normal(0, 2.5)
    spin = rng.normal(0, 3.0)
    shift = rng.normal(0, 0.15, size=2)
    if crowding and pos <= 3:
        spin += rng.uniform(-20, 20) * crowd_scale[0]
        shift += rng.uniform(-1.0, 1.0, size=2) * np.array([0.3, 1.0]) * crowd_scale[1]
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
    tables = (
        (dims.D_WIDTH, dims.D_DEPTH, dims.D_HEIGHT, dims.D_ROOT, dims.D_ROOTS)
        if primary
        else (dims.WIDTH, dims.DEPTH, dims.HEIGHT, dims.ROOT, dims.ROOTS)
    )
    height = tables[2][jaw][pos - 1] * size[2]
    if level:
        # Keep the crown tip on the occlusal plane: the CEJ moves with the tooth's height.
        mean_height = float(np.mean(dims.HEIGHT[jaw])) * float(np.mean(size))
        cej = cej - occlusal * (height - mean_height)
    return ToothSpec(
        fdi=fdi,
        cej=(float(cej[0]), float(cej[1]), float(cej[2])),
        occlusal=(float(occ[0]), float(occ[1]), float(occ[2])),
        mesial=(float(mes[0]), float(mes[1]), float(mes[2])),
        width=float(tables[0][jaw][pos - 1] * size[0]),
        depth=float(tables[1][jaw][pos - 1] * size[1]),
        height=float(height),
        root=float(tables[3][jaw][pos - 1] * size[3]),
        n_roots=int(tables[4][jaw][pos - 1]),
    )
