"""Training and inference see the same normals for the same scan: the stream (JawDataset, what fine-tuning
trains on) reads the normals the store wrote, inference (evaluate.predict_mesh, what predict runs) computes them
from the mesh; both are toothmcl_data.geometry.vertex_normals, so the network's inputs agree to the bit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import trimesh
from scipy.spatial import cKDTree

from toothmcl_data.geometry import vertex_normals
from toothmcl_data.store import open_version
from toothmcl_data.stream.dataset import StreamConfig
from toothmcl_data.stream.jaws import JawDataset
from toothmcl_models.evaluate import predict_mesh
from toothmcl_models.evaluate import vertex_normals as inference_normals


class _Recorder(torch.nn.Module):
    """Stands in for the IOS segmenter: keeps every input cloud, answers class 0 everywhere."""

    def __init__(self) -> None:
        super().__init__()
        self.inputs: list[np.ndarray] = []

    def forward(self, features: torch.Tensor, jaw: str) -> torch.Tensor:
        self.inputs.append(features.numpy().reshape(-1, 6))
        return torch.zeros((*features.shape[:2], 17))


def test_stream_and_inference_feed_identical_normals(seg_store: Path) -> None:
    version = open_version(seg_store)
    dataset = JawDataset(seg_store, split=None, config=StreamConfig(points=256), frame="ios")
    case, jaw = dataset.samples[0]
    mesh = version.ios(case, jaw)
    stored = version.ios_normals(case, jaw)
    np.testing.assert_array_equal(stored, vertex_normals(mesh.vertices, mesh.faces).astype(np.float32))

    sample = dataset[0]
    train = sample["points"].numpy()[:, 3:6]
    np.testing.assert_array_equal(train, stored[sample["vertex_index"].numpy()])

    recorder = _Recorder()
    predict_mesh(recorder, mesh, jaw, points=512, rng=np.random.default_rng(0))  # type: ignore[arg-type]
    fed = np.concatenate(recorder.inputs)
    dist, idx = cKDTree(mesh.vertices.astype(np.float32)).query(fed[:, :3])
    assert float(dist.max()) == 0.0
    np.testing.assert_array_equal(fed[:, 3:6], stored[idx])
    np.testing.assert_array_equal(inference_normals(mesh).astype(np.float32), stored)

    # what inference used before (trimesh's angle-weighted normals) differs from what training saw
    old = trimesh.Trimesh(mesh.vertices, mesh.faces, process=False).vertex_normals
    cos = np.clip(np.einsum("ij,ij->i", old, stored.astype(np.float64)), -1.0, 1.0)
    assert np.degrees(np.arccos(cos)).max() > 1.0
