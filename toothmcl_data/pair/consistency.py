"""Is each IOS tooth, after registration, the CBCT tooth of the same number?

Two sources of evidence, both in CBCT LPS world space (+x patient left, +y posterior):

- with a CBCT label map: the labels the registered scan's vertices receive from it (``transfer.labels_from_cbct``);
  an IOS tooth sitting on another CBCT tooth is a swap (two teeth trade numbers), a mirror (the same tooth on
  the other side), a jaw mix-up (the same tooth in the other jaw) or a plain mismatch;
- always: anatomy — right-side teeth (quadrants 1, 4) lie at smaller x than the midline and left-side ones at
  larger x, positions grow from the midline backwards along the arch, and every tooth belongs to the scan's jaw.

Findings are strings such as ``"swap:11-21"``, ``"mirror:16->26"``, ``"jaw_mixup:16->46"``, ``"side:11"``,
``"order:11-12"``, ``"jaw:36"`` (a lower tooth in an upper scan) and the jaw-level ``"mirror"``; a flagged tooth
is never paired.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
from numpy.typing import NDArray

from toothmcl_data.fdi import tooth
from toothmcl_data.types import Jaw

SIDE_TOLERANCE_MM = 1.0
"""A tooth is on the wrong side when its centroid lies this far across the midline."""
ORDER_TOLERANCE_MM = 1.5
"""Two teeth are out of order when the further one from the midline is nearer the front by this much."""


def against_cbct(
    ios_fdi: NDArray[np.integer], cbct_fdi: NDArray[np.integer], min_agreement: float
) -> dict[int, list[str]]:
    """Per IOS tooth, its findings from the labels its vertices got from the CBCT label map.

    ios_fdi: (n,) IOS label per vertex; cbct_fdi: (n,) label transferred from the CBCT (0 = none). A tooth
    agrees when at least ``min_agreement`` of its vertices that landed on a CBCT tooth landed on its own number.
    """
    seen: dict[int, int] = {}
    for f in np.unique(ios_fdi):
        if f <= 0:
            continue
        got = cbct_fdi[(ios_fdi == f) & (cbct_fdi > 0)]
        if got.size == 0:
            continue
        if float(np.mean(got == f)) >= min_agreement:
            continue
        seen[int(f)] = int(Counter(got.tolist()).most_common(1)[0][0])
    findings: dict[int, list[str]] = {}
    for f, g in seen.items():
        if seen.get(g) == f:
            a, b = sorted((f, g))
            findings[f] = [f"swap:{a}-{b}"]
        elif g == tooth(f).mirror().fdi:
            findings[f] = [f"mirror:{f}->{g}"]
        elif g == tooth(f).opposing().fdi:
            findings[f] = [f"jaw_mixup:{f}->{g}"]
        else:
            findings[f] = [f"mismatch:{f}->{g}"]
    return findings


def _midline(centres: dict[int, NDArray[np.float64]]) -> float | None:
    """x (LPS mm) of the midline from pairs of mirror teeth (median of their mid-points), or of all teeth."""
    mids = [
        0.5 * (c[0] + centres[tooth(f).mirror().fdi][0]) for f, c in centres.items() if tooth(f).mirror().fdi in centres
    ]
    if mids:
        return float(np.median(mids))
    return float(np.median([c[0] for c in centres.values()])) if len(centres) >= 4 else None


def against_anatomy(centres: dict[int, NDArray[np.float64]], jaw: Jaw) -> dict[int, list[str]]:
    """Per IOS tooth, its findings from anatomy. centres: FDI → (3,) crown centroid in CBCT LPS world mm."""
    findings: dict[int, list[str]] = {}

    def add(f: int, what: str) -> None:
        findings.setdefault(f, []).append(what)

    for f in centres:
        if tooth(f).jaw != jaw:
            add(f, f"jaw:{f}")
    mid = _midline(centres)
    if mid is None:
        return findings
    wrong_side = []
    for f, c in centres.items():
        right = tooth(f).side == "right"
        if (right and c[0] > mid + SIDE_TOLERANCE_MM) or (not right and c[0] < mid - SIDE_TOLERANCE_MM):
            wrong_side.append(f)
    for f in wrong_side:
        partner = tooth(f).mirror().fdi
        if partner in wrong_side:
            a, b = sorted((f, partner))
            add(f, f"swap:{a}-{b}")
        else:
            add(f, f"side:{f}")
    # Along one side, positions grow away from the midline and backwards (+y).
    front = min(c[1] for c in centres.values())
    for quadrant in {f // 10 for f in centres}:
        teeth = sorted(f for f in centres if f // 10 == quadrant and f not in wrong_side)
        arc = {f: abs(centres[f][0] - mid) + (centres[f][1] - front) for f in teeth}
        for i, a in enumerate(teeth):
            for b in teeth[i + 1 :]:
                if arc[a] > arc[b] + ORDER_TOLERANCE_MM:
                    add(a, f"order:{a}-{b}")
                    add(b, f"order:{a}-{b}")
    return findings


def jaw_findings(per_tooth: dict[int, list[str]], n_teeth: int) -> list[str]:
    """Jaw-level findings: ``"mirror"`` when most teeth are mirrored or on the wrong side."""
    mirrored = sum(any(x.startswith(("mirror:", "side:", "swap:")) for x in flags) for flags in per_tooth.values())
    return ["mirror"] if n_teeth >= 4 and mirrored > n_teeth / 2 else []
