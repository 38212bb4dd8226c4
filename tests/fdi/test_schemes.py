"""The label-scheme registry (catalogs/labelmaps/*.yaml): conversions, errors, colour tables, bad files."""

from __future__ import annotations

import colorsys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from toothmcl_data.errors import LabelSchemeError
from toothmcl_data.fdi import (
    DECIDUOUS_FDI,
    PERMANENT_FDI,
    from_fdi,
    load_color_table,
    load_scheme,
    scheme_names,
    to_fdi,
    tooth,
)
from toothmcl_data.fdi.colors import ColorTable
from toothmcl_data.types import Jaw

SCHEMES = ["fdi", "fdi_classes", "perjaw17", "teeth3ds", "toothfairy2", "universal"]
CASES: list[tuple[str, Jaw | None]] = [("perjaw17", "upper"), ("perjaw17", "lower")]
CASES += [(n, None) for n in SCHEMES if n != "perjaw17"]


def test_registry_lists_every_scheme_file() -> None:
    assert scheme_names() == SCHEMES  # fdi_colors is a colour table, not a scheme
    assert load_scheme("universal") is load_scheme("universal")  # cached


def _fdi_codes(name: str, jaw: Jaw | None) -> list[int]:
    scheme = load_scheme(name)
    return sorted(scheme.to_fdi_map[jaw].values())


@pytest.mark.parametrize(("name", "jaw"), CASES)
@given(data=st.data())
def test_round_trip_fdi_to_scheme_and_back(name: str, jaw: Jaw | None, data: st.DataObject) -> None:
    codes = [-1, *_fdi_codes(name, jaw)]
    shapes = hnp.array_shapes(max_dims=3, max_side=6)
    fdi = data.draw(hnp.arrays(np.int16, shapes, elements=st.sampled_from(codes)))
    scheme_codes = from_fdi(fdi, name, jaw, allow_deciduous=True)
    assert scheme_codes.dtype == np.int16
    assert scheme_codes.shape == fdi.shape
    np.testing.assert_array_equal(to_fdi(scheme_codes, name, jaw, allow_deciduous=True), fdi)


