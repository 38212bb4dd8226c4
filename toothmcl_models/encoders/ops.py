"""Point-cloud neighbourhood operations: k nearest neighbours and farthest point sampling.

Two implementations with the same results:

- ``pytorch3d`` (``pytorch3d.ops.knn_points`` / ``sample_farthest_points``), used when ``import pytorch3d`` works;
- a fallback: chunked exact distances in torch for kNN, and ``fpsample.fps_sampling`` (C++ on the CPU, for
  points on any device) for FPS, or a vectorised torch loop (any device) when fpsample is missing.

Both compute squared Euclidean distances of the same float32 coordinates, so they agree except at exact or
float-rounding ties (tested against a float64 brute-force reference on tie-free clouds).

FPS starts from a point chosen by a permutation-invariant rule — the point farthest from the cloud's centroid —
instead of index 0, so the sampled *set* does not depend on the order of the input points (which the Point
Transformer's permutation equivariance relies on). No randomness anywhere here.
"""

from __future__ import annotations

import importlib.util
import logging
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from toothmcl_data.errors import ConfigError, InputError

log = logging.getLogger(__name__)

Backend = Literal["auto", "pytorch3d", "fpsample", "torch"]
_KNN_CHUNK = 1 << 22  # query × point pairs per chunk in the torch kNN (≈16 MB of float32 distances)
_KNN_MARGIN = 8  # extra candidates re-ranked by exact distance, absorbing the rounding of the fast formula


def pytorch3d_available() -> bool:
    """Whether ``pytorch3d`` can be imported (checked without importing it)."""
    return importlib.util.find_spec("pytorch3d") is not None


def _resolve(backend: Backend, device: torch.device, op: str) -> str:
    if backend == "auto":
        if pytorch3d_available():
            return "pytorch3d"
        # FPS: fpsample's C++ on any device (the points cross to the CPU and the indices back: (B, N, 3) floats,
        # ~0.3 MB at 24,000 points) rather than the torch loop, whose m tiny kernel launches per call crawl on a
        # GPU; kNN: the chunked torch distances (fast on any device).
        return "fpsample" if op == "fps" and importlib.util.find_spec("fpsample") is not None else "torch"
    if backend == "pytorch3d" and not pytorch3d_available():
        raise ConfigError(
            f"{op}: backend 'pytorch3d' requested but pytorch3d is not importable; install it "
            "(https://github.com/facebookresearch/pytorch3d/blob/main/INSTALL.md) or use backend='auto'"
        )
    if backend == "fpsample" and op == "knn":
        return "torch"
    if backend not in ("pytorch3d", "fpsample", "torch"):
        raise ConfigError(f"{op}: unknown backend {backend!r}; expected one of auto, pytorch3d, fpsample, torch")
    return backend


def _check_points(points: Tensor, what: str) -> None:
    if points.ndim != 3 or points.shape[-1] != 3:
        raise InputError(f"{what} must have shape (B, N, 3), got {tuple(points.shape)}")


def gather_points(values: Tensor, index: Tensor) -> Tensor:
    """Pick rows of ``values`` per batch element.

    values: (B, N, C) any dtype. index: (B, ...) int64 row indices into N.
    Returns (B, ..., C): ``out[b, ...] = values[b, index[b, ...]]``.
    """
    b, _, c = values.shape
    flat = index.reshape(b, -1)
    out = torch.gather(values, 1, flat.unsqueeze(-1).expand(-1, -1, c))
    return out.reshape(*index.shape, c)


