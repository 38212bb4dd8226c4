"""Report charts: written, sized, and showing the data they are given."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image as mpimg
import numpy as np

from tests.conftest import ToothSample
from toothmcl_data.report.charts import PairView, distribution_png, fdi_histogram_png, pair_montage_png


def _coloured_fraction(path: Path) -> float:
    rgb = mpimg.imread(path)[..., :3]
    return float(((rgb.max(axis=-1) - rgb.min(axis=-1)) > 0.2).mean())


def test_fdi_histogram_has_coloured_bars(tmp_path: Path) -> None:
    empty = fdi_histogram_png({}, tmp_path / "empty.png")
    full = fdi_histogram_png({f: 10 for f in (11, 21, 36, 46)}, tmp_path / "h.png")
    assert _coloured_fraction(full) > _coloured_fraction(empty)


def test_distribution_marks_the_median(tmp_path: Path) -> None:
    path = distribution_png([0.1, 0.2, 0.2, 0.3, float("nan")], tmp_path / "d.png", xlabel="mm", title="res")
    assert mpimg.imread(path).shape[1] > 300
    assert distribution_png([], tmp_path / "e.png", xlabel="mm", title="none").exists()


def test_pair_montage_draws_points_on_the_slice(tooth_sample: ToothSample, tmp_path: Path) -> None:
    image, labels, points, _, A = tooth_sample
    view = PairView("P0000 · 16", image * 2500.0, labels, A, points)
    with_points = pair_montage_png([view, view], tmp_path / "m.png", columns=2)
    no_points = pair_montage_png(
        [PairView("x", image * 2500.0, labels, A, points[:0])] * 2, tmp_path / "n.png", columns=2
    )
    cyan = [
        (
            (lambda rgb: ((rgb[..., 0] < 0.3) & (rgb[..., 1] > 0.7) & (rgb[..., 2] > 0.7)).mean())(
                mpimg.imread(p)[..., :3]
            )
        )
        for p in (with_points, no_points)
    ]
    assert cyan[0] > cyan[1]
    assert np.isclose(cyan[1], 0.0)
