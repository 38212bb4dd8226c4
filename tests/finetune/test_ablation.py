"""The pretraining ablation: its CI maths, its guards, and a tiny end-to-end run in which pretrained and scratch
fine-tuning see the identical samples in the identical order and pretraining never sees a downstream patient."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from toothmcl_data.errors import ConfigError
from toothmcl_data.store import open_version
from toothmcl_models.ablation import CPU, estimate_minutes, format_report, run_ablation, seen_order
from toothmcl_models.ablation_stats import bootstrap_ci, paired_differences


def test_bootstrap_ci_of_a_constant_is_that_constant_and_nans_are_dropped() -> None:
    assert bootstrap_ci([0.25, 0.25, float("nan"), 0.25]) == (0.25, 0.25, 0.25)
    assert all(math.isnan(v) for v in bootstrap_ci([]))


def test_bootstrap_ci_matches_the_normal_approximation() -> None:
    values = np.random.default_rng(3).normal(0.1, 0.05, size=60)
    mean, low, high = bootstrap_ci(values.tolist(), n=20_000, seed=1)
    assert mean == pytest.approx(values.mean())
    half = 1.96 * values.std(ddof=1) / math.sqrt(values.size)  # ≈ 0.0127
    assert low == pytest.approx(mean - half, abs=0.2 * half)
    assert high == pytest.approx(mean + half, abs=0.2 * half)
    assert bootstrap_ci(values.tolist(), n=20_000, level=0.5, seed=1)[2] < high  # narrower at a lower level


def test_paired_differences_match_seed_and_unit() -> None:
    rows = [
        {"task": "cbct", "k": 1, "seed": s, "unit": u, "init": i, "tooth_dice": v}
        for s, u, i, v in [
            (1, "T000", "pretrained", 0.5),
            (1, "T000", "scratch", 0.2),
            (2, "T000", "scratch", 0.4),
            (2, "T000", "pretrained", 0.3),
            (1, "T001", "pretrained", 0.9),  # no scratch partner: left out
        ]
    ] + [{"task": "ios", "k": 1, "seed": 1, "unit": "T000", "init": "scratch", "tooth_dice": 0.0}]
    assert paired_differences(rows, "cbct", 1, "tooth_dice") == pytest.approx([0.3, -0.1])


def test_pretraining_cohort_must_be_four_times_the_largest_k() -> None:
    with pytest.raises(ConfigError, match=r"≥ 4 × max\(k\) = 32"):
        replace(CPU, ks=(1, 8), pretrain_patients=31)


def test_tiny_ablation_runs_with_identical_data_order_and_disjoint_cohorts(tmp_path: Path) -> None:
    config = replace(
        CPU,
        ks=(1,),
        pretrain_patients=4,
        test_patients=1,
        seeds=(1,),
        curated=False,
        synth_spacing_mm=1.2,
        ios_resolution_mm=1.0,
        pretrain_steps=2,
        cbct_steps=3,
        ios_steps=3,
        threads=1,
        bootstrap=200,
        overrides={"crop_shape": (64, 32, 32), "spacing_mm": 1.2, "points": 512},  # the native grid: cheap scoring
    )
    report = run_ablation(config, tmp_path)
    runs = tmp_path / "runs"
    for task in ("cbct", "ios"):
        pretrained, scratch = (seen_order(runs / f"{task}-k1-seed1-{init}") for init in ("pretrained", "scratch"))
        assert pretrained == scratch
        assert len(pretrained) == 3 * (1 if task == "cbct" else 2)  # steps × batch
        assert {case for *_, case in pretrained} == {"L000"}
    pretraining_cases = set(open_version(tmp_path / "pretrain-store").table("cases").column("pseudonym").to_pylist())
    assert len(pretraining_cases) == report["pretrain_cases"] == 4
    assert not pretraining_cases & {"L000", "T000"}
    units = {(r["task"], r["init"], r["unit"]) for r in report["rows"]}
    assert units == {(t, i, u) for i in ("pretrained", "scratch") for t, u in
                     [("cbct", "T000"), ("ios", "T000:upper"), ("ios", "T000:lower")]}  # fmt: skip
    for task, metric in (("cbct", "tooth_dice"), ("ios", "miou")):
        entry = report["summary"][task]["per_k"]["1"]
        assert entry["difference"]["units"] == (1 if task == "cbct" else 2)
        diff = entry["pretrained"]["mean"] - entry["scratch"]["mean"]
        assert entry["difference"]["mean"] == pytest.approx(diff, abs=1e-9) or math.isnan(diff)
        assert metric in report["rows"][0] or metric in report["rows"][-1]
    assert (tmp_path / "ablation.png").stat().st_size > 10_000
    assert "| 1 |" in format_report(report)
    assert estimate_minutes(config, report["measured"], "_cpu_s") > 0
    assert estimate_minutes(replace(config, ios_steps=6), report["measured"]) > estimate_minutes(
        config, report["measured"]
    )


def test_cohort_seed_streams_are_disjoint_and_labelled_pools_nest() -> None:
    from toothmcl_data.cohorts import cohort_names, cohort_seeds

    assert cohort_seeds(0, "labelled", 8)[:4] == cohort_seeds(0, "labelled", 4)
    pretraining = {tuple(s) for s in cohort_seeds(0, "pretrain", 32)}
    assert not pretraining & {tuple(s) for s in cohort_seeds(0, "labelled", 8) + cohort_seeds(0, "test", 3)}
    assert cohort_names("test", 2) == ["T000", "T001"]
    with pytest.raises(ConfigError, match="unknown cohort role"):
        cohort_seeds(0, "validation", 1)


def test_the_yaml_is_the_only_source_of_the_sizes(tmp_path: Path) -> None:
    import dataclasses

    from toothmcl_models.ablation import AblationConfig, load_config

    assert all(
        f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        for f in dataclasses.fields(AblationConfig)
    )
    assert (CPU.ks, CPU.seeds, CPU.pretrain_patients, CPU.cbct_steps, CPU.ios_steps) == ((1, 2, 4, 8), (1, 2, 3), 32,
                                                                                          200, 300)  # fmt: skip
    partial = tmp_path / "mine.yaml"
    partial.write_text("ks: [1]\npretrain_patients: 4\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"^{partial}: test_patients: Field required"):
        load_config(partial)


def test_set_is_the_one_way_to_change_the_sizes_on_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from toothmcl_models import ablation

    seen: list[tuple[object, Path]] = []

    def fake(config: object, out: Path) -> dict[str, object]:
        seen.append((config, out))
        return {"config": {}}

    monkeypatch.setattr(ablation, "run_ablation", fake)
    argv = ["--set", "ks=[1, 2]", "--set", "seeds=[4]", "--set", "curated=false", "--set", "cbct_steps=20"]
    ablation.main([*argv, "--set", "pretrain_patients=8", "--out", str(tmp_path), "--json"])
    config, out = seen[0]
    assert config == replace(CPU, ks=(1, 2), seeds=(4,), curated=False, cbct_steps=20, pretrain_patients=8)
    assert out == tmp_path
    with pytest.raises(ConfigError, match=r"≥ 4 × max\(k\) = 32 .*--set pretrain_patients=N"):
        ablation.main(["--set", "ks=[8]", "--set", "pretrain_patients=4"])
    for old in (["--ks", "1"], ["--seeds", "1"], ["--cbct-steps", "5"], ["--ios-steps", "5"], ["--no-curated"]):
        with pytest.raises(SystemExit):
            ablation.main(old)
        assert "unrecognized arguments" in capsys.readouterr().err
