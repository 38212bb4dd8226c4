"""Preview pictures: written, the right size, and showing what they claim (labels in colour, R on the left)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image as mpimg
import numpy as np

from toothmcl_data.report.preview import mesh_png, occlusal_frame, volume_slices_png
from toothmcl_data.synth.patient import SyntheticPatient


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
    frame = occlusal_frame(mesh)
    np.testing.assert_allclose(frame @ frame.T, np.eye(3), atol=1e-9)
    v = mesh.vertices @ frame[2]
    assert v[mesh.labels > 0].mean() > v[mesh.labels == 0].mean()
