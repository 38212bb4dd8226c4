"""A curation run over a drop's cases, from their summaries: its configuration, quarantine, stage totals and the
provenance of the version it publishes.

A run's summaries are :class:`~toothmcl_data.curate.case.CaseSummary` dicts, one per case of the drop's plan; the
de-identification tables of the run are ``WORK/tables/{inventory,quarantine}.parquet``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toothmcl_data.configdict import config_from_dict
from toothmcl_data.curate.clock import STAGES
from toothmcl_data.errors import InputError
from toothmcl_data.pair import PairConfig
from toothmcl_data.provenance import code_version
from toothmcl_data.register import RegisterConfig
from toothmcl_data.store import Provenance
from toothmcl_data.store.tables import read_parquet


@dataclass(frozen=True)
class CurationConfig:
    """What curation runs with: the registration and the pairing configuration."""

    register: RegisterConfig = field(default_factory=RegisterConfig)
    pair: PairConfig = field(default_factory=PairConfig)


def curation_config(overrides: Sequence[str] = ()) -> dict[str, Any]:
    """The configuration curation runs with, as JSON-able dicts: ``{"register": …, "pair": …}`` (part of a case's
    cache key and of the published version's provenance): the defaults with ``overrides`` applied, each a
    ``--set`` item ``register.KEY=VALUE`` or ``pair.KEY=VALUE`` (validated: unknown keys and wrong types raise
    :class:`~toothmcl_data.errors.ConfigError` naming them)."""
    config = config_from_dict(CurationConfig, {}, where="curation", overrides=overrides)
    return {"register": config.register.to_dict(), "pair": config.pair.to_dict()}


def _table(work: Path, name: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = read_parquet((work / "tables" / f"{name}.parquet").read_bytes()).to_pylist()
    return rows


def run_quarantine(work: Path, summaries: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every quarantine row of the run, one per input unit: those of de-identification
    (``work/tables/quarantine.parquet``) and one per case that failed registration or pairing (``record`` None),
    its used files listed by sha256 from ``work/tables/inventory.parquet``."""
    rows = _table(work, "quarantine")
    inventory = _table(work, "inventory")
    for s in summaries:
        if s["record"] is not None:
            continue
        files = [r for r in inventory if r["case"] == s["pseudonym"] and r["fate"] == "used"]
        rows.append(
            {
                "unit": f"case:{s['pseudonym']}",
                "case": s["pseudonym"],
                "kind": "case",
                "format": "",
                "role": "register/pair",
                "n_files": len(files),
                "size": sum(int(r["size"]) for r in files),
                "files": sorted(r["sha256"] for r in files),
                "reason": s["reason"],
            }
        )
    return rows


def stage_totals(
    summaries: Sequence[Mapping[str, Any]], computed: Sequence[bool], field: str = "seconds"
) -> dict[str, float]:
    """Seconds per stage of :data:`STAGES` summed over the cases this run computed (``computed[i]`` False: case
    ``i`` was a cache hit, its summary carrying its first run's times), rounded to ms. ``field``: ``"seconds"``
    (wall) or ``"cpu_seconds"`` (the stage's thread; a summary without it counts 0)."""
    chosen = [s for s, c in zip(summaries, computed, strict=True) if c]
    return {stage: round(sum(s.get(field, {}).get(stage, 0.0) for s in chosen), 3) for stage in STAGES}


def nothing_to_publish(raw: str, work: Path, audit: Path, n_cases: int, quarantine: list[dict[str, Any]]) -> InputError:
    """The error of a run whose every case of the drop ``raw`` was quarantined (never an empty version in silence)."""
    files = sum(int(r["n_files"]) for r in quarantine)
    reasons = min((str(r["reason"]) for r in quarantine), default="")
    return InputError(
        f"build {raw}: no case can be published — {n_cases} cases found, {len(quarantine)} input units "
        f"({files} files) quarantined (e.g. {reasons or 'no medical files found'}). No version was published. "
        f"Reasons per unit: {work / 'tables' / 'quarantine.parquet'} (paths: {audit / 'inventory.parquet'}); "
        "fix or replace those inputs and run again"
    )


def curation_provenance(
    work: Path, *, key_fingerprint: str, source: str = "", licence: str = "", config: Mapping[str, Any] | None = None
) -> tuple[Provenance, list[dict[str, Any]]]:
    """The provenance of the version a run publishes (code version, :func:`curation_config`, every input's sha256
    → fate from ``work/tables/inventory.parquet``, the key's fingerprint, ``source`` and ``licence`` for the card),
    and the inventory rows it was read from. ``config``: the run's :func:`curation_config` (default: the defaults)."""
    inventory = _table(work, "inventory")
    provenance = Provenance(
        code_version=code_version(),
        config=dict(config) if config is not None else curation_config(),
        input_hashes={row["sha256"]: row["fate"] for row in inventory if "sha256" in row},
        key_fingerprint=key_fingerprint,
        source=source,
        licence=licence,
    )
    return provenance, inventory
