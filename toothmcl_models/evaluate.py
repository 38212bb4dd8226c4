"""Inference with a fine-tuned segmenter, written back in the input's own geometry, and scored.

CBCT (:func:`predict_volume`): the volume is resampled (linear) onto an LPS-aligned grid at the training spacing
covering it, segmented by ``monai.inferers.sliding_window_inference`` with the training crop as the window
(Gaussian blending), and the class probabilities are resampled (linear) back onto the input's own grid and
arg-maxed there (:func:`native_argmax`) — the output has the input's shape and affine, so it scores against the
input's label map voxel by voxel and is written as NIfTI with the input's geometry (:func:`write_prediction_nifti`).

IOS (:func:`predict_mesh`): the vertices are shuffled (seeded) and cut into clouds of the training's ``points``
(so every cloud has the training's point density), each cloud is segmented, and every vertex takes the argmax of
its own softmax (``cover=True``, the default), refined on the mesh (smoothing, one piece per tooth, arch order:
:mod:`toothmcl_models.iospost`); with ``cover=False`` one cloud is drawn and every vertex takes the
majority class of its ``k`` nearest drawn points. Each vertex gets a label, in the mesh's vertex order; instances
are numbered per predicted tooth. Written as Teeth3DS JSON
(:func:`write_prediction_teeth3ds`). Scoring on labelled cases: :mod:`toothmcl_models.scoring`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from toothmcl_data import geometry
from toothmcl_data.errors import InputError
from toothmcl_data.fdi import from_fdi
from toothmcl_data.io.teeth3ds import write_teeth3ds_json
from toothmcl_data.io.volume import write_nifti
from toothmcl_data.stream.jaws import canonical_from_scan
from toothmcl_data.types import Affine4x4, Jaw, Mesh, Volume, apply_transform
from toothmcl_models.iospost import postprocess_jaw
from toothmcl_models.segmentation import CBCTSegmenter, IOSSegmenter, classes_to_fdi


def inference_grid(volume: Volume, spacing_mm: float) -> tuple[Affine4x4, tuple[int, int, int]]:
    """``world_from_grid`` (4, 4) and shape of the LPS-aligned grid at ``spacing_mm`` covering ``volume``'s voxel
    centres (LPS mm)."""
    shape = np.asarray(volume.shape, dtype=np.float64)
    corners = np.array([[a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)], dtype=np.float64) * (shape - 1)
    world = volume.world_from_index(corners)
    lo, hi = world.min(0), world.max(0)
    size = np.floor((hi - lo) / spacing_mm + 1e-6).astype(int) + 1
    affine = np.diag([spacing_mm, spacing_mm, spacing_mm, 1.0])
    affine[:3, 3] = lo
    return affine, (int(size[0]), int(size[1]), int(size[2]))


@torch.no_grad()
def predict_volume(
    net: CBCTSegmenter,
    volume: Volume,
    *,
    spacing_mm: float,
    roi: tuple[int, int, int],
    overlap: float = 0.25,
    sw_batch_size: int = 1,
    device: torch.device | str = "cpu",
) -> Volume:
    """FDI label map (int16, 0 = background) on ``volume``'s own grid (same shape and affine).

    volume: CBCT, (I, J, K) scanner values indexed [i, j, k], LPS affine. roi: the sliding window (X, Y, Z)
    voxels at ``spacing_mm`` (the training crop; multiples of 32).
    """
    from monai.inferers import sliding_window_inference

    grid_affine, grid_shape = inference_grid(volume, spacing_mm)
    image = geometry.resample(volume.array, volume.affine, grid_affine, grid_shape, order=1, dtype=np.float32)
    net = net.eval().to(device)
    tensor = torch.from_numpy(image)[None, None].to(device)
    logits = sliding_window_inference(tensor, roi, sw_batch_size, net, overlap=overlap, mode="gaussian")
    if isinstance(logits, tuple | dict):
        raise InputError("sliding_window_inference returned several outputs; expected one logits tensor")
    probs = torch.softmax(torch.as_tensor(logits).float(), 1)[0].cpu().numpy()
    return Volume(classes_to_fdi(native_argmax(probs, grid_affine, volume)), volume.affine.copy())


def native_argmax(probs: NDArray[np.float32], grid_affine: Affine4x4, volume: Volume) -> NDArray[np.int16]:
    """(I, J, K) int16 class map on ``volume``'s grid: the argmax of the class probabilities ``probs`` (C, X, Y, Z)
    float32 on the inference grid ``grid_affine``, each interpolated (linear) onto the native voxels.

    Resampling probabilities, not argmax labels, is nnU-Net's export habit: when the training grid is coarser than
    the native one (1.2 mm on a 1.0 mm or 0.3 mm scan) nearest-neighbour labels come back as blocks, which caps the
    Dice (measured on ground truth resampled 1.5 mm → 1.0 mm: foreground Dice 0.82–0.84 nearest vs 0.94–0.95 linear).
    Only the classes that win somewhere on the inference grid are resampled (one native-size array at a time);
    outside the inference grid every probability reads 0 and class 0 (background) wins.
    """
    winners = np.unique(probs.argmax(0))
    best = np.full(volume.shape, -1.0, dtype=np.float32)
    out = np.zeros(volume.shape, dtype=np.int16)
    for c in sorted(set(winners.tolist()) | {0}):
        p = geometry.resample(probs[c], grid_affine, volume.affine, volume.shape, order=1, dtype=np.float32)
        better = p > best
        best[better] = p[better]
        out[better] = c
    return out


def write_prediction_nifti(path: Path, prediction: Volume, *, scheme: str = "fdi") -> Path:
    """Write an FDI label :class:`Volume` as NIfTI (RAS on disk, the same voxels and geometry), in ``scheme``'s
    codes (``fdi`` or ``toothfairy2``)."""
    codes = prediction.array if scheme == "fdi" else from_fdi(prediction.array, scheme)
    return write_nifti(
        path, Volume(np.asarray(codes, dtype=np.int16), prediction.affine), descrip="toothmcl prediction"
    )


def vertex_normals(mesh: Mesh) -> NDArray[np.float64]:
    """(n, 3) float64 unit vertex normals of ``mesh`` in its frame: :func:`toothmcl_data.geometry.vertex_normals`
    (area-weighted), the same the store wrote for training."""
    return geometry.vertex_normals(mesh.vertices, mesh.faces)


def back_project(
    sample_xyz: NDArray[np.floating], sample_labels: NDArray[np.integer], vertices: NDArray[np.floating], k: int = 1
) -> NDArray[np.int64]:
    """Label every vertex from labelled sample points.

    sample_xyz: (m, 3) float mm; sample_labels: (m,) int; vertices: (n, 3) float mm in the same frame.
    Returns (n,) int64: the label of the nearest sample (k = 1) or the most frequent label among the ``k``
    nearest (ties → the nearer label's class order: the smallest label among the tied).
    """
    tree = cKDTree(np.asarray(sample_xyz, dtype=np.float64))
    k = min(k, len(sample_xyz))
    _, idx = tree.query(np.asarray(vertices, dtype=np.float64), k=k)
    labels = np.asarray(sample_labels, dtype=np.int64)
    if k == 1:
        return labels[np.asarray(idx).reshape(-1)]
    votes = labels[idx]  # (n, k)
    offset = votes.min()
    counts = np.zeros((len(votes), int(votes.max() - offset) + 1), dtype=np.int64)
    np.add.at(counts, (np.repeat(np.arange(len(votes)), k), (votes - offset).ravel()), 1)
    return counts.argmax(1) + offset


def instances_from_labels(labels: NDArray[np.integer]) -> NDArray[np.int16]:
    """(n,) int16 instance per vertex: 0 for gingiva (label 0), 1, 2, … per distinct tooth label in FDI order."""
    labels = np.asarray(labels)
    teeth = sorted(int(t) for t in np.unique(labels) if t > 0)
    out = np.zeros(len(labels), dtype=np.int16)
    for i, t in enumerate(teeth, start=1):
        out[labels == t] = i
    return out


@torch.no_grad()
def predict_mesh(
    net: IOSSegmenter,
    mesh: Mesh,
    jaw: Jaw,
    *,
    points: int,
    rng: np.random.Generator,
    world_from_mesh: Affine4x4 | None = None,
    frame: str = "world",
    k: int = 3,
    cover: bool = True,
    batch: int = 4,
    device: torch.device | str = "cpu",
    postprocess: bool = True,
) -> tuple[NDArray[np.int16], NDArray[np.int16]]:
    """Per-vertex FDI labels (n,) int16 (0 gingiva) and instances (n,) int16 of one jaw scan.

    mesh: the scan, vertices (n, 3) mm in its own frame. frame: the run's ``segment.frame``; ``"canonical"``
    moves the scan into its canonical frame (``stream.jaws.canonical_from_scan``, from the scan alone, as in
    training) and ignores ``world_from_mesh``; otherwise world_from_mesh (4, 4) moves it into the frame the
    network was trained in (the CBCT world for registered scans; None = identity). cover: every vertex is
    segmented itself, in ⌈n / points⌉ clouds of ``points`` shuffled vertices (``batch`` clouds per forward; the
    last cloud is filled up with already-covered vertices, whose softmaxes are averaged); else one cloud of
    ``points`` vertices drawn from ``rng`` is segmented and labels reach the others by a ``k``-nearest vote.
    postprocess (with ``cover``): the vertex probabilities are refined on the mesh — smoothed over 1-rings, one
    connected piece per tooth, teeth numbered in arch order (:mod:`toothmcl_models.iospost`).
    """
    normals = vertex_normals(mesh)
    xyz = mesh.vertices
    canonical = canonical_from_scan(xyz, normals) if frame == "canonical" or (postprocess and cover) else None
    if frame == "canonical":
        world_from_mesh = canonical
    if world_from_mesh is not None:
        xyz = xyz @ world_from_mesh[:3, :3].T + world_from_mesh[:3, 3]
        normals = normals @ world_from_mesh[:3, :3].T
    n = len(xyz)
    features = np.concatenate([xyz, normals], 1).astype(np.float32)
    net = net.eval().to(device)
    if not cover:
        pick = geometry.sample_vertices(n, points, rng)
        classes = net(torch.from_numpy(features[pick])[None].to(device), jaw).argmax(-1)[0].cpu().numpy()
        labels = back_project(xyz[pick], classes_to_fdi(classes, jaw), xyz, k=k).astype(np.int16)
        return labels, instances_from_labels(labels)
    clouds = max(1, math.ceil(n / points))
    order = rng.permutation(n)
    order = np.concatenate([order, rng.choice(n, size=clouds * points - n, replace=n < clouds * points - n)])
    order = order.reshape(clouds, points)
    probs: NDArray[np.float64] | None = None
    for start in range(0, clouds, batch):
        idx = np.sort(order[start : start + batch], axis=1)
        out = torch.softmax(net(torch.from_numpy(features[idx]).to(device), jaw).float(), -1).cpu().numpy()
        if probs is None:
            probs = np.zeros((n, out.shape[-1]), dtype=np.float64)
        np.add.at(probs, idx.ravel(), out.reshape(-1, out.shape[-1]))
    if probs is None:
        raise InputError(f"{jaw} scan: no vertices to segment; pass a non-empty mesh")
    if postprocess and canonical is not None:
        probs /= probs.sum(1, keepdims=True)
        classes = postprocess_jaw(probs, mesh.faces, apply_transform(canonical, mesh.vertices))
    else:
        classes = probs.argmax(1)
    labels = classes_to_fdi(classes, jaw).astype(np.int16)
    return labels, instances_from_labels(labels)


def write_prediction_teeth3ds(
    path: Path, labels: NDArray[np.integer], *, id_patient: str, jaw: Jaw, instances: NDArray[np.integer] | None = None
) -> None:
    """Write per-vertex FDI ``labels`` (n,) as a Teeth3DS JSON (instances numbered per tooth when not given)."""
    write_teeth3ds_json(
        path,
        id_patient=id_patient,
        jaw=jaw,
        labels=labels,
        instances=instances if instances is not None else instances_from_labels(labels),
    )


def main(argv: list[str] | None = None) -> None:
    """``python -m toothmcl_models.evaluate {cbct,ios} --checkpoint RUN …``: predict one input with a fine-tuned
    model and write it in the input's geometry (NIfTI / ToothFairy2 MHA, or Teeth3DS JSON), optionally scored.
    ``python -m toothmcl_models.evaluate retrieval --store S --version V --checkpoint PRETRAIN_RUN --json``:
    cross-modal tooth retrieval of a pretrained model on held-out patients (``toothmcl_models.retrieval``)."""
    import argparse
    import json
    import sys

    given = sys.argv[1:] if argv is None else list(argv)
    if given[:1] == ["retrieval"]:  # pretraining's cross-modal tooth retrieval (``toothmcl_models.retrieval``)
        from toothmcl_models.retrieval import main as retrieval_main

        retrieval_main(given[1:])
        return

    from toothmcl_data.io.mesh import read_mesh
    from toothmcl_data.io.volume import read_volume
    from toothmcl_models.finetune import load_finetuned

    parser = argparse.ArgumentParser(prog="python -m toothmcl_models.evaluate", description=main.__doc__)
    parser.add_argument("task", choices=("cbct", "ios"))
    parser.add_argument("--checkpoint", required=True, type=Path, help="fine-tuning run folder or step-*.pt")
    parser.add_argument("--input", required=True, type=Path, help="CBCT volume (NIfTI/MHA/NRRD) or jaw scan mesh")
    parser.add_argument("--out", required=True, type=Path, help=".nii.gz / .mha (CBCT) or .json (IOS)")
    parser.add_argument("--jaw", choices=("upper", "lower"), help="IOS: which jaw the scan is")
    parser.add_argument("--scheme", default=None, help="CBCT output codes: fdi or toothfairy2 (default: the run's)")
    parser.add_argument("--gt", type=Path, help="ground truth to score against (label volume / Teeth3DS JSON)")
    parser.add_argument("--seed", type=int, default=0, help="IOS: seed of the sampled points")
    args = parser.parse_args(argv)
    net, config = load_finetuned(args.checkpoint)
    scores: dict[str, Any] = {}
    if args.task == "cbct":
        if not isinstance(net, CBCTSegmenter):
            raise InputError(f"{args.checkpoint}: not a CBCT fine-tuning run")
        volume = read_volume(args.input)
        pred = predict_volume(net, volume, spacing_mm=config.data.spacing_mm, roi=config.data.crop_shape)
        if args.out.name.endswith(".mha"):
            from toothmcl_data.adapters.toothfairy2 import write_mha

            write_mha(args.out, Volume(from_fdi(pred.array, "toothfairy2").astype(np.uint8), pred.affine))
        else:
            write_prediction_nifti(args.out, pred, scheme=args.scheme or config.segment.output_scheme)
        if args.gt is not None:
            from toothmcl_data.metrics.inputs import read_label_volume
            from toothmcl_models.scoring import score_volume

            scores = score_volume(pred, read_label_volume(args.gt), str(args.input)).scores.to_dict()
    else:
        if not isinstance(net, IOSSegmenter) or args.jaw is None:
            raise InputError(f"{args.checkpoint}: IOS prediction needs an IOS run and --jaw")
        mesh = read_mesh(args.input, jaw=args.jaw)
        labels, instances = predict_mesh(
            net,
            mesh,
            args.jaw,
            points=config.data.points,
            rng=np.random.default_rng(args.seed),
            frame=config.segment.frame,
        )
        write_prediction_teeth3ds(args.out, labels, id_patient=args.input.stem, jaw=args.jaw, instances=instances)
        if args.gt is not None:
            from toothmcl_data.metrics.inputs import score_ios_files

            scores = score_ios_files(args.input, args.gt, args.out).to_dict()
    print(json.dumps({"prediction": str(args.out), **({"scores": scores} if scores else {})}, indent=2))


if __name__ == "__main__":
    main()
