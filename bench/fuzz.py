"""Fuzz ingest + de-identification with hostile variants of every input kind the library reads.

Run: ``OMP_NUM_THREADS=1 python bench/fuzz.py --n 2000 --seed 1 [--json]`` (``--case I`` reruns case I in this
process and shows its traceback).

Each case is a one-patient drop (a CBCT — DICOM series or NIfTI — plus an upper-jaw mesh with its label
sidecar) built from the seeds of :mod:`toothmcl_data.synth.seeds`, in which exactly one file is mutated by
:func:`toothmcl_data.synth.mutate.mutate`; the drop goes through ``deidentify_drop`` (discover, group, match,
read, check, de-identify, write, inventory tables) and the output through the leak scanner. Cases run one at a
time in a worker process under an address-space limit (``--mem-mb``, so an allocation sized from a header is a
``MemoryError``, not a swapping machine), each with a ``--timeout`` (10 s); a worker that dies or hangs is
replaced. Every case ends in exactly one outcome for the mutated file:

- ``ingested``: used in the case (the mutation left it readable);
- ``quarantined``: quarantined with a reason that names the file (its ``sha256:`` ref);
- ``ignored``: no longer recognisable as medical data (the reason says so);
- ``unnamed``: quarantined, but the reason does not name the file;
- ``bare_error``: a reader or writer raised a built-in exception (not a project error with context) that the
  de-identification stage then turned into a quarantine;
- ``leaked``: the output holds a PHI string of the seed patient;
- ``crashed``: ``deidentify_drop`` raised, or the worker died (signal, memory);
- ``hung``: the case ran longer than the timeout.

Goal (issue 15): 0 crashed, 0 hung, 0 unnamed, 0 bare_error, 0 leaked. Peak RSS is the worker's high-water
mark per case (``/proc/self/clear_refs`` resets it before each case).
"""

from __future__ import annotations

import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import argparse
import contextlib
import json
import resource
import selectors
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

OUTCOMES = ("ingested", "quarantined", "ignored", "unnamed", "bare_error", "leaked", "crashed", "hung")
BAD = ("unnamed", "bare_error", "leaked", "crashed", "hung")
TARGETS = (
    "dicom", "dicom", "dicom", "nifti", "nifti_gz",
    "stl", "ply", "ply_ascii", "obj", "vtp_ascii", "vtp_binary", "vtp_appended", "json", "json",
)  # fmt: skip
KEY = b"toothmcl-fuzz-key-0123456789abcdef"
_MARK = "@@fuzz "


def build_case(root: Path, seeds: Any, seed: int, index: int) -> dict[str, Any]:
    """Write case ``index``'s drop under ``root/drop``; returns its description (target, mutation, file)."""
    from toothmcl_data.synth.mutate import mutate
    from toothmcl_data.synth.seeds import MESH_FORMATS

    rng = np.random.default_rng([seed, index])
    target = str(rng.choice(TARGETS))
    mesh_fmt = target if target in MESH_FORMATS else str(rng.choice(MESH_FORMATS))
    cbct = target if target in ("dicom", "nifti", "nifti_gz") else str(rng.choice(["dicom", "nifti_gz"]))
    files: dict[str, bytes] = {}
    if cbct == "dicom":
        files |= {f"P/cbct/IM{k + 1:04d}": b for k, b in enumerate(seeds.dicom)}
    else:
        files["P/cbct.nii.gz" if cbct == "nifti_gz" else "P/cbct.nii"] = getattr(seeds, cbct)
    suffix, mesh, side = seeds.meshes[mesh_fmt]
    files[f"P/upper{suffix}"] = mesh
    files["P/upper.json"] = side
    if target == "dicom":
        victim, kind = f"P/cbct/IM{int(rng.integers(len(seeds.dicom))) + 1:04d}", "dicom"
    elif target.startswith("nifti"):
        victim, kind = next(p for p in files if ".nii" in p), "nifti"
    elif target == "json":
        victim, kind = "P/upper.json", "json"
    else:
        victim, kind = f"P/upper{suffix}", "mesh"
    mutation, files[victim] = mutate(kind, target, files[victim], rng)
    drop = root / "drop"
    for rel, data in files.items():
        (drop / rel).parent.mkdir(parents=True, exist_ok=True)
        (drop / rel).write_bytes(data)
    return {"case": index, "target": target, "mutation": mutation, "file": victim, "mesh": mesh_fmt, "cbct": cbct}


