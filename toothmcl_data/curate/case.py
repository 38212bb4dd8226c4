"""Curating one case: de-identify → register → pair → save its record, each stage on the clock.

A flow task calls :func:`curate_case` once per raw case; ``bench/curate.py`` calls the same function in-process
to time its stages. The case's raw files are read once (the CBCT decoded from the same bytes that are
de-identified) and the decoded CBCT and the written scans stay in memory for registration and pairing.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, TypedDict

from toothmcl_data.curate.clock import StageClock
from toothmcl_data.curate.recordfiles import save_record
from toothmcl_data.deid.case import deidentify_case
from toothmcl_data.errors import ToothmclError
from toothmcl_data.heap import heap_for_mid_size_arrays, release_memory
from toothmcl_data.io.case import load_case
from toothmcl_data.io.group import RawCase
from toothmcl_data.pair import PairConfig, pair_case
from toothmcl_data.register import RegisterConfig, cbct_surface, register_jaw
from toothmcl_data.register.figures import registration_png
from toothmcl_data.store import CaseRecord

FIGURES = "figures"
"""Folder of the registration pictures under the working folder (``<pseudonym>_<jaw>.png``)."""


class CaseSummary(TypedDict, total=False):
    """What :func:`curate_case` returns: no identity, small enough for a flow's result storage.

    ``pseudonym``; ``written``: a case folder came out of de-identification; ``record``: path of the saved record
    (None when the case was quarantined); ``reason``: why it was quarantined ("" otherwise); ``verdicts``: QC
    verdict per registered jaw; ``pairs``: number of tooth pairs and ``flags``: pairing flags (only for a recorded
    case); ``seconds`` and ``cpu_seconds``: wall and thread-CPU seconds per stage of
    :data:`~toothmcl_data.curate.clock.STAGES`."""

    pseudonym: str
    written: bool
    record: str | None
    reason: str
    verdicts: dict[str, str]
    pairs: int
    flags: list[str]
    seconds: dict[str, float]
    cpu_seconds: dict[str, float]


def missing_outputs(summary: CaseSummary, work: Path, audit: Path) -> list[Path]:
    """What ``summary`` (a case's result, e.g. a cached one from an earlier run) names that ``work`` and ``audit``
    no longer hold — its audit record, its de-identified case folder, its record file — deleted or moved since:
    such a case must be curated again (empty when everything is there)."""
    pseudonym = summary["pseudonym"]
    wanted = [audit / "cases" / f"{pseudonym}.json"]
    if summary["written"]:
        wanted.append(work / "cases" / pseudonym / "case.json")
    if summary["record"]:
        wanted.append(Path(summary["record"]))
    return [p for p in wanted if not p.is_file()]


def curate_case(
    raw_case: RawCase,
    work: Path,
    audit: Path,
    *,
    key: bytes,
    figures: bool = True,
    config: Mapping[str, Any] | None = None,
) -> CaseSummary:
    """De-identify, register and pair one raw case; save its record under ``work/records``.

    ``work``: the run's working folder (de-identified cases, tables, records, figures); ``audit``: the restricted
    folder for what names originals; ``key``: the pseudonymisation key; ``figures``: draw a registration picture
    per jaw under ``work/figures``; ``config``: ``{"register": …, "pair": …}`` as
    :func:`~toothmcl_data.curate.drop.curation_config` gives it (default: the defaults). A case that fails
    registration or pairing (a :class:`ToothmclError`) is not raised: its summary carries ``record=None`` and the
    ``reason``. Mid-size arrays come from the heap, even in a Dask worker
    (:func:`~toothmcl_data.heap.heap_for_mid_size_arrays`); the case's arrays are freed and the heap trimmed before
    it returns (:func:`~toothmcl_data.heap.release_memory`).
    """
    heap_for_mid_size_arrays()
    try:
        register = RegisterConfig.from_dict(config["register"]) if config else RegisterConfig()
        pair = PairConfig.from_dict(config["pair"]) if config else PairConfig()
        return _curate(raw_case, work, audit, key=key, figures=figures, register=register, pair=pair)
    finally:
        release_memory()


def _curate(
    raw_case: RawCase,
    work: Path,
    audit: Path,
    *,
    key: bytes,
    figures: bool,
    register: RegisterConfig,
    pair: PairConfig,
) -> CaseSummary:
    clock = StageClock()
    c0 = time.thread_time()
    result = deidentify_case(raw_case, work, key=key, audit=audit, keep_cbct=True, keep_meshes=True)
    seconds = {"ingest": result.seconds.get("read", 0.0), "deid": result.seconds.get("deid", 0.0)}
    clock.add(seconds, time.thread_time() - c0)
    summary: CaseSummary = {
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
        case = load_case(work / "cases" / result.pseudonym, cbct=result.cbct, ios=result.ios)
    del result  # the CBCT now lives in ``case`` only
    try:
        if case.cbct is None or not case.ios:
            raise ToothmclError(f"case {case.pseudonym} needs a CBCT and at least one IOS jaw to be paired")
        with clock.stage("register"):
            surface = cbct_surface(
                case.cbct, case.cbct_labels, profile_mm=register.profile_mm, where=f"case {case.pseudonym}"
            )
            registrations = {
                jaw: register_jaw(case.cbct, mesh, cbct_labels=case.cbct_labels, config=register, surface=surface)
                for jaw, mesh in case.ios.items()
            }
        with clock.stage("pair"):
            paired = pair_case(case, registrations, pair, surface=surface)
    except ToothmclError as err:  # handled: the case is quarantined with this reason, the other cases go on
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
    summary["record"] = str(path)
    summary["verdicts"] = {j: r.verdict for j, r in registrations.items()}
    summary["pairs"] = len(paired.pairs)
    summary["flags"] = list(paired.flags)
    return summary
