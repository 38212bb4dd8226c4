"""Benchmark: case-level CBCT crops per second from a published version, in one run.

Three readers of the same number of random crops (default the paper's 256×256×64 at 0.3 mm, on the volume's own
grid) from the same synthetic cases:

- ours: ``toothmcl_data.stream.CaseDataset`` over the store: CBCT crop (float32) + label crop (int64), reading only
  the inner chunks the crop touches (:mod:`toothmcl_data.store.blocks`);
- MONAI: ``LoadImaged`` + ``RandSpatialCropd`` over NIfTI (.nii.gz) exports of the same cases (the usual pipeline);
- bound: the raw read of the same crops (CBCT and label map): fetch the compressed bytes of the chunks each crop
  touches, Blosc-decode them and place the voxels into a crop array of the stored dtype — nothing else (no
  conversion, no sample logic). Also printed: fetch + decode alone, without assembling a crop at all.

Run: ``.venv/bin/python bench/stream.py [--cases 3] [--samples 24] [--spacing 0.3] [--crop 256 256 64]``. Prints
samples/s and the ratios (goals: ours ≥ 5× MONAI, ours ≥ 80 % of the bound).
"""

from __future__ import annotations

import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"

import argparse
import tempfile
import time
from pathlib import Path

import numcodecs.blosc
import numpy as np

from toothmcl_data.io.volume import write_nifti
from toothmcl_data.store import open_version, publish
from toothmcl_data.stream.dataset import CaseDataset, StreamConfig
from toothmcl_data.synth.config import SynthConfig
from toothmcl_data.synth.patient import make_patient
from toothmcl_data.synth.record import synth_record

CROP = (256, 256, 64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=3)
    parser.add_argument("--samples", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=3, help="rounds of all three readers; the best is reported")
    parser.add_argument("--spacing", type=float, default=0.3, help="CBCT voxel size of the synthetic cases (mm)")
    parser.add_argument("--crop", type=int, nargs=3, default=CROP, help="crop size in voxels (x y z)")
    args = parser.parse_args()
    crop = tuple(args.crop)
    config = SynthConfig(spacing_mm=args.spacing)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        patients = [make_patient(config, np.random.default_rng([7, i]), i) for i in range(args.cases)]
        publish(root / "store", (synth_record(p, f"B{i:03d}") for i, p in enumerate(patients)), message="bench")
        reader = open_version(root / "store")
        cases = reader.case_ids()
        nifti = []
        for case in cases:
            volume, labels = reader.cbct(case), reader.cbct_labels(case)
            assert volume is not None
            assert labels is not None
            nifti.append(
                {
                    "image": str(write_nifti(root / f"{case}.nii.gz", volume)),
                    "label": str(write_nifti(root / f"{case}_labels.nii.gz", labels)),
                }
            )
        spacing = float(patients[0].cbct.spacing[0])
        dataset = CaseDataset(root / "store", "latest", None, StreamConfig(crop, spacing, 1, 0, None), jaws=())
        order = [int(i) for i in np.random.default_rng(0).integers(0, len(dataset), size=args.samples)]
        grids: list[np.ndarray] = []

        def ours() -> None:
            grids.clear()
            for epoch, index in enumerate(order):
                dataset.set_epoch(epoch)
                grids.append(dataset[index]["world_from_crop"].numpy())

        blocks = [(reader.volume_blocks(c), reader.volume_blocks(c, "cbct_labels")) for c in cases]

        def raw(assemble: bool) -> None:
            for index, grid in zip(order, grids, strict=True):
                for arr in blocks[index]:  # the same CBCT and label crops as ours (same voxel blocks)
                    assert arr is not None
                    lo = np.rint(np.linalg.solve(np.asarray(arr.array.attrs["affine"]), grid)[:3, 3]).astype(int)
                    if assemble:
                        arr.read(tuple(lo), crop)
                        continue
                    src = tuple(slice(max(a, 0), min(a + c, n)) for a, c, n in zip(lo, crop, arr.shape, strict=True))
                    for _, payload in arr.payloads(src):
                        numcodecs.blosc.decompress(payload)

        from monai.transforms import Compose, LoadImaged, RandSpatialCropd

        keys = ["image", "label"]
        monai = Compose(
            [
                LoadImaged(keys=keys, ensure_channel_first=True),
                RandSpatialCropd(keys=keys, roi_size=crop, random_size=False),
            ]
        )
        monai.set_random_state(seed=0)

        def monai_loader() -> None:
            for index in order:
                monai(dict(nifti[index]))

        rates: dict[str, float] = {}
        for _ in range(args.repeats):  # interleaved rounds, so machine noise hits all three alike
            for name, run in (
                ("ours", ours),
                ("bound", lambda: raw(True)),
                ("decode", lambda: raw(False)),
                ("monai", monai_loader),
            ):
                t = time.perf_counter()
                run()
                rates[name] = max(rates.get(name, 0.0), args.samples / (time.perf_counter() - t))

    shape = patients[0].cbct.shape
    print(f"{args.cases} cases, CBCT {shape} at {spacing} mm; {args.samples} random {crop} crops + label crops")
    print(f"1 thread, best of {args.repeats} interleaved rounds")
    print(f"ours (CaseDataset over the store):       {rates['ours']:8.2f} samples/s")
    print(f"MONAI LoadImaged+RandSpatialCropd NIfTI: {rates['monai']:8.2f} samples/s")
    print(f"bound (raw crop read: fetch+decode+place):{rates['bound']:7.2f} samples/s")
    print(f"fetch + decode only (no crop assembled):  {rates['decode']:7.2f} samples/s")
    print(
        f"ours / MONAI = {rates['ours'] / rates['monai']:.2f} (goal ≥ 5); "
        f"ours / bound = {rates['ours'] / rates['bound']:.2f} (goal ≥ 0.80); "
        f"ours / fetch+decode = {rates['ours'] / rates['decode']:.2f}"
    )


if __name__ == "__main__":
    main()
