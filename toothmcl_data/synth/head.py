"""A clinical field of view: the patient's jaws inside a large CBCT field with the head around them.

A clinical dental CBCT export covers far more than the teeth (e.g. 16 × 16 cm wide and 10–13 cm high at
0.4 mm: 40–50 M voxels). ``SynthConfig.field_mm`` asks for such a field: :func:`field_grid` is a box of that
size (x, y, z mm) centred on the teeth left–right, starting :data:`FRONT_MM` in front of the incisors, and
reaching from 45 % of its height below the occlusal plane to 55 % above, widened where needed to hold the
fitted grid of both jaws (:func:`toothmcl_data.synth.cbct.grid_affine`), on the same voxel lattice (voxel
centres stay where the fitted grid puts them, so the teeth are where they were in world mm).

:func:`head_tissue_map` fills it with simple anatomy, all in the (unposed) anatomy frame, from the jaw model of
:mod:`toothmcl_data.synth.cbct` outwards:

- near the teeth, the jaw model where it is anatomy: gingiva, alveolar bone, palate, tongue, lips; its air only
  as the mouth's (inside the lips and cheeks, rounded off 10 mm around the last molars)
  and the nasal cavity (2 × 14 mm wide at the floor, narrowing to its roof 40 mm above); everything else the
  head decides;
- the skin: one outline for both jaws (the face's outline of the jaw model, ``FACE_MM`` buccal of the tooth band)
  in front, widening from 8 mm before the last molars (45°) into the back of the head (an ellipse 2 × 68 mm wide
  reaching 150 mm behind the incisors); from 16 mm under the lower CEJ down the chin recedes and narrows and the
  head tapers into the neck (an ellipse 2 × 52 mm wide around the spine) — no flat cut, no step; air outside;
- the mandible's body ending 25 mm behind the last molars, its rami rising to the condyles, the hard palate
  and nasal cavity ending 8 mm behind the last molars, the naso- and oropharyngeal airway behind them, the
  maxillary sinuses (air in a bony shell) above the premolars and molars, the zygomatic arches, the nose, and
  the cervical spine (vertebral bodies with discs, the posterior arch around the spinal canal);
- bone gets a 1 mm cortex (:func:`~toothmcl_data.synth.cbct.add_cortex`), then the teeth are painted.

Only an unposed anatomy can be placed in a clinical field (not with ``pose_tilted``, ``bite_block``, ``bite_open``;
every other condition combines with it, a ``fov_*`` condition cropping the clinical field).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from toothmcl_data.errors import ConfigError
from toothmcl_data.synth.anatomy import Anatomy
from toothmcl_data.synth.cbct import (
    AIR,
    BONE,
    FACE_MM,
    SOFT,
    add_cortex,
    grid_affine,
    jaw_columns,
    jaw_part,
    paint_teeth,
)
from toothmcl_data.types import JAWS, Affine4x4, Jaw

CLINICAL_FIELD_MM = (160.0, 160.0, 110.0)
"""A typical large dental CBCT field (x, y, z mm): both jaws, the airway, the spine and the sinuses."""
FRONT_MM = 25.0
"""The field starts this far (mm) in front of the most anterior tooth (the lips inside, the nose tip cut)."""
_SLAB = 24
"""Axial slices computed at once (bounds the temporaries of a 40–50 M voxel field to tens of MB)."""


def parse_field(text: str) -> tuple[float, float, float]:
    """``"clinical"`` → :data:`CLINICAL_FIELD_MM`; ``"X,Y,Z"`` → three sizes in mm (ConfigError otherwise)."""
    if text.strip().lower() == "clinical":
        return CLINICAL_FIELD_MM
    problem = f"field of view {text!r}: expected 'clinical' or three sizes X,Y,Z in mm (e.g. 160,160,110)"
    try:
        sizes = tuple(float(v) for v in text.split(","))
    except ValueError as err:
        raise ConfigError(problem) from err
    if len(sizes) != 3:
        raise ConfigError(problem)
    return (sizes[0], sizes[1], sizes[2])


def field_grid(
    anatomy: Anatomy, spacing: float, field_mm: tuple[float, float, float]
) -> tuple[Affine4x4, tuple[int, int, int]]:
    """The clinical field's grid: (4, 4) LPS affine and shape (I, J, K), on the lattice of the fitted grid."""
    if anatomy.poses is not None:
        raise ConfigError(
            "a clinical field of view (field_mm) needs an unposed anatomy; pose_tilted, bite_block and bite_open "
            "give the jaws poses — drop them or the field_mm setting"
        )
    inner, inner_shape = grid_affine(anatomy, spacing)
    in_lo = inner[:3, 3]
    in_hi = in_lo + spacing * (np.asarray(inner_shape) - 1)
    cej = np.array([t.cej for t in anatomy.teeth])
    occlusal = 0.5 * (anatomy.arch("upper").cej_z + anatomy.arch("lower").cej_z)
    size = np.asarray(field_mm, dtype=np.float64)
    lo = np.array([0.5 * (cej[:, 0].min() + cej[:, 0].max()) - size[0] / 2, cej[:, 1].min() - FRONT_MM, 0.0])
    lo[2] = occlusal - 0.45 * size[2]
    hi = np.maximum(lo + size, in_hi)
    lo = in_lo - spacing * np.ceil((in_lo - np.minimum(lo, in_lo)) / spacing - 1e-9)  # on the fitted lattice
    shape = np.floor((hi - lo) / spacing + 1e-9).astype(int) + 1
    affine = inner.copy()
    affine[:3, 3] = lo
    return affine, (int(shape[0]), int(shape[1]), int(shape[2]))


