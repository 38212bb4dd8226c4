"""Where the jaws sit: the bite (closed in occlusion, open on a bite block, hinged open) and the head pose.

Acts on an :class:`~toothmcl_data.synth.anatomy.Anatomy` drawn with the default 0.9 mm gap between the cusp
tips. ``close_bite`` raises each lower tooth (and the lower arch with the median raise) in the anatomy frame
until it touches the upper crowns; the other two give the jaws rigid ``world_from_jaw`` poses
(:attr:`Anatomy.poses`): a hinge rotation of the mandible about a condyle axis, and a head rotation of both
jaws about the centre of the teeth. All mm, LPS.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.spatial.transform import Rotation

from toothmcl_data.synth.anatomy import Anatomy, Arch, BiteBlock, ToothSpec
from toothmcl_data.synth.shapes import crown_field, to_local
from toothmcl_data.types import Affine4x4, apply_transform

FloatArray = NDArray[np.float64]


def _crown_surface(spec: ToothSpec, step: float = 0.2) -> FloatArray:
    """(n, 3) anatomy-frame points on the occlusal half of the crown surface of ``spec`` (|field| < step/2)."""
    a, b, h = spec.width / 2 + 0.4, spec.depth / 2 + 0.4, spec.height
    u, v, w = (np.arange(-a, a + step / 2, step), np.arange(-b, b + step / 2, step), np.arange(0.35 * h, h + 0.4, step))
    uvw = np.stack(np.meshgrid(u, v, w, indexing="ij"), axis=-1).reshape(-1, 3)
    f = crown_field(uvw, spec)
    surface = uvw[np.abs(f) < step / 2]
    return np.asarray(spec.cej) + surface @ spec.local_frame().T


def _field(points: FloatArray, specs: list[ToothSpec]) -> FloatArray:
    """(n,) distance (mm) from anatomy-frame ``points`` (n, 3) to the nearest crown of ``specs``."""
    out = np.full(len(points), np.inf)
    for spec in specs:
        np.minimum(out, crown_field(to_local(points, spec), spec), out=out)
    return out


def contact_raise(points: FloatArray, antagonists: list[ToothSpec], gap: float, cap: float = 3.0) -> float:
    """How far (mm) ``points`` (n, 3) move along +z until their distance to ``antagonists`` is ``gap``.

    Sphere tracing on the crowns' distance fields: each step moves by 0.9 × (distance − gap), never past contact.
    """
    up = np.array([0.0, 0.0, 1.0])
    delta = 0.0
    for _ in range(80):
        d = float(_field(points + delta * up, antagonists).min())
        if d - gap < 0.002 or delta >= cap:
            break
        delta = min(delta + 0.9 * (d - gap), cap)
    return delta


def close_bite(anatomy: Anatomy, gap: float) -> tuple[Anatomy, dict[str, Any]]:
    """The anatomy with the teeth in occlusion: each lower tooth raised until its crown is ``gap`` mm from the
    upper crowns (cusps settle into the opposing fossae), the lower arch (gingiva, bone) by the median raise."""
    upper = list(anatomy.jaw_teeth("upper"))
    raised: dict[int, float] = {}
    teeth: list[ToothSpec] = []
    for spec in anatomy.teeth:
        if spec.jaw == "upper":
            teeth.append(spec)
            continue
        near = [u for u in upper if np.hypot(*(np.asarray(u.cej[:2]) - np.asarray(spec.cej[:2]))) < 16.0]
        delta = contact_raise(_crown_surface(spec), near, gap) if near else 0.0
        raised[spec.fdi] = delta
        teeth.append(replace(spec, cej=(spec.cej[0], spec.cej[1], spec.cej[2] + delta)))
    lift = float(np.median(list(raised.values()))) if raised else 0.0
    lower = anatomy.arch("lower")
    arches = (anatomy.arch("upper"), replace(lower, cej_z=lower.cej_z + lift))
    params = {"kind": "occlusion", "contact_gap_mm": gap, "raise_mm": {str(k): v for k, v in sorted(raised.items())}}
    return replace(anatomy, arches=arches, teeth=tuple(teeth)), params


def hinge(upper: Arch, lower: Arch, angle_deg: float, back_mm: float, up_mm: float) -> Affine4x4:
    """(4, 4) rotation of the mandible by ``angle_deg`` (opening, incisors move down and back) about the
    transverse (x) axis through the condyle point ``back_mm`` posterior and ``up_mm`` superior of the incisors
    on the occlusal plane."""
    occlusal_z = 0.5 * (upper.cej_z + lower.cej_z)
    c = np.array([upper.x0, upper.y0 + back_mm, occlusal_z + up_mm])
    T = np.eye(4)
    T[:3, :3] = Rotation.from_euler("x", angle_deg, degrees=True).as_matrix()
    T[:3, 3] = c - T[:3, :3] @ c
    return T


def _incisal_tips(anatomy: Anatomy, jaw: str) -> FloatArray:
    specs = [t for t in anatomy.teeth if t.jaw == jaw and t.fdi % 10 in (1, 2)]
    return np.array([np.asarray(t.cej) + np.asarray(t.occlusal) * t.height for t in specs])


def open_bite(anatomy: Anatomy, kind: str, rng: np.random.Generator) -> tuple[Anatomy, dict[str, Any]]:
    """``kind`` ``"open"``: hinge the mandible open 3–12°; ``"block"``: open it until the incisors are 4–10 mm
    apart and put a bite block between them. Returns the anatomy with lower-jaw pose and the drawn parameters."""
    upper, lower = anatomy.arch("upper"), anatomy.arch("lower")
    back, up = float(rng.uniform(75.0, 90.0)), float(rng.uniform(20.0, 35.0))
    params: dict[str, Any] = {"kind": kind, "condyle_back_mm": back, "condyle_up_mm": up}
    lower_tips = _incisal_tips(anatomy, "lower")
    upper_tips = _incisal_tips(anatomy, "upper")
    if kind == "open":
        angle = float(rng.uniform(3.0, 12.0))
    else:
        thickness = float(rng.uniform(4.0, 10.0))
        gap0 = float(upper_tips[:, 2].min() - lower_tips[:, 2].max()) if len(lower_tips) and len(upper_tips) else 0.9
        lo_a, hi_a = 0.0, 30.0
        for _ in range(40):  # bisection: the incisal gap grows with the angle
            mid = 0.5 * (lo_a + hi_a)
            moved = apply_transform(hinge(upper, lower, mid, back, up), lower_tips) if len(lower_tips) else None
            gap = gap0 if moved is None else float(upper_tips[:, 2].min() - moved[:, 2].max())
            lo_a, hi_a = (mid, hi_a) if gap < thickness else (lo_a, mid)
        angle = 0.5 * (lo_a + hi_a)
        params["block_thickness_mm"] = thickness
    H = hinge(upper, lower, angle, back, up)
    params["angle_deg"] = angle
    block = None
    if kind == "block":
        moved = apply_transform(H, lower_tips) if len(lower_tips) else np.array([[upper.x0, upper.y0, lower.cej_z]])
        top = float(upper_tips[:, 2].min()) if len(upper_tips) else upper.cej_z
        half = float(rng.uniform(10.0, 14.0))
        y_front = float(min(upper_tips[:, 1].min(), moved[:, 1].min())) if len(upper_tips) else upper.y0
        block = BiteBlock(
            lo=(upper.x0 - half, y_front - 25.0, float(moved[:, 2].max())),
            hi=(upper.x0 + half, y_front + float(rng.uniform(6.0, 10.0)), top),
        )
        params["block"] = {"lo": list(block.lo), "hi": list(block.hi)}
    incisal = apply_transform(H, lower_tips) if len(lower_tips) else lower_tips
    if len(lower_tips) and len(upper_tips):
        params["incisal_gap_mm"] = float(upper_tips[:, 2].min() - incisal[:, 2].max())
    return replace(anatomy, poses=(np.eye(4), H), block=block), params


def tilt_head(anatomy: Anatomy, rng: np.random.Generator) -> tuple[Anatomy, dict[str, Any]]:
    """Rotate both jaws about the centre of the teeth: pitch (about x) and roll (about y) ±(5–20)°, yaw (about
    z) ±(3–15)°, signs drawn; ``R = Rz(yaw) · Ry(roll) · Rx(pitch)``. Composes with an existing jaw pose."""
    sign = rng.choice([-1.0, 1.0], size=3)
    pitch, roll = (float(s * rng.uniform(5.0, 20.0)) for s in sign[:2])
    yaw = float(sign[2] * rng.uniform(3.0, 15.0))
    R = Rotation.from_euler("ZYX", [yaw, roll, pitch], degrees=True).as_matrix()
    centre = np.mean([t.cej for t in anatomy.teeth], axis=0)
    P = np.eye(4)
    P[:3, :3] = R
    P[:3, 3] = centre - R @ centre
    poses = (P @ anatomy.world_from_jaw("upper"), P @ anatomy.world_from_jaw("lower"))
    params = {"pitch_deg": pitch, "roll_deg": roll, "yaw_deg": yaw, "rotation": R.tolist(), "centre": centre.tolist()}
    return replace(anatomy, poses=poses), params
