"""Hand-built scans and label maps whose metrics are worked out by hand in the tests.

IOS scan (10 vertices, mm): tooth 11 (instance 1) = 4 vertices at (0,0,0) + (±1,±1,±1) with an even number of
minus signs, tooth 21 (instance 2) = the same around (10,0,0), two gingiva vertices at (5,±5,0). Each tooth's
challenge size is (2,2,2) (sqrt of 4 squared unit deviations per axis), ‖size‖ = 2√3.

CBCT map (20×20×20, spacing 0.5 × 1 × 2 mm): 4×4×4 cubes: tooth 11 at [2:6, 2:6, 2:6], tooth 21 at
[10:14, 2:6, 2:6], tooth 16 at [2:6, 10:14, 10:14].
"""

from __future__ import annotations

import numpy as np
import pytest

OFFSETS = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], dtype=np.float64)
SPACING = (0.5, 1.0, 2.0)


@pytest.fixture
def scan() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(vertices (10, 3) float64 mm, GT labels (10,) FDI, GT instances (10,))."""
    vertices = np.concatenate([OFFSETS, OFFSETS + np.array([10.0, 0.0, 0.0]), [[5.0, 5.0, 0.0], [5.0, -5.0, 0.0]]])
    labels = np.array([11] * 4 + [21] * 4 + [0, 0], dtype=np.int16)
    instances = np.array([1] * 4 + [2] * 4 + [0, 0], dtype=np.int16)
    return vertices, labels, instances


@pytest.fixture
def label_map() -> np.ndarray:
    """(20, 20, 20) int16 FDI label map with teeth 11, 21, 16 (4×4×4 cubes)."""
    a = np.zeros((20, 20, 20), dtype=np.int16)
    a[2:6, 2:6, 2:6] = 11
    a[10:14, 2:6, 2:6] = 21
    a[2:6, 10:14, 10:14] = 16
    return a
