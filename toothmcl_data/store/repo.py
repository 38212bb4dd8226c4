"""The versioning engine: an Icechunk repository per store, one commit per dataset version.

A store is a URL: a local path (default), ``file://…``, ``s3://bucket/prefix``, ``gs://bucket/prefix`` or
``az://container/prefix`` (object stores take credentials from the environment, as Icechunk does). Versions
live on the branch ``main``; ``"latest"`` is its tip, any other name is a tag or an Icechunk snapshot id.
In-memory stores are not offered: Icechunk's in-memory storage cannot be reopened by URL, so it cannot be
shared between the writer and readers that a store exists for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import icechunk

from toothmcl_data.errors import StoreError, VersionNotFoundError

BRANCH = "main"
META_KEY = "toothmcl"
"""Key of our entry in each commit's metadata (content hash, table hashes, counts)."""
FORMAT_VERSION = 1
_SNAPSHOT_ID = re.compile(r"^[0-9A-Z]{20}$")
_SCHEMES = ("s3://", "gs://", "gcs://", "az://", "azure://")

# Icechunk logs a warning on every local repository open (local disk is not safe for *concurrent commits*:
# the store has one publisher at a time by design, readers never commit). Keep errors only.
icechunk.set_logs_filter("error")


def storage_for(store: str | Path) -> icechunk.Storage:
    """Map a store URL or path to Icechunk storage; raises StoreError for a scheme we do not support."""
    url = str(store)
    if url.startswith("file://"):
        url = url[len("file://") :]
    for scheme in _SCHEMES:
        if url.startswith(scheme):
            bucket, _, prefix = url[len(scheme) :].partition("/")
            if scheme == "s3://":
                return icechunk.s3_storage(bucket=bucket, prefix=prefix, from_env=True)
            if scheme in ("gs://", "gcs://"):
                return icechunk.gcs_storage(bucket=bucket, prefix=prefix, from_env=True)
            return icechunk.azure_storage(account="", container=bucket, prefix=prefix, from_env=True)
    if "://" in url:
        raise StoreError(
            f"store {url!r}: unsupported URL scheme; expected a local path, file://, s3://, gs:// or az:// "
            "(memory:// is not supported: Icechunk in-memory repositories cannot be reopened by URL)"
        )
    return icechunk.local_filesystem_storage(str(Path(url).expanduser().resolve()))


def open_repo(store: str | Path, *, create: bool = False) -> icechunk.Repository:
    """Open the store's repository; with ``create`` make an empty one if there is none yet."""
    storage = storage_for(store)
    try:
        if icechunk.Repository.exists(storage):
            return icechunk.Repository.open(storage)
        if not create:
            raise VersionNotFoundError(
                f"store {store}: no dataset store there; publish a version first "
                f"(`toothmcl-data version create {store}`)"
            )
        return icechunk.Repository.create(storage)
    except icechunk.IcechunkError as err:
        raise StoreError(f"store {store}: cannot open the repository: {err}") from err


@dataclass(frozen=True)
class VersionInfo:
    """One published version: ``id`` is the Icechunk snapshot id, ``content_hash`` the sha256 over its content.

    ``stats`` holds what the publish did (cases written / unchanged / removed, chunk bytes written).
    """

    id: str
    content_hash: str
    message: str
    written_at: str
    parent: str | None
    tags: tuple[str, ...]
    n_cases: int
    stats: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "content_hash": self.content_hash,
            "message": self.message,
            "written_at": self.written_at,
            "parent": self.parent,
            "tags": list(self.tags),
            "n_cases": self.n_cases,
            "stats": dict(self.stats),
        }


def tags_by_snapshot(repo: icechunk.Repository) -> dict[str, tuple[str, ...]]:
    """Snapshot id → sorted tag names pointing at it."""
    out: dict[str, list[str]] = {}
    for tag in repo.list_tags():
        out.setdefault(repo.lookup_tag(tag), []).append(tag)
    return {k: tuple(sorted(v)) for k, v in out.items()}


def info_from_snapshot(snapshot: Any, tags: dict[str, tuple[str, ...]]) -> VersionInfo | None:
    """A VersionInfo from an Icechunk SnapshotInfo, or None for a commit that is not a dataset version."""
    meta = snapshot.metadata.get(META_KEY)
    if not isinstance(meta, dict):
        return None
    return VersionInfo(
        id=snapshot.id,
        content_hash=str(meta["content_hash"]),
        message=snapshot.message,
        written_at=snapshot.written_at.isoformat(),
        parent=snapshot.parent_id,
        tags=tags.get(snapshot.id, ()),
        n_cases=int(meta.get("n_cases", 0)),
        stats={k: int(v) for k, v in meta.get("stats", {}).items()},
    )


def list_infos(repo: icechunk.Repository) -> list[VersionInfo]:
    """Every dataset version on ``main``, newest first."""
    tags = tags_by_snapshot(repo)
    out = []
    for snapshot in repo.ancestry(branch=BRANCH):
        info = info_from_snapshot(snapshot, tags)
        if info is not None:
            out.append(info)
    return out


def resolve(repo: icechunk.Repository, version: str, *, store: str | Path = "") -> VersionInfo:
    """Resolve ``"latest"``, a tag or a snapshot id to its VersionInfo; raises VersionNotFoundError."""
    try:
        if version == "latest":
            snapshot_id = repo.lookup_branch(BRANCH)
        elif version in repo.list_tags():
            snapshot_id = repo.lookup_tag(version)
        elif _SNAPSHOT_ID.match(version):
            snapshot_id = version
        else:
            raise VersionNotFoundError(
                f"store {store}: no version {version!r}; expected 'latest', a tag "
                f"({', '.join(sorted(repo.list_tags())) or 'none yet'}) or a 20-character snapshot id "
                "(see `toothmcl-data version list`)"
            )
        snapshot = repo.lookup_snapshot(snapshot_id)
    except icechunk.IcechunkError as err:
        raise VersionNotFoundError(f"store {store}: cannot find version {version!r}: {err}") from err
    info = info_from_snapshot(snapshot, tags_by_snapshot(repo))
    if info is None:
        raise VersionNotFoundError(
            f"store {store}: {version!r} ({snapshot_id}) is not a published dataset version "
            "(the store is empty: publish one first)"
        )
    return info


def create_tag(repo: icechunk.Repository, tag: str, snapshot_id: str, *, store: str | Path = "") -> None:
    """Tag a snapshot; tags never move, so an existing name on another snapshot (or ``latest``, or a snapshot-id
    look-alike) is an error; the same tag on the same snapshot is a no-op."""
    if tag == "latest" or _SNAPSHOT_ID.match(tag) or not tag:
        raise StoreError(f"store {store}: {tag!r} cannot be a tag name ('latest' and snapshot ids are reserved)")
    if tag in repo.list_tags():
        if repo.lookup_tag(tag) == snapshot_id:  # re-running a publish that changed nothing: already tagged
            return
        raise StoreError(
            f"store {store}: tag {tag!r} exists (→ {repo.lookup_tag(tag)}); tags never move, pick a new name"
        )
    try:
        repo.create_tag(tag, snapshot_id)
    except icechunk.IcechunkError as err:
        raise StoreError(f"store {store}: cannot tag {snapshot_id} as {tag!r}: {err}") from err