def head_tissue_map(
    anatomy: Anatomy, affine: Affine4x4, shape: tuple[int, int, int]
) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
    """Tissue classes (I, J, K) uint8 and the FDI label map (I, J, K) uint8 of the head on the grid."""
    spacing = float(affine[0, 0])
    x, y, z = (affine[n, 3] + spacing * np.arange(shape[n]) for n in range(3))
    xy = np.stack(np.meshgrid(x, y, indexing="ij"), axis=-1).reshape(-1, 2)
    columns = {jaw: jaw_columns(anatomy, jaw, xy, shape[:2]) for jaw in JAWS}
    depth = np.minimum(*(columns[jaw][1] - columns[jaw][2] for jaw in JAWS))  # (I, J) mm buccal of the tooth band
    m = _Landmarks(anatomy)
    dx, yy = np.meshgrid(x - m.x0, y, indexing="ij")  # (I, J) mm, x from the midline
    mouth = {jaw: _mouth(dx, yy, m) & (columns[jaw][1] < columns[jaw][2] + FACE_MM) for jaw in JAWS}  # in the lips
    upper_skin = _skin(dx, yy, depth, m.lower - 16.0, m)  # the same at all heights above the chin
    tissue = np.empty(shape, dtype=np.uint8)
    for k0 in range(0, shape[2], _SLAB):
        zs = z[k0 : k0 + _SLAB]
        slab = np.empty((*shape[:2], len(zs)), dtype=np.uint8)
        for jaw in JAWS:
            side = zs > m.occlusal if jaw == "upper" else zs <= m.occlusal
            if side.any():
                part = jaw_part(anatomy, jaw, columns[jaw], zs[side])
                _trim_jaw(part, jaw, zs[side], dx, yy, mouth[jaw], m)
                slab[:, :, side] = part
        for k, zk in enumerate(zs):
            slab[:, :, k][~(upper_skin if zk >= m.lower - 16.0 else _skin(dx, yy, depth, float(zk), m))] = AIR
        _structures(slab, dx, yy, zs, m)
        tissue[:, :, k0 : k0 + len(zs)] = slab
    add_cortex(tissue, spacing)
    labels = np.zeros(shape, dtype=np.uint8)
    paint_teeth(anatomy.teeth, affine, shape, tissue, labels)
    return tissue, labels


