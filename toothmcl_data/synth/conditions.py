"""Named clinical conditions of synthetic patients: the registry, parsing ``NAME[=FRACTION]`` and planning a drop.

A condition changes one aspect of how a patient is drawn; patients without one are exactly the default
patients (same bytes as before conditions existed). Conditions of one **group** exclude each other (a patient
has one field of view, one bite, ...); conditions of different groups combine. Every drawn parameter is
recorded in the patient's ground truth (``SyntheticPatient.variety``, ``truth.json`` → ``variety``).

Conditions and their parameter ranges (all drawn per patient from the patient's own generator):

field of view (``fov``)
  - ``fov_full``: both jaws with roots and bone (the default grid).
  - ``fov_one_jaw``: one jaw (upper or lower, 50/50), whole; the grid stops 0.5–3.5 mm past its crowns, so
    the opposing cusp tips may be cut (more of them with a tilted head).
  - ``fov_quadrant``: a small FOV around 3–6 neighbouring teeth of one quadrant (run of 3–6 positions, side and
    jaw drawn), box = their crowns and roots + 1.5–4 mm, ending 0–0.5 mm past their cusp tips; the run is
    shortened until 3–6 teeth have voxels inside (neighbours may be cut).
  - ``fov_cut_crowns``: one jaw whole, the grid's edge passing through the other jaw's crowns 1.5–4.5 mm from
    their cusp tips.
bite (``bite``)
  - ``bite_occlusion``: teeth closed: every lower tooth raised (at most 3 mm) until it touches the upper crowns
    (contact gap 0.05–0.15 mm): no gap between the arches, cusps in the opposing fossae, lower incisors behind
    the upper ones, arches overlapping ≈ 2.5 mm in height.
  - ``bite_block``: mouth held open by a radiolucent bite block between the incisors, 4–10 mm thick.
  - ``bite_open``: mandible opened by a hinge rotation of 3–12° about a condyle axis 75–90 mm behind and
    20–35 mm above the incisors: a wedge-shaped gap (incisors ≈ 5–20 mm apart, molars less).
head pose (``pose``)
  - ``pose_tilted``: anatomy rotated inside the axis-aligned grid: pitch and roll of the occlusal plane
    ±(5–20)°, yaw ±(3–15)° (signs and magnitudes drawn), about the centre of the teeth.
scanner intensity (``intensity``)
  - ``intensity_hu``: Hounsfield-calibrated: air −1000, soft tissue ≈ 40, bone 400–1200, dentin ≈ 1600,
    enamel ≈ 2500, metal clipped at 3071, gain 0.9–1.1 on the tissue table.
  - ``intensity_vendor``: a raw vendor scale ``value = gain · raw + offset``, gain 0.3–3, offset −2000–+1500
    (air is not 0 and not −1000).
intraoral scan (``ios``)
  - ``ios_full``: full-arch scans of both jaws (the default).
  - ``ios_quadrant``: each jaw scanned only over 3–6 neighbouring teeth of one side (same teeth in both jaws).
  - ``ios_bite_scan``: a third mesh beside the jaws, the buccal surfaces of both arches closed in occlusion over
    premolars and first molars of one side (own scanner frame; ground truth ``world_from_ios["bite"]`` maps its
    upper part onto the CBCT).
  - ``ios_no_palate``: the upper scan ends 1–3 mm lingual of the teeth (no palatal vault).
  - ``ios_holes``: 3–6 holes of radius 3–5 mm centred on the tips of different crowns (both jaws).
anatomy (``anatomy``)
  - ``edentulous``: 1–2 toothless spans of 2–4 neighbouring teeth (third molars absent).
  - ``implants``: 2–3 implants with metal crowns in extraction gaps.
  - ``metal_crowns``: 3–6 metal crowns on natural teeth, streaks 2–3× the default strength.
  - ``crowding``: crowded, rotated (±35°) and displaced (±1.5 mm) anterior teeth in both jaws.
  - ``mixed_dentition``: a child: primary dentition (20 teeth, FDI 51–85, 1/3 of draws) or mixed (permanent
    incisors and first molars + primary canines and molars 53–55, 63–65, 73–75, 83–85); arches 0.80–0.90 size.
  - ``missing_third_molar``: three third molars present, one (drawn) missing: one side only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from toothmcl_data.errors import ConfigError


@dataclass(frozen=True)
class Condition:
    """One named condition: its ``group`` (conditions of a group exclude each other) and what it draws."""

    name: str
    group: str
    summary: str


_TABLE = (
    ("fov_full", "fov", "both jaws with roots and bone (the default grid)"),
    ("fov_one_jaw", "fov", "one jaw whole; the grid ends 0.5-3.5 mm past its crowns"),
    ("fov_quadrant", "fov", "3-6 neighbouring teeth of one quadrant, box +1.5-4 mm"),
    ("fov_cut_crowns", "fov", "one jaw whole, the grid edge 1.5-4.5 mm into the other jaw's crowns"),
    ("bite_occlusion", "bite", "teeth closed, cusps touching (gap 0.05-0.15 mm), arches overlap in height"),
    ("bite_block", "bite", "open on a radiolucent bite block 4-10 mm thick between the incisors"),
    ("bite_open", "bite", "mandible hinged open 3-12 deg (incisors ~5-20 mm apart)"),
    ("pose_tilted", "pose", "pitch/roll +-(5-20) deg, yaw +-(3-15) deg inside the axis-aligned grid"),
    ("intensity_hu", "intensity", "Hounsfield units: air -1000, metal clipped at 3071"),
    ("intensity_vendor", "intensity", "raw vendor scale: gain 0.3-3, offset -2000..+1500"),
    ("ios_full", "ios", "full-arch scans of both jaws (the default)"),
    ("ios_quadrant", "ios", "each jaw scanned over 3-6 neighbouring teeth of one side"),
    ("ios_bite_scan", "ios", "a buccal bite-registration scan of both arches in occlusion beside the jaws"),
    ("ios_no_palate", "ios", "upper scan ends 1-3 mm lingual of the teeth"),
    ("ios_holes", "ios", "3-6 holes of radius 3-5 mm over different crowns"),
    ("edentulous", "anatomy", "1-2 toothless spans of 2-4 teeth"),
    ("implants", "anatomy", "2-3 implants with metal crowns"),
    ("metal_crowns", "anatomy", "3-6 metal crowns, streaks 2-3x stronger"),
    ("crowding", "anatomy", "crowded anterior teeth in both jaws (+-35 deg, +-1.5 mm)"),
    ("mixed_dentition", "anatomy", "primary (51-85) or mixed dentition, arches 0.80-0.90 size"),
    ("missing_third_molar", "anatomy", "one third molar missing, its mirror present"),
)
CONDITIONS: dict[str, Condition] = {name: Condition(name, group, summary) for name, group, summary in _TABLE}
"""Every condition by name, in a fixed order (the order of the module docstring)."""
CONDITION_NAMES: tuple[str, ...] = tuple(CONDITIONS)
GROUPS: tuple[str, ...] = tuple(dict.fromkeys(c.group for c in CONDITIONS.values()))


def check_conditions(names: Iterable[str]) -> tuple[str, ...]:
    """Validate ``names`` and return them in registry order; raises ConfigError on unknown or clashing names."""
    given = list(names)
    unknown = sorted(set(given) - set(CONDITIONS))
    if unknown:
        raise ConfigError(
            f"unknown synth condition(s) {unknown}; known: {', '.join(CONDITION_NAMES)} (or --variety all)"
        )
    ordered = tuple(n for n in CONDITION_NAMES if n in set(given))
    groups: dict[str, list[str]] = {}
    for name in ordered:
        groups.setdefault(CONDITIONS[name].group, []).append(name)
    clash = {g: ns for g, ns in groups.items() if len(ns) > 1}
    if clash:
        raise ConfigError(f"conditions of one group exclude each other, got {clash}; give a patient one of each")
    return ordered


_SPEC = re.compile(r"^([a-z0-9_]+)(?:=([0-9]*\.?[0-9]+))?$")


def parse_condition_specs(specs: Sequence[str], variety: str | None = None) -> dict[str, float]:
    """``["fov_one_jaw=0.3", "bite_occlusion"]`` → ``{name: fraction}`` (no fraction = every patient).

    ``variety="all"`` adds every condition at fraction ``1 / 21`` (each patient gets about one), unless named
    explicitly in ``specs``. Raises ConfigError for malformed specs, unknown names or fractions outside [0, 1].
    """
    out: dict[str, float] = {}
    if variety is not None:
        if variety != "all":
            raise ConfigError(f"--variety must be 'all', got {variety!r}")
        out = {name: 1.0 / len(CONDITION_NAMES) for name in CONDITION_NAMES}
    for spec in specs:
        m = _SPEC.match(spec.strip())
        if m is None:
            raise ConfigError(f"condition spec {spec!r} is not NAME or NAME=FRACTION (e.g. fov_one_jaw=0.3)")
        fraction = float(m.group(2)) if m.group(2) is not None else 1.0
        if not 0.0 <= fraction <= 1.0:
            raise ConfigError(f"condition {m.group(1)!r}: fraction must be in [0, 1], got {fraction}")
        check_conditions([m.group(1)])
        out[m.group(1)] = fraction
    return out


def plan_conditions(n: int, fractions: Mapping[str, float], rng: np.random.Generator) -> list[tuple[str, ...]]:
    """Give ``round(fraction × n)`` of ``n`` patients each named condition; returns per patient its conditions.

    If rounding loses patients overall (``--variety all`` on fewer than 21 patients: 1/21 each rounds to 0),
    the conditions short by most get one more, ties drawn, until ``round(Σ fraction × n)`` are given. Conditions
    are dealt in registry order; each takes the next patients (in a drawn order) that have no condition of its
    group yet, so conditions of one group never meet. Deterministic for a given ``rng`` state.
    """
    for name in fractions:
        check_conditions([name])
    ordered = [name for name in CONDITION_NAMES if name in fractions]
    raw = {name: fractions[name] * n for name in ordered}
    want = {name: int(np.floor(raw[name] + 0.5)) for name in ordered}
    short = int(np.floor(sum(raw.values()) + 0.5)) - sum(want.values())
    if short > 0:
        tie = rng.permutation(len(ordered))
        ranked = sorted(range(len(ordered)), key=lambda i: (want[ordered[i]] - raw[ordered[i]], tie[i]))
        for i in ranked[:short]:
            want[ordered[i]] += 1
    plan: list[list[str]] = [[] for _ in range(n)]
    order = [int(i) for i in rng.permutation(n)]
    cursor = 0
    for name in ordered:
        group = CONDITIONS[name].group
        given = 0
        for step in range(n):
            if given >= want[name]:
                break
            i = order[(cursor + step) % n]
            if any(CONDITIONS[c].group == group for c in plan[i]):
                continue
            plan[i].append(name)
            given += 1
        cursor = (cursor + want[name]) % max(n, 1)
    return [check_conditions(p) for p in plan]