def _peak_reset() -> None:
    # Not Linux, or not allowed: the peak then covers the worker's life so far.
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def _peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _instrument(bare: list[str]) -> None:
    """Record any built-in exception (not a ToothmclError) that leaves a reader or writer of the de-id stage."""
    from toothmcl_data.deid import case as run  # the module whose readers and writers one case calls
    from toothmcl_data.errors import ToothmclError

    def wrap(name: str) -> None:
        inner = getattr(run, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return inner(*args, **kwargs)
            except ToothmclError:
                raise
            except Exception as err:
                bare.append(f"{name}: {type(err).__name__}: {err}"[:300])
                raise

        setattr(run, name, call)

    for name in ("_read_cbct", "_read_ios", "write_dicom", "write_volume", "write_ios"):
        wrap(name)


def run_case(root: Path, desc: dict[str, Any], phi: tuple[str, ...], bare: list[str]) -> dict[str, Any]:
    """De-identify ``root/drop`` and scan the output; the outcome of the mutated file (see the module docstring)."""
    import pyarrow.parquet as pq

    from toothmcl_data.deid.run import deidentify_drop
    from toothmcl_data.deid.scan import scan_tree

    bare.clear()
    out, audit = root / "out", root / "audit"
    result = dict(desc)
    try:
        deidentify_drop(root / "drop", out, key=KEY, audit=audit)
    except Exception as err:  # the point of the fuzzer: any escape is a crash, recorded with its traceback
        return result | {
            "outcome": "crashed",
            "reason": f"{type(err).__name__}: {err}"[:500],
            "trace": traceback.format_exc()[-2000:],
        }
    rows = pq.read_table(audit / "inventory.parquet").to_pylist()
    row = next((r for r in rows if r["path"] == desc["file"]), None)
    hits = [h for h in scan_tree(out, phi)[0] if h.where != "unreadable"]
    if row is None:
        return result | {"outcome": "crashed", "reason": "the mutated file has no row in the inventory"}
    result["reason"] = row["reason"]
    if bare:
        return result | {"outcome": "bare_error", "reason": bare[0]}
    if hits:
        return result | {"outcome": "leaked", "reason": f"{hits[0].path}: {hits[0].value}"}
    if row["fate"] == "used":
        return result | {"outcome": "ingested"}
    if row["fate"] == "ignored":
        return result | {"outcome": "ignored"}
    named = f"sha256:{row['sha256'][:12]}" in row["reason"]
    return result | {"outcome": "quarantined" if named and row["fate"] == "quarantined" else "unnamed"}


def worker(mem_mb: int) -> None:
    """Serve cases read from stdin (one JSON line each) until EOF; answer on stdout."""
    import tempfile as _tmp

    from toothmcl_data.synth.seeds import make_seeds

    limit = mem_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    with _tmp.TemporaryDirectory() as tmp:
        seeds = make_seeds(Path(tmp))
    bare: list[str] = []
    _instrument(bare)
    for line in sys.stdin:
        request = json.loads(line)
        root = Path(request["root"])
        _peak_reset()
        t0 = time.perf_counter()
        answer = run_case(root, request["desc"], seeds.phi, bare)
        answer |= {"seconds": round(time.perf_counter() - t0, 3), "peak_rss_mb": round(_peak_mb(), 1)}
        sys.stdout.write(_MARK + json.dumps(answer) + "\n")
        sys.stdout.flush()


class _Worker:
    def __init__(self, mem_mb: int, log: Path) -> None:
        self.log = log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--worker", "--mem-mb", str(mem_mb)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            bufsize=1,
        )
        if self.proc.stdout is None or self.proc.stdin is None:
            raise RuntimeError("the fuzz worker has no pipes")
        self.stdin, self.stdout = self.proc.stdin, self.proc.stdout
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.stdout, selectors.EVENT_READ)

    def ask(self, request: dict[str, Any], timeout: float) -> dict[str, Any] | str:
        """The worker's answer, or ``"hung"`` / ``"died: …"``."""
        try:
            self.stdin.write(json.dumps(request) + "\n")
            self.stdin.flush()
        except BrokenPipeError:
            return f"died: exit {self.proc.wait()}"
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not self.sel.select(left):
                return "hung"
            line = self.stdout.readline()
            if not line:
                return f"died: exit {self.proc.wait()}"
            if line.startswith(_MARK):
                answer: dict[str, Any] = json.loads(line[len(_MARK) :])
                return answer

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def fuzz(n: int, seed: int, *, timeout: float = 10.0, mem_mb: int = 3072, keep: Path | None = None) -> dict[str, Any]:
    """Run ``n`` cases of ``seed``; returns the counts, per-target counts, peak RSS and the bad cases."""
    from toothmcl_data.synth.seeds import make_seeds

    t_start = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="toothmcl-fuzz-"))
    seeds = make_seeds(tmp / "seeds")
    # The worker builds its own seeds (same bytes) for the PHI list; this process writes the drops.
    results: list[dict[str, Any]] = []
    worker_ = _Worker(mem_mb, tmp / "worker.log")
    warm = worker_.ask({"root": str(tmp / "none"), "desc": {"file": ""}}, timeout=300)  # import + seeds
    del warm
    try:
        for i in range(n):
            root = tmp / f"case{i}"
            desc = build_case(root, seeds, seed, i)
            answer = worker_.ask({"root": str(root), "desc": desc}, timeout)
            if isinstance(answer, str):
                worker_.close()
                outcome = "hung" if answer == "hung" else "crashed"
                answer = desc | {"outcome": outcome, "reason": answer, "seconds": timeout, "peak_rss_mb": None}
                worker_ = _Worker(mem_mb, tmp / "worker.log")
            results.append(answer)
            if keep is None or answer["outcome"] not in BAD:
                shutil.rmtree(root, ignore_errors=True)
    finally:
        worker_.close()
    counts = Counter(r["outcome"] for r in results)
    by_target: dict[str, Counter[str]] = {}
    for r in results:
        by_target.setdefault(r["target"], Counter())[r["outcome"]] += 1
    peaks = [r["peak_rss_mb"] for r in results if r.get("peak_rss_mb")]
    worst = max(results, key=lambda r: r.get("peak_rss_mb") or 0.0) if results else {}
    slowest = max(results, key=lambda r: r.get("seconds") or 0.0) if results else {}
    if keep is not None:
        shutil.copytree(tmp, keep, dirs_exist_ok=True)
    shutil.rmtree(tmp, ignore_errors=True)
    return {
        "n": n,
        "seed": seed,
        "timeout_s": timeout,
        "mem_limit_mb": mem_mb,
        "counts": {k: counts.get(k, 0) for k in OUTCOMES},
        "by_target": {t: {k: c.get(k, 0) for k in OUTCOMES if c.get(k)} for t, c in sorted(by_target.items())},
        "mutations": dict(sorted(Counter(f"{r['target']}:{r['mutation']}" for r in results).items())),
        "peak_rss_mb": {"max": max(peaks, default=None), "median": float(np.median(peaks)) if peaks else None},
        "worst_rss_case": {k: worst.get(k) for k in ("case", "target", "mutation", "peak_rss_mb")},
        "slowest_case": {k: slowest.get(k) for k in ("case", "target", "mutation", "seconds")},
        "seconds": round(time.perf_counter() - t_start, 1),
        "bad": [r for r in results if r["outcome"] in BAD],
    }


