"""Tooth-number consistency: planted swaps, mirrors, jaw mix-ups, wrong sides and wrong orders are named, a
correct arch has no findings."""

from __future__ import annotations

import numpy as np

from toothmcl_data.pair.consistency import against_anatomy, against_cbct, jaw_findings


def _upper_arch() -> dict[int, np.ndarray]:
    """Crown centroids of an upper arch in LPS mm: right teeth (quadrant 1) at −x, going back (+y) from the
    incisors along a parabola."""
    x = 4.0 + 4.2 * np.arange(7)
    right = {10 + p: np.array([-x[p - 1], 0.02 * x[p - 1] ** 2, 0.0]) for p in range(1, 8)}
    left = {f + 10: c * [-1.0, 1.0, 1.0] for f, c in right.items()}
    return right | left


def test_labels_from_the_cbct_name_each_kind_of_disagreement() -> None:
    ios = np.repeat([11, 21, 16, 36, 17, 13], 10)
    cbct = np.repeat([21, 11, 26, 26, 15, 13], 10)  # swap, mirror, jaw mix-up, mismatch, agreement
    cbct[-10:-7] = 12  # 13 agrees on 7 of 10 vertices: above 0.6
    assert against_cbct(ios, cbct, min_agreement=0.6) == {
        11: ["swap:11-21"],
        21: ["swap:11-21"],
        16: ["mirror:16->26"],
        36: ["jaw_mixup:36->26"],
        17: ["mismatch:17->15"],
    }
    assert against_cbct(ios, np.zeros_like(cbct), 0.6) == {}  # nothing landed on a CBCT tooth: no evidence


def test_a_correct_arch_has_no_anatomy_findings() -> None:
    assert against_anatomy(_upper_arch(), "upper") == {}


def test_anatomy_finds_swaps_sides_order_and_the_wrong_jaw() -> None:
    arch = _upper_arch()
    arch[11], arch[21] = arch[21], arch[11]
    assert against_anatomy(arch, "upper") == {11: ["swap:11-21"], 21: ["swap:11-21"]}
    arch = _upper_arch()
    arch[16] = arch[26] + [0.5, 0.0, 0.0]
    del arch[26]
    assert against_anatomy(arch, "upper")[16] == ["side:16"]
    arch = _upper_arch()
    arch[13], arch[15] = arch[15], arch[13]
    found = against_anatomy(arch, "upper")
    assert "order:13-15" in found[13]
    assert "order:13-15" in found[15]
    assert against_anatomy(_upper_arch(), "lower")[11] == ["jaw:11"]


def test_a_jaw_is_mirrored_when_most_teeth_are() -> None:
    mirrored = {f: [f"mirror:{f}->{f + 10}"] for f in (11, 12, 13)}
    assert jaw_findings(mirrored, n_teeth=4) == ["mirror"]
    assert jaw_findings(mirrored, n_teeth=8) == []
    assert jaw_findings({11: ["side:11"], 12: ["swap:12-22"]}, n_teeth=3) == []  # too few teeth to say
