"""Report charts show the data they are given: bars at their tooth, in its colour, with their height; the median
line at the median; IOS points drawn on the outline of the surface they lie on."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest
from scipy import ndimage

from tests.conftest import ToothSample
from tests.report.pixels import box, near, panels, rgb
from toothmcl_data.fdi import PERMANENT_FDI, load_color_table
from toothmcl_data.report.charts import PairView, distribution_png, fdi_histogram_png, pair_montage_png
from toothmcl_data.types import apply_transform


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


def test_fdi_histogram_bars_stand_at_their_tooth_with_their_height_and_colour(tmp_path: Path) -> None:
    colours = load_color_table().colors_for(np.array(PERMANENT_FDI)) / 255.0
    colour = dict(zip(PERMANENT_FDI, colours, strict=True))
    image = rgb(fdi_histogram_png({11: 10, 21: 5, 48: 10}, tmp_path / "h.png"))
    bars = {f: box(near(image, colour[f])) for f in (11, 21, 48)}
    height = {f: b[1] - b[0] for f, b in bars.items()}
    centre = {f: (b[2] + b[3]) / 2 for f, b in bars.items()}
    assert height[11] > 50
    assert abs(height[11] - 2 * height[21]) <= 2  # 10 vs 5
    assert abs(height[11] - height[48]) <= 1
    assert max(b[1] for b in bars.values()) - min(b[1] for b in bars.values()) <= 1  # one baseline
    pitch = (centre[48] - centre[11]) / 31  # 32 bars: 11 first, 48 last
    assert pitch > 5
    assert abs(centre[21] - (centre[11] + 8 * pitch)) <= 1.5  # 21 is the 9th bar
    for f in (12, 36, 41):  # no count, no bar
        assert near(image, colour[f]).sum() == 0


def test_distribution_median_line_sits_at_the_median(tmp_path: Path) -> None:
    values = [0.0, 1.0, 1.0, 2.0, 3.0, 10.0, float("nan")]  # median 1.5 of the finite ones, range 0..10
    image = rgb(distribution_png(values, tmp_path / "d.png", xlabel="mm", title="residual"))
    bars = near(image, np.array([0x4C, 0x72, 0xB0]) / 255.0)
    top, bottom, left, right = box(bars)
    red = near(image, np.array([0xC4, 0x4E, 0x52]) / 255.0, tol=0.08)
    column = int(np.argmax(red.sum(axis=0)))  # the vertical line, not the legend's short sample
    assert red[:, column].sum() > 0.3 * (bottom - top)
    assert (column - left) / (right - left) == pytest.approx(0.15, abs=0.015)
    # five 2 mm bins: the first holds 0, 1, 1 and the last 10 alone, a third as high
    heights = [bars[:, c].sum() for c in range(left, right + 1)]
    assert max(heights) == pytest.approx(3 * heights[-2], abs=3)


def _cube_view(points_ijk: np.ndarray) -> PairView:
    """A 20³ crop (0.5 mm) holding a bright labelled cube over voxels 5..14, with points at crop indices."""
    cbct = np.full((20, 20, 20), -200, dtype=np.int16)
    labels = np.zeros((20, 20, 20), dtype=np.int16)
    cbct[5:15, 5:15, 5:15] = 3200
    labels[5:15, 5:15, 5:15] = 16
    world_from_crop = np.diag([0.5, 0.5, 0.5, 1.0])
    world_from_crop[:3, 3] = [-20.0, 7.0, 3.0]
    xyz = apply_transform(world_from_crop, points_ijk)
    points = np.concatenate([xyz, np.tile([1.0, 0.0, 0.0], (len(xyz), 1))], axis=1)
    return PairView("cube", cbct, labels, world_from_crop, points)


def _cyan_to_outline_px(path: Path) -> np.ndarray:
    image = rgb(path)
    # the points (~1.5 px) and the thin outline blend with the black or white beside them: compare channels
    cyan = (image[..., 2] - image[..., 0] > 0.25) & (image[..., 1] - image[..., 0] > 0.2)
    yellow = (image[..., 0] - image[..., 2] > 0.2) & (image[..., 1] - image[..., 2] > 0.15)
    assert yellow.sum() > 100
    return ndimage.distance_transform_edt(~yellow)[cyan]


def test_pair_montage_outline_is_the_label_boundary_on_the_slice(tmp_path: Path) -> None:
    """The cube's label covers voxels 5..14 of 20 along x and z: its outline runs at 4.5 and 14.5, i.e. from a
    quarter to three quarters of the slice panel (the dark background around the bright cube) both ways."""
    image = rgb(pair_montage_png([_cube_view(np.zeros((0, 3)))], tmp_path / "cube.png", columns=1))
    top, bottom, left, right = panels(image.max(axis=-1) < 0.1, 1)[0]  # the -200 background around the cube
    size = np.array([bottom - top + 1, right - left + 1], dtype=np.float64)
    yellow = (image[..., 0] - image[..., 2] > 0.2) & (image[..., 1] - image[..., 2] > 0.15)
    t, b, lft, rgt = box(yellow)
    rows = (np.array([t, b + 1]) - top) / size[0]
    cols = (np.array([lft, rgt + 1]) - left) / size[1]
    np.testing.assert_allclose(rows, [0.25, 0.75], atol=0.02)
    np.testing.assert_allclose(cols, [0.25, 0.75], atol=0.02)
    middle = int(top + size[0] / 2)
    assert image[middle, int(left + size[1] / 2)].min() > 0.95  # the cube's 3200 is bright inside the outline
    across = np.flatnonzero(yellow[middle])  # a row through the cube crosses the outline at its two sides only
    assert np.all(np.minimum(np.abs(across - lft), np.abs(across - rgt)) <= 3)


def test_pair_montage_points_on_the_surface_lie_on_the_outline(tmp_path: Path) -> None:
    z = np.linspace(5.0, 13.5, 30)
    on_faces = np.concatenate(
        [np.c_[np.full(30, 4.5), np.full(30, 10.0), z], np.c_[np.full(30, 14.5), np.full(30, 10.0), z]]
    )
    off_slice = np.c_[np.full(10, 9.5), np.full(10, 13.0), np.linspace(6, 12, 10)]  # 1.5 mm from the slice
    d = _cyan_to_outline_px(pair_montage_png([_cube_view(np.r_[on_faces, off_slice])], tmp_path / "on.png", columns=1))
    assert len(d) > 15
    assert d.max() <= 3.0  # every drawn point sits on the yellow outline; the off-slice ones are not drawn
    inside = np.c_[np.full(30, 9.5), np.full(30, 10.0), np.linspace(8.0, 11.0, 30)]  # ≥ 3.5 voxels inside
    d = _cyan_to_outline_px(pair_montage_png([_cube_view(inside)], tmp_path / "in.png", columns=1))
    assert len(d) > 15
    assert d.min() > 15.0
