"""``bench/gpu.py`` works end to end: on CPU with ``--config smoke`` (tiny presets, no MFU) in the default suite; the
paper presets on CUDA are in ``test_gpu.py``. Its presets live only in ``bench/configs/gpu_*.yaml``."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

BENCH = Path(__file__).parents[2] / "bench" / "gpu.py"


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_gpu", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_gpu"] = module
    spec.loader.exec_module(module)
    return module


def run_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict:
    load_bench().main([*argv, "--json"])
    out = capsys.readouterr().out
    return json.loads(out[out.index("{") :])


def test_smoke_times_all_three_tasks_on_cpu(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    device = "cuda" if torch.cuda.is_available() else "cpu"
    argv = ["--config", "smoke", "--set", "steps=1", "--set", "warmup=0", "--threads", "1", "--out", str(tmp_path)]
    report = run_json(argv, capsys)
    assert report["preset"] == "tiny"
    assert report["world_size"] == 1
    assert report["peak_tflops"] is None  # smoke: no MFU
    for task in ("pretrain", "cbct", "ios"):
        r = report[task]
        assert r["loss_finite"], task
        assert r["step_s"] > 0
        assert r["flops_per_step_per_rank"] > 1e6, task  # the counter saw the convolutions / matmuls
        assert r["samples_per_s"] == pytest.approx(r["batch_per_rank"] / r["step_s"])
        assert r["tflops_per_s_per_rank"] == pytest.approx(r["flops_per_step_per_rank"] / r["step_s"] / 1e12)
        assert r["mfu"] is None
        assert (r["peak_memory_gib"] is None) == (device == "cpu")
    # the CBCT fine-tuning net (encoder + decoder) holds more parameters than a point cloud segmenter of the tiny preset
    assert report["cbct"]["params_m"] > report["ios"]["params_m"]
    assert report["cbct"]["crop_shape"] == [64, 64, 32]
    assert report["ios"]["points_per_jaw"] == 1024


def test_peak_table_matches_h100_and_h200_and_nothing_else(monkeypatch: pytest.MonkeyPatch) -> None:
    bench = load_bench()
    cuda = torch.device("cuda", 0)
    assert bench.peak_tflops(torch.device("cpu")) is None
    assert bench.peak_tflops(torch.device("cpu"), 312.0) == 312.0
    for name, peak in (("NVIDIA H100 80GB HBM3", 989.0), ("NVIDIA H200", 989.0), ("NVIDIA A100-SXM4-80GB", None)):
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None, name=name: name)
        assert bench.peak_tflops(cuda) == peak, name


def test_unknown_task_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        load_bench().main(["--config", "smoke", "--tasks", "pretrain,mri"])
    assert "unknown task(s) ['mri']" in capsys.readouterr().err


def test_presets_live_in_yaml_and_set_overrides_them(tmp_path: Path) -> None:
    import dataclasses

    from toothmcl_data.errors import ConfigError
    from toothmcl_data.synth.config import SynthConfig

    bench = load_bench()
    assert sorted(p.stem for p in bench.CONFIG_DIR.glob("gpu_*.yaml")) == ["gpu_paper", "gpu_smoke"]
    assert not any(isinstance(v, SynthConfig) for v in vars(bench).values())  # no synth preset left in code
    assert all(f.default is dataclasses.MISSING for f in dataclasses.fields(bench.GpuBenchConfig))
    paper, smoke = bench.load_config(Path("paper")), bench.load_config(Path("smoke"), ["steps=3", "synth.spacing_mm=1"])
    assert (paper.preset, paper.steps, paper.warmup, paper.mfu) == ("paper", 20, 5, True)
    assert (paper.synth.spacing_mm, paper.synth.ios_resolution_mm) == (0.4, 0.3)
    assert (smoke.preset, smoke.steps, smoke.warmup, smoke.mfu) == ("tiny", 3, 1, False)
    assert (smoke.synth.spacing_mm, smoke.synth.third_molar_probability) == (1.0, 0.0)
    with pytest.raises(ConfigError, match=r"gpu_smoke\.yaml: unknown key\(s\) \['step'\].*\(from --set step=1\)"):
        bench.load_config(Path("smoke"), ["step=1"])
    with pytest.raises(ConfigError, match=r"one of the presets \['paper', 'smoke'\]"):
        bench.load_config(Path("huge"))
    done = tmp_path / "store.done"
    done.write_text('{"spacing_mm": 9}')
    with pytest.raises(ConfigError, match="drawn with other synth settings"):
        bench.ensure_store(tmp_path, smoke.synth, 2, 0, 1)
