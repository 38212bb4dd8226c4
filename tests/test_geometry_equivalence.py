"""TEMPORARY: the new geometry.resample against copies of the two old implementations (pair.teeth.resample and
stream.dataset.resample) on random axis-aligned, flipped/permuted and oblique affines."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from scipy import ndimage
from scipy.spatial.transform import Rotation

from toothmcl_data.geometry import crop_grid, resample
from toothmcl_data.store.blocks import read_block
from toothmcl_data.types import Volume, apply_transform


# ---- copy of the old pair.teeth.resample ----
def old_pair(volume, world_from_crop, shape, *, labels):
    M = np.linalg.inv(volume.affine) @ world_from_crop
    data = np.asarray(volume.array)
    perm = _axis_permutation(M[:3, :3])
    if perm is not None:
        lines = [M[r, 3] + M[r, perm[r]] * np.arange(shape[perm[r]], dtype=np.float64) for r in range(3)]
        lo, hi = _bounds(np.array([[line.min(), line.max()] for line in lines]), data.shape)
        if np.any(hi <= lo):
            return np.zeros(shape, dtype=np.int16)
        sub = data[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
        if min(sub.shape) >= 2:
            cval = 0.0 if labels else float(sub.min())
            grid = _separable(sub, [lines[r] - lo[r] for r in range(3)], labels=labels, cval=cval)
            out = grid.transpose(np.argsort(perm))
            return np.asarray(out if labels else np.rint(out), dtype=np.int16)
    axes = [np.arange(n, dtype=np.float64) for n in shape]
    index = np.empty((3, *shape), dtype=np.float64)
    for r in range(3):
        index[r] = (
            M[r, 3]
            + (M[r, 0] * axes[0])[:, None, None]
            + (M[r, 1] * axes[1])[None, :, None]
            + (M[r, 2] * axes[2])[None, None, :]
        )
    lo, hi = _bounds(np.array([[index[r].min(), index[r].max()] for r in range(3)]), data.shape)
    if np.any(hi <= lo):
        return np.zeros(shape, dtype=np.int16)
    sub = data[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
    cval = 0.0 if labels else float(sub.min())
    index -= lo[:, None, None, None]
    flat = ndimage.map_coordinates(
        sub if labels else sub.astype(np.float32), index.reshape(3, -1), order=0 if labels else 1,
        mode="constant", cval=cval,
    )
    return np.asarray(np.rint(flat).reshape(shape), dtype=np.int16)


def _bounds(corners, shape):
    lo = np.clip(np.floor(corners[:, 0]).astype(int) - 1, 0, np.array(shape))
    hi = np.clip(np.ceil(corners[:, 1]).astype(int) + 2, 0, np.array(shape))
    return lo, hi


def _axis_permutation(R):
    big = np.abs(R) > 1e-12 * max(1.0, float(np.abs(R).max()))
    if not (big.sum(axis=0) == 1).all() or not (big.sum(axis=1) == 1).all():
        return None
    r0, r1, r2 = (int(np.argmax(row)) for row in big)
    return r0, r1, r2


def _separable(sub, positions, *, labels, cval):
    outside = [(p < 0) | (p > n - 1) for p, n in zip(positions, sub.shape, strict=True)]
    if labels:
        near = [np.clip(np.floor(p + 0.5), 0, n - 1).astype(np.intp) for p, n in zip(positions, sub.shape, strict=True)]
        out = sub[np.ix_(*near)]
    else:
        out = sub.astype(np.float32).astype(np.float64)
        for axis, (p, n) in enumerate(zip(positions, sub.shape, strict=True)):
            start = np.clip(np.floor(p), 0, n - 2)
            t = np.clip(p - start, 0.0, 1.0)
            i0 = start.astype(np.intp)
            shape = [1, 1, 1]
            shape[axis] = len(p)
            w = t.reshape(shape)
            out = np.take(out, i0, axis=axis) * (1.0 - w) + np.take(out, i0 + 1, axis=axis) * w
        out = out.astype(np.float32)
    mask = outside[0][:, None, None] | outside[1][None, :, None] | outside[2][None, None, :]
    if mask.any():
        out[mask] = cval
    return out


# ---- copy of the old stream.dataset.resample ----
def old_stream(array, volume_affine, world_from_crop, shape, *, order, dtype=None):
    src_from_crop = np.linalg.inv(volume_affine) @ world_from_crop
    offset = src_from_crop[:3, 3]
    if np.allclose(src_from_crop[:3, :3], np.eye(3), atol=1e-9) and np.allclose(offset, np.rint(offset), atol=1e-6):
        lo = tuple(int(v) for v in np.rint(offset))
        return read_block(array, lo, shape, dtype)
    corners = np.array([[a, b, c] for a in (0, shape[0] - 1) for b in (0, shape[1] - 1) for c in (0, shape[2] - 1)])
    src = apply_transform(src_from_crop, corners)
    lo = np.clip(np.floor(src.min(axis=0)).astype(int) - 1, 0, array.shape)
    hi = np.clip(np.ceil(src.max(axis=0)).astype(int) + 2, 0, array.shape)
    if np.any(hi <= lo):
        return np.zeros(shape, dtype=array.dtype if dtype is None else dtype)
    block = read_block(array, tuple(int(v) for v in lo), tuple(int(v) for v in hi - lo))
    offset = src_from_crop[:3, 3] - lo
    out = ndimage.affine_transform(block, src_from_crop[:3, :3], offset, output_shape=shape, order=order, cval=0)
    return out if dtype is None else out.astype(dtype, copy=False)


TIES = 0.3


def _cases(seed: int, kind: str):
    rng = np.random.default_rng(seed)
    size = tuple(int(n) for n in rng.integers(20, 40, 3))
    if kind == "oblique":
        R = Rotation.random(random_state=seed).as_matrix()
    else:
        R = np.eye(3)[rng.permutation(3)] * (rng.choice([-1.0, 1.0], 3) if kind == "flipped" else 1.0)
    affine = np.eye(4)
    affine[:3, :3] = R * rng.choice([0.3, 0.4, 0.5, 0.25], 3)
    affine[:3, 3] = rng.uniform(-20, 20, 3)
    shape = tuple(int(n) for n in rng.integers(8, 30, 3))
    spacing = float(rng.choice([0.3, 0.37, 0.4, 0.5, 0.25]))
    centre_index = rng.uniform(-5, np.array(size) + 5)
    if rng.random() < TIES:
        centre_index = np.round(centre_index * 2) / 2  # ties
    centre = apply_transform(affine, centre_index[None])[0]
    return size, affine, crop_grid(centre, shape, spacing), shape


KINDS = ["aligned", "flipped", "oblique"]


@pytest.mark.parametrize("kind", KINDS)
def test_pair_equivalence(kind: str) -> None:
    total = diff = ldiff = 0
    for seed in range(40):
        size, affine, wfc, shape = _cases(seed, kind)
        rng = np.random.default_rng(seed + 1000)
        data = rng.integers(-1000, 3000, size).astype(np.int16)
        labels = rng.integers(0, 48, size).astype(np.int16)
        got = resample(data, affine, wfc, shape, order=1, fill="lowest", dtype=np.int16)
        want = old_pair(Volume(data, affine), wfc, shape, labels=False)
        total += got.size
        d = got != want
        diff += int(d.sum())
        if d.any():
            assert np.abs(got.astype(int) - want.astype(int))[d].max() == 1
        assert diff == 0
        got_l = resample(labels, affine, wfc, shape, order=0, dtype=np.int16)
        want_l = old_pair(Volume(labels, affine), wfc, shape, labels=True)
        d = np.argwhere(got_l != want_l)
        ldiff += len(d)
        assert ldiff == 0
        if len(d):  # only where a position is a half-voxel (up to roundoff): the two rounded it differently
            M = np.linalg.inv(affine) @ wfc
            pos = d @ M[:3, :3].T + M[:3, 3]
            assert np.all(np.abs(np.abs(pos - np.floor(pos)) - 0.5).min(axis=1) < 1e-9)
    print(f"pair {kind}: {diff} of {total} intensity voxels differ by 1, {ldiff} label voxels")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("source", ["int16", "float32", "uint8"])
def test_stream_equivalence(kind: str, source: str) -> None:
    total = diff = 0
    for seed in range(40):
        size, affine, wfc, shape = _cases(seed, kind)
        if seed % 4 == 0:  # a crop on the volume's own grid (the read-a-block path)
            wfc = affine.copy()
            wfc[:3, 3] = apply_transform(affine, np.random.default_rng(seed).integers(-5, 30, 3)[None].astype(float))[0]
        rng = np.random.default_rng(seed + 2000)
        data = (rng.integers(0, 200, size) if source == "uint8" else rng.integers(-1000, 3000, size)).astype(source)
        if source == "float32":
            data = (data + rng.random(size)).astype(np.float32)
        for order in (0, 1):
            for dtype in (None, np.float32, np.int16):
                got = resample(data, affine, wfc, shape, order=order, dtype=dtype)
                want = old_stream(data, affine, wfc, shape, order=order, dtype=dtype)
                assert got.dtype == want.dtype
                total += got.size
                diff += int((got != want).sum())
                if np.issubdtype(want.dtype, np.integer) or order == 0 or source != "float32":
                    d = got != want
                    if d.any():
                        if order == 1:  # a value at (or within float32 of) a rounding tie
                            assert np.abs(got.astype(float) - want.astype(float))[d].max() == 1
                            exact = old_stream(data.astype(np.float64), affine, wfc, shape, order=1)[d]
                            near_tie = np.abs(np.abs(exact - np.trunc(exact)) - 0.5)
                            assert near_tie.max() < 1e-3, near_tie.max()  # float32 at ~3000: 2.4e-4 apart
                        else:  # a position at (or within roundoff of) a half-voxel
                            M = np.linalg.inv(affine) @ wfc
                            pos = np.argwhere(d) @ M[:3, :3].T + M[:3, 3]
                            assert np.all(np.abs(np.abs(pos - np.floor(pos)) - 0.5).min(axis=1) < 1e-9)
                else:
                    np.testing.assert_allclose(got, want, rtol=1.2e-7, atol=0)  # 1 float32 ulp
    print(f"stream {kind} {source}: {diff} of {total} differ")