class _Landmarks:
    """Reference points of the head (anatomy-frame mm) from the teeth and arches."""

    def __init__(self, anatomy: Anatomy) -> None:
        cej = np.array([t.cej for t in anatomy.teeth])
        upper, lower = anatomy.arch("upper"), anatomy.arch("lower")
        self.x0 = float(upper.x0)
        self.front = float(cej[:, 1].min())  # incisors
        self.molar = float(cej[:, 1].max())  # last molars
        self.last = [_last(cej[side], float(upper.x0)) for side in (cej[:, 0] < upper.x0, cej[:, 0] >= upper.x0)]
        self.molar_x = float(np.abs(cej[:, 0] - self.x0).max())
        self.cheek = self.molar - 8.0  # where the face's outline hands over to the head's
        self.cheek_x = self.molar_x + 26.0  # the face's half-width there
        self.upper, self.lower = float(upper.cej_z), float(lower.cej_z)
        self.occlusal = 0.5 * (self.upper + self.lower)
        self.chin = self.lower - 36.0  # under the mandible's lower border (26 mm below the lower CEJ)
        self.head_y = self.front + 70.0  # centre of the back of the head
        self.spine_y = self.molar + 40.0


def _last(cej: NDArray[np.float64], x0: float) -> tuple[float, float]:
    """(dx, y) mm of the most posterior CEJ among ``cej`` (n, 3) (far behind the head when there is none)."""
    if len(cej) == 0:
        return (0.0, -1e6)
    c = cej[np.argmax(cej[:, 1])]
    return (float(c[0]) - x0, float(c[1]))


def _skin(
    dx: NDArray[np.float64], yy: NDArray[np.float64], depth: NDArray[np.float64], z: float, m: _Landmarks
) -> NDArray:
    """(I, J) inside the skin at height ``z``: the face's outline in front (``depth`` (I, J) mm buccal of the tooth
    band at most FACE_MM), widening at 45° from the cheeks into the
    back of the head (an ellipse 2 × 68 mm wide, 160 mm long); below the lower jaw the chin recedes and the head
    narrows into the neck (an ellipse 2 × 52 mm wide around the spine) — no flat cut anywhere."""
    t = float(np.clip((m.lower - 16.0 - z) / 24.0, 0.0, 1.0))  # 0 at the jaws, 1 at the neck
    front = (depth <= FACE_MM - 30.0 * t**2) & (yy >= m.front - 30.0 + 55.0 * t**2)  # the chin's rounded underside
    cy = m.head_y + (m.spine_y - 5.0 - m.head_y) * t
    ellipse = (dx / (68.0 - 16.0 * t)) ** 2 + ((yy - cy) / (80.0 - 30.0 * t)) ** 2 <= 1.0
    return front | (ellipse & (np.abs(dx) <= m.cheek_x + (yy - m.cheek)))


def _mouth(dx: NDArray[np.float64], yy: NDArray[np.float64], m: _Landmarks) -> NDArray[np.bool_]:
    """(I, J) where the jaw model's air is the mouth's: inside the cheeks, rounded off 10 mm around the last molars
    (two half-ellipses around the arch; the pharynx takes over behind)."""
    yc = m.molar - 10.0
    b = np.where(yy < yc, yc - m.front + 20.0, 22.0)
    inside = (dx / (m.molar_x + 25.0)) ** 2 + ((yy - yc) / b) ** 2 <= 1.0
    behind = (yy > m.molar - 6.0) & ~np.any([(dx - u) ** 2 + (yy - v) ** 2 < 100.0 for u, v in m.last], axis=0)
    return inside & ~behind  # rounded 10 mm around each last molar


def _trim_jaw(
    part: NDArray[np.uint8],
    jaw: Jaw,
    zs: NDArray[np.float64],
    dx: NDArray[np.float64],
    yy: NDArray[np.float64],
    mouth: NDArray[np.bool_],
    m: _Landmarks,
) -> None:
    """Keep the jaw model's air only in the mouth and (upper jaw) the nasal cavity
    (2 × 14 mm wide at the floor, narrowing to its roof 40 mm above);
    end the hard palate and the maxilla 8 mm behind the last molars, the mandible's body 25 mm behind."""
    air = part == AIR
    keep = mouth[..., None] & ((zs > m.lower - 5.0) & (zs < m.upper + 6.0))[None, None, :]  # around the crowns
    if jaw == "upper":
        rise = np.clip((zs - m.upper - 6.0) / 40.0, 0.0, None)[None, None, :]  # 0 at the floor, 1 at the roof
        nasal = (np.abs(dx)[..., None] < 14.0 * (1.0 - rise**2)) & (yy < m.molar + 8.0)[..., None]
        keep |= nasal & (zs >= m.upper + 6.0)[None, None, :]
        part[(yy > m.molar + 8.0)[..., None] & (part == BONE)] = SOFT
    else:
        part[(yy > m.molar + 25.0)[..., None] & (part == BONE)] = SOFT  # the body turns into the ramus
    part[air & ~keep] = SOFT