def _one(seed: int, index: int) -> None:
    """Rerun one case here, with its traceback (for debugging a bad case)."""
    from toothmcl_data.synth.seeds import make_seeds

    with tempfile.TemporaryDirectory() as tmp:
        seeds = make_seeds(Path(tmp) / "seeds")
        desc = build_case(Path(tmp) / "case", seeds, seed, index)
        bare: list[str] = []
        _instrument(bare)
        answer = run_case(Path(tmp) / "case", desc, seeds.phi, bare)
        print(json.dumps(answer, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per case before it counts as hung")
    parser.add_argument("--mem-mb", type=int, default=3072, help="address-space limit of the worker (MiB)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--case", type=int, help="rerun this case in-process and print it")
    parser.add_argument("--keep", type=Path, help="copy the bad cases' drops here")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    a = parser.parse_args()
    if a.worker:
        worker(a.mem_mb)
        return
    if a.case is not None:
        _one(a.seed, a.case)
        return
    report = fuzz(a.n, a.seed, timeout=a.timeout, mem_mb=a.mem_mb, keep=a.keep)
    if a.json:
        print(json.dumps(report, indent=1))
    else:
        print(f"{a.n} cases, seed {a.seed}, {report['seconds']} s")
        for k, v in report["counts"].items():
            print(f"  {k:12s} {v}")
        print(f"  peak RSS     max {report['peak_rss_mb']['max']} MiB, median {report['peak_rss_mb']['median']} MiB")
        for r in report["bad"][:20]:
            print(f"  BAD case {r['case']} {r['target']}:{r['mutation']} {r['outcome']}: {r.get('reason', '')[:200]}")
    sys.exit(1 if any(report["counts"][k] for k in BAD) else 0)


if __name__ == "__main__":
    main()
