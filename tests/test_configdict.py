"""Dict round-trip helpers for frozen dataclass configs (configdict): unknown keys named, lists to tuples."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from toothmcl_data.configdict import config_from_dict, require_positive
from toothmcl_data.errors import ConfigError


@dataclass(frozen=True)
class _Demo:
    size: tuple[float, float] = (1.0, 2.0)
    count: int = 3


def test_config_from_dict_makes_tuples_and_refuses_unknown_keys() -> None:
    assert config_from_dict(_Demo, {"size": [4.0, 5.0]}) == _Demo(size=(4.0, 5.0))
    with pytest.raises(ConfigError, match=r"unknown _Demo keys \['sise'\]; known: \['count', 'size'\]"):
        config_from_dict(_Demo, {"sise": [1.0, 1.0]})


def test_require_positive_names_class_field_and_value() -> None:
    require_positive(_Demo(), "count")
    with pytest.raises(ConfigError, match=r"_Demo.count must be > 0, got 0"):
        require_positive(_Demo(count=0), "count")