def knn(query: Tensor, points: Tensor, k: int, *, backend: Backend = "auto") -> tuple[Tensor, Tensor]:
    """The ``k`` nearest ``points`` of every ``query`` point, nearest first.

    query: (B, M, 3) float mm (any frame, same as ``points``). points: (B, N, 3) float mm.
    Returns ``(dist2, index)``: (B, M, k) float32 squared distances (mm²) and (B, M, k) int64 indices into N.
    A query point that is also in ``points`` finds itself first (distance 0).
    """
    _check_points(query, "knn query")
    _check_points(points, "knn points")
    if not 1 <= k <= points.shape[1]:
        raise InputError(f"knn: k must be in [1, N={points.shape[1]}] (number of points), got k={k}")
    which = _resolve(backend, points.device, "knn")
    if which == "pytorch3d":
        from pytorch3d.ops import knn_points

        out = knn_points(query.float(), points.float(), K=k, return_sorted=True)
        return out.dists, out.idx.long()
    q, p = query.float(), points.float()
    extra = min(_KNN_MARGIN, p.shape[1] - k)
    p_sq = (p**2).sum(-1).unsqueeze(1)  # (B, 1, N)
    rows = max(1, _KNN_CHUNK // max(1, p.shape[1]))
    dists, idxs = [], []
    for start in range(0, q.shape[1], rows):
        part = q[:, start : start + rows]
        # candidates by the fast |q|² + |p|² − 2 q·p, then exact distances of the candidates decide the order
        rough = (part**2).sum(-1, keepdim=True) + p_sq - 2.0 * part @ p.transpose(1, 2)
        cand = torch.topk(rough, k + extra, dim=-1, largest=False, sorted=False).indices
        exact = ((gather_points(p, cand) - part.unsqueeze(2)) ** 2).sum(-1)
        order = torch.sort(exact, dim=-1, stable=True).indices[..., :k]
        dists.append(torch.gather(exact, -1, order))
        idxs.append(torch.gather(cand, -1, order))
    return torch.cat(dists, 1), torch.cat(idxs, 1)


def fps_start(points: Tensor) -> Tensor:
    """The permutation-invariant FPS start: per batch element, the point farthest from the centroid.

    points: (B, N, 3) float mm. Returns (B,) int64 indices into N.
    """
    centre = points.float().mean(1, keepdim=True)
    return ((points.float() - centre) ** 2).sum(-1).argmax(1)


def _fps_torch(points: Tensor, m: int, start: Tensor) -> Tensor:
    b, n, _ = points.shape
    p = points.float()
    rows = torch.arange(b, device=p.device)
    idx = torch.empty(b, m, dtype=torch.long, device=p.device)
    nearest = torch.full((b, n), float("inf"), device=p.device)
    cur = start.to(p.device)
    for s in range(m):
        idx[:, s] = cur
        d2 = ((p - p[rows, cur].unsqueeze(1)) ** 2).sum(-1)
        nearest = torch.minimum(nearest, d2)
        cur = nearest.argmax(1)
    return idx


def _fps_fpsample(points: Tensor, m: int, start: Tensor) -> Tensor:
    import fpsample

    p = points.detach().float().cpu().numpy()
    out = [
        fpsample.fps_sampling(np.ascontiguousarray(p[b]), m, start_idx=int(start[b])).astype(np.int64)
        for b in range(p.shape[0])
    ]
    return torch.from_numpy(np.stack(out)).to(points.device)


def _fps_pytorch3d(points: Tensor, m: int, start: Tensor) -> Tensor:
    from pytorch3d.ops import sample_farthest_points

    # pytorch3d starts at index 0: swap the chosen start into place, sample, and map the indices back.
    b, n, _ = points.shape
    order = torch.arange(n, device=points.device).repeat(b, 1)
    rows = torch.arange(b, device=points.device)
    order[rows, start] = 0
    order[:, 0] = start
    swapped = gather_points(points.float(), order)
    _, idx = sample_farthest_points(swapped, K=m, random_start_point=False)
    return torch.gather(order, 1, idx.long())


def farthest_point_sample(points: Tensor, m: int, *, backend: Backend = "auto") -> Tensor:
    """Farthest point sampling of ``m`` of the ``N`` points, starting from :func:`fps_start`.

    points: (B, N, 3) float mm. Returns (B, m) int64 indices into N, in sampling order (no repeats).
    """
    _check_points(points, "farthest_point_sample points")
    if not 1 <= m <= points.shape[1]:
        raise InputError(f"farthest_point_sample: m must be in [1, N={points.shape[1]}], got m={m}")
    which = _resolve(backend, points.device, "fps")
    start = fps_start(points)
    with torch.no_grad():
        if which == "pytorch3d":
            return _fps_pytorch3d(points, m, start)
        if which == "fpsample":
            return _fps_fpsample(points, m, start)
        return _fps_torch(points, m, start)


def interpolate_features(
    src_xyz: Tensor, src_features: Tensor, dst_xyz: Tensor, k: int = 3, *, backend: Backend = "auto"
) -> Tensor:
    """Inverse-distance weighted features of the ``k`` nearest source points (Point Transformer's transition-up,
    used to carry a coarse level's features back to finer points for per-point segmentation).

    src_xyz: (B, M, 3) float mm; src_features: (B, M, C); dst_xyz: (B, N, 3) float mm, same frame.
    Returns (B, N, C). A destination point that coincides with a source point takes its features.
    """
    d2, idx = knn(dst_xyz, src_xyz, min(k, src_xyz.shape[1]), backend=backend)
    weights = 1.0 / (d2.sqrt() + 1e-8)
    weights = weights / weights.sum(-1, keepdim=True)
    return (gather_points(src_features, idx) * weights.unsqueeze(-1).to(src_features.dtype)).sum(2)
