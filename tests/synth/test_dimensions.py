"""The tooth-dimension tables the synthetic anatomy draws from: complete (every jaw, every position), positive,
and anatomically ordered where dental anatomy is unambiguous (means of the standard tables, e.g. Wheeler's)."""

from __future__ import annotations

import pytest

from toothmcl_data.synth import dimensions as dims

PERMANENT = (dims.WIDTH, dims.DEPTH, dims.HEIGHT, dims.ROOT, dims.ROOTS)
PRIMARY = (dims.D_WIDTH, dims.D_DEPTH, dims.D_HEIGHT, dims.D_ROOT, dims.D_ROOTS)


@pytest.mark.parametrize(("tables", "positions"), [(PERMANENT, 8), (PRIMARY, 5)])
def test_every_jaw_and_position_has_a_positive_size(
    tables: tuple[dict[str, tuple[float, ...]], ...], positions: int
) -> None:
    for table in tables:
        assert set(table) == {"upper", "lower"}
        for row in table.values():
            assert len(row) == positions
            assert min(row) > 0
    assert len(dims.LEAN) == 8
    assert len(dims.D_LEAN) == 5


def test_sizes_follow_dental_anatomy() -> None:
    upper, lower = dims.WIDTH["upper"], dims.WIDTH["lower"]
    assert upper[0] > upper[1]  # the upper central incisor is wider than the lateral
    assert lower[0] < lower[1]  # the lower central incisor is the narrowest tooth
    for jaw in ("upper", "lower"):
        width, root = dims.WIDTH[jaw], dims.ROOT[jaw]
        assert max(width) == width[5]  # the first molar is the widest
        assert width[5] > width[6] > width[7]  # molars shrink backwards
        assert max(root) == root[2]  # the canine has the longest root
        assert dims.ROOTS[jaw][:3] == (1, 1, 1)  # incisors and canines: one root
    assert dims.ROOTS["upper"][5:] == (3, 3, 3)  # upper molars: three roots
    assert dims.ROOTS["lower"][5:] == (2, 2, 2)  # lower molars: two
    for jaw in ("upper", "lower"):  # a primary tooth is smaller than its successor at the same position
        assert all(d < p for d, p in zip(dims.D_HEIGHT[jaw], dims.HEIGHT[jaw][:5], strict=True))
        assert all(d < p for d, p in zip(dims.D_ROOT[jaw], dims.ROOT[jaw][:5], strict=True))


def test_slots_per_dentition_stage() -> None:
    assert [p for p, primary in dims.SLOTS["permanent"] if not primary] == list(range(1, 9))
    assert [p for p, primary in dims.SLOTS["primary"] if primary] == list(range(1, 6))
    mixed = dims.SLOTS["mixed"]
    assert [p for p, _ in mixed] == list(range(1, 7))  # incisors, primary canine and molars, first permanent molar
    assert [primary for _, primary in mixed] == [False, False, True, True, True, False]
