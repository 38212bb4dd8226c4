"""The shortcuts of pairing give what the plain computations give: the bounded nearest-label search, brightness
judged on some vertices only, the label boxes read in the map's own dtype, and the FDI codes a label map holds
(no pass over the whole volume)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree

from tests.pair.conftest import SMALL, Registered
from toothmcl_data.pair import pair_case
from toothmcl_data.pair.teeth import label_boxes
from toothmcl_data.pair.transfer import nearest_within, tooth_bright
from toothmcl_data.register.sample import vertex_normals
from toothmcl_data.types import Case, Volume, apply_transform


def test_nearest_within_is_the_unbounded_query_near_the_tree() -> None:
    rng = np.random.default_rng(3)
    tree_points = rng.uniform(0, 10, size=(400, 3)).round(1)  # on a 0.1 mm lattice: exact distance ties occur
    tree_points = np.concatenate([tree_points, tree_points[:50]])  # duplicated points: ties of index
    query = np.concatenate([rng.uniform(-5, 15, size=(3000, 3)), tree_points[:20] + 0.05])
    tree = cKDTree(tree_points)
    d_all, i_all = tree.query(query, k=1, workers=1)
    d, i = nearest_within(tree, query, 0.6)
    near = d_all <= 0.6
    assert 100 < near.sum() < len(query) - 100
    np.testing.assert_array_equal(d[near], d_all[near])
    np.testing.assert_array_equal(i[near], i_all[near])
    assert np.all(d[~near] > 0.6)  # beyond reach: never taken for near
    d0, i0 = nearest_within(tree, np.zeros((0, 3)), 0.6)
    assert d0.shape == i0.shape == (0,)


def test_tooth_bright_judges_only_the_vertices_asked(registered: Registered) -> None:
    p = registered.patient
    mesh = p.ios["upper"]
    T = registered.registrations["upper"].world_from_ios
    v, n = apply_transform(T, mesh.vertices), vertex_normals(mesh) @ T[:3, :3].T
    full = tooth_bright(p.cbct, v, n, registered.surface.level, 0.35)
    assert 0.1 < full.mean() < 0.9
    where = np.flatnonzero(np.random.default_rng(0).random(len(v)) < 0.3)
    part = tooth_bright(p.cbct, v, n, registered.surface.level, 0.35, where=where)
    np.testing.assert_array_equal(part[where], full[where])
    assert not np.delete(part, where).any()


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int32, np.float32])
def test_label_boxes_keys_are_the_maps_fdi_codes(dtype: type) -> None:
    lab: np.ndarray = np.zeros((12, 10, 8), dtype=dtype)
    lab[1:4, 2:5, 3:6] = 11
    lab[6:8, 1:2, 0:8] = 36
    if np.issubdtype(dtype, np.signedinteger):
        lab[0, 0, 0] = -1  # not a tooth
    boxes = label_boxes(Volume(lab, np.diag([0.5, 0.5, 0.5, 1.0])))
    assert sorted(boxes) == [11, 36]
    np.testing.assert_allclose(boxes[11][0], [1.0, 1.5, 2.0])  # centre of voxels 1-3, 2-4, 3-5 at 0.5 mm
    np.testing.assert_allclose(boxes[11][1], [1.5, 1.5, 1.5])
    np.testing.assert_allclose(boxes[36][1], [1.0, 0.5, 4.0])


def test_label_sources_name_the_teeth_each_map_holds(registered: Registered) -> None:
    p = registered.patient
    gone = int(p.anatomy.teeth[0].fdi)
    lab = np.asarray(p.cbct_labels.array).copy()
    lab[lab == gone] = 0  # this tooth is in the scan but not in the CBCT's label map
    case = Case("P001", p.cbct, Volume(lab, p.cbct_labels.affine), dict(p.ios))
    res = pair_case(case, registered.registrations, SMALL, surface=registered.surface)
    sources = {int(r["fdi"]): r["cbct_label_source"] for r in res.teeth}
    assert sources[gone] is None
    assert {s for f, s in sources.items() if f != gone} == {"cbct"}
    transferred = pair_case(Case("P001", p.cbct, None, dict(p.ios)), registered.registrations, SMALL)
    assert transferred.cbct_labels is not None
    held = {int(f) for f in np.unique(np.asarray(transferred.cbct_labels.array)) if f > 0}
    assert held == {int(r["fdi"]) for r in transferred.teeth if r["cbct_label_source"] == "ios"}
