"""Curation of a drop, case by case: read → de-identify → register → pair → record, then the run's bookkeeping.

The stage logic the curation flow (``flows.curate``, a Prefect plugin) wires together; no Prefect here. One case,
start to end, in one process (:func:`curate_case`): its raw files are read once (the CBCT decoded from the same
bytes that are de-identified), the decoded CBCT stays in memory for registration and pairing, and what leaves it
is a small summary (:class:`CaseSummary`, no identity) plus the case record file that publishing streams into the
store (:func:`load_records`). The run over all cases (:mod:`toothmcl_data.curate.drop`) turns the summaries into
quarantine rows, per-stage totals and the version's provenance.

- ``clock``: the per-case stages (:data:`STAGES`) and their wall/CPU clock;
- ``recordfiles``: the case record files under ``WORK/records``;
- ``case``: :func:`curate_case`;
- ``publishing``: :class:`RunPublisher`, the run's version written while its cases still run;
- ``drop``: configuration, quarantine rows, stage totals and provenance of a run.
"""

from toothmcl_data.curate.case import FIGURES, CaseSummary, curate_case, missing_outputs
from toothmcl_data.curate.clock import STAGES, StageClock
from toothmcl_data.curate.drop import (
    curation_config,
    curation_provenance,
    nothing_to_publish,
    run_quarantine,
    stage_totals,
)
from toothmcl_data.curate.publishing import RunPublisher
from toothmcl_data.curate.recordfiles import RECORDS, load_records, save_record
from toothmcl_data.heap import release_memory

__all__ = [
    "FIGURES",
    "RECORDS",
    "STAGES",
    "CaseSummary",
    "RunPublisher",
    "StageClock",
    "curate_case",
    "curation_config",
    "curation_provenance",
    "load_records",
    "missing_outputs",
    "nothing_to_publish",
    "release_memory",
    "run_quarantine",
    "save_record",
    "stage_totals",
]
