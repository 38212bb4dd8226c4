"""One synthetic patient: anatomy, CBCT, label map and both IOS jaws, with exact ground truth."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from toothmcl_data.synth.anatomy import Anatomy, draw_anatomy
from toothmcl_data.synth.cbct import render_cbct
from toothmcl_data.synth.config import SynthConfig
from toothmcl_data.synth.ios import scan_jaw
from toothmcl_data.types import JAWS, Affine4x4, Jaw, Mesh, Volume, apply_transform


@dataclass(frozen=True, eq=False)
class SyntheticPatient:
    """Everything drawn for one patient, before any file is written.

    cbct: int16 scanner values (air ≈ 0, soft tissue ≈ 300, bone ≈ 1200, dentin ≈ 1800, enamel ≈ 2600,
        metal up to 6000), LPS affine.
    cbct_labels: uint8 FDI label map on the same grid (0 = not a tooth).
    ios: per jaw, the scan in the scanner's own frame (``frame="ios:<jaw>"``), per-vertex FDI ``labels`` and
        ``instances``.
    world_from_ios: per jaw, the exact rigid transform taking scanner mm to CBCT LPS world mm.
    conditions: the named conditions (:mod:`toothmcl_data.synth.conditions`) this patient was drawn with.
    variety: their ground truth (JSON-able; empty without conditions), see :mod:`toothmcl_data.synth.variety`.
    bite_scan: with ``ios_bite_scan``, the buccal bite-registration scan (``frame="ios:bite"``, FDI labels of
        both jaws) and ``world_from_bite``, which puts its upper part on the CBCT.
    """

    index: int
    anatomy: Anatomy
    cbct: Volume
    cbct_labels: Volume
    ios: dict[Jaw, Mesh]
    world_from_ios: dict[Jaw, Affine4x4]
    conditions: tuple[str, ...] = ()
    variety: dict[str, Any] = field(default_factory=dict)
    bite_scan: Mesh | None = None
    world_from_bite: Affine4x4 | None = None


def make_patient(
    config: SynthConfig, rng: np.random.Generator, index: int = 0, conditions: Sequence[str] = ()
) -> SyntheticPatient:
    """Draw one patient: anatomy, CBCT + label map, and both jaw scans in random scanner poses.

    ``conditions``: names from :data:`toothmcl_data.synth.conditions.CONDITIONS` (at most one per group). Without
    any, the patient is exactly the default one for ``rng``; with some, see :func:`synth.variety.make_varied`.
    """
    if conditions:
        from toothmcl_data.synth.variety import make_varied  # builds on this module

        return make_varied(config, rng, index, conditions)
    anatomy = draw_anatomy(config, rng)
    cbct, labels = render_cbct(anatomy, config, rng)
    ios: dict[Jaw, Mesh] = {}
    world_from_ios: dict[Jaw, Affine4x4] = {}
    for jaw in JAWS:
        scan = scan_jaw(anatomy, jaw, config, rng)
        ios_from_world = scanner_frame(rng)
        ios[jaw] = in_scanner_frame(scan, ios_from_world, f"ios:{jaw}")
        world_from_ios[jaw] = np.asarray(np.linalg.inv(ios_from_world), dtype=np.float64)
    return SyntheticPatient(index, anatomy, cbct, labels, ios, world_from_ios)


def scanner_frame(rng: np.random.Generator) -> Affine4x4:
    """A random scanner pose (4, 4) ``scanner_from_world``: uniform rotation, translation ±50 mm per axis."""
    T = np.eye(4)
    T[:3, :3] = Rotation.random(random_state=rng).as_matrix()
    T[:3, 3] = rng.uniform(-50.0, 50.0, size=3)
    return T


def in_scanner_frame(scan: Mesh, scanner_from_scan: Affine4x4, frame: str) -> Mesh:
    """``scan`` with its vertices moved by ``scanner_from_scan`` (4, 4) into the frame named ``frame``."""
    return Mesh(
        apply_transform(scanner_from_scan, scan.vertices),
        scan.faces,
        frame=frame,
        labels=scan.labels,
        instances=scan.instances,
        jaw=scan.jaw,
    )