@pytest.mark.parametrize(("name", "jaw"), CASES)
@given(data=st.data())
def test_round_trip_scheme_to_fdi_and_back(name: str, jaw: Jaw | None, data: st.DataObject) -> None:
    scheme = load_scheme(name)
    codes = [-1, *scheme.to_fdi_map[jaw]]
    raw = data.draw(hnp.arrays(np.uint16, st.integers(0, 50), elements=st.sampled_from(codes[1:])))
    raw = raw.astype(np.int32)
    raw[: len(raw) // 3] = -1
    back = scheme.from_fdi(scheme.to_fdi(raw, jaw, allow_deciduous=True), jaw, allow_deciduous=True)
    np.testing.assert_array_equal(back, raw)


@pytest.mark.parametrize("name", SCHEMES)
def test_unknown_passes_through_every_converter(name: str) -> None:
    jaw = "lower" if name == "perjaw17" else None
    np.testing.assert_array_equal(to_fdi([-1, -1], name, jaw), [-1, -1])  # type: ignore[arg-type]
    np.testing.assert_array_equal(from_fdi([-1, 0], name, jaw), [-1, 0])  # type: ignore[arg-type]


def test_universal_numbers() -> None:
    pins = {1: 18, 2: 17, 8: 11, 9: 21, 16: 28, 17: 38, 24: 31, 25: 41, 32: 48, 0: 0}
    np.testing.assert_array_equal(to_fdi(list(pins), "universal"), list(pins.values()))
    fdi = to_fdi(np.arange(1, 33), "universal")
    where = [(tooth(int(f)).jaw, tooth(int(f)).side) for f in fdi]
    assert set(where[0:8]) == {("upper", "right")}
    assert set(where[8:16]) == {("upper", "left")}
    assert set(where[16:24]) == {("lower", "left")}
    assert set(where[24:32]) == {("lower", "right")}
    assert sorted(fdi.tolist()) == list(PERMANENT_FDI)


@pytest.mark.parametrize(("jaw", "first_quadrant", "second_quadrant"), [("upper", 1, 2), ("lower", 3, 4)])
def test_perjaw17_quadrants_and_positions(jaw: str, first_quadrant: int, second_quadrant: int) -> None:
    classes = np.arange(1, 17)
    fdi = to_fdi(classes, "perjaw17", jaw)  # type: ignore[arg-type]
    np.testing.assert_array_equal(fdi // 10, [first_quadrant] * 8 + [second_quadrant] * 8)
    np.testing.assert_array_equal(fdi % 10, (classes - 1) % 8 + 1)
    assert {tooth(int(f)).jaw for f in fdi} == {jaw}
    assert to_fdi([0], "perjaw17", jaw).tolist() == [0]  # type: ignore[arg-type]


@pytest.mark.parametrize("convert", [to_fdi, from_fdi])
def test_per_jaw_scheme_requires_jaw(convert: object) -> None:
    with pytest.raises(LabelSchemeError) as info:
        convert([0, 1], "perjaw17")  # type: ignore[operator]
    message = str(info.value)
    assert "label scheme 'perjaw17' numbers each jaw separately" in message
    assert "code 1 is FDI 11 in the upper jaw, FDI 31 in the lower" in message
    assert 'pass jaw="upper" or jaw="lower"' in message


def test_bad_jaw_value() -> None:
    with pytest.raises(LabelSchemeError, match="jaw must be 'upper', 'lower' or None, got 'top'"):
        to_fdi([1], "perjaw17", "top")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "jaw", "codes", "fragments"),
    [
        (
            "universal",
            None,
            [1, 33],
            [
                "labels: 1 value(s) are not codes of label scheme 'universal': 33.",
                "Valid codes: 0–32 (-1 = unknown passes through)",
            ],
        ),
        (
            "fdi",
            None,
            [19, 19, 0],
            [
                "2 value(s) are not codes of label scheme 'fdi': 19.",
                "Valid codes: 0, 11–18, 21–28, 31–38, 41–48, 51–55, 61–65, 71–75, 81–85",
            ],
        ),
        (
            "teeth3ds",
            None,
            [1, 2, 3],
            [
                "not codes of label scheme 'teeth3ds': 1, 2, 3.",
                "pass scheme='fdi_classes' or scheme='perjaw17' or scheme='toothfairy2' or scheme='universal'",
            ],
        ),
        (
            "toothfairy2",
            None,
            [49, 200],
            [
                "not codes of label scheme 'toothfairy2': 49, 200.",
                "Valid codes: 0–48, 103–105, 111–118",
                "Check which numbering",
            ],
        ),
        ("perjaw17", "upper", [17], ["label scheme 'perjaw17' (jaw='upper'): 17.", "Valid codes: 0–16"]),
        ("universal", None, list(range(100, 120)), ["100, 101, 102, 103, 104, 105, 106, 107 … (20 distinct"]),
        ("universal", None, [-2], ["not codes of label scheme 'universal': -2."]),
    ],
)
def test_to_fdi_unknown_codes(name: str, jaw: Jaw | None, codes: list[int], fragments: list[str]) -> None:
    with pytest.raises(LabelSchemeError) as info:
        to_fdi(codes, name, jaw)
    for fragment in fragments:
        assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("name", "jaw", "fdi", "allow", "fragments"),
    [
        ("fdi", None, [0, 19], False, ["1 value(s) are not FDI codes: 19; expected 11–18"]),
        ("universal", None, [55], False, ["to scheme 'universal'): deciduous (primary) teeth found: FDI 55"]),
        (
            "universal",
            None,
            [11, 55, 62],
            True,
            ["label scheme 'universal' has no code for FDI 55, 62", "writes primary teeth as letters A-T"],
        ),
        (
            "perjaw17",
            "upper",
            [31, 11],
            False,
            [
                "label scheme 'perjaw17' with jaw='upper' has no code for FDI 31;",
                "it encodes FDI 11–18, 21–28 and 0.",
                "split the labels by jaw first",
            ],
        ),
        ("perjaw17", "lower", [84], True, ["has no code for FDI 84", "cover permanent teeth only"]),
    ],
)
def test_from_fdi_errors(name: str, jaw: Jaw | None, fdi: list[int], allow: bool, fragments: list[str]) -> None:
    with pytest.raises(LabelSchemeError) as info:
        from_fdi(fdi, name, jaw, allow_deciduous=allow, what="case-7 upper.ply")
    assert str(info.value).startswith("case-7 upper.ply")
    for fragment in fragments:
        assert fragment in str(info.value)


