"""The versioning engine: store URLs, version names resolved to snapshots, tags that never move."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.store.conftest import PROVENANCE, records
from toothmcl_data.errors import StoreError, VersionNotFoundError
from toothmcl_data.store.repo import create_tag, list_infos, open_repo, resolve, storage_for
from toothmcl_data.store.writer import publish


def test_store_urls() -> None:
    with pytest.raises(StoreError, match="unsupported URL scheme"):
        storage_for("ftp://host/store")
    with pytest.raises(StoreError, match="memory:// is not supported"):
        storage_for("memory://x")


def test_versions_resolve_and_tags_never_move(tmp_path: Path) -> None:
    store = tmp_path / "s"
    with pytest.raises(VersionNotFoundError, match="no dataset store there; publish a version first"):
        open_repo(store)
    v1 = publish(store, records(1), message="one", provenance=PROVENANCE)
    v2 = publish(f"file://{store}", records(2), message="two", provenance=PROVENANCE)
    repo = open_repo(store)
    assert [i.id for i in list_infos(repo)] == [v2.id, v1.id]  # newest first
    assert resolve(repo, "latest").id == v2.id
    assert resolve(repo, v1.id).message == "one"
    assert resolve(repo, v2.id).parent == v1.id
    assert (resolve(repo, v1.id).n_cases, resolve(repo, v2.id).n_cases) == (1, 2)
    create_tag(repo, "first", v1.id)
    create_tag(repo, "first", v1.id)  # the same tag on the same snapshot: a no-op
    assert resolve(repo, "first").id == v1.id
    assert resolve(repo, "first").tags == ("first",)
    with pytest.raises(StoreError, match="tags never move"):
        create_tag(repo, "first", v2.id)
    with pytest.raises(StoreError, match="cannot be a tag name"):
        create_tag(repo, v2.id, v2.id)
    with pytest.raises(VersionNotFoundError, match=r"no version 'v9'; expected 'latest', a tag \(first\)"):
        resolve(repo, "v9")
    assert v2.to_dict()["n_cases"] == 2
