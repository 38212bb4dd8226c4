"""Which outer plateaus are air: soft tissue in the low class (small FOV), air under metal's dark streaks."""

from __future__ import annotations

import numpy as np

from toothmcl_data.register.air_classes import air_window, two_classes


def _mix(rng: np.random.Generator, *parts: tuple[int, float, float]) -> np.ndarray:
    """Normal samples: (count, mean, sd) per part, float32."""
    return np.concatenate([rng.normal(m, s, n) for n, m, s in parts]).astype(np.float32)


def test_air_and_soft_tissue_are_two_classes_noise_is_one() -> None:
    rng = np.random.default_rng(0)
    assert two_classes(_mix(rng, (6000, 0.0, 25.0), (4000, 330.0, 30.0)), level=1400.0)
    assert not two_classes(_mix(rng, (10000, 0.0, 25.0)), level=1400.0)
    assert not two_classes(_mix(rng, (10000, 300.0, 60.0)), level=1400.0)


def test_the_air_window_sits_on_air_under_strong_streaks() -> None:
    """2-3x streaks: a pile at the scanner's floor, a flat dark tail, the air peak, soft tissue cut by the split."""
    rng = np.random.default_rng(1)
    tail = rng.uniform(-1000.0, -150.0, 12000).astype(np.float32)
    floor = np.full(4000, -1000.0, dtype=np.float32)
    low = np.concatenate([floor, tail, _mix(rng, (15000, 0.0, 60.0), (6000, 250.0, 60.0))])
    low = low[low < 300.0]  # below the first split
    lo, hi = air_window(low, 300.0, 1500.0)
    assert -250.0 < lo < -60.0
    assert 60.0 < hi < 250.0


def test_the_air_window_is_not_the_larger_soft_tissue_peak() -> None:
    """Normal streaks at 0.8 mm: soft tissue beside the crowns outnumbers air 4:1; air is still the window."""
    rng = np.random.default_rng(2)
    low = _mix(rng, (4000, 0.0, 25.0), (16000, 345.0, 35.0), (600, -300.0, 150.0))
    low = low[low < 586.0]
    lo, hi = air_window(low, 586.0, 1500.0)
    assert -250.0 < lo < -50.0
    assert 50.0 < hi < 230.0  # soft tissue (≈ 345) stays out


def test_a_first_split_near_the_air_peak_is_the_ceiling() -> None:
    """Strong streaks with the first split already between air and soft tissue, 100 above the air peak: splitting
    what lies between them again cut air itself (the ceiling 50 above the peak; a patient lost two thirds of its
    crowns and both jaws)."""
    rng = np.random.default_rng(3)
    tail = rng.uniform(-1000.0, -150.0, 12000).astype(np.float32)
    low = np.concatenate([np.full(4000, -1000.0, dtype=np.float32), tail, _mix(rng, (15000, 0.0, 50.0))])
    low = low[low < 100.0]
    lo, hi = air_window(low, 100.0, 1500.0)
    assert hi == 100.0
    assert -200.0 < lo < -60.0
