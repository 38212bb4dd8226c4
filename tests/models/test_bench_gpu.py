"""``bench/gpu.py`` works end to end: on CPU with ``--smoke`` (tiny presets, no MFU) in the default suite; the
paper presets on CUDA are in ``test_gpu.py``."""

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
    report = run_json(["--smoke", "--steps", "1", "--warmup", "0", "--threads", "1", "--out", str(tmp_path)], capsys)
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
        load_bench().main(["--smoke", "--tasks", "pretrain,mri"])
    assert "unknown task(s) ['mri']" in capsys.readouterr().err
