"""Managing versions: create a store, list, tag, diff, verify, check out as plain files, garbage-collect."""

from __future__ import annotations

import datetime
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import icechunk

from toothmcl_data.errors import StoreError
from toothmcl_data.store.layout import TABLES, LayoutConfig
from toothmcl_data.store.reader import VersionReader, open_version
from toothmcl_data.store.records import case_content_hash
from toothmcl_data.store.repo import VersionInfo, create_tag, list_infos, open_repo, resolve
from toothmcl_data.store.tables import content_hash, version_hash
from toothmcl_data.store.writer import publish


def create_store(store: str | Path, *, layout: LayoutConfig | None = None, message: str = "empty store") -> VersionInfo:
    """Create a store with a first, empty version (no cases); refuses a store that already has versions."""
    repo = open_repo(store, create=True)
    if list_infos(repo):
        raise StoreError(f"store {store}: already has versions; publish into it instead of creating it")
    return publish(store, [], message=message, layout=layout)


def list_versions(store: str | Path) -> list[VersionInfo]:
    """Every version, newest first."""
    return list_infos(open_repo(store))


def tag_version(store: str | Path, tag: str, version: str = "latest") -> VersionInfo:
    """Name a version; tags are immutable (an existing tag is an error)."""
    repo = open_repo(store)
    info = resolve(repo, version, store=store)
    create_tag(repo, tag, info.id, store=store)
    return resolve(repo, info.id, store=store)


def diff_versions(store: str | Path, a: str, b: str) -> dict[str, Any]:
    """Cases added, removed and changed from ``a`` to ``b``, and per-table row counts and content changes."""
    ra, rb = open_version(store, a), open_version(store, b)

    def hashes(r: VersionReader) -> dict[str, str]:
        t = r.table("cases")
        if not t.num_rows:
            return {}
        return dict(zip(t.column("pseudonym").to_pylist(), t.column("content_sha256").to_pylist(), strict=True))

    ha, hb = hashes(ra), hashes(rb)
    tables = {}
    for name in TABLES:
        ta, tb = ra.table(name), rb.table(name)
        tables[name] = {
            "rows_a": ta.num_rows,
            "rows_b": tb.num_rows,
            "changed": content_hash(name, ta) != content_hash(name, tb),
        }
    return {
        "a": ra.id,
        "b": rb.id,
        "added": sorted(set(hb) - set(ha)),
        "removed": sorted(set(ha) - set(hb)),
        "changed": sorted(p for p in set(ha) & set(hb) if ha[p] != hb[p]),
        "unchanged": len([p for p in set(ha) & set(hb) if ha[p] == hb[p]]),
        "tables": tables,
    }


@dataclass
class VerifyReport:
    """What ``verify`` checked and every problem it found (``ok`` when none)."""

    version: str
    content_hash: str
    cases_checked: int = 0
    tables_checked: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "content_hash": self.content_hash,
            "ok": self.ok,
            "cases_checked": self.cases_checked,
            "tables_checked": self.tables_checked,
            "problems": list(self.problems),
        }


def verify_version(
    store: str | Path, version: str = "latest", *, on_case: Callable[[str], None] | None = None
) -> VerifyReport:
    """Re-read one version and check every hash: Parquet bytes, table content, each case's content (arrays,
    meshes, registrations, pairs, tooth rows) and the version content hash."""
    reader = open_version(store, version)
    report = VerifyReport(reader.id, reader.content_hash)
    raw: Any = reader.root.attrs.get("toothmcl", {})
    meta: dict[str, Any] = dict(raw)
    hashes: dict[str, str] = {}
    for name in TABLES:
        attrs = reader.root[f"tables/{name}"].attrs
        payload = reader.table_bytes(name)
        if hashlib.sha256(payload).hexdigest() != attrs["sha256"]:
            report.problems.append(f"table {name}: Parquet bytes do not match their recorded sha256")
            continue
        hashes[name] = content_hash(name, reader.table(name))
        if hashes[name] != meta.get("tables", {}).get(name):
            report.problems.append(f"table {name}: content hash differs from the one committed")
        report.tables_checked += 1
    if len(hashes) == len(TABLES) and version_hash(hashes) != reader.content_hash:
        report.problems.append(
            f"version content hash: recomputed {version_hash(hashes)[:16]}…, committed {reader.content_hash[:16]}…"
        )
    cases = reader.table("cases")
    recorded = (
        dict(zip(cases.column("pseudonym").to_pylist(), cases.column("content_sha256").to_pylist(), strict=True))
        if cases.num_rows
        else {}
    )
    for pseudonym, expected in sorted(recorded.items()):
        try:
            found = case_content_hash(reader.record(pseudonym))
        except (StoreError, KeyError, ValueError) as err:
            report.problems.append(f"case {pseudonym}: cannot be read back: {err}")
            continue
        if found != expected:
            report.problems.append(f"case {pseudonym}: content hash {found[:16]}… ≠ recorded {expected[:16]}…")
        report.cases_checked += 1
        if on_case is not None:
            on_case(pseudonym)
    pairs = reader.pairs()
    if len(pairs) != reader.table("pairs").num_rows:
        report.problems.append(f"pairs: {len(pairs)} filled slots but {reader.table('pairs').num_rows} rows in table")
    return report


def checkout_version(store: str | Path, version: str, out: str | Path) -> dict[str, Any]:
    """Write a version's tables as plain Parquet files (``out/tables/<name>.parquet``), ``card.json``,
    ``card.md`` and ``version.json`` — readable by pandas, pyarrow and duckdb without toothmcl."""
    reader = open_version(store, version)
    out = Path(out)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    files = {}
    for name in TABLES:
        payload = reader.table_bytes(name)
        target = out / "tables" / f"{name}.parquet"
        tmp = target.with_suffix(".parquet.tmp")
        tmp.write_bytes(payload)
        tmp.replace(target)
        files[name] = hashlib.sha256(payload).hexdigest()
    (out / "card.json").write_text(json.dumps(reader.card(), indent=2, sort_keys=True))
    (out / "card.md").write_text(reader.card_markdown())
    summary = {**reader.info.to_dict(), "tables": files, "out": str(out)}
    (out / "version.json").write_text(json.dumps(summary, indent=2, sort_keys=True))
    return summary


def gc_store(store: str | Path, *, grace_seconds: float = 3600.0, dry_run: bool = False) -> dict[str, int]:
    """Delete objects no version (branch tip ancestry or tag) references — e.g. chunks of a publish that was
    killed — if older than ``grace_seconds`` (so a publish in progress is never touched)."""
    if grace_seconds < 0:
        raise StoreError(f"gc: grace_seconds must be ≥ 0, got {grace_seconds}")
    repo = open_repo(store)
    cutoff = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=grace_seconds)
    try:
        summary = repo.garbage_collect(cutoff, dry_run=dry_run)
    except icechunk.IcechunkError as err:
        raise StoreError(f"store {store}: garbage collection failed: {err}") from err
    return {
        "bytes_deleted": int(summary.bytes_deleted),
        "chunks_deleted": int(summary.chunks_deleted),
        "manifests_deleted": int(summary.manifests_deleted),
        "snapshots_deleted": int(summary.snapshots_deleted),
        "dry_run": int(dry_run),
    }
