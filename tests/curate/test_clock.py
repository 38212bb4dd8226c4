"""The stage clock: every stage present from the start, wall and thread-CPU time added per stage, also when the
timed block raises; seconds measured elsewhere split their CPU time as their wall time splits."""

from __future__ import annotations

import time

import pytest

from toothmcl_data.curate.clock import STAGES, StageClock


def _sleep_then_raise() -> None:
    time.sleep(0.02)
    raise ValueError("boom")


def test_a_stage_adds_its_wall_and_cpu_time_and_leaves_the_others_at_zero() -> None:
    clock = StageClock()
    assert clock.seconds == dict.fromkeys(STAGES, 0.0)
    assert clock.cpu_seconds == dict.fromkeys(STAGES, 0.0)
    with clock.stage("register"):
        end = time.thread_time() + 0.05
        while time.thread_time() < end:  # busy: CPU time of this thread
            pass
    with pytest.raises(ValueError, match="boom"), clock.stage("register"):  # a raising block still counts
        _sleep_then_raise()
    assert clock.seconds["register"] >= 0.07
    assert 0.05 <= clock.cpu_seconds["register"] <= clock.seconds["register"] + 0.01
    assert all(clock.seconds[s] == 0.0 for s in STAGES if s != "register")


def test_cpu_time_measured_elsewhere_is_split_as_the_wall_splits() -> None:
    clock = StageClock()
    clock.add({"ingest": 3.0, "deid": 1.0}, cpu=2.0)
    assert clock.seconds["ingest"] == 3.0
    assert clock.seconds["deid"] == 1.0
    assert clock.cpu_seconds["ingest"] == pytest.approx(1.5)
    assert clock.cpu_seconds["deid"] == pytest.approx(0.5)
    clock.add({"ingest": 0.0, "deid": 0.0}, cpu=0.4)  # no wall measured: all to the first stage
    assert clock.cpu_seconds["ingest"] == pytest.approx(1.9)
    assert clock.cpu_seconds["deid"] == pytest.approx(0.5)
