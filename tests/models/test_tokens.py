"""Token labels, world positions and geometric positives."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch

from tests.models.conftest import SPACING_MM, collate, sample_from_patient
from toothmcl_data.synth.patient import SyntheticPatient
from toothmcl_models.config import tiny
from toothmcl_models.encoders.cbct import token_grid_centres
from toothmcl_models.model import ModelOutput, build
from toothmcl_models.tokens import (
    TokenSet,
    cbct_patch_labels,
    crop_to_world,
    cross_modal_pairs,
    cross_pairs,
    intra_pairs,
    ios_group_labels,
    majority_tooth,
    patient_ids,
    tooth_at_points,
    tooth_centroids,
)


def two_cube_crop() -> torch.Tensor:
    """(16, 16, 8) label crop: tooth 11 fills patch (0, 0, 0); tooth 21 fills 62.5 % of patch (1, 1, 0); tooth 31
    fills 25 % of patch (1, 0, 0) (stride 8)."""
    crop = torch.zeros(16, 16, 8, dtype=torch.int64)
    crop[0:8, 0:8, 0:8] = 11
    crop[8:16, 8:16, 0:5] = 21
    crop[8:16, 0:8, 0:2] = 31
    return crop


def oblique_affine() -> torch.Tensor:
    c, s = math.cos(0.3), math.sin(0.3)
    a = torch.eye(4, dtype=torch.float64)
    a[:3, :3] = torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64) @ torch.diag(
        torch.tensor([0.5, 0.5, 1.0], dtype=torch.float64)
    )
    a[:3, 3] = torch.tensor([10.0, -20.0, 30.0])
    return a


@pytest.mark.parametrize(("min_fraction", "expected"), [(0.5, [11, 0, 0, 21]), (0.25, [11, 0, 31, 21])])
def test_cbct_token_labels_on_two_cubes(min_fraction: float, expected: list[int]) -> None:
    labels = cbct_patch_labels(two_cube_crop()[None], 8, min_fraction)
    assert labels.tolist() == [expected]


def test_cbct_token_world_centres() -> None:
    ijk = token_grid_centres((2, 2, 1), 8)
    assert ijk.tolist() == [[3.5, 3.5, 3.5], [3.5, 11.5, 3.5], [11.5, 3.5, 3.5], [11.5, 11.5, 3.5]]
    a = oblique_affine()
    world = crop_to_world(a[None], ijk[None])[0]
    expected = (a[:3, :3] @ torch.tensor([11.5, 11.5, 3.5], dtype=torch.float64)) + a[:3, 3]
    torch.testing.assert_close(world[3], expected)
    # the token labelled 21 sits on tooth 21's voxels: its centre maps back into that cube
    assert tooth_at_points(two_cube_crop(), a, world[3:4], 0.0).tolist() == [21]


def test_majority_ties_go_to_the_lower_code_and_respect_the_threshold() -> None:
    votes = torch.tensor([[21, 21, 11, 11, 0, 0], [12, 12, 12, 0, 0, -1], [0, 0, 0, 0, 0, 44]])
    assert majority_tooth(votes, 1 / 3).tolist() == [11, 12, 0]
    assert majority_tooth(votes, 0.5).tolist() == [0, 12, 0]


@pytest.mark.parametrize(
    ("point", "tolerance", "expected"),
    [
        ((1.0, 1.0, 4.0), 1.5, 11),  # inside tooth 11
        ((4.5, 1.0, 4.0), 1.5, 11),  # 1.0 mm beyond tooth 11's last voxel centre
        ((5.5, 1.0, 4.0), 1.5, 0),  # 2.0 mm beyond
        ((4.5, 1.0, 4.0), 0.5, 0),  # within 1.0 mm but tolerance 0.5 mm
        ((5.0, 3.25, 4.0), 1.5, 21),  # nearer tooth 21 (0.75 mm) than tooth 11 (1.5 mm)
        ((-100.0, 1.0, 4.0), 1.5, 0),  # outside the crop
    ],
)
def test_tooth_at_points(point: tuple[float, float, float], tolerance: float, expected: int) -> None:
    a = torch.diag(torch.tensor([0.5, 0.5, 1.0, 1.0], dtype=torch.float64))
    p = torch.tensor([point], dtype=torch.float64)
    assert tooth_at_points(two_cube_crop(), a, p, tolerance).tolist() == [expected]


def test_ios_group_labels_vote_by_neighbourhood() -> None:
    xyz = torch.tensor([[[0.0, 0, 0], [0.1, 0, 0], [0.2, 0, 0], [5.0, 0, 0], [5.1, 0, 0], [5.2, 0, 0]]])
    labels = torch.tensor([[11, 11, 0, 0, 0, 21]])
    centres = torch.tensor([[[0.0, 0, 0], [5.0, 0, 0]]])
    assert ios_group_labels(xyz, labels, centres, 3, 0.5).tolist() == [[11, 0]]


def test_pair_masks() -> None:
    labels = torch.tensor([11, 11, 21, 0, 11])
    patient = torch.tensor([1, 1, 1, 1, 2])
    pos, valid = intra_pairs(labels, patient, "negatives")
    assert torch.nonzero(pos).tolist() == [[0, 1], [1, 0]]  # not 0–4: another patient; never the diagonal
    assert not valid.diagonal().any()
    assert bool(valid[0, 3])
    assert bool(valid[3, 0])
    _, valid_ex = intra_pairs(labels, patient, "exclude")
    assert not valid_ex[3].any()
    assert not valid_ex[:, 3].any()
    pos_x, _ = cross_pairs(labels, patient, torch.tensor([0, 11, 21]), torch.tensor([2, 2, 1]))
    assert torch.nonzero(pos_x).tolist() == [[2, 2], [4, 1]]


def test_patient_ids_are_stable() -> None:
    ids = patient_ids(["a", "b", "a"])
    assert ids[0] == ids[2] != ids[1]
    assert ids.tolist() == patient_ids(["a", "b", "a"]).tolist()
    assert int(ids[0]) == 1702698405120146464  # BLAKE2b-64("a") >> 1, fixed across runs and processes


def _tokens(batch: dict[str, Any]) -> ModelOutput:
    model, _ = build(tiny(), seed=0)
    with torch.no_grad():
        return model.eval()(batch)


def _pair_centroid_distances(batch: dict[str, Any], out: ModelOutput) -> np.ndarray:
    """For each cross-modal positive (c, i) whose IOS token has its own per-point label: distance between the
    centroid of the CBCT token's tooth and the centroid of the tooth the IOS points are labelled with (both in
    the CBCT world). Equal teeth give 0; a mismatch gives a tooth-to-tooth distance (≫ the spacing)."""
    positive, _ = cross_modal_pairs(out.cbct, out.ios)
    cents = [tooth_centroids(batch["cbct_labels"][b], batch["world_from_crop"][b]) for b in range(2)]
    dists = []
    for c, i in torch.nonzero(positive).tolist():
        own, b = int(out.ios.labels[i]), int(out.ios.sample[i])
        if own > 0:
            other = cents[b].get(own)
            dists.append(math.inf if other is None else float((cents[b][int(out.cbct.match[c])] - other).norm()))
    return np.array(dists)


def test_cross_modal_positives_are_the_same_tooth_geometrically(
    synth_batch: dict[str, Any], synth_tokens: ModelOutput
) -> None:
    out = synth_tokens
    positive, valid = cross_modal_pairs(out.cbct, out.ios)
    c, i = torch.nonzero(positive).T
    assert len(c) > 100
    assert bool((out.cbct.patient[c] == out.ios.patient[i]).all())
    assert bool((out.cbct.match[c] == out.ios.match[i]).all())
    assert bool((out.cbct.match[c] > 0).all())
    assert bool(valid[positive].all())
    dists = _pair_centroid_distances(synth_batch, out)
    assert len(dists) > 50
    assert float(dists.max()) <= SPACING_MM  # acceptance: positive pairs' tooth centroids coincide
    # the IOS token's own label and its geometric CBCT tooth agree wherever both exist
    both = (out.ios.labels > 0) & (out.ios.match > 0)
    assert int(both.sum()) > 30
    assert bool((out.ios.labels[both] == out.ios.match[both]).all())


def test_wrong_registration_breaks_the_centroid_check(synth_patients: list[SyntheticPatient]) -> None:
    rng = np.random.default_rng(0)
    batch = collate([sample_from_patient(p, rng, shift_mm=8.0) for p in synth_patients])
    dists = _pair_centroid_distances(batch, _tokens(batch))
    assert float(dists.max()) > 5.0  # a neighbouring tooth, not the same one


def test_shuffling_tokens_does_not_change_which_teeth_pair(synth_tokens: ModelOutput) -> None:
    out = synth_tokens
    positive, _ = cross_modal_pairs(out.cbct, out.ios)
    g = torch.Generator().manual_seed(0)
    pc = torch.randperm(len(out.cbct.labels), generator=g)
    pi = torch.randperm(len(out.ios.labels), generator=g)

    def shuffled(t: TokenSet, p: torch.Tensor) -> TokenSet:
        return TokenSet(t.embeddings[p], t.centres[p], t.labels[p], t.match[p], t.sample[p], t.patient[p])

    positive_s, _ = cross_modal_pairs(shuffled(out.cbct, pc), shuffled(out.ios, pi))
    assert torch.equal(positive_s, positive[pc][:, pi])

    def teeth(cb: TokenSet, io: TokenSet, pos: torch.Tensor) -> list[tuple[int, int, int, int]]:
        c, i = torch.nonzero(pos).T
        rows = torch.stack([cb.patient[c], cb.match[c], io.patient[i], io.match[i]], 1)
        return sorted(map(tuple, rows.tolist()))

    assert teeth(out.cbct, out.ios, positive) == teeth(shuffled(out.cbct, pc), shuffled(out.ios, pi), positive_s)
