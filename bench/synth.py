"""Benchmark: one 32-tooth synthetic patient at 0.4 mm on one core (goal ≤ 5 s), drawn and written.

Run: ``.venv/bin/python bench/synth.py [--repeats 3] [--conditions all|NAME,NAME]``. Threads are pinned to one
before numpy loads. Prints seconds per stage and the ratio to the goal, all measured in this run; with
``--conditions``, also the seconds to draw one patient (no writing) under each named condition and without one.
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

from toothmcl_data.synth.anatomy import draw_anatomy
from toothmcl_data.synth.cbct import render_cbct
from toothmcl_data.synth.config import SynthConfig
from toothmcl_data.synth.drop import write_drop
from toothmcl_data.synth.ios import scan_jaw

GOAL_S = 5.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--conditions", default=None, help="'all' or comma-separated condition names")
    args = parser.parse_args()
    if args.conditions:
        per_condition(args.conditions, args.repeats)
        return
    config = SynthConfig(spacing_mm=0.4, third_molar_probability=1.0, missing_tooth_probability=0.0)
    stages: dict[str, list[float]] = {
        "anatomy": [],
        "cbct": [],
        "ios (both jaws)": [],
        "drop (draw + write)": [],
    }
    for r in range(args.repeats):
        rng = np.random.default_rng(r)
        t0 = time.perf_counter()
        anatomy = draw_anatomy(config, rng)
        t1 = time.perf_counter()
        cbct, _ = render_cbct(anatomy, config, rng)
        t2 = time.perf_counter()
        meshes = [scan_jaw(anatomy, jaw, config, rng) for jaw in ("upper", "lower")]
        t3 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            write_drop(Path(tmp), patients=1, seed=r, config=config)
            t4 = time.perf_counter()
        stages["anatomy"].append(t1 - t0)
        stages["cbct"].append(t2 - t1)
        stages["ios (both jaws)"].append(t3 - t2)
        stages["drop (draw + write)"].append(t4 - t3)
        if r == 0:
            print(
                f"patient: {len(anatomy.teeth)} teeth, CBCT {cbct.shape} voxels at 0.4 mm, "
                f"IOS {sum(len(m.vertices) for m in meshes)} vertices"
            )
    for name, times in stages.items():
        print(f"{name:22s} median {np.median(times):6.2f} s  (runs: {', '.join(f'{t:.2f}' for t in times)})")
    total = float(np.median(stages["drop (draw + write)"]))
    print(
        f"one patient drawn and written on one core: {total:.2f} s; goal {GOAL_S:.1f} s; "
        f"ratio to goal {total / GOAL_S:.2f} ({'met' if total <= GOAL_S else 'NOT met'})"
    )


def per_condition(spec: str, repeats: int) -> None:
    """Median seconds of ``make_patient`` at 0.4 mm per condition (seeds 0..repeats−1), and without one."""
    from toothmcl_data.synth.conditions import CONDITION_NAMES
    from toothmcl_data.synth.patient import make_patient

    names = list(CONDITION_NAMES) if spec == "all" else [n.strip() for n in spec.split(",")]
    config = SynthConfig(spacing_mm=0.4)
    for name in ["(none)", *names]:
        times = []
        for r in range(repeats):
            t0 = time.perf_counter()
            make_patient(config, np.random.default_rng(r), 0, () if name == "(none)" else (name,))
            times.append(time.perf_counter() - t0)
        print(f"{name:22s} median {np.median(times):6.2f} s  (runs: {', '.join(f'{t:.2f}' for t in times)})")


if __name__ == "__main__":
    main()
