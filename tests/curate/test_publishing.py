"""A run's version written case by case while the run goes on: the same version a publish of the same records makes,
nothing visible before the commit, nothing left behind by a run that fails."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from toothmcl_data.curate.publishing import RunPublisher
from toothmcl_data.curate.recordfiles import load_records, save_record
from toothmcl_data.errors import StoreError
from toothmcl_data.store import list_versions, open_version, publish
from toothmcl_data.synth.config import SynthConfig
from toothmcl_data.synth.patient import make_patient
from toothmcl_data.synth.record import synth_record


@pytest.fixture(scope="module")
def record_files(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    work = tmp_path_factory.mktemp("work")
    patient = make_patient(SynthConfig(spacing_mm=1.2, ios_resolution_mm=1.0), np.random.default_rng(4))
    return [str(save_record(synth_record(patient, name), work)) for name in ("P001", "P000")]


def test_cases_added_one_by_one_commit_the_version_a_publish_makes(tmp_path: Path, record_files: list[str]) -> None:
    with RunPublisher(tmp_path / "run") as version:
        for path in record_files:
            version.add(path)
            assert list_versions(tmp_path / "run") == []  # written, not visible
        info = version.commit(message="m")
    assert version.written == 2
    want = publish(tmp_path / "plain", load_records(record_files), message="m")
    assert info.content_hash == want.content_hash
    assert sorted(open_version(tmp_path / "run").case_ids()) == ["P000", "P001"]


def test_a_run_with_nothing_added_creates_no_store_and_cannot_commit(tmp_path: Path) -> None:
    with RunPublisher(tmp_path / "store") as version, pytest.raises(StoreError, match="nothing to commit"):
        version.commit(message="m")
    assert not (tmp_path / "store").exists()


def test_a_run_that_fails_after_adding_leaves_no_version_and_frees_the_store(
    tmp_path: Path, record_files: list[str]
) -> None:
    store = tmp_path / "store"

    def run() -> None:
        with RunPublisher(store) as version:
            version.add(record_files[0])
            raise RuntimeError("a later stage failed")

    with pytest.raises(RuntimeError, match="a later stage failed"):
        run()
    assert list_versions(store) == []
    # the store's lock was released: the next publish neither waits nor sees the discarded case
    info = publish(store, load_records(record_files[1:]), message="again")
    assert open_version(store, info.id).case_ids() == ["P000"]
