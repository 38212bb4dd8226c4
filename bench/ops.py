"""Benchmark: kNN / FPS backends of ``toothmcl_models.encoders.ops`` on one IOS-sized cloud, one thread.

Run: ``.venv/bin/python bench/ops.py [--points 16384] [--repeats 3]``. Prints the best-of-N seconds per backend and
the ratios between them, all measured in this run (pytorch3d rows only where it imports; on a GPU add ``--cuda``).
"""

from __future__ import annotations

import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"

import argparse
import time
from collections.abc import Callable

import torch

from toothmcl_models.encoders.ops import farthest_point_sample, knn, pytorch3d_available


def best(fn: Callable[[], object], repeats: int, sync: bool) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        if sync:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=16384)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cuda", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    device = torch.device("cuda" if args.cuda else "cpu")
    g = torch.Generator().manual_seed(0)
    pts = (torch.randn(1, args.points, 3, generator=g) * 20.0).to(device)
    m = args.points // 4
    fps_backends = ["torch", "fpsample"] if device.type == "cpu" else ["torch"]
    if pytorch3d_available():
        fps_backends.append("pytorch3d")
    fps = {b: best(lambda b=b: farthest_point_sample(pts, m, backend=b), args.repeats, args.cuda) for b in fps_backends}
    knn_backends = ["torch", *(["pytorch3d"] if pytorch3d_available() else [])]
    nn = {b: best(lambda b=b: knn(pts, pts, 16, backend=b), args.repeats, args.cuda) for b in knn_backends}
    print(f"device={device.type} points={args.points} fps_m={m} knn_k=16 threads=1 repeats={args.repeats}")
    for b, s in fps.items():
        print(f"fps  {b:10s} {s:8.3f} s   torch/this = {fps['torch'] / s:6.1f}x")
    for b, s in nn.items():
        print(f"knn  {b:10s} {s:8.3f} s   torch/this = {nn['torch'] / s:6.1f}x")


if __name__ == "__main__":
    main()
