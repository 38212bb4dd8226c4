"""IOS encoder: Point Transformer (Zhao, Jiang, Jia, Torr, Koltun 2021), encoder half.

Vector self-attention over each point's k nearest neighbours with a learned relative position encoding
δ = MLP(p_j − p_i):  y_i = Σ_j softmax_j(γ(φ(x_i) − ψ(x_j) + δ)) ⊙ (α(x_j) + δ), with the attention weights shared
across ``share_planes`` channel groups. Between levels, transition-down picks N/stride points by farthest point
sampling, gathers each one's k nearest points of the level above, and max-pools a linear map of
[p_j − p_centre, x_j].

Input: one jaw, (B, N, 6) float32 = xyz (LPS world mm, the CBCT frame — registration was applied by the data
pipeline) + unit normal. Inside, xyz is centred on the cloud's centroid and divided by ``coord_scale_mm``; the
:class:`PointPyramid` records both, and keeps every level's points in world mm, so per-point segmentation
(issue 8) can upsample from any level back to the input points (``parent`` indices chain the levels).

Everything is permutation-equivariant in the points (FPS starts from a permutation-invariant point, kNN sets do
not depend on order, batch norm statistics are sums over points).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from toothmcl_data.errors import InputError
from toothmcl_models.config import IOSEncoderConfig
from toothmcl_models.encoders.ops import Backend, farthest_point_sample, gather_points, knn


def _bn(norm: nn.BatchNorm1d, x: Tensor) -> Tensor:
    """Batch norm over the last dim of (..., C)."""
    shape = x.shape
    return norm(x.reshape(-1, shape[-1])).reshape(shape)


class PointTransformerLayer(nn.Module):
    """Vector self-attention over kNN neighbourhoods (paper eq. 3) with relative position encoding."""

    def __init__(self, dim: int, share_planes: int) -> None:
        super().__init__()
        self.share = share_planes
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.pos1, self.pos_bn, self.pos2 = nn.Linear(3, 3), nn.BatchNorm1d(3), nn.Linear(3, dim)
        self.w_bn1 = nn.BatchNorm1d(dim)
        self.w1 = nn.Linear(dim, dim // share_planes)
        self.w_bn2 = nn.BatchNorm1d(dim // share_planes)
        self.w2 = nn.Linear(dim // share_planes, dim // share_planes)

    def forward(self, xyz: Tensor, x: Tensor, nbr: Tensor) -> Tensor:
        """xyz: (B, N, 3) normalised coords; x: (B, N, C); nbr: (B, N, k) int64 neighbour indices. → (B, N, C)."""
        b, n, c = x.shape
        q = self.q(x)
        k = gather_points(self.k(x), nbr)  # (B, N, k, C)
        v = gather_points(self.v(x), nbr)
        rel = gather_points(xyz, nbr) - xyz.unsqueeze(2)  # p_j − p_i, (B, N, k, 3)
        pe = self.pos2(torch.relu(_bn(self.pos_bn, self.pos1(rel))))
        w = k - q.unsqueeze(2) + pe
        w = self.w1(torch.relu(_bn(self.w_bn1, w)))
        w = self.w2(torch.relu(_bn(self.w_bn2, w)))
        w = torch.softmax(w, dim=2)  # over neighbours, (B, N, k, C/s)
        kk = nbr.shape[-1]
        vals = (v + pe).reshape(b, n, kk, self.share, c // self.share)
        return (vals * w.unsqueeze(3)).sum(2).reshape(b, n, c)


class PointTransformerBlock(nn.Module):
    """Residual block: linear → attention → linear, batch norm and ReLU as in the paper's code."""

    def __init__(self, dim: int, share_planes: int) -> None:
        super().__init__()
        self.lin1, self.bn1 = nn.Linear(dim, dim, bias=False), nn.BatchNorm1d(dim)
        self.attn, self.bn2 = PointTransformerLayer(dim, share_planes), nn.BatchNorm1d(dim)
        self.lin3, self.bn3 = nn.Linear(dim, dim, bias=False), nn.BatchNorm1d(dim)

    def forward(self, xyz: Tensor, x: Tensor, nbr: Tensor) -> Tensor:
        y = torch.relu(_bn(self.bn1, self.lin1(x)))
        y = torch.relu(_bn(self.bn2, self.attn(xyz, y, nbr)))
        y = _bn(self.bn3, self.lin3(y))
        return torch.relu(x + y)


