"""pair_case: fixed-size crops and points per tooth, label transfer both ways, planted label errors flagged."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from tests.pair.conftest import SMALL, Registered
from toothmcl_data.errors import RegistrationError
from toothmcl_data.fdi import mirror_labels, opposing_labels
from toothmcl_data.pair import pair_case
from toothmcl_data.pair.teeth import tooth_points
from toothmcl_data.pair.transfer import labels_from_cbct
from toothmcl_data.register import register_jaw
from toothmcl_data.register.sample import vertex_normals
from toothmcl_data.types import Case, Jaw, Mesh, Volume, apply_transform

ROW_KEYS = {
    "case", "fdi", "centroid_cbct_mm", "centroid_ios_mm", "extent_mm", "residual_mm", "flags", "in_cbct", "in_ios",
    "paired", "cbct_label_source",
}  # fmt: skip


def test_every_tooth_is_paired_with_fixed_sizes(registered: Registered) -> None:
    res = pair_case(registered.case(), registered.registrations, SMALL, surface=registered.surface)
    teeth = sorted(t.fdi for t in registered.patient.anatomy.teeth)
    assert [p.fdi for p in res.pairs] == teeth
    assert [r["fdi"] for r in res.teeth] == teeth
    assert all(set(r) == ROW_KEYS for r in res.teeth)
    assert all(r["paired"] and r["flags"] == [] for r in res.teeth)
    for pair in res.pairs:
        assert pair.cbct_crop.shape == pair.label_crop.shape == SMALL.crop_shape == (24, 24, 40)
        assert pair.cbct_crop.dtype == pair.label_crop.dtype == np.int16
        assert pair.ios_points.shape == (128, 6)
        assert pair.ios_points.dtype == np.float32
        assert np.count_nonzero(pair.label_crop == pair.fdi) > 100
        ijk = apply_transform(np.linalg.inv(pair.world_from_crop), pair.ios_points[:, :3].astype(np.float64))
        assert np.all((ijk > -0.5) & (ijk < np.array(SMALL.crop_shape) - 0.5))  # the crown is inside the crop
        np.testing.assert_allclose(np.linalg.norm(pair.ios_points[:, 3:], axis=1), 1.0, atol=1e-5)
    assert res.flags == ()
    for jaw, cover in res.coverage.items():
        assert np.mean(list(cover.values())) > 0.7, jaw  # 0.6 mm scan vertices vs a 0.35 mm gate; 0.99 at 0.3 mm


def test_tooth_points_are_a_fixed_count() -> None:
    pts = np.random.default_rng(1).normal(size=(20, 3))
    nrm = pts / np.linalg.norm(pts, axis=1, keepdims=True)
    out = tooth_points(pts, nrm, 64)
    assert out.shape == (64, 6)
    assert out.dtype == np.float32
    assert len(np.unique(out[:, :3], axis=0)) == 20  # all points, repeated in order to fill


def test_label_transfer_from_cbct(registered: Registered) -> None:
    p = registered.patient
    for jaw, mesh in p.ios.items():
        T = registered.registrations[jaw].world_from_ios
        v = apply_transform(T, mesh.vertices)
        got = labels_from_cbct(
            p.cbct, p.cbct_labels, v, vertex_normals(mesh) @ T[:3, :3].T, registered.surface.level, 0.35
        )
        assert mesh.labels is not None
        crown = mesh.labels > 0
        assert np.mean(got[crown] == mesh.labels[crown]) > 0.97, jaw  # ≥ 0.99 at 0.4 mm (bench)
        assert np.mean(got[~crown] > 0) < 0.05


def test_unlabelled_scan_gets_labels_from_the_cbct(registered: Registered) -> None:
    lower = registered.patient.ios["lower"]
    bare = Mesh(lower.vertices, lower.faces, frame=lower.frame, jaw="lower")
    res = pair_case(
        registered.case(lower=bare), {"lower": registered.registrations["lower"]}, SMALL, surface=registered.surface
    )
    lower_teeth = sorted(t.fdi for t in registered.patient.anatomy.teeth if t.fdi > 30)
    assert [p.fdi for p in res.pairs] == lower_teeth
    assert res.flags == ("lower:labels_from_cbct",)
    assert np.mean(list(res.coverage["lower"].values())) > 0.7


def test_without_a_label_map_pairs_come_from_the_scan(registered: Registered) -> None:
    p = registered.patient
    case = Case("P001", p.cbct, None, dict(p.ios))
    res = pair_case(case, registered.registrations, SMALL)
    assert len(res.pairs) == len(p.anatomy.teeth)
    for pair in res.pairs:
        assert np.count_nonzero(pair.label_crop == pair.fdi) > 50
        assert set(np.unique(pair.label_crop)) <= {0, *[t.fdi for t in p.anatomy.teeth]}
    assert all(r["centroid_cbct_mm"] is None and r["in_cbct"] for r in res.teeth)


def test_without_a_label_map_the_case_gets_one_from_the_registered_scans(registered: Registered) -> None:
    p = registered.patient
    res = pair_case(Case("P001", p.cbct, None, dict(p.ios)), registered.registrations, SMALL)
    assert res.cbct_labels_source == "ios"
    assert res.cbct_labels is not None
    assert res.cbct_labels.shape == p.cbct.shape
    np.testing.assert_array_equal(res.cbct_labels.affine, p.cbct.affine)
    got, truth = np.asarray(res.cbct_labels.array), np.asarray(p.cbct_labels.array)
    teeth = sorted(t.fdi for t in p.anatomy.teeth)
    assert sorted(int(f) for f in np.unique(got) if f > 0) == teeth
    placed = got > 0
    assert np.mean(truth[placed] == got[placed]) > 0.9  # the transferred identity is the true tooth's
    for fdi in teeth:
        assert np.count_nonzero(got == fdi) > 0.2 * np.count_nonzero(truth == fdi), fdi  # crowns + root tops
    assert {r["cbct_label_source"] for r in res.teeth} == {"ios"}
    for pair in res.pairs:  # the pair crops are cut from the same map
        assert np.count_nonzero(pair.label_crop == pair.fdi) > 50
    own = pair_case(registered.case(), registered.registrations, SMALL, surface=registered.surface)
    assert own.cbct_labels is p.cbct_labels or own.cbct_labels is registered.case().cbct_labels
    assert own.cbct_labels_source == "cbct"


def _swap(a: int, b: int) -> Callable[[np.ndarray], np.ndarray]:
    def change(labels: np.ndarray) -> np.ndarray:
        out = labels.copy()
        out[labels == a], out[labels == b] = b, a
        return out

    return change


@pytest.mark.parametrize("with_label_map", [True, False], ids=["label-map", "anatomy-only"])
@pytest.mark.parametrize(
    ("jaw", "change", "expected"),
    [
        ("upper", _swap(11, 21), {11: "swap:11-21", 21: "swap:11-21"}),
        ("lower", _swap(36, 46), {36: "swap:36-46", 46: "swap:36-46"}),
        ("upper", _swap(13, 14), {13: "13-14", 14: "13-14"}),
        ("upper", mirror_labels, {16: "", 21: "", 27: ""}),
        ("lower", opposing_labels, {16: "", 21: ""}),
    ],
    ids=["swap-11-21", "swap-36-46", "swap-13-14", "mirror", "jaw-mixup"],
)
def test_planted_label_errors_are_flagged(
    registered: Registered,
    with_label_map: bool,
    jaw: Jaw,
    change: Callable[[np.ndarray], np.ndarray],
    expected: dict[int, str],
) -> None:
    p = registered.patient
    mesh = p.ios[jaw]
    assert mesh.labels is not None
    planted = Mesh(mesh.vertices, mesh.faces, frame=mesh.frame, labels=change(mesh.labels), jaw=mesh.jaw)
    case = Case("P001", p.cbct, p.cbct_labels if with_label_map else None, {**p.ios, jaw: planted})
    res = pair_case(case, {jaw: registered.registrations[jaw]}, SMALL)
    rows = {r["fdi"]: r for r in res.teeth}
    for fdi, evidence in expected.items():
        assert rows[fdi]["flags"], (fdi, rows[fdi])
        assert any(evidence in f for f in rows[fdi]["flags"]), rows[fdi]["flags"]
        assert not rows[fdi]["paired"]
    paired = {pr.fdi for pr in res.pairs}
    assert not paired & set(expected)
    if change is mirror_labels:
        assert f"{jaw}:mirror" in res.flags


def test_mirrored_labels_do_not_mislead_the_registration(registered: Registered) -> None:
    p = registered.patient
    mesh = p.ios["upper"]
    assert mesh.labels is not None
    planted = Mesh(mesh.vertices, mesh.faces, frame=mesh.frame, labels=mirror_labels(mesh.labels), jaw="upper")
    reg = register_jaw(p.cbct, planted, cbct_labels=p.cbct_labels, surface=registered.surface)
    np.testing.assert_allclose(reg.world_from_ios, registered.registrations["upper"].world_from_ios, atol=1e-3)


def test_pairing_errors(registered: Registered) -> None:
    p = registered.patient
    with pytest.raises(RegistrationError, match="has no CBCT, so no tooth can be paired"):
        pair_case(Case("P009", None, None, dict(p.ios)), registered.registrations)
    with pytest.raises(RegistrationError, match="a registration for the upper jaw was given but the case has no upper"):
        pair_case(Case("P009", p.cbct, p.cbct_labels, {"lower": p.ios["lower"]}), registered.registrations)


def test_a_label_that_is_no_fdi_tooth_is_refused_not_skipped(registered: Registered) -> None:
    from dataclasses import replace

    from toothmcl_data.errors import LabelSchemeError

    case = registered.case()
    assert case.cbct_labels is not None
    labels = np.array(case.cbct_labels.array, copy=True)
    labels[np.nonzero(labels == 16)] = 19  # 19 is no FDI tooth: it used to vanish from the teeth table
    bad = replace(case, cbct_labels=Volume(labels, case.cbct_labels.affine))
    with pytest.raises(LabelSchemeError, match=r"case P001: label 19 in the CBCT label map is not an FDI tooth"):
        pair_case(bad, registered.registrations, SMALL, surface=registered.surface)
