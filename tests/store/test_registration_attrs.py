"""A failed registration's undefined residuals (NaN) survive the store's JSON attributes as null."""

from __future__ import annotations

import json
import math

import numpy as np

from toothmcl_data.store.records import registration_dict, registration_from_dict
from toothmcl_data.types import Registration


def test_nan_residuals_round_trip_through_strict_json() -> None:
    reg = Registration("lower", np.eye(4), float("nan"), float("inf"), 0.0, {11: float("nan"), 12: 0.1}, "fail")
    text = json.dumps(registration_dict(reg), allow_nan=False)  # what Icechunk's JSON parser accepts
    back = registration_from_dict(json.loads(text))
    assert math.isnan(back.rms_mm)
    assert math.isnan(back.p95_mm)
    assert math.isnan(back.per_tooth_mm[11])
    assert back.per_tooth_mm[12] == 0.1
    assert back.verdict == "fail"
