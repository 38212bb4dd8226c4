"""Benchmark: case-level CBCT crops per second from a published version, in one run.

Three readers of the same random 96³ crops (native spacing) from the same synthetic cases:

- ours: ``toothmcl_data.stream.CaseDataset`` over the store (reads only the Zarr shards the crop touches);
- MONAI: ``LoadImaged`` + ``RandSpatialCropd`` over NIfTI exports of the same cases (the usual pipeline);
- bound: plain reads of the crop's voxel blocks (CBCT and label map) from the same Zarr arrays (read +
  decompress, nothing else).

Run: ``.venv/bin/python bench/stream.py [--cases 4] [--samples 24]``. Prints samples/s and the ratios
(goals: ours ≥ 5× MONAI, ours ≥ 80 % of the bound).
"""

from __future__ import annotations

import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from toothmcl_data.io.volume import write_nifti
from toothmcl_data.store import open_version, publish
from toothmcl_data.stream.dataset import CaseDataset, StreamConfig
from toothmcl_data.synth.config import SynthConfig
from toothmcl_data.synth.patient import make_patient
from toothmcl_models.ablation import synth_record

CROP = (96, 96, 96)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=4)
    parser.add_argument("--samples", type=int, default=24)
    args = parser.parse_args()
    config = SynthConfig(spacing_mm=0.4)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        patients = [make_patient(config, np.random.default_rng([7, i]), i) for i in range(args.cases)]
        publish(root / "store", (synth_record(p, f"B{i:03d}") for i, p in enumerate(patients)), message="bench")
        reader = open_version(root / "store")
        cases = reader.case_ids()
        nifti = []
        for case in cases:
            volume = reader.cbct(case)
            assert volume is not None
            nifti.append(write_nifti(root / f"{case}.nii.gz", volume))
        spacing = float(patients[0].cbct.spacing[0])
        dataset = CaseDataset(root / "store", "latest", None, StreamConfig(CROP, spacing, 1, 0, None), jaws=())

        order = np.random.default_rng(0).integers(0, len(dataset), size=args.samples)
        t = time.perf_counter()
        for i, index in enumerate(order):
            dataset.set_epoch(i)
            dataset[int(index)]
        ours = args.samples / (time.perf_counter() - t)

        rng = np.random.default_rng(1)
        arrays = [(reader.cbct_array(c), reader.cbct_array(c, "cbct_labels")) for c in cases]
        t = time.perf_counter()
        for index in order:
            for arr in arrays[int(index)]:  # the CBCT crop and its label crop, as our samples carry both
                assert arr is not None
                lo = [int(rng.integers(0, max(1, n - c))) for n, c in zip(arr.shape, CROP, strict=True)]
                np.asarray(arr[tuple(slice(a, a + c) for a, c in zip(lo, CROP, strict=True))])
        bound = args.samples / (time.perf_counter() - t)

        from monai.transforms import Compose, LoadImaged, RandSpatialCropd

        monai = Compose(
            [
                LoadImaged(keys="image", ensure_channel_first=True),
                RandSpatialCropd(keys="image", roi_size=CROP, random_size=False),
            ]
        )
        monai.set_random_state(seed=0)
        t = time.perf_counter()
        for index in order:
            monai({"image": str(nifti[int(index)])})
        monai_rate = args.samples / (time.perf_counter() - t)

    shape = patients[0].cbct.shape
    print(f"{args.cases} cases, CBCT {shape} at {spacing} mm; {args.samples} random {CROP} crops each, 1 thread")
    print(f"ours (CaseDataset over the store):       {ours:8.2f} samples/s")
    print(f"MONAI LoadImaged+RandSpatialCropd NIfTI: {monai_rate:8.2f} samples/s")
    print(f"bound (zarr read + decompress only):     {bound:8.2f} samples/s")
    print(f"ours / MONAI = {ours / monai_rate:.2f} (goal ≥ 5); ours / bound = {ours / bound:.2f} (goal ≥ 0.80)")


if __name__ == "__main__":
    main()
