"""PairConfig lives in pair.config (the pair package hands out the same class); register does not re-export it."""

from __future__ import annotations

import pytest

from toothmcl_data.errors import ConfigError
from toothmcl_data.pair import PairConfig as FromPackage
from toothmcl_data.pair.config import PairConfig


def test_one_class_under_every_import_path() -> None:
    import toothmcl_data.register
    import toothmcl_data.register.config

    assert PairConfig is FromPackage
    assert not hasattr(toothmcl_data.register.config, "PairConfig")  # no shim left in register
    assert not hasattr(toothmcl_data.register, "PairConfig")


def test_pair_config_dict_round_trip_and_checks() -> None:
    config = PairConfig(fov_tolerance_mm=0.0, points=256)
    assert PairConfig.from_dict(config.to_dict()) == config
    assert config.to_dict()["crop_mm"] == [16.0, 16.0, 32.0]
    with pytest.raises(ConfigError, match=r"PairConfig.fov_tolerance_mm must be ≥ 0 mm, got -0.1"):
        PairConfig(fov_tolerance_mm=-0.1)
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['point'\]; known keys: \[.*\] \(PairConfig\)"):
        PairConfig.from_dict({"point": 3})
