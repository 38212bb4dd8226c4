"""The work of one case in the curation flow, as plain functions (no Prefect): a flow task calls
:func:`curate_case`, and ``bench/curate.py`` calls the same function in-process to time its stages.

One case, start to end, in one process: its raw files are read once (the CBCT decoded from the same bytes
that are de-identified), the decoded CBCT stays in memory for registration and pairing, and what leaves the
function is a small summary plus the case record file that publishing streams into the store.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import pickle
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from toothmcl_data.deid.run import deidentify_case
from toothmcl_data.errors import ToothmclError
from toothmcl_data.io.case import load_case
from toothmcl_data.io.group import RawCase
from toothmcl_data.pair import pair_case
from toothmcl_data.register import cbct_surface, register_jaw
from toothmcl_data.register.figures import registration_png
from toothmcl_data.store import CaseRecord

RECORDS = "records"
FIGURES = "figures"
STAGES = ("ingest", "deid", "register", "pair", "figures", "record")
"""Per-case stages timed by :func:`curate_case` (seconds): ``ingest`` reads and decodes the raw inputs (and the
de-identified meshes back), ``deid`` de-identifies and writes them, ``register`` extracts the CBCT surface and
registers each jaw, ``pair`` pairs the teeth, ``figures`` draws the registration pictures, ``record`` saves the
case record for publishing."""


class _Clock:
    """Wall seconds per stage, and CPU seconds of the calling thread (``time.thread_time``: unlike the wall, not
    inflated by other processes on a shared machine, nor by the other task threads of the same flow)."""

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(STAGES, 0.0)
        self.cpu_seconds = dict.fromkeys(STAGES, 0.0)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        t0, c0 = time.perf_counter(), time.thread_time()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - t0
            self.cpu_seconds[name] += time.thread_time() - c0


def save_record(record: CaseRecord, work: Path) -> Path:
    """Write ``record`` to ``work/records/<pseudonym>.pkl`` atomically; returns the path."""
    path = work / RECORDS / f"{record.pseudonym}.pkl"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL))
    tmp.replace(path)
    return path


def release_memory() -> None:
    """Collect garbage and hand freed heap pages back to the system (glibc ``malloc_trim``; a no-op elsewhere).

    Without it a long-lived worker's RSS creeps up by a few MB per case (freed arrays stay in the C heap), so
    the peak grows with the number of cases; with it the RSS returns to its baseline after each case.

    The first call also freezes what survives its collection (``gc.freeze``: the imported libraries, hundreds of
    thousands of objects, that every full collection would otherwise walk again — 0.16 s CPU each with Prefect,
    pandas and matplotlib loaded); later collections walk only objects made since. Frozen objects are still
    freed by reference counting; only a cycle among them would stay."""
    global _FROZEN
    gc.collect()
    if not _FROZEN:
        gc.freeze()
        _FROZEN = True
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _libc() -> Any:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "malloc_trim") else None
    except OSError:  # handled: no C library to trim the heap with; memory is then returned later, not lost
        return None


_LIBC = _libc()
_FROZEN = False


def curate_case(raw_case: RawCase, work: Path, audit: Path, *, key: bytes, figures: bool = True) -> dict[str, Any]:
    """De-identify, register and pair one raw case; save its record under ``work/records``.

    Returns a summary without identity: ``pseudonym``, ``written`` (a case folder came out of
    de-identification), ``record`` (path of the saved record, or None when quarantined), ``reason`` (why),
    ``verdicts`` (QC per jaw), ``pairs``, ``flags``, ``seconds`` and ``cpu_seconds`` per stage (:data:`STAGES`).
    The case's arrays are freed and the heap trimmed before it returns (:func:`release_memory`).
    """
    try:
        return _curate(raw_case, work, audit, key=key, figures=figures)
    finally:
        release_memory()


def _curate(raw_case: RawCase, work: Path, audit: Path, *, key: bytes, figures: bool) -> dict[str, Any]:
    clock = _Clock()
    c0 = time.thread_time()
    result = deidentify_case(raw_case, work, key=key, audit=audit, keep_cbct=True)
    clock.seconds["ingest"] += result.seconds.get("read", 0.0)
    clock.seconds["deid"] += result.seconds.get("deid", 0.0)
    cpu = time.thread_time() - c0  # split between reading and de-identifying as the wall splits
    wall = clock.seconds["ingest"] + clock.seconds["deid"]
    clock.cpu_seconds["ingest"] += cpu * (clock.seconds["ingest"] / wall if wall > 0 else 1.0)
    clock.cpu_seconds["deid"] += cpu * (clock.seconds["deid"] / wall if wall > 0 else 0.0)
    summary: dict[str, Any] = {
        "pseudonym": result.pseudonym,
        "written": result.written,
        "record": None,
        "verdicts": {},
        "reason": "",
        "seconds": clock.seconds,
        "cpu_seconds": clock.cpu_seconds,
    }
    if not result.written:  # every input quarantined at de-identification (reasons in the inventory)
        return summary
    with clock.stage("ingest"):
        case = load_case(work / "cases" / result.pseudonym, cbct=result.cbct)
    del result  # the CBCT now lives in ``case`` only
    try:
        if case.cbct is None or not case.ios:
            raise ToothmclError(f"case {case.pseudonym} needs a CBCT and at least one IOS jaw to be paired")
        with clock.stage("register"):
            surface = cbct_surface(case.cbct, case.cbct_labels, where=f"case {case.pseudonym}")
            registrations = {
                jaw: register_jaw(case.cbct, mesh, cbct_labels=case.cbct_labels, surface=surface)
                for jaw, mesh in case.ios.items()
            }
        with clock.stage("pair"):
            paired = pair_case(case, registrations, surface=surface)
    except ToothmclError as err:
        summary["reason"] = str(err)
        return summary
    if figures:
        with clock.stage("figures"):
            for jaw, reg in registrations.items():
                registration_png(case.cbct, case.ios[jaw], reg, work / FIGURES / f"{case.pseudonym}_{jaw}.png")
    # The case carries a CBCT tooth label map: its own, else the paired IOS teeth's labels transferred into the CBCT.
    labelled = replace(case, cbct_labels=paired.cbct_labels)
    attributes = {"cbct_labels_source": paired.cbct_labels_source}
    with clock.stage("record"):
        path = save_record(CaseRecord(labelled, registrations, paired.pairs, paired.teeth, attributes), work)
    summary |= {
        "record": str(path),
        "verdicts": {j: r.verdict for j, r in registrations.items()},
        "pairs": len(paired.pairs),
        "flags": list(paired.flags),
    }
    return summary


def load_records(paths: list[str]) -> Iterator[CaseRecord]:
    """The saved records at ``paths``, one in memory at a time (the heap trimmed between them)."""
    for path in paths:
        record = pickle.loads(Path(path).read_bytes())
        yield record
        del record
        release_memory()
