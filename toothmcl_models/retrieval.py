"""Cross-modal tooth retrieval: does pretraining put a CBCT tooth next to the same tooth's IOS crown?

On held-out paired patients of a published version, every tooth gets one embedding per modality — the mean of the
token embeddings labelled with it, re-normalised:

- CBCT: a crop (``crop_shape`` at ``spacing_mm``, no augmentation) centred on each paired tooth's crown; every
  token labelled with a tooth (its patch's majority in the stored CBCT label map, as in training) adds to that
  tooth's mean, over all crops of the patient;
- IOS: each registered jaw scan, ``draws`` seeded subsets of ``points`` vertices in the CBCT world; every token
  whose point group is labelled with a tooth adds to its mean.

Within each jaw of each patient, a CBCT tooth is retrieved correctly when the most similar (cosine) IOS tooth of
that jaw is the same FDI tooth, and vice versa; ``cbct_to_ios_top1`` / ``ios_to_cbct_top1`` are the fractions of
teeth (present in both modalities) retrieved correctly over all jaws and patients; chance ≈ 1/14 per jaw.
Tooth identity comes from geometry only (label maps and per-vertex labels), never from token indices.

    python -m toothmcl_models.evaluate retrieval --store S --version V --checkpoint RUN [--split val,test] --json
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional

from toothmcl_data.errors import ConfigError
from toothmcl_data.fdi import tooth
from toothmcl_data.geometry import crop_grid, resample, sample_vertices
from toothmcl_data.store import VersionReader, open_version
from toothmcl_data.stream.dataset import StreamConfig, split_cases
from toothmcl_data.types import JAWS, Jaw, apply_transform
from toothmcl_models.checkpoint import load_checkpoint
from toothmcl_models.model import ToothMCL, build
from toothmcl_models.runconfig import PretrainConfig
from toothmcl_models.tokens import ios_group_labels, patient_ids

Pooled = dict[int, Tensor]
"""FDI → (D,) float32 unit vector."""


def _pool(sums: dict[int, Tensor]) -> Pooled:
    return {f: functional.normalize(v, dim=0) for f, v in sums.items()}


def _add(sums: dict[int, Tensor], embeddings: Tensor, labels: Tensor) -> None:
    for f in torch.unique(labels[labels > 0]).tolist():
        part = embeddings[labels == f].float().sum(0)
        sums[int(f)] = sums[int(f)] + part if int(f) in sums else part


def cbct_teeth(
    model: ToothMCL, version: VersionReader, case: str, centres: Sequence[np.ndarray], stream: StreamConfig
) -> Pooled:
    """Pooled CBCT embedding of every tooth seen in crops centred on ``centres`` (each (3,) LPS mm)."""
    device = next(model.parameters()).device
    cbct = version.volume_blocks(case, "cbct")
    labels = version.volume_blocks(case, "cbct_labels")
    if cbct is None or labels is None:
        return {}
    affine = np.asarray(cbct.array.attrs["affine"], dtype=np.float64)
    sums: dict[int, Tensor] = {}
    patient = patient_ids([case])
    for centre in centres:
        wfc = crop_grid(np.asarray(centre, dtype=np.float64), stream.crop_shape, stream.spacing_mm)
        image = resample(cbct, affine, wfc, stream.crop_shape, order=1, dtype=np.float32)
        label = resample(labels, affine, wfc, stream.crop_shape, order=0, dtype=np.int16)
        tokens = model.cbct_tokens(
            torch.from_numpy(image)[None, None].to(device),
            torch.from_numpy(label.astype(np.int64))[None].to(device),
            torch.from_numpy(wfc)[None].to(device),
            patient,
        )
        _add(sums, tokens.embeddings, tokens.labels)
    return _pool(sums)


def ios_teeth(model: ToothMCL, version: VersionReader, case: str, jaw: Jaw, points: int, draws: int) -> Pooled:
    """Pooled IOS embedding of every tooth of the registered ``jaw`` scan (``draws`` seeded point subsets)."""
    device = next(model.parameters()).device
    reg = version.registration(case, jaw)
    mesh = version.ios(case, jaw)
    if mesh.labels is None:
        return {}
    T = reg.world_from_ios
    xyz = apply_transform(T, mesh.vertices)
    nrm = version.ios_normals(case, jaw).astype(np.float64) @ T[:3, :3].T
    cfg, tok = model.config.ios, model.token_config
    sums: dict[int, Tensor] = {}
    for draw in range(draws):
        rng = np.random.default_rng([draw, len(xyz)])
        pick = sample_vertices(len(xyz), points, rng)
        pts = torch.from_numpy(np.concatenate([xyz[pick], nrm[pick]], 1).astype(np.float32))[None].to(device)
        level = model.ios_encoders[jaw](pts, upto=cfg.token_level).levels[-1]
        emb = model.ios_head(level.features)[0]
        votes = torch.from_numpy(mesh.labels[pick].astype(np.int64))[None].to(device)
        labels = ios_group_labels(pts[..., :3], votes, level.xyz_world, cfg.token_group_size, tok.ios_min_fraction)
        _add(sums, emb, labels[0])
    return _pool(sums)


def _top1(cbct: Pooled, ios: Pooled) -> tuple[int, int, int]:
    """(CBCT → IOS correct, IOS → CBCT correct, teeth) over the teeth in both."""
    teeth = sorted(set(cbct) & set(ios))
    if len(teeth) < 2:
        return 0, 0, 0
    sim = torch.stack([cbct[f] for f in teeth]) @ torch.stack([ios[f] for f in teeth]).T
    truth = torch.arange(len(teeth), device=sim.device)
    return int((sim.argmax(1) == truth).sum()), int((sim.argmax(0) == truth).sum()), len(teeth)


def paired_crowns(version: VersionReader, cases: Sequence[str]) -> dict[str, dict[int, np.ndarray]]:
    """Per case, the crown centroid (LPS mm) of every paired tooth (the teeth table's ``centroid_ios_mm``); for
    stores whose teeth table lacks it, the centres of the published tooth-pair crops (as ``CaseDataset``)."""
    out: dict[str, dict[int, np.ndarray]] = {c: {} for c in cases}
    for row in version.table("teeth").to_pylist():
        if row["pseudonym"] in out and row.get("paired") and row.get("centroid_ios_mm") is not None:
            out[row["pseudonym"]][int(row["fdi"])] = np.asarray(row["centroid_ios_mm"], dtype=np.float64)
    if any(out.values()):
        return out
    arrays = version.pairs()
    if not len(arrays.slots):
        return out
    names = version.table("cases").column("pseudonym").to_pylist()
    index = arrays.index
    middle = (np.asarray(arrays.cbct_crop.shape[1:], dtype=np.float64) - 1) / 2
    for slot in arrays.slots:
        case = names[int(index["case_index"][slot])]
        if case in out:
            out[case][int(index["fdi"][slot])] = apply_transform(index["world_from_crop"][slot], middle[None])[0]
    return out


@torch.no_grad()
def retrieval(
    model: ToothMCL,
    store: str | Path,
    version: str,
    splits: Sequence[str | None],
    stream: StreamConfig,
    *,
    draws: int = 4,
) -> dict[str, float]:
    """Top-1 retrieval both ways over the held-out ``splits``' paired patients (model in eval mode)."""
    reader = open_version(store, version)
    cases = sorted({c for s in splits for c in split_cases(reader, s)})
    registered = reader.registered(stream.verdicts)
    crowns = paired_crowns(reader, cases)
    was_training = model.training
    model.eval()
    hits_c = hits_i = n = 0
    try:
        for case in cases:
            for jaw in JAWS:
                mine = {f: c for f, c in crowns[case].items() if tooth(f).jaw == jaw}
                if (case, jaw) not in registered or len(mine) < 2:
                    continue
                cbct = cbct_teeth(model, reader, case, list(mine.values()), stream)
                ios = ios_teeth(model, reader, case, jaw, stream.points, draws)
                a, b, k = _top1({f: v for f, v in cbct.items() if f in mine}, ios)
                hits_c, hits_i, n = hits_c + a, hits_i + b, n + k
    finally:
        model.train(was_training)
    if n == 0:
        raise ConfigError(
            f"store {store} version {version} splits {list(splits)}: no held-out patient with paired teeth in both "
            "modalities; publish more patients or evaluate another split"
        )
    return {"cbct_to_ios_top1": hits_c / n, "ios_to_cbct_top1": hits_i / n, "n_teeth": float(n), "cases": len(cases)}


def load_pretrained_model(checkpoint: Path, *, weights: bool = True) -> tuple[ToothMCL, PretrainConfig]:
    """The ToothMCL model of a pretraining checkpoint (file, checkpoints folder or run folder) and its config;
    ``weights=False`` gives the same architecture at its initial weights (the "before pretraining" model)."""
    if (checkpoint / "checkpoints").is_dir():
        checkpoint = checkpoint / "checkpoints"
    state = load_checkpoint(checkpoint)
    config = PretrainConfig.from_dict(state["config"], str(checkpoint))
    model, _ = build(config.toothmcl, seed=config.run.seed)
    if weights:
        prefix = "model."
        sub = {k[len(prefix) :]: v for k, v in state["module"].items() if k.startswith(prefix)}
        if not sub:
            raise ConfigError(f"{checkpoint}: no 'model.*' weights; pass a pretraining checkpoint")
        model.load_state_dict(sub)
    return model.eval(), config


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m toothmcl_models.evaluate retrieval", description=__doc__)
    parser.add_argument("--store", required=True, help="store path or URL")
    parser.add_argument("--version", default="latest", help="version tag or id (default: latest)")
    parser.add_argument("--checkpoint", required=True, type=Path, help="pretraining run folder or step-*.pt")
    parser.add_argument(
        "--split",
        default=None,
        help="held-out split(s), comma-separated: test, val, train (default: the run's data.eval_splits, else test)",
    )
    parser.add_argument("--untrained", action="store_true", help="the checkpoint's model at its initial weights")
    parser.add_argument("--draws", type=int, default=4, help="IOS point subsets per jaw (default: 4)")
    parser.add_argument("--json", action="store_true", help="print JSON only")
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    model, config = load_pretrained_model(args.checkpoint, weights=not args.untrained)
    stream = config.data.stream(config.run.seed)
    chosen = args.split if args.split is not None else ",".join(config.data.eval_splits or ("test",))
    splits = [s.strip() for s in chosen.split(",") if s.strip()]
    result = retrieval(model, args.store, args.version, splits, stream, draws=args.draws)
    out = {
        "cbct_to_ios_top1": result["cbct_to_ios_top1"],
        "ios_to_cbct_top1": result["ios_to_cbct_top1"],
        "n_teeth": int(result["n_teeth"]),
    }
    if args.json:
        print(json.dumps(out))
    else:
        print(
            f"tooth retrieval on {int(result['cases'])} held-out patient(s), {out['n_teeth']} teeth: CBCT → IOS "
            f"top-1 {out['cbct_to_ios_top1']:.3f}, IOS → CBCT top-1 {out['ios_to_cbct_top1']:.3f} (chance ≈ 1/14)"
        )
    return out


if __name__ == "__main__":
    main()
