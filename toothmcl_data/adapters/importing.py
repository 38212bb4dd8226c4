"""Source dataset cards (``catalogs/sources/<name>.yaml``) and publishing imported cases into a store version."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from toothmcl_data.errors import ConfigError, VersionNotFoundError
from toothmcl_data.store import CaseRecord, Provenance, VersionInfo, open_version
from toothmcl_data.store.writer import Writer

log = logging.getLogger(__name__)

CARD_KEYS = ("name", "kind", "url", "licence", "layout", "label_scheme")


def sources_dir() -> Path:
    """``catalogs/sources`` of this checkout."""
    return Path(__file__).resolve().parents[2] / "catalogs" / "sources"


def load_source_card(name: str, directory: Path | None = None) -> dict[str, Any]:
    """The card of source dataset ``name``, checked to have :data:`CARD_KEYS` and ``kind: source_dataset``."""
    path = (directory or sources_dir()) / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"{path}: no source dataset card {name!r}; add catalogs/sources/{name}.yaml")
    try:
        card = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err}); fix the card") from err
    if not isinstance(card, dict):
        raise ConfigError(f"{path}: expected a mapping with keys {list(CARD_KEYS)}")
    missing = [k for k in CARD_KEYS if k not in card]
    if missing or card.get("kind") != "source_dataset" or card.get("name") != name:
        raise ConfigError(
            f"{path}: a source card needs keys {list(CARD_KEYS)}, kind 'source_dataset' and name {name!r}; "
            f"missing {missing}, kind {card.get('kind')!r}, name {card.get('name')!r}"
        )
    return card


def file_sha256(*paths: Path) -> str:
    """sha256 (hex) over the bytes of ``paths`` in order."""
    h = hashlib.sha256()
    for path in paths:
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def existing_cases(store: str | Path) -> list[str]:
    """Pseudonyms of the store's latest version ([] for a new or empty store)."""
    try:
        return open_version(store, "latest").case_ids()
    except VersionNotFoundError:  # handled: a new store has no version yet, so no case
        return []


def counted(records: Iterable[CaseRecord], advance: Callable[[int], None] | None) -> Iterator[CaseRecord]:
    """Yield ``records``, calling ``advance(1)`` after each (progress bars)."""
    for record in records:
        yield record
        if advance is not None:
            advance(1)


def import_records(
    store: str | Path,
    records: Iterable[CaseRecord],
    *,
    card: Mapping[str, Any],
    input_hashes: Mapping[str, str],
    message: str,
    tag: str | None = None,
) -> VersionInfo:
    """Publish ``records`` as the store's next version, keeping the latest version's other cases unchanged
    (a case with the same pseudonym is replaced). Provenance names the source card's name, url and licence."""
    before = existing_cases(store)
    provenance = Provenance(
        code_version="toothmcl_data.adapters",
        config={"source_card": dict(card)},
        input_hashes=dict(input_hashes),
        source=f"{card['name']} ({card['url']})",
        licence=str(card["licence"]),
    )
    with Writer(store, base="latest") as writer:
        written: set[str] = set()
        for record in records:
            writer.write_case(record)
            written.add(record.pseudonym)
        for pseudonym in before:
            if pseudonym not in written:
                writer.keep(pseudonym)
        info = writer.commit(message=message, provenance=provenance, tag=tag)
    log.info("imported %d %s cases into %s (%d kept)", len(written), card["name"], store, len(before))
    return info
