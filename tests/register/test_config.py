"""Registration and pairing configs: validated on construction, dict round-trip, messages pinned."""

from __future__ import annotations

from typing import Any

import pytest

from toothmcl_data.errors import ConfigError
from toothmcl_data.pair.config import PairConfig
from toothmcl_data.register.config import RegisterConfig


def test_register_config_round_trips() -> None:
    config = RegisterConfig(ios_points=500, pass_rms_mm=0.2)
    assert RegisterConfig.from_dict(config.to_dict()) == config
    assert config.to_dict()["ios_points"] == 500


def test_pair_config_round_trips_and_fixes_array_sizes() -> None:
    config = PairConfig(crop_mm=(9.0, 9.0, 12.0), spacing_mm=0.5, points=64)
    assert PairConfig.from_dict(config.to_dict()) == config
    assert config.crop_shape == (18, 18, 24)
    assert PairConfig().crop_shape == (53, 53, 107)


@pytest.mark.parametrize(
    ("cls", "kwargs", "message"),
    [
        (RegisterConfig, {"ios_points": 0}, "RegisterConfig.ios_points must be > 0, got 0"),
        (RegisterConfig, {"icp_final_mm": 5.0}, "icp_final_mm (5.0) must be ≤ icp_start_mm (4.0)"),
        (RegisterConfig, {"normal_agreement": 1.0}, "normal_agreement must be in [0, 1), got 1.0"),
        (RegisterConfig, {"review_rms_mm": 0.1}, "review_rms_mm (0.1) must be at least as lenient as pass_rms_mm"),
        (RegisterConfig, {"review_coverage": 0.9}, "review_coverage (0.9) must be at least as lenient"),
        (PairConfig, {"crop_mm": (1.0, 2.0)}, "crop_mm must be three sizes > 0 mm, got (1.0, 2.0)"),
        (PairConfig, {"spacing_mm": -0.3}, "PairConfig.spacing_mm must be > 0, got -0.3"),
        (PairConfig, {"min_agreement": 0.0}, "min_agreement must be in (0, 1], got 0.0"),
    ],
)
def test_config_errors_name_the_field(cls: type, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        cls(**kwargs)
    assert message in str(info.value)


def test_unknown_keys_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['bogus'\]; known keys: \[.*\] \(RegisterConfig\)"):
        RegisterConfig.from_dict({"bogus": 1})