@pytest.mark.parametrize("name", ["fdi", "teeth3ds"])
def test_deciduous_reported_not_mapped(name: str) -> None:
    with pytest.raises(LabelSchemeError, match=r"deciduous \(primary\) teeth found: FDI 55, 63 — .* never"):
        to_fdi([0, 55, 11, 63], name)
    kept = to_fdi([0, 55, 11, 63], name, allow_deciduous=True)
    np.testing.assert_array_equal(kept, [0, 55, 11, 63])
    assert set(kept.tolist()).isdisjoint({15, 13})


def test_every_deciduous_code_is_recognised_by_fdi_scheme() -> None:
    np.testing.assert_array_equal(to_fdi(DECIDUOUS_FDI, "fdi", allow_deciduous=True), DECIDUOUS_FDI)


def test_toothfairy2_anatomy_and_pulp() -> None:
    tf = load_scheme("toothfairy2")
    assert tf.anatomy[1] == "Lower Jawbone"
    assert tf.anatomy[2] == "Upper Jawbone"
    assert tf.anatomy[3] == "Left Inferior Alveolar Canal"
    assert tf.anatomy[10] == "Implant"
    assert tf.anatomy[105] == "Lingual Canal"
    assert tf.anatomy_code("lower jawbone") == 1
    codes = np.array([[0, 1, 7], [103, 11, 111], [148, 48, 19]], dtype=np.uint8)
    np.testing.assert_array_equal(tf.to_fdi(codes), [[0, 0, 0], [0, 11, 11], [48, 48, 0]])
    np.testing.assert_array_equal(tf.from_fdi([11, 48, 0]), [11, 48, 0])  # pulp codes are one way
    with pytest.raises(LabelSchemeError, match="no anatomy named 'Tongue'; known: Lower Jawbone, Upper"):
        tf.anatomy_code("Tongue")


def test_input_types() -> None:
    assert to_fdi(np.array(9, dtype=np.uint8), "universal").tolist() == 21
    np.testing.assert_array_equal(to_fdi(np.array([1.0, 32.0]), "universal"), [18, 48])
    with pytest.raises(LabelSchemeError, match="labels must be integer codes, got dtype float64"):
        to_fdi([1.5], "universal")
    volume = np.zeros((4, 5, 6), dtype=np.uint8)
    volume[1, 2, 3] = 46
    out = to_fdi(volume, "toothfairy2")
    assert out.shape == (4, 5, 6)
    assert out.dtype == np.int16
    assert out[1, 2, 3] == 46


def test_unknown_scheme_name() -> None:
    with pytest.raises(LabelSchemeError, match=r"unknown label scheme 'palmer'.*known schemes: fdi, fdi_classes, perj"):
        load_scheme("palmer")
    with pytest.raises(LabelSchemeError, match="kind is 'color_table', expected 'label_scheme'"):
        load_scheme("fdi_colors")


# --- colour table -------------------------------------------------------------------------------------------


