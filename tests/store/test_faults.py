"""Faults while publishing: disk full (injected, and a real full tmpfs where we may mount one), two publishers
at once, and the card counting quarantined units, cases and files separately."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from icechunk.store import IcechunkStore

from tests.store.conftest import PROVENANCE, records
from toothmcl_data.errors import StoreError
from toothmcl_data.store import gc_store, list_versions, open_version, publish, verify_version
from toothmcl_data.store.guard import exclusive, store_lock_path

ROOT = Path(__file__).resolve().parents[2]


def _intact(store: Path, version: Any) -> None:
    latest = open_version(store, "latest")
    assert (latest.id, latest.content_hash) == (version.id, version.content_hash)
    assert next(v.id for v in list_versions(store)) == version.id
    assert verify_version(store).ok


@pytest.fixture
def disk_full_after(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every IcechunkStore.set after the first ``budget[0]`` raises ENOSPC (set ``budget[0]`` in the test)."""
    budget = [10**9]
    real = IcechunkStore.set

    async def failing_set(self: IcechunkStore, key: str, value: Any) -> None:
        if budget[0] <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), key)
        budget[0] -= 1
        await real(self, key, value)

    monkeypatch.setattr(IcechunkStore, "set", failing_set)
    return budget


@pytest.mark.parametrize("writes", [0, 5, 40])
def test_disk_full_during_publish_is_a_clear_error_and_the_previous_version_stays(
    tmp_path: Path, disk_full_after: list[int], writes: int
) -> None:
    store = tmp_path / "store"
    v1 = publish(store, records(2), message="2 cases", provenance=PROVENANCE, tag="v1")
    disk_full_after[0] = writes  # the disk fills after this many more writes
    with pytest.raises(StoreError, match=r"publish aborted, the disk is full .*latest version is unchanged"):
        publish(store, records(3, start=2), message="3 more", provenance=PROVENANCE)
    disk_full_after[0] = 10**9
    _intact(store, v1)
    assert not store_lock_path(store) or not _locked(store)  # the failed publisher let go of the store
    v2 = publish(store, records(3, start=2), message="3 more", provenance=PROVENANCE)  # space is back
    assert v2.id != v1.id
    assert sorted(open_version(store, v2.id).case_ids()) == ["P0002", "P0003", "P0004"]
    assert verify_version(store, "v1").ok
    assert verify_version(store).ok


def _locked(store: Path) -> bool:
    import fcntl

    path = store_lock_path(store)
    assert path is not None
    with path.open("a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
    return False


def _fill(path: Path) -> None:
    """Write zeros into ``path`` until the disk refuses (raises that OSError)."""
    block = b"\0" * (1 << 16)
    with path.open("wb") as fh:
        while True:
            fh.write(block)
            fh.flush()


def _mount_tmpfs(where: Path, size: str) -> bool:
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True)
    return done.returncode == 0


def test_a_really_full_disk_during_publish(tmp_path: Path) -> None:
    """ENOSPC from the kernel (a tmpfs filled to the last byte), not from Python: Icechunk reports it."""
    disk = tmp_path / "disk"
    if not _mount_tmpfs(disk, "48m"):
        pytest.skip("needs root and mount to make a small tmpfs")
    try:
        store = disk / "store"
        v1 = publish(store, records(1), message="1 case", provenance=PROVENANCE, tag="v1")
        filler = disk / "filler"
        with pytest.raises(OSError, match="No space left") as full:
            _fill(filler)
        assert full.value.errno == errno.ENOSPC
        with pytest.raises(StoreError, match=r"publish aborted.*latest version is unchanged") as caught:
            publish(store, records(3, start=1), message="3 more", provenance=PROVENANCE)
        assert "space" in str(caught.value)
        filler.unlink()
        _intact(store, v1)
        gc_store(store, grace_seconds=0)  # the partial writes go; v1 stays whole
        _intact(store, v1)
        publish(store, records(3, start=1), message="3 more", provenance=PROVENANCE)
        assert verify_version(store, "v1").ok
        assert verify_version(store).ok
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_second_publisher_waits_for_the_first(tmp_path: Path) -> None:
    store = tmp_path / "store"
    publish(store, records(1), message="1", provenance=PROVENANCE)
    done: list[Any] = []
    with exclusive(store_lock_path(store), "test holder"):
        thread = threading.Thread(
            target=lambda: done.append(publish(store, records(2), message="2", provenance=PROVENANCE))
        )
        thread.start()
        time.sleep(1.0)
        assert not done
        assert thread.is_alive()
        assert len(list_versions(store)) == 1  # only the first version
    thread.join(timeout=120)
    assert done
    assert sorted(open_version(store, "latest").case_ids()) == ["P0000", "P0001"]


