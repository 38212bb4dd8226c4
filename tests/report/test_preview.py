"""Preview pictures: written, the right size, and showing what they claim (labels in colour, R on the left)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest

from tests.report.pixels import box, near, panels, rgb
from toothmcl_data.fdi import load_color_table
from toothmcl_data.report.preview import mesh_png, occlusal_frame, volume_slices_png
from toothmcl_data.synth.patient import SyntheticPatient
from toothmcl_data.types import Mesh, Volume


def test_volume_slices_png_shows_labels_in_colour(patient: SyntheticPatient, tmp_path: Path) -> None:
    path = volume_slices_png(patient.cbct, patient.cbct_labels, tmp_path / "slices.png", title="P")
    image = mpimg.imread(path)
    assert image.shape[0] > 300
    assert image.shape[1] > 900
    rgb = image[..., :3]
    saturation = rgb.max(axis=-1) - rgb.min(axis=-1)
    assert (saturation > 0.25).mean() > 0.01  # coloured label overlay is visible
    without = mpimg.imread(volume_slices_png(patient.cbct, None, tmp_path / "plain.png"))[..., :3]
    assert ((without.max(axis=-1) - without.min(axis=-1)) > 0.25).mean() < (saturation > 0.25).mean()


def test_mesh_png_renders_the_arch(patient: SyntheticPatient, tmp_path: Path) -> None:
    path = mesh_png(patient.ios["lower"], tmp_path / "lower.png", title="lower")
    image = mpimg.imread(path)[..., :3]
    non_white = (image.min(axis=-1) < 0.95).mean()
    assert non_white > 0.1


def test_occlusal_frame_looks_at_the_crowns(patient: SyntheticPatient) -> None:
    mesh = patient.ios["upper"]
    assert mesh.labels is not None
    frame = occlusal_frame(mesh)
    np.testing.assert_allclose(frame @ frame.T, np.eye(3), atol=1e-9)
    v = mesh.vertices @ frame[2]
    assert v[mesh.labels > 0].mean() > v[mesh.labels == 0].mean()


def _box_volume() -> tuple[Volume, Volume]:
    """A 40 × 30 × 20 mm uniform grey volume (1 mm voxels) with tooth 11 labelled over i 4..11, j 3..8, k 2..7:
    on the patient's right, anterior, inferior."""
    affine = np.eye(4)
    affine[:3, 3] = [-20.0, -15.0, -10.0]
    grey = Volume(np.full((40, 30, 20), 1500, dtype=np.int16), affine)  # (1500 + 200) / 3400 = mid grey
    labels = np.zeros((40, 30, 20), dtype=np.int16)
    labels[4:12, 3:9, 2:8] = 11
    return grey, Volume(labels, affine)


def test_volume_slices_put_the_labelled_box_where_it_is(tmp_path: Path) -> None:
    """Radiological views: patient right on the viewer's left, anterior up in the axial view, superior up in the
    others; the overlay is the FDI colour over the grey at 45 %."""
    volume, labels = _box_volume()
    image = rgb(volume_slices_png(volume, labels, tmp_path / "box.png"))
    colour = 0.45 * load_color_table().colors_for(np.array([11]))[0] / 255.0 + 0.55 * 0.5
    overlay = near(image, colour, tol=0.03)
    grey = near(image, (0.5, 0.5, 0.5), tol=0.02)
    views = panels(grey | overlay, 3)
    expected = {  # (left, right) and (top, bottom) of the box as fractions of each panel
        "axial": ((4 / 40, 12 / 40), (3 / 30, 9 / 30)),
        "coronal": ((4 / 40, 12 / 40), (1 - 8 / 20, 1 - 2 / 20)),
        "sagittal": ((3 / 30, 9 / 30), (1 - 8 / 20, 1 - 2 / 20)),
    }
    for (top, bottom, left, right), (name, ((x0, x1), (y0, y1))) in zip(views, expected.items(), strict=True):
        inside = np.zeros_like(overlay)
        inside[top : bottom + 1, left : right + 1] = True
        t, b, lft, rgt = box(overlay & inside)
        w, h = right - left + 1, bottom - top + 1
        got = ((lft - left) / w, (rgt + 1 - left) / w), ((t - top) / h, (b + 1 - top) / h)
        np.testing.assert_allclose(got, ((x0, x1), (y0, y1)), atol=0.03, err_msg=name)


def test_mesh_png_colours_each_tooth_by_its_area(tmp_path: Path) -> None:
    """A flat strip facing the viewer (so unshaded): 20 mm of tooth 11, 10 mm of tooth 21, 10 mm of gingiva."""
    x, y = np.meshgrid(np.arange(0.0, 40.01, 0.5), np.arange(0.0, 10.01, 0.5), indexing="ij")
    vertices = np.c_[x.ravel(), y.ravel(), np.zeros(x.size)]
    nx, ny = x.shape
    idx = np.arange(nx * ny).reshape(nx, ny)
    a, b, c, d = idx[:-1, :-1].ravel(), idx[1:, :-1].ravel(), idx[1:, 1:].ravel(), idx[:-1, 1:].ravel()
    faces = np.r_[np.c_[a, b, c], np.c_[a, c, d]]
    labels = np.where(vertices[:, 0] < 20, 11, np.where(vertices[:, 0] < 30, 21, 0)).astype(np.int16)
    image = rgb(mesh_png(Mesh(vertices, faces, frame="ios", labels=labels), tmp_path / "strip.png"))
    table = load_color_table()
    colours = [table.colors_for(np.array([f]))[0] / 255.0 for f in (11, 21)] + [np.array([0.93, 0.62, 0.62])]
    hits = np.stack([near(image, c, tol=0.03).sum(axis=0) for c in colours])  # (3, W) pixels per column
    drawn = hits.max(axis=0) > 20
    column_label = np.where(drawn, np.argmax(hits, axis=0), -1)  # per column: 11, 21, gingiva or nothing
    width = [int((column_label == k).sum()) for k in range(3)]
    assert width[1] > 50
    assert width[0] / width[1] == pytest.approx(2.0, rel=0.05)  # 20 mm of 11, 10 mm of 21
    assert width[2] / width[1] == pytest.approx(1.0, rel=0.05)  # 10 mm of gingiva
    middle = [float(np.median(np.flatnonzero(column_label == k))) for k in range(3)]
    assert min(middle[0], middle[2]) < middle[1] < max(middle[0], middle[2])  # 21 between 11 and the gingiva