def test_color_table_covers_fdi_and_round_trips() -> None:
    table = load_color_table()
    assert set(table.colors) == {-1, 0, *PERMANENT_FDI}
    labels = np.array([-1, 0, *PERMANENT_FDI], dtype=np.int16)
    rgb = table.colors_for(labels)
    assert rgb.shape == (34, 3)
    assert rgb.dtype == np.uint8
    assert len({tuple(c) for c in rgb.tolist()}) == 34
    np.testing.assert_array_equal(table.labels_from_colors(rgb), labels)
    rgba = np.concatenate([rgb, np.full((34, 1), 255, np.uint8)], axis=1)
    np.testing.assert_array_equal(table.labels_from_colors(rgba), labels)
    assert table.colors_for(np.zeros((2, 3), np.int16)).shape == (2, 3, 3)


def test_mirror_teeth_share_a_hue() -> None:
    table = load_color_table()
    for code in PERMANENT_FDI:
        h1 = colorsys.rgb_to_hsv(*(v / 255 for v in table.colors[code]))[0]
        h2 = colorsys.rgb_to_hsv(*(v / 255 for v in table.colors[tooth(code).mirror().fdi]))[0]
        assert min(abs(h1 - h2), 1 - abs(h1 - h2)) < 0.01, code


@given(st.sampled_from(PERMANENT_FDI), st.integers(-6, 6), st.integers(-6, 6), st.integers(-6, 6))
def test_nearest_colour_within_tolerance(code: int, dr: int, dg: int, db: int) -> None:
    table = load_color_table()
    noisy = np.clip(np.add(table.colors[code], (dr, dg, db)), 0, 255).astype(np.uint8)[None]
    assert table.labels_from_colors(noisy).tolist() == [code]  # |(6, 6, 6)| ≈ 10.4 < tolerance 12


def test_colour_beyond_tolerance_raises() -> None:
    table = load_color_table()
    far = np.array([table.colors[11]] * 3 + [[0, 0, 0]], dtype=np.int64)
    far[:3, 2] += 30
    with pytest.raises(LabelSchemeError) as info:
        table.labels_from_colors(far.astype(np.uint8), what="scan.ply vertex colours")
    message = str(info.value)
    assert message.startswith("scan.ply vertex colours: 4 colour(s) match no label of colour table")
    assert "tolerance 12: (0, 0, 0) nearest FDI -1 at 121.2, (242, 53, 83) nearest FDI 11 at 30.0" in message
    assert table.labels_from_colors(far[:3].astype(np.uint8), tol=31).tolist() == [11, 11, 11]


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (lambda t: t.colors_for([11, 55]), "no colour for code(s) 55"),
        (lambda t: t.labels_from_colors(np.ones((2, 3)) / 2), "expected (n, 3) or (n, 4) integer colours"),
        (lambda t: t.labels_from_colors(np.array([[300, 0, 0]])), "colour values must be 0–255, got 0–300"),
    ],
)
def test_color_table_errors(call: object, fragment: str) -> None:
    with pytest.raises(LabelSchemeError) as info:
        call(load_color_table())  # type: ignore[operator]
    assert fragment in str(info.value)


def test_empty_colour_input() -> None:
    assert load_color_table().labels_from_colors(np.zeros((0, 3), np.uint8)).shape == (0,)


# --- catalog files ------------------------------------------------------------------------------------------

GOOD = """name: bad
kind: label_scheme
description: test
source: test
to_fdi:
  0: 0
  1: 11
"""

