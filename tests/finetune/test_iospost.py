"""IOS post-processing on the mesh: smoothing, one piece per tooth, arch order (toothmcl_models.iospost)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from toothmcl_data.fdi import PERMANENT_FDI
from toothmcl_data.stream.jaws import canonical_from_scan
from toothmcl_data.synth.config import SynthConfig
from toothmcl_data.synth.patient import make_patient
from toothmcl_data.types import Jaw, Mesh, apply_transform
from toothmcl_models.evaluate import vertex_normals
from toothmcl_models.iospost import (
    ARCH_SLOTS,
    arch_order,
    keep_largest_pieces,
    mesh_adjacency,
    postprocess_jaw,
    smooth_on_mesh,
)
from toothmcl_models.segmentation import fdi_to_classes, ios_class_table


def _jaw(jaw: Jaw, seed: int = 3) -> tuple[Mesh, np.ndarray, np.ndarray]:
    """A synthetic jaw scan at a random pose, its perjaw17 classes and its vertices in the canonical frame."""
    mesh = make_patient(SynthConfig(spacing_mm=1.2, ios_resolution_mm=1.0), np.random.default_rng(seed)).ios[jaw]
    motion = np.eye(4)
    motion[:3, :3] = Rotation.random(random_state=np.random.default_rng(seed)).as_matrix()
    moved = Mesh(apply_transform(motion, mesh.vertices), mesh.faces, labels=mesh.labels, instances=mesh.instances)
    assert moved.labels is not None
    classes = fdi_to_classes(torch.as_tensor(moved.labels.astype(np.int64)), ios_class_table(jaw)).numpy()
    canonical = canonical_from_scan(moved.vertices, vertex_normals(moved))
    return moved, classes, apply_transform(canonical, moved.vertices)


def _soft(classes: np.ndarray, p_true: float = 0.8) -> np.ndarray:
    probs = np.full((len(classes), 17), (1 - p_true) / 16)
    probs[np.arange(len(classes)), classes] = p_true
    return probs


def test_arch_slots_run_from_one_molar_to_the_other_in_both_jaws() -> None:
    assert sorted(ARCH_SLOTS) == list(range(1, 17))
    for jaw, (first, second) in (("upper", (1, 2)), ("lower", (3, 4))):
        codes = [f for f in PERMANENT_FDI if f // 10 in (first, second)]
        order = [int(np.flatnonzero(ios_class_table(jaw).numpy() == s)[0]) for s in ARCH_SLOTS]  # type: ignore[arg-type]
        assert order == [
            *sorted((f for f in codes if f // 10 == first), reverse=True),
            *sorted(f for f in codes if f // 10 == second),
        ]


@pytest.mark.parametrize("jaw", ["upper", "lower"])
def test_correct_labels_pass_unchanged(jaw: Jaw) -> None:
    mesh, classes, canonical = _jaw(jaw)
    out = postprocess_jaw(_soft(classes), mesh.faces, canonical)
    assert (out == classes).mean() > 0.99  # smoothing moves some boundary vertices (between two classes)
    assert set(np.unique(out)) == set(np.unique(classes))


@pytest.mark.parametrize("jaw", ["upper", "lower"])
def test_swapped_neighbours_are_put_back_in_arch_order(jaw: Jaw) -> None:
    """Teeth 4 and 5 of one quadrant, each slightly more probable as the other: arch order renumbers them."""
    _mesh, classes, canonical = _jaw(jaw)
    a, b = 4, 5  # perjaw17 classes of x4 and x5
    assert (classes == a).any()
    assert (classes == b).any()
    probs = np.full((len(classes), 17), 0.05 / 14)
    probs[np.arange(len(classes)), classes] = 0.95
    for true, wrong in ((a, b), (b, a)):
        rows = classes == true
        probs[rows] = 0.05 / 15
        probs[rows, true], probs[rows, wrong] = 0.45, 0.5
    swapped = probs.argmax(1)
    assert (swapped[classes == a] == b).all()
    fixed = arch_order(swapped, probs, canonical)
    np.testing.assert_array_equal(fixed, classes)
    # a mirrored scan (canonical x flipped) puts the same labels out of order: the numbering would change
    assert not np.array_equal(arch_order(classes, _soft(classes), canonical * [-1, 1, 1]), classes)


def test_a_stray_piece_of_a_tooth_label_goes_to_its_next_best_class() -> None:
    mesh, classes, _ = _jaw("lower")
    adjacency = mesh_adjacency(mesh.faces, len(classes))
    stray = np.flatnonzero(classes == 14)[:5]  # a patch on tooth 46 labelled as tooth 36 (class 6)
    labels = classes.copy()
    labels[stray] = 6
    probs = _soft(classes)
    probs[stray, 6], probs[stray, 14] = 0.8, 0.15
    out = keep_largest_pieces(labels, probs, adjacency)
    np.testing.assert_array_equal(out[stray], 14)
    assert (out == 6).sum() == (classes == 6).sum()
    assert (out != classes).sum() <= 5  # the synthetic scan's own lone vertices of a tooth may move too


def test_smoothing_keeps_probabilities_and_removes_a_lone_vertex() -> None:
    mesh, classes, _ = _jaw("lower")
    adjacency = mesh_adjacency(mesh.faces, len(classes))
    probs = _soft(classes, 0.9)
    inner = np.flatnonzero((classes == 6) & (np.asarray(adjacency[:, classes != 6].sum(1)).ravel() == 0))[0]
    probs[inner] = _soft(np.array([7]), 0.9)[0]
    smooth = smooth_on_mesh(probs, adjacency, 2)
    np.testing.assert_allclose(smooth.sum(1), 1.0)
    assert smooth[inner].argmax() == 6


def test_touching_teeth_are_numbered_as_one_block() -> None:
    """A quadrant whose teeth each lean one number too far back (x8 absent, so the shift fits in the 16 slots):
    the order alone allows it; the contact rule (31 touches 41: no slot between them) numbers the block right."""
    _mesh, classes, canonical = _jaw("lower")
    classes = np.where(classes == 8, 0, classes)  # no tooth 38
    probs = _soft(classes, 0.95)
    for c in range(1, 8):  # 31 … 37 each slightly likelier as 32 … 38
        rows = classes == c
        probs[rows] = 0.05 / 15
        probs[rows, c], probs[rows, c + 1] = 0.46, 0.49
    shifted = probs.argmax(1)
    assert (shifted[classes == 1] == 2).all()
    assert np.array_equal(arch_order(shifted, probs, canonical, gap_penalty=0.0), shifted)
    np.testing.assert_array_equal(arch_order(shifted, probs, canonical), classes)
