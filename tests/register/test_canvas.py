"""The numpy/PIL canvas of the registration pictures: mm ↔ pixel mapping, ticks, images, lines, points, frames."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from toothmcl_data.register import canvas
from toothmcl_data.register.canvas import Panel


@pytest.mark.parametrize(
    ("a", "b", "length", "spacing", "values", "decimals"),
    [
        (-43.2, 51.0, 411, 45, [-40, -20, 0, 20, 40], 0),  # 9 ticks allowed: steps of 10.5 mm round up to 20
        (62.0, -18.0, 330, 30, [-10, 0, 10, 20, 30, 40, 50, 60], 0),  # a downward axis: same values
        (0.0, 7.0, 300, 30, list(range(8)), 0),
        (0.0, 24.0, 300, 30, [0, 2.5, 5, 7.5, 10, 12.5, 15, 17.5, 20, 22.5], 1),
        (0.0, 1.0, 300, 30, [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0], 1),
    ],
)
def test_ticks_are_round_and_spaced(
    a: float, b: float, length: int, spacing: int, values: list[float], decimals: int
) -> None:
    got, d = canvas.ticks(a, b, length, spacing)
    np.testing.assert_allclose(got, values, atol=1e-9)
    assert d == decimals


def test_tick_labels_use_a_minus_sign_and_no_negative_zero() -> None:
    assert canvas.label(-20.0, 0) == "\N{MINUS SIGN}20"
    assert canvas.label(-1e-12, 1) == "0.0"
    assert canvas.label(12.5, 1) == "12.5"


def test_a_fitted_panel_keeps_the_mm_scale_and_maps_corners() -> None:
    p = Panel.fitted((10, 20, 400, 300), (0.0, 100.0), (0.0, 50.0))
    assert (p.left, p.top, p.width, p.height) == (10, 70, 400, 200)  # 4 px per mm both ways, centred
    col, row = p.pixels(np.array([0.0, 100.0]), np.array([0.0, 50.0]))
    np.testing.assert_allclose(col, [9.5, 409.5])  # the pixel edges, pixel centres at integers
    np.testing.assert_allclose(row, [69.5, 269.5])
    whole = Panel.fitted((10, 20, 400, 300), (0.0, 100.0), (0.0, 50.0), equal=False)
    assert (whole.width, whole.height) == (400, 300)


def test_paste_image_follows_the_panel_axes_and_window() -> None:
    rgb = np.zeros((40, 40, 3), dtype=np.uint8)
    image = np.array([[0.0, 100.0], [200.0, 300.0]])  # row r at y = r mm, column c at x = c mm
    up = Panel(0, 0, 20, 20, (-0.5, 1.5), (1.5, -0.5))  # y grows upwards: row 1 at the top
    canvas.paste_image(rgb, up, image, (0.0, 0.0), (1.0, 1.0), (0.0, 300.0))
    np.testing.assert_array_equal(rgb[[15, 15, 5, 5], [5, 15, 5, 15], 0], [0, 85, 170, 255])  # rows: 0 100; 200 300
    assert (rgb[:20, :20, 0] == rgb[:20, :20, 2]).all()  # grey
    assert not rgb[20:, :].any()  # only the panel is painted
    assert not rgb[:, 20:].any()
    smooth = np.zeros((40, 40, 3), dtype=np.uint8)
    canvas.paste_image(smooth, up, image, (0.0, 0.0), (1.0, 1.0), (0.0, 300.0), order=1)
    assert 85 < smooth[10, 10, 0] < 170  # bilinear: between the four values in the middle


def test_segments_are_drawn_joined_and_clipped_to_the_panel() -> None:
    rgb = np.zeros((30, 30, 3), dtype=np.uint8)
    p = Panel(5, 5, 20, 20, (0.0, 20.0), (0.0, 20.0))  # 1 px per mm, rows grow with y
    segments = np.array([[[2.5, 10.5], [12.5, 10.5]], [[-30.0, 3.5], [40.0, 3.5]]])
    canvas.draw_segments(rgb, p, segments, "#00e5ff")
    np.testing.assert_array_equal(rgb[15, 7:18], [[0, 229, 255]] * 11)  # every pixel of the first segment
    assert rgb[8, 5:25, 1].all()  # the second crosses the whole panel and stops at its edges
    assert not rgb[8, :5].any()
    assert not rgb[8, 25:].any()
    canvas.draw_segments(rgb, p, np.zeros((0, 2, 2)), "#00e5ff")  # nothing to draw


def test_points_blend_with_the_picture() -> None:
    rgb = np.full((10, 10, 3), 100, dtype=np.uint8)
    p = Panel(0, 0, 10, 10, (0.0, 10.0), (0.0, 10.0))
    canvas.draw_points(rgb, p, np.array([[2.5, 3.5], [50.0, 50.0]]), "#00e5ff", alpha=0.5)
    np.testing.assert_array_equal(rgb[3, 2], [50, 164, 178])
    assert (rgb.reshape(-1, 3) != 100).any(axis=1).sum() == 1  # the point off the panel is not drawn


def test_frame_draws_a_border_ticks_and_labels() -> None:
    image = Image.new("RGB", (200, 150), "white")
    p = Panel(40, 20, 150, 100, (-10.0, 20.0), (0.0, 10.0))
    canvas.frame(ImageDraw.Draw(image), p)
    px = np.asarray(image)
    assert (px[[19, 120], 39:191] == 0).all()  # top and bottom edges
    col = round(float(p.pixels(np.array([0.0]), np.array([0.0]))[0][0]))
    assert (px[121:125, col] == 0).all()  # the tick of x = 0 below the panel
    assert (px[126:140, col - 5 : col + 6] < 128).any()  # and its label under it
    assert (px[20:120, :35] < 128).any()  # y labels left of the panel
