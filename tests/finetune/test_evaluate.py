"""Inference written back in the input's geometry (CBCT NIfTI, IOS Teeth3DS JSON per vertex) and scored."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from toothmcl_data.io.meshwrite import write_obj
from toothmcl_data.io.teeth3ds import write_teeth3ds_json
from toothmcl_data.io.volume import read_nifti
from toothmcl_data.metrics.inputs import score_ios_files
from toothmcl_data.synth.config import SynthConfig
from toothmcl_data.synth.patient import make_patient
from toothmcl_data.types import Mesh, Volume
from toothmcl_models.evaluate import (
    back_project,
    inference_grid,
    instances_from_labels,
    native_argmax,
    predict_mesh,
    predict_volume,
    write_prediction_nifti,
    write_prediction_teeth3ds,
)
from toothmcl_models.scoring import score_mesh, score_volume
from toothmcl_models.segmentation import IOS_CLASSES


class Threshold(nn.Module):
    """Stand-in CBCT network: class 1 (FDI 11) where the scanner value exceeds 1000, else background."""

    def forward(self, image: Tensor) -> Tensor:
        logits = torch.full((image.shape[0], 33, *image.shape[2:]), -1e4)
        logits[:, 0] = 0.0
        logits[:, 1] = image[:, 0] - 1000.0
        return logits


class LeftRight(nn.Module):
    """Stand-in IOS network: class 1 where x < 0, class 9 where x ≥ 0 (per-jaw classes)."""

    def forward(self, points: Tensor, jaw: str) -> Tensor:
        out = torch.zeros((*points.shape[:2], IOS_CLASSES))
        out[..., 1] = (points[..., 0] < 0).float()
        out[..., 9] = (points[..., 0] >= 0).float()
        return out


@pytest.mark.parametrize("signs", [(1.0, 1.0, 1.0), (-1.0, -1.0, 1.0)])
def test_sliding_window_prediction_has_the_input_grid(tmp_path: Path, signs: tuple[float, float, float]) -> None:
    rng = np.random.default_rng(0)
    array = rng.integers(0, 2000, size=(50, 40, 30)).astype(np.int16)
    affine = np.diag([1.2 * s for s in signs] + [1.0])
    affine[:3, 3] = [10.0, -20.0, 5.0]
    volume = Volume(array, affine)
    pred = predict_volume(Threshold(), volume, spacing_mm=1.2, roi=(32, 32, 32))  # type: ignore[arg-type]
    assert pred.shape == volume.shape
    np.testing.assert_array_equal(pred.affine, volume.affine)
    np.testing.assert_array_equal(pred.array, np.where(array > 1000, 11, 0))
    path = write_prediction_nifti(tmp_path / "pred.nii.gz", pred)
    back = read_nifti(path)
    np.testing.assert_array_equal(back.array, pred.array)
    np.testing.assert_allclose(back.affine, volume.affine, atol=1e-5)
    scored = score_volume(back, Volume(np.where(array > 1000, 11, 0).astype(np.int16), affine), "c1")
    assert scored.summary()["mean_dice"] == 1.0


def test_oblique_input_is_resampled_back_onto_its_own_grid() -> None:
    angle = np.radians(20)
    rot = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    affine = np.eye(4)
    affine[:3, :3] = rot * 1.0
    array = np.zeros((40, 40, 30), dtype=np.int16)
    array[10:30, 10:30, 5:25] = 1500
    volume = Volume(array, affine)
    grid, shape = inference_grid(volume, 1.0)
    assert min(shape) >= 30
    assert np.allclose(np.diag(grid)[:3], 1.0)
    pred = predict_volume(Threshold(), volume, spacing_mm=1.0, roi=(32, 32, 32))  # type: ignore[arg-type]
    assert pred.shape == volume.shape
    inside = array > 1000
    agreement = (pred.array == 11) == inside
    assert agreement.mean() > 0.97  # only voxels at the cube's faces may differ after two resamplings


def test_probabilities_not_labels_come_back_onto_a_finer_native_grid() -> None:
    """A ball of radius 6 mm predicted on a 2 mm grid (soft edge: probability from the signed distance) comes back
    onto a 1 mm native grid as a ball: the interpolated probabilities give Dice > 0.95 with the true ball, nearest
    labels (the old export) blocks that score lower; classes that never win on the grid are not resampled."""
    native = Volume(np.zeros((40, 40, 40), dtype=np.int16), np.eye(4))
    grid = np.diag([2.0, 2.0, 2.0, 1.0])
    centre = np.array([19.5, 19.5, 19.5])
    coarse = np.stack(np.meshgrid(*(np.arange(20) * 2.0,) * 3, indexing="ij"), 0)
    distance = np.linalg.norm(coarse - centre[:, None, None, None], axis=0) - 6.0
    ball = 1 / (1 + np.exp(distance))  # P(tooth 11): 0.5 at the surface
    probs = np.zeros((33, 20, 20, 20), dtype=np.float32)
    probs[0], probs[1] = 1 - ball, ball
    fine = np.stack(np.meshgrid(*(np.arange(40.0),) * 3, indexing="ij"), 0)
    truth = np.linalg.norm(fine - centre[:, None, None, None], axis=0) < 6.0
    out = native_argmax(probs, grid, native)
    assert out.dtype == np.int16
    assert set(np.unique(out).tolist()) == {0, 1}

    def dice(mask: np.ndarray) -> float:
        return 2 * float((mask & truth).sum()) / float(mask.sum() + truth.sum())

    nearest = np.kron(probs.argmax(0), np.ones((2, 2, 2), dtype=np.int64)) == 1
    assert dice(out == 1) > 0.95
    assert dice(out == 1) > dice(nearest) + 0.03


def test_back_projection_labels_every_vertex_from_the_nearest_samples() -> None:
    rng = np.random.default_rng(1)
    vertices = rng.normal(size=(500, 3)) * 10
    pick = rng.choice(500, 120, replace=False)
    labels = np.where(vertices[pick, 0] < 0, 31, 41)
    out = back_project(vertices[pick], labels, vertices, k=1)
    assert out.shape == (500,)
    np.testing.assert_array_equal(out[pick], labels)
    voted = back_project(vertices[pick], labels, vertices, k=5)
    assert set(np.unique(voted)) <= {31, 41}
    assert (voted == out).mean() > 0.8


def test_ios_prediction_covers_every_vertex_and_scores(tmp_path: Path) -> None:
    p = make_patient(SynthConfig(spacing_mm=1.2, ios_resolution_mm=1.0), np.random.default_rng(3))
    mesh = p.ios["lower"]
    centred = Mesh(mesh.vertices - mesh.vertices.mean(0), mesh.faces, labels=mesh.labels, instances=mesh.instances)
    labels, instances = predict_mesh(
        LeftRight(),  # type: ignore[arg-type]
        centred,
        "lower",
        points=256,
        rng=np.random.default_rng(0),
        k=1,
        postprocess=False,  # LeftRight labels by LPS x, not anatomically: arch order would renumber it
    )
    assert labels.shape == (len(mesh.vertices),)
    assert instances.shape == labels.shape
    expected = np.where(centred.vertices[:, 0] < 0, 31, 41)
    assert (labels == expected).mean() > 0.95  # wrong only near x = 0, between samples
    assert set(np.unique(instances)) == {1, 2}
    write_obj(tmp_path / "scan_lower.obj", mesh.vertices, mesh.faces)
    assert mesh.labels is not None
    assert mesh.instances is not None
    write_teeth3ds_json(tmp_path / "gt.json", id_patient="x", jaw="lower", labels=mesh.labels, instances=mesh.instances)
    write_prediction_teeth3ds(tmp_path / "pred.json", mesh.labels, id_patient="x", jaw="lower")
    scores = score_ios_files(tmp_path / "scan_lower.obj", tmp_path / "gt.json", tmp_path / "pred.json")
    assert pytest.approx(1.0) == scores.TSA
    assert scores.mIoU == pytest.approx(1.0)
    direct = score_mesh(centred, mesh.labels, instances_from_labels(mesh.labels), "x").summary()
    assert direct["TSA"] == pytest.approx(1.0)


def test_predict_cli_writes_a_per_vertex_teeth3ds_file(seg_store: Path, tmp_path: Path, capsys) -> None:
    import json

    from toothmcl_models.evaluate import main
    from toothmcl_models.finetune import finetune
    from toothmcl_models.segconfig import FinetuneConfig

    finetune(str(seg_store), "latest", FinetuneConfig.from_yaml(Path("tiny"), "ios"), tmp_path / "run", max_steps=2)
    p = make_patient(SynthConfig(spacing_mm=1.2, ios_resolution_mm=1.0), np.random.default_rng(3))
    mesh = p.ios["upper"]
    assert mesh.labels is not None
    assert mesh.instances is not None
    write_obj(tmp_path / "scan_upper.obj", mesh.vertices, mesh.faces)
    write_teeth3ds_json(tmp_path / "gt.json", id_patient="s", jaw="upper", labels=mesh.labels, instances=mesh.instances)
    out = tmp_path / "pred" / "scan_upper.json"
    out.parent.mkdir()
    main(["ios", "--checkpoint", str(tmp_path / "run"), "--input", str(tmp_path / "scan_upper.obj"), "--out", str(out),
          "--jaw", "upper", "--gt", str(tmp_path / "gt.json")])  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    assert set(report["scores"]) >= {"TSA", "TLA", "TIR", "mIoU"}
    written = json.loads(out.read_text())
    assert len(written["labels"]) == len(mesh.vertices)
    assert written["jaw"] == "upper"
