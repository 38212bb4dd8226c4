"""A version's contents beside the case arrays: its tables (cases, scans, teeth, pairs, registrations,
inventory, quarantine, splits, provenance; built from the rows a publish gathered) and its dataset card, each
written into the session as the bytes of one Parquet / JSON / Markdown file with its sha256 (layout in
:mod:`toothmcl_data.store.layout`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from toothmcl_data.errors import StoreError
from toothmcl_data.store import layout as lay
from toothmcl_data.store.card import build_card, render_markdown
from toothmcl_data.store.records import Provenance, canonical_json
from toothmcl_data.store.splits import SplitConfig, assign_splits
from toothmcl_data.store.tables import (
    check_columns,
    content_hash,
    parquet_bytes,
    read_parquet,
    to_arrow,
    version_hash,
)


def build_tables(
    rows: Mapping[str, list[dict[str, Any]]],
    inventory: list[Mapping[str, Any]],
    quarantine: list[Mapping[str, Any]],
    provenance: Provenance,
    splits: SplitConfig,
    *,
    base_tables: Mapping[str, Any],
    where: str,
) -> dict[str, Any]:
    """Every table of a version (name → Arrow table): the case tables from ``rows`` (name → row dicts, as the
    writer gathered them), ``inventory`` and ``quarantine`` rows, the split of every case (cases the base
    version already split keep their split: ``base_tables["splits"]``) and the provenance. ``where`` names
    the store in error messages."""
    check_columns("inventory", inventory, where)
    check_columns("quarantine", quarantine, where)
    cases = to_arrow("cases", rows["cases"])
    names = cases.column("pseudonym").to_pylist() if cases.num_rows else []
    strata = None
    if splits.stratify_by is not None:
        if cases.num_rows and splits.stratify_by not in cases.column_names:
            raise StoreError(
                f"{where}: splits stratified by {splits.stratify_by!r}, but the cases table has no "
                f"such column (columns: {', '.join(cases.column_names)}); add it to CaseRecord.attributes"
            )
        strata = dict(zip(names, cases.column(splits.stratify_by).to_pylist(), strict=True)) if names else {}
    previous = {}
    if "splits" in base_tables and base_tables["splits"].num_rows:
        previous = {r["pseudonym"]: r["split"] for r in base_tables["splits"].to_pylist()}
    assigned = assign_splits(names, splits, previous=previous, strata=strata)
    prov = {**provenance.to_dict(), "splits": {**splits.to_dict(), "key": splits.key_fingerprint}}
    return {
        "cases": cases,
        "scans": to_arrow("scans", rows["scans"]),
        "teeth": to_arrow("teeth", rows["teeth"]),
        "pairs": to_arrow("pairs", rows["pairs"]),
        "registrations": to_arrow("registrations", rows["registrations"]),
        "inventory": to_arrow("inventory", inventory),
        "quarantine": to_arrow("quarantine", quarantine),
        "splits": to_arrow("splits", [{"pseudonym": p, "split": s} for p, s in assigned.items()]),
        "provenance": to_arrow("provenance", [{"field": k, "value": canonical_json(v)} for k, v in prov.items()]),
    }


def encode_tables(
    built: Mapping[str, Any],
) -> tuple[dict[str, bytes], dict[str, Any], dict[str, str], str]:
    """(Parquet bytes, the tables as read back from those bytes, content hash per table, version hash) of
    ``built`` (name → Arrow table). The hashes are taken of what readers will see, not of what was built."""
    payloads = {name: parquet_bytes(t) for name, t in built.items()}
    tables = {name: read_parquet(payload) for name, payload in payloads.items()}
    hashes = {name: content_hash(name, t) for name, t in tables.items()}
    return payloads, tables, hashes, version_hash(hashes)


def write_tables_and_card(
    zstore: Any,
    tables: Mapping[str, Any],
    payloads: Mapping[str, bytes],
    hashes: Mapping[str, str],
    *,
    vhash: str,
    provenance: Provenance,
    splits: SplitConfig,
) -> None:
    """Write each table (``payloads[name]``: its Parquet bytes, ``hashes[name]``: its content hash) and the
    card (JSON and Markdown) built from them into the session's store ``zstore``."""
    card = build_card(
        tables,
        content_hash=vhash,
        provenance=provenance.to_dict(),
        splits={
            "fractions": list(splits.fractions),
            "stratify_by": splits.stratify_by,
            "key_fingerprint": splits.key_fingerprint,
        },
    )
    for name, table in tables.items():
        payload = payloads[name]
        lay.create_bytes(
            zstore,
            f"tables/{name}",
            payload,
            {"sha256": _sha256(payload), "content_sha256": hashes[name], "rows": table.num_rows},
        )
    card_json = canonical_json(card).encode()
    lay.create_bytes(zstore, "card/json", card_json, {"sha256": _sha256(card_json)})
    card_md = render_markdown(card).encode()
    lay.create_bytes(zstore, "card/md", card_md, {"sha256": _sha256(card_md)})


def _sha256(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()