BAD_FILES = [
    ("name: bad\nkind: label_scheme\ndescription: x\n", "missing key(s) source, to_fdi"),
    (GOOD + "  2: 11\n", "to_fdi: codes 1 and 2 both map to FDI 11; targets must be unique"),
    (GOOD + "  two: 12\n", "to_fdi: 'two' is not an integer"),
    (GOOD + "  2: 1.5\n", "to_fdi.2: 1.5 is not an integer"),
    (GOOD + "  1: 12\n", "duplicate key 1"),
    (GOOD + "  2: 19\n", "to_fdi: code 2 → 19 is not FDI 0 or a tooth"),
    (GOOD.replace("  0: 0\n", ""), "no code maps to FDI 0 (gingiva/background)"),
    (GOOD + "anatomy:\n  1: Jaw\n", "codes 1 are both in to_fdi and in anatomy/merged"),
    (GOOD + "merged:\n  5: [19, pulp]\n", "merged code 5 → 19 is not an FDI tooth"),
    (GOOD + "merged:\n  5: 11\n", "merged.5 must be [FDI tooth, name]"),
    (GOOD.replace("name: bad", "name: other"), "name 'other' must equal the file name 'bad'"),
    (GOOD + "per_jaw: true\n", "per_jaw scheme needs to_fdi with exactly `upper:` and `lower:`"),
    (GOOD + "per_jaw: maybe\n", "per_jaw must be true or false, got 'maybe'"),
    (GOOD + "  70000: 12\n", "code 70000 is outside 0–32767"),
    ("name: bad\n  kind: [\n", "cannot read label-map YAML"),
    ("- just\n- a list\n", "expected a YAML mapping"),
    (
        "name: bad\nkind: label_scheme\ndescription: x\nsource: x\nper_jaw: true\n"
        "to_fdi:\n  upper: {0: 0, 1: 31}\n  lower: {0: 0}\n",
        "to_fdi.upper: code 1 → FDI 31 is not an upper tooth",
    ),
]


@pytest.mark.parametrize(("text", "fragment"), BAD_FILES)
def test_malformed_scheme_file_names_the_file(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(LabelSchemeError) as info:
        load_scheme("bad", tmp_path)
    assert str(path.resolve()) in str(info.value)
    assert fragment in str(info.value)


def test_scheme_from_another_directory(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(GOOD + "anatomy:\n  7: Tongue\n", encoding="utf-8")
    assert scheme_names(tmp_path) == ["bad"]
    scheme = load_scheme("bad", tmp_path)
    np.testing.assert_array_equal(to_fdi([1, 0, 7, -1], scheme), [11, 0, 0, -1])
    with pytest.raises(LabelSchemeError, match="Check which numbering the source uses"):
        scheme.to_fdi([2])  # no other scheme in tmp_path to suggest


COLOURS = "name: bad\nkind: color_table\ndescription: x\nsource: x\n"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("tolerance: 5\ncolors:\n  0: [0, 0, 0]\n  11: [0, 0, 0]\n", "FDI 0 and 11 have the same colour"),
        ("tolerance: 30\ncolors:\n  0: [0, 0, 0]\n  11: [40, 0, 0]\n", "tolerance 30.0 must be ≥ 0 and"),
        ("tolerance: 5\ncolors:\n  19: [0, 0, 0]\n", "colour key 19 is not an FDI code, 0 or -1"),
        ("tolerance: 5\ncolors:\n  11: [0, 0, 256]\n", "colour of 11 must be [r, g, b] integers 0–255"),
        ("tolerance: 5\ncolors:\n  11: [0, 0]\n", "colors.11: expected integer FDI key → [r, g, b]"),
        ("colors: {}\n", "missing key(s) tolerance"),
    ],
)
def test_malformed_colour_table_names_the_file(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(COLOURS + text, encoding="utf-8")
    with pytest.raises(LabelSchemeError) as info:
        load_color_table("bad", tmp_path)
    assert str(path.resolve()) in str(info.value)
    assert fragment in str(info.value)


def test_colour_table_built_in_code() -> None:
    table = ColorTable("mini", "two colours", {0: (0, 0, 0), 11: (200, 0, 0)}, tolerance=20.0)
    assert table.labels_from_colors(np.array([[190, 5, 5], [3, 3, 3]], np.uint8)).tolist() == [11, 0]
