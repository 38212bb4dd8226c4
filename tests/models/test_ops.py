"""kNN and FPS: the fallback equals a float64 brute force; pytorch3d (when importable) equals the fallback."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from toothmcl_data.errors import InputError
from toothmcl_models.encoders.ops import farthest_point_sample, fps_start, gather_points, interpolate_features, knn


def _cloud(seed: int, b: int = 2, n: int = 400) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, n, 3, generator=g) * 15.0


def brute_knn(q: np.ndarray, p: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    d2 = ((q[:, :, None, :] - p[:, None, :, :]) ** 2).sum(-1)
    idx = np.argsort(d2, axis=-1, kind="stable")[..., :k]
    return np.take_along_axis(d2, idx, -1), idx


def brute_fps(p: np.ndarray, m: int) -> np.ndarray:
    """Textbook FPS in float64 from the point farthest from the centroid."""
    out = []
    for cloud in p:
        cur = int(((cloud - cloud.mean(0)) ** 2).sum(-1).argmax())
        nearest = np.full(len(cloud), np.inf)
        chosen = []
        for _ in range(m):
            chosen.append(cur)
            nearest = np.minimum(nearest, ((cloud - cloud[cur]) ** 2).sum(-1))
            cur = int(nearest.argmax())
        out.append(chosen)
    return np.array(out)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_knn_fallback_equals_brute_force(seed: int) -> None:
    p = _cloud(seed)
    q = _cloud(seed + 10, n=50)
    d, i = knn(q, p, 8, backend="torch")
    d_ref, i_ref = brute_knn(q.double().numpy(), p.double().numpy(), 8)
    np.testing.assert_array_equal(i.numpy(), i_ref)
    np.testing.assert_allclose(d.numpy(), d_ref, rtol=1e-5)


def test_knn_finds_itself_first() -> None:
    p = _cloud(3)
    d, i = knn(p, p, 4)
    np.testing.assert_array_equal(i[..., 0].numpy(), np.broadcast_to(np.arange(400), (2, 400)))
    assert float(d[..., 0].abs().max()) == 0.0


@pytest.mark.parametrize("backend", ["fpsample", "torch"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fps_fallbacks_equal_brute_force(backend: str, seed: int) -> None:
    p = _cloud(seed)
    idx = farthest_point_sample(p, 64, backend=backend)  # type: ignore[arg-type]
    np.testing.assert_array_equal(idx.numpy(), brute_fps(p.double().numpy(), 64))


def test_fps_set_does_not_depend_on_point_order() -> None:
    p = _cloud(4)
    perm = torch.randperm(400, generator=torch.Generator().manual_seed(0))
    a = gather_points(p, farthest_point_sample(p, 50))
    b = gather_points(p[:, perm], farthest_point_sample(p[:, perm], 50))
    torch.testing.assert_close(a, b, rtol=0, atol=0)  # same points in the same sampling order
    assert perm[fps_start(p[:, perm])].tolist() == fps_start(p).tolist()


def test_pytorch3d_matches_fallback() -> None:
    pytest.importorskip("pytorch3d")
    p = _cloud(5)
    q = _cloud(6, n=50)
    d3, i3 = knn(q, p, 8, backend="pytorch3d")
    d, i = knn(q, p, 8, backend="torch")
    torch.testing.assert_close(i3, i)
    torch.testing.assert_close(d3, d, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(
        farthest_point_sample(p, 64, backend="pytorch3d"), farthest_point_sample(p, 64, backend="torch")
    )


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: knn(torch.zeros(1, 5, 3), torch.zeros(1, 4, 3), 5), "k must be in [1, N=4]"),
        (lambda: knn(torch.zeros(1, 5, 2), torch.zeros(1, 4, 3), 1), "knn query must have shape (B, N, 3)"),
        (lambda: farthest_point_sample(torch.zeros(1, 4, 3), 5), "m must be in [1, N=4]"),
        (lambda: farthest_point_sample(torch.zeros(4, 3), 2), "points must have shape (B, N, 3)"),
    ],
)
def test_errors_name_expected_and_found(call: Callable[[], object], message: str) -> None:
    with pytest.raises(InputError) as err:
        call()
    assert message in str(err.value)


def test_interpolation_reproduces_sources_and_blends_between_them() -> None:
    src = torch.tensor([[[0.0, 0, 0], [10.0, 0, 0], [0.0, 50, 0]]])
    feats = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [5.0, 5.0]]])
    dst = torch.tensor([[[0.0, 0, 0], [2.5, 0, 0]]])
    out = interpolate_features(src, feats, dst, k=2)
    torch.testing.assert_close(out[0, 0], torch.tensor([1.0, 0.0]))
    torch.testing.assert_close(out[0, 1], torch.tensor([0.75, 0.25]))  # weights 1/2.5 : 1/7.5