def test_lock_timeout_names_the_holder(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    with (
        exclusive(path, "first"),
        pytest.raises(StoreError, match=rf"second: still locked by pid {os.getpid()} .*{path}"),
        exclusive(path, "second", timeout=0.3),
    ):
        pass
    with exclusive(path, "third", timeout=0.3):  # released with its holder
        pass


CHILD = """
import sys
from tests.store.conftest import PROVENANCE, base_patient, records
from toothmcl_data.store import publish
store, start, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
recs = list(records(n, start=start))
print("ready", flush=True)
sys.stdin.readline()
info = publish(store, recs, message=f"{n} from {start}", provenance=PROVENANCE)
print("done", info.id, info.content_hash, flush=True)
"""


def test_two_publishers_at_once_serialise_and_never_mix(tmp_path: Path) -> None:
    store = tmp_path / "store"
    publish(store, records(1), message="1", provenance=PROVENANCE)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(store), str(start), str(n)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for start, n in ((10, 2), (20, 3))
    ]
    for proc in procs:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
    for proc in procs:  # go at the same moment
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    outs = [proc.communicate(timeout=300)[0] for proc in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    published = {line.split()[1]: line.split()[2] for out in outs for line in out.splitlines() if line[:4] == "done"}
    assert len(published) == 2  # both committed, one after the other
    expected = {("P0010", "P0011"), ("P0020", "P0021", "P0022")}
    for vid, content_hash in published.items():
        reader = open_version(store, vid)
        assert tuple(sorted(reader.case_ids())) in expected  # each version holds exactly one publisher's cases
        assert reader.content_hash == content_hash
        assert verify_version(store, vid).ok
    history = [v.id for v in list_versions(store)]
    assert set(history[:2]) == set(published)
    assert len(history) == 3


def test_card_counts_quarantined_units_cases_and_files(tmp_path: Path) -> None:
    quarantine = [
        {"unit": "sha256:" + "1" * 12, "case": "P9", "kind": "dicom", "format": "dicom", "role": "", "n_files": 140,
         "size": 140, "files": [f"{n:064x}" for n in range(140)], "reason": "series: gap"},
        {"unit": "sha256:" + "2" * 12, "case": "P9", "kind": "mesh", "format": "ply", "role": "", "n_files": 2,
         "size": 2, "files": ["a" * 64, "b" * 64], "reason": "mesh: NaN"},
        {"unit": "sha256:" + "3" * 12, "case": "", "kind": "other", "format": "", "role": "", "n_files": 1,
         "size": 0, "files": ["c" * 64], "reason": "empty file"},
    ]  # fmt: skip
    info = publish(tmp_path / "s", records(1), message="m", provenance=PROVENANCE, quarantine=quarantine)
    card = open_version(tmp_path / "s", info.id).card()
    assert card["counts"]["quarantined"] == 3
    assert card["counts"]["quarantined_cases"] == 1
    assert card["counts"]["quarantined_files"] == 143
    assert (card["quarantine"]["units"], card["quarantine"]["cases"], card["quarantine"]["files"]) == (3, 1, 143)
    md = open_version(tmp_path / "s", info.id).card_markdown()
    assert "Quarantine: 3 units in 1 cases, 143 files" in md
    np.testing.assert_equal(open_version(tmp_path / "s", info.id).table("quarantine").num_rows, 3)