class TransitionDown(nn.Module):
    """stride 1: per-point linear; stride > 1: FPS to N/stride centres + kNN max-pooling of [p_j − p_c, x_j]."""

    def __init__(self, c_in: int, c_out: int, stride: int, k: int) -> None:
        super().__init__()
        self.stride, self.k = stride, k
        self.lin = nn.Linear(c_in + 3 if stride > 1 else c_in, c_out, bias=False)
        self.bn = nn.BatchNorm1d(c_out)

    def forward(self, xyz: Tensor, x: Tensor, backend: Backend) -> tuple[Tensor, Tensor, Tensor | None]:
        """→ (centres' coords (B, M, 3), features (B, M, C_out), parent indices (B, M) into N or None)."""
        if self.stride == 1:
            return xyz, torch.relu(_bn(self.bn, self.lin(x))), None
        m = xyz.shape[1] // self.stride
        idx = farthest_point_sample(xyz, m, backend=backend)
        centres = gather_points(xyz, idx)
        _, nbr = knn(centres, xyz, min(self.k, xyz.shape[1]), backend=backend)
        grouped = torch.cat([gather_points(xyz, nbr) - centres.unsqueeze(2), gather_points(x, nbr)], dim=-1)
        y = torch.relu(_bn(self.bn, self.lin(grouped)))
        return centres, y.max(dim=2).values, idx


@dataclass(frozen=True, eq=False)
class PointLevel:
    """One level of the pyramid.

    xyz_world: (B, N_l, 3) float32 LPS world mm (the input frame). features: (B, N_l, C_l) float.
    parent: (B, N_l) int64 indices of these points in the previous level (None for level 0, whose points are the
    input points in input order).
    """

    xyz_world: Tensor
    features: Tensor
    parent: Tensor | None


@dataclass(frozen=True, eq=False)
class PointPyramid:
    """The encoder's output. centre: (B, 1, 3) float32 world mm subtracted from xyz; scale_mm: the divisor."""

    levels: list[PointLevel]
    centre: Tensor
    scale_mm: float


class PointTransformerEncoder(nn.Module):
    """Point Transformer encoder of one jaw (see module doc)."""

    def __init__(self, config: IOSEncoderConfig, in_channels: int = 6, backend: Backend = "auto") -> None:
        super().__init__()
        self.config, self.in_channels, self.backend = config, in_channels, backend
        downs, stages = [], []
        c_prev = in_channels
        for width, depth, stride, k in zip(
            config.planes, config.blocks, config.strides, config.neighbours, strict=True
        ):
            downs.append(TransitionDown(c_prev, width, stride, k))
            stages.append(nn.ModuleList(PointTransformerBlock(width, config.share_planes) for _ in range(depth)))
            c_prev = width
        self.downs = nn.ModuleList(downs)
        self.stages = nn.ModuleList(stages)

    def forward(self, points: Tensor, upto: int | None = None) -> PointPyramid:
        """points: (B, N, 6) float32 — xyz in LPS world mm, then the unit normal. Returns levels 0..``upto``
        (default: all)."""
        if points.ndim != 3 or points.shape[-1] != self.in_channels:
            raise InputError(
                f"IOS points must have shape (B, N, {self.in_channels}) = xyz (mm) + normal, got {tuple(points.shape)}"
            )
        needed = self.config.points_at(points.shape[1])
        if needed[-1] < 1 or needed[-1] < self.config.neighbours[-1] // 2:
            raise InputError(
                f"IOS cloud of {points.shape[1]} points is too small for strides {list(self.config.strides)} "
                f"(levels would hold {needed} points); stream more points per jaw"
            )
        world = points[..., :3].float()
        centre = world.mean(dim=1, keepdim=True)
        xyz = (world - centre) / self.config.coord_scale_mm
        x = torch.cat([xyz, points[..., 3:].float()], dim=-1)
        levels: list[PointLevel] = []
        last = len(self.downs) - 1 if upto is None else upto
        for down, blocks, k in list(zip(self.downs, self.stages, self.config.neighbours, strict=True))[: last + 1]:
            xyz, x, parent = down(xyz, x, self.backend)
            if parent is not None:
                world = gather_points(world, parent)
            _, nbr = knn(xyz, xyz, min(k, xyz.shape[1]), backend=self.backend)
            for block in blocks:  # type: ignore[attr-defined]  # an nn.ModuleList
                x = block(xyz, x, nbr)
            levels.append(PointLevel(world, x, parent))
        return PointPyramid(levels, centre, self.config.coord_scale_mm)

    def freeze_beyond(self, level: int) -> list[str]:
        """Stop gradients to the levels after ``level`` (unused when tokens come from ``level``; DDP rejects
        parameters that get no gradient). Returns the frozen module names."""
        names = []
        for i in range(level + 1, len(self.downs)):
            self.downs[i].requires_grad_(False)
            self.stages[i].requires_grad_(False)
            names += [f"downs.{i}", f"stages.{i}"]
        return names
