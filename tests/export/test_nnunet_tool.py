"""nnU-Net itself accepts the export: ``nnUNetv2_plan_and_preprocess --verify_dataset_integrity`` (slow).

Needs nnunetv2 (``pip install 'toothmcl[nnunet]'``; see README for installing it beside a pinned torch). Runs the
3d_fullres configuration with one process to stay small: the integrity check itself is the same for every
configuration. About 2–3 minutes on 2 shared cores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import pytest

from toothmcl_data.export.nnunet import export_nnunet
from toothmcl_data.store import open_version

pytestmark = pytest.mark.slow

NAME = "Dataset512_ToothmclExport"


@pytest.mark.skipif(find_spec("nnunetv2") is None, reason="nnunetv2 is not installed (pip install 'toothmcl[nnunet]')")
def test_nnunet_verifies_plans_and_preprocesses_the_export(export_store: Path, tmp_path: Path) -> None:
    raw, pre = tmp_path / "nnUNet_raw", tmp_path / "nnUNet_preprocessed"
    export_nnunet(open_version(export_store, "v1"), raw / NAME)
    command = Path(sys.executable).parent / "nnUNetv2_plan_and_preprocess"
    env = {**os.environ, "nnUNet_raw": str(raw), "nnUNet_preprocessed": str(pre)}
    env |= {"nnUNet_results": str(tmp_path / "nnUNet_results"), "OMP_NUM_THREADS": "1"}
    run = subprocess.run(
        [str(command), "-d", "512", "--verify_dataset_integrity", "-c", "3d_fullres", "-np", "1", "--no_pbar"],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-4000:]
    assert "verify_dataset_integrity Done" in output
    assert "Error" not in output.split("verify_dataset_integrity Done")[0]
    done = pre / NAME
    plans = json.loads((done / "nnUNetPlans.json").read_text())
    assert plans["configurations"]["3d_fullres"]["normalization_schemes"] == ["CTNormalization"]
    assert sorted(p.name for p in (done / "gt_segmentations").iterdir()) == [
        "P0000.nii.gz",
        "P0001.nii.gz",
        "P0004.nii.gz",
    ]
    # nnU-Net's planner copied our split next to the preprocessed data, where training reads it
    assert json.loads((done / "splits_final.json").read_text()) == [{"train": ["P0001"], "val": ["P0000", "P0004"]}]
