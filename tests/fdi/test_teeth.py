"""The FDI tooth model: codes, anatomy of a code, mirror / opposing, label-array helpers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from toothmcl_data.errors import LabelSchemeError
from toothmcl_data.fdi import (
    DECIDUOUS_FDI,
    LOWER_FDI,
    PERMANENT_FDI,
    UPPER_FDI,
    Tooth,
    check_labels,
    mirror_labels,
    opposing_labels,
    tooth,
)
from toothmcl_data.fdi.teeth import format_codes

ALL = PERMANENT_FDI + DECIDUOUS_FDI
teeth = st.sampled_from(ALL)
label_arrays = hnp.arrays(np.int16, st.integers(0, 40), elements=st.sampled_from((-1, 0, *ALL)))


def test_code_constants() -> None:
    assert PERMANENT_FDI[:8] == (11, 12, 13, 14, 15, 16, 17, 18)
    assert PERMANENT_FDI[-8:] == (41, 42, 43, 44, 45, 46, 47, 48)
    assert len(PERMANENT_FDI) == 32
    assert len(set(PERMANENT_FDI)) == 32
    assert PERMANENT_FDI[:16] == UPPER_FDI
    assert PERMANENT_FDI[16:] == LOWER_FDI
    assert DECIDUOUS_FDI == (51, 52, 53, 54, 55, 61, 62, 63, 64, 65, 71, 72, 73, 74, 75, 81, 82, 83, 84, 85)


@pytest.mark.parametrize(
    ("fdi", "quadrant", "position", "jaw", "side", "kind", "deciduous", "name"),
    [
        (11, 1, 1, "upper", "right", "incisor", False, "upper right central incisor"),
        (13, 1, 3, "upper", "right", "canine", False, "upper right canine"),
        (16, 1, 6, "upper", "right", "molar", False, "upper right first molar"),
        (24, 2, 4, "upper", "left", "premolar", False, "upper left first premolar"),
        (38, 3, 8, "lower", "left", "molar", False, "lower left third molar"),
        (42, 4, 2, "lower", "right", "incisor", False, "lower right lateral incisor"),
        (45, 4, 5, "lower", "right", "premolar", False, "lower right second premolar"),
        (55, 5, 5, "upper", "right", "molar", True, "upper right deciduous second molar"),
        (63, 6, 3, "upper", "left", "canine", True, "upper left deciduous canine"),
        (74, 7, 4, "lower", "left", "molar", True, "lower left deciduous first molar"),
        (81, 8, 1, "lower", "right", "incisor", True, "lower right deciduous central incisor"),
    ],
)
def test_tooth_properties(
    fdi: int, quadrant: int, position: int, jaw: str, side: str, kind: str, deciduous: bool, name: str
) -> None:
    t = tooth(fdi)
    assert (t.quadrant, t.position, t.jaw, t.side, t.type, t.deciduous, t.name) == (
        quadrant,
        position,
        jaw,
        side,
        kind,
        deciduous,
        name,
    )


@pytest.mark.parametrize(("a", "b"), [(11, 21), (31, 41), (16, 26), (38, 48), (53, 63), (75, 85)])
def test_mirror_pairs(a: int, b: int) -> None:
    assert tooth(a).mirror() == Tooth(b)
    assert tooth(b).mirror() == Tooth(a)


@pytest.mark.parametrize(("a", "b"), [(11, 41), (16, 46), (21, 31), (27, 37), (55, 85), (62, 72)])
def test_opposing_pairs(a: int, b: int) -> None:
    assert tooth(a).opposing().fdi == b
    assert tooth(b).opposing().fdi == a


@given(teeth)
def test_mirror_flips_side_only(code: int) -> None:
    t = tooth(code)
    m = t.mirror()
    assert m.mirror() == t
    assert m.side != t.side
    assert (m.jaw, m.type, m.position, m.deciduous) == (t.jaw, t.type, t.position, t.deciduous)


@given(teeth)
def test_opposing_flips_jaw_only(code: int) -> None:
    t = tooth(code)
    o = t.opposing()
    assert o.opposing() == t
    assert o.jaw != t.jaw
    assert (o.side, o.type, o.position, o.deciduous) == (t.side, t.type, t.position, t.deciduous)
    assert o.mirror() == t.mirror().opposing()


def test_jaw_and_side_by_quadrant() -> None:
    assert {tooth(c).jaw for c in UPPER_FDI} == {"upper"}
    assert {tooth(c).jaw for c in LOWER_FDI} == {"lower"}
    assert {tooth(c).side for c in PERMANENT_FDI if c // 10 in (1, 4)} == {"right"}
    assert {tooth(c).side for c in PERMANENT_FDI if c // 10 in (2, 3)} == {"left"}


def test_tooth_accepts_numpy_integers() -> None:
    assert tooth(np.int16(36)) == Tooth(36)
    assert isinstance(tooth(np.int64(36)).fdi, int)
    assert Tooth(np.uint8(21)).mirror().fdi == 11  # type: ignore[arg-type]


EXPECTED = "expected 11–18, 21–28, 31–38, 41–48 (or deciduous 51–55, 61–65, 71–75, 81–85)"


@pytest.mark.parametrize(
    ("code", "fragment"),
    [
        (19, "FDI code 19 is not a tooth: position 9 does not exist in quadrant 1 (1–8 only)"),
        (10, "FDI code 10 is not a tooth: position 0 does not exist"),
        (0, "FDI code 0 is not a tooth: 0 means gingiva/background"),
        (-1, "FDI code -1 is not a tooth: -1 means unknown"),
        (49, "FDI code 49 is not a tooth: position 9 does not exist in quadrant 4"),
        (56, "FDI code 56 is not a tooth: position 6 does not exist in deciduous quadrant 5 (1–5 only)"),
        (99, "FDI code 99 is not a tooth: quadrant 9 does not exist"),
        (5, "FDI code 5 is not a tooth: quadrant 0 does not exist"),
        (1.5, "FDI code must be an integer, got 1.5 (float)"),
        (True, "FDI code must be an integer, got True (bool)"),
    ],
)
def test_tooth_rejects_non_teeth(code: object, fragment: str) -> None:
    with pytest.raises(LabelSchemeError) as info:
        tooth(code)  # type: ignore[arg-type]
    assert fragment in str(info.value)
    assert EXPECTED in str(info.value)
    assert isinstance(info.value, ValueError)


def test_mirror_and_opposing_labels_keep_reserved_values_and_shape() -> None:
    labels = np.array([[11, 0, -1], [46, 27, 55]], dtype=np.int32)
    mirrored = mirror_labels(labels)
    assert mirrored.dtype == np.int16
    np.testing.assert_array_equal(mirrored, [[21, 0, -1], [36, 17, 65]])
    np.testing.assert_array_equal(opposing_labels(labels), [[41, 0, -1], [16, 37, 85]])
    np.testing.assert_array_equal(mirror_labels(np.array([], dtype=np.uint8)), np.array([], np.int16))


@given(label_arrays)
def test_mirror_labels_matches_tooth_model(labels: np.ndarray) -> None:
    mirrored = mirror_labels(labels)
    expected = [c if c in (0, -1) else tooth(int(c)).mirror().fdi for c in labels]
    np.testing.assert_array_equal(mirrored, np.array(expected, dtype=np.int16).reshape(labels.shape))
    np.testing.assert_array_equal(mirror_labels(mirrored), labels)
    np.testing.assert_array_equal(opposing_labels(opposing_labels(labels)), labels)


@pytest.mark.parametrize(
    ("labels", "fragment"),
    [
        ([11, 19, 0], "mirror_labels: 1 label(s) are not FDI codes: 19; expected 11–18"),
        ([99, 99, 120, -2], "mirror_labels: 4 label(s) are not FDI codes: -2, 99, 120;"),
        ([11.5], "mirror_labels: labels must be integer codes, got dtype float64"),
    ],
)
def test_mirror_labels_rejects_unknown_codes(labels: list[float], fragment: str) -> None:
    with pytest.raises(LabelSchemeError, match=r"Convert|cast") as info:
        mirror_labels(np.array(labels))
    assert fragment in str(info.value)


def test_opposing_labels_names_its_own_path() -> None:
    with pytest.raises(LabelSchemeError, match=r"^opposing_labels: 1 label\(s\) are not FDI codes: 10;"):
        opposing_labels([10])


def test_integral_float_labels_are_accepted() -> None:
    np.testing.assert_array_equal(mirror_labels(np.array([11.0, 0.0, -1.0])), [21, 0, -1])


def test_check_labels_reports_codes_present() -> None:
    report = check_labels(np.array([0, 0, 11, 46, 11, -1], dtype=np.int16))
    assert report.permanent == (11, 46)
    assert report.deciduous == ()
    assert report.has_gingiva
    assert report.has_unknown
    assert report.counts == {-1: 1, 0: 2, 11: 2, 46: 1}
    assert report.teeth == (11, 46)
    assert not check_labels([21]).has_gingiva


def test_check_labels_reports_deciduous_without_mapping() -> None:
    report = check_labels([0, 55, 16, 85], allow_deciduous=True)
    assert report.deciduous == (55, 85)
    assert report.permanent == (16,)
    assert report.teeth == (16, 55, 85)


@pytest.mark.parametrize(
    ("labels", "fragments", "absent"),
    [
        ([0, 11, 19, 99], ["scan.ply: 2 code(s) are not FDI teeth: 19, 99"], "teeth found"),
        ([0, 11, 55, 61], ["scan.ply: deciduous (primary) teeth found: FDI 55, 61"], "not FDI teeth"),
        ([19, 55], ["not FDI teeth: 19 (expected", "; deciduous (primary) teeth found: FDI 55"], None),
    ],
)
def test_check_labels_errors(labels: list[int], fragments: list[str], absent: str | None) -> None:
    with pytest.raises(LabelSchemeError) as info:
        check_labels(labels, what="scan.ply")
    for fragment in fragments:
        assert fragment in str(info.value)
    if absent is not None:
        assert absent not in str(info.value)


def test_check_labels_still_rejects_unknown_codes_when_deciduous_allowed() -> None:
    with pytest.raises(LabelSchemeError, match="2 code\\(s\\) are not FDI teeth: 56, 90"):
        check_labels([56, 90, 55], allow_deciduous=True)


def test_format_codes_truncates() -> None:
    assert format_codes([3, 1, 2, 1]) == "1, 2, 3"
    assert format_codes(range(12), limit=3) == "0, 1, 2 … (12 distinct codes)"