def _ellipse(dx: NDArray[np.float64], yy: NDArray[np.float64], cx: float, cy: float, a: float, b: float) -> NDArray:
    return ((dx - cx) / a) ** 2 + ((yy - cy) / b) ** 2 <= 1.0


def _structures(
    slab: NDArray[np.uint8], dx: NDArray[np.float64], yy: NDArray[np.float64], zs: NDArray[np.float64], m: _Landmarks
) -> None:
    """Paint the rami, airway, spine, sinuses, zygomatic arches and nose into ``slab`` (I, J, K) in place."""
    head = slab != AIR
    for k, zk in enumerate(zs):
        t = slab[:, :, k]
        inside = head[:, :, k]
        # rami: from the angle (25 mm behind the last molars, at the lower border) up to the condyles
        f = np.clip((zk - (m.lower - 24.0)) / (m.occlusal + 30.0 - (m.lower - 24.0)), 0.0, None)
        if f <= 1.0:
            for sign in (-1.0, 1.0):
                cx, cy = sign * (m.molar_x + 8.0 + 6.0 * f), m.molar + 20.0 + 10.0 * f
                half = 13.0 if f < 0.8 else 13.0 * (1.0 - (f - 0.8) / 0.25)  # narrowing to the condyle
                t[_ellipse(dx, yy, cx, cy, 4.0, max(half, 4.0)) & inside] = BONE
        # maxillary sinuses (air in a bony shell) above the premolars and molars
        dz = (zk - (m.upper + 32.0)) / 15.0
        if abs(dz) < 1.0:
            r = np.sqrt(1.0 - dz**2)
            cy = 0.5 * (m.front + m.molar) + 10.0
            for sign in (-1.0, 1.0):
                t[_ellipse(dx, yy, sign * (m.molar_x - 2.0), cy, 13.0 * r + 2.5, 19.0 * r + 2.5) & inside] = BONE
                t[_ellipse(dx, yy, sign * (m.molar_x - 2.0), cy, 13.0 * r, 19.0 * r)] = AIR
        # zygomatic arches, lateral of the sinuses
        if m.upper + 34.0 <= zk <= m.upper + 42.0:
            arch = (np.abs(np.abs(dx) - (m.molar_x + 30.0)) < 3.5) & (yy > m.front + 25.0) & (yy < m.molar + 30.0)
            t[arch & inside] = BONE
        # nose: soft tissue in front of the upper lip
        dz = (zk - (m.upper + 32.0)) / 22.0
        if abs(dz) < 1.0:
            t[_ellipse(dx, yy, 0.0, m.front - 16.0, 12.0, 14.0 * np.sqrt(1.0 - dz**2)) & (t == AIR)] = SOFT
        # airway: the nasopharynx behind the nasal cavity, the oropharynx behind the tongue
        dz = (zk - (m.upper + 20.0)) / 11.0
        if abs(dz) < 1.0:
            t[_ellipse(dx, yy, 0.0, m.molar + 15.0, 10.0 * np.sqrt(1.0 - dz**2), 11.0 * np.sqrt(1.0 - dz**2))] = AIR
        if m.lower - 55.0 <= zk < m.upper + 12.0:
            t[_ellipse(dx, yy, 0.0, m.molar + 18.0, 11.0, 6.5)] = AIR
        # cervical spine: vertebral bodies with 2.5 mm discs every 16 mm, the posterior arch around the canal
        if zk <= m.upper + 6.0:
            disc = (m.upper + 6.0 - zk) % 16.0 < 2.5
            body = _ellipse(dx, yy, 0.0, m.spine_y, 11.0, 9.0)
            t[body] = SOFT if disc else BONE
            if not disc:
                canal = _ellipse(dx, yy, 0.0, m.spine_y + 19.0, 8.0, 7.0)
                ring = _ellipse(dx, yy, 0.0, m.spine_y + 19.0, 12.0, 11.0) & ~canal & (yy > m.spine_y + 8.0)
                t[ring] = BONE
                t[canal] = SOFT
