"""De-identify a whole faulty synthetic drop: fates, ground truth, leaks, layout, determinism."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.deid.acceptance import check_all, check_faults, check_inventory_complete
from tests.deid.conftest import COARSE, KEY, DeidRun, run_drop
from toothmcl_data.deid.case import deidentify_case
from toothmcl_data.deid.pseudonym import key_fingerprint
from toothmcl_data.deid.run import deidentify_drop
from toothmcl_data.deid.scan import scan_tree
from toothmcl_data.errors import DeidError
from toothmcl_data.io.plan import plan_drop
from toothmcl_data.synth.drop import write_drop


def test_every_fault_kind_ends_as_expected(faulty_run: DeidRun) -> None:
    check_inventory_complete(faulty_run)
    seen = check_faults(faulty_run)
    assert len(seen) == 12


def test_acceptance_checks_hold_on_the_small_drop(faulty_run: DeidRun) -> None:
    report = check_all(faulty_run)
    assert report["clean_cases"] >= 5


def test_output_layout_and_tables(faulty_run: DeidRun) -> None:
    cases = pq.read_table(faulty_run.out / "tables" / "cases.parquet").to_pylist()
    assert len(cases) == faulty_run.summary.cases == 12
    for row in cases:
        folder = faulty_run.out / "cases" / row["pseudonym"]
        doc = json.loads((folder / "case.json").read_text())
        assert doc["sources"] == json.loads(row["sources"])
        if row["cbct_format"] == "dicom":
            assert all(p.name.startswith("2.25.") for p in (folder / "cbct").iterdir())
        elif row["cbct_format"]:
            assert (folder / "cbct.nii.gz").is_file()
        assert sorted(p.name for p in (folder / "ios").iterdir()) == sorted(
            f"{j}.{ext}" for j in row["jaws"] for ext in ("json", "ply")
        )
        for jaw in row["jaws"]:
            assert json.loads((folder / "ios" / f"{jaw}.json").read_text())["id_patient"] == row["pseudonym"]
    assert not list((faulty_run.out / "cases").glob(".tmp-*"))


def test_audit_area_holds_identities_and_is_outside(faulty_run: DeidRun) -> None:
    assert faulty_run.out not in faulty_run.audit.parents
    lookup = (faulty_run.audit / "pseudonyms.csv").read_text()
    truth = json.loads((faulty_run.drop.ground_truth / "truth.json").read_text())
    assert all(p["identity"]["patient_id"] in lookup for p in truth["patients"])
    phi = json.loads((faulty_run.drop.ground_truth / "phi.json").read_text())
    hits, _ = scan_tree(faulty_run.audit, [v for values in phi.values() for v in values])
    assert hits  # the audit area is where identity lives
    assert faulty_run.summary.key_fingerprint == key_fingerprint(KEY)
    assert KEY.decode() not in "".join(p.read_text(errors="ignore") for p in faulty_run.out.rglob("*.json"))


def test_case_rerun_is_byte_identical_and_a_new_key_unlinkable(faulty_run: DeidRun, tmp_path: Path) -> None:
    cases = plan_drop(faulty_run.drop.drop)
    case = next(c for c in cases if c.cbct and c.cbct[0].kind == "series" and len(c.cbct) == 1 and c.ios)
    again = deidentify_case(case, tmp_path / "a", key=KEY)
    original = faulty_run.out / "cases" / again.pseudonym
    for path in sorted((tmp_path / "a" / "cases" / again.pseudonym).rglob("*")):
        if path.is_file():
            assert (
                path.read_bytes()
                == (original / path.relative_to(tmp_path / "a" / "cases" / again.pseudonym)).read_bytes()
            )
    other = deidentify_case(case, tmp_path / "b", key=b"another-key-0123456789abcdef")
    assert other.pseudonym != again.pseudonym
    a_names = {p.name for p in (tmp_path / "a" / "cases" / again.pseudonym / "cbct").iterdir()}
    b_names = {p.name for p in (tmp_path / "b" / "cases" / other.pseudonym / "cbct").iterdir()}
    assert a_names
    assert not a_names & b_names


@pytest.mark.parametrize(
    ("out", "audit", "message"),
    [
        ("drop/inside", None, "lies inside the raw drop"),
        ("deid", "deid/audit", "lies inside the output"),
    ],
)
def test_unsafe_places_are_refused(
    faulty_run: DeidRun, tmp_path: Path, out: str, audit: str | None, message: str
) -> None:
    root = faulty_run.drop.root
    with pytest.raises(DeidError, match=message):
        deidentify_drop(
            faulty_run.drop.drop,
            root / out if out.startswith("drop") else tmp_path / out,
            key=KEY,
            audit=(tmp_path / audit) if audit else None,
        )


def test_short_key_refused(tmp_path: Path) -> None:
    with pytest.raises(DeidError, match="at least 16"):
        deidentify_drop(tmp_path, tmp_path / "out", key=b"short")


@pytest.mark.slow
def test_acceptance_20_patients(tmp_path: Path) -> None:
    """The issue's acceptance run: synth --patients 20 --bad-fraction 0.3 (coarse grid)."""
    run = run_drop(tmp_path, patients=20, seed=11, bad_fraction=0.3)
    report = check_all(run)
    assert report["clean_cases"] >= 14


def test_drop_from_an_fsspec_url(tmp_path: Path) -> None:
    """A drop in ``memory://`` gives byte-identical outputs to the same drop on a local disk."""
    import fsspec

    drop = write_drop(tmp_path / "synth", patients=1, seed=2, config=COARSE)
    mem = fsspec.filesystem("memory")
    for path in drop.drop.rglob("*"):
        if path.is_file():
            mem.pipe(f"/deid-url-test/{path.relative_to(drop.drop)}", path.read_bytes())
    local = deidentify_drop(drop.drop, tmp_path / "local", key=KEY)
    remote = deidentify_drop("memory://deid-url-test", tmp_path / "remote", key=KEY)
    assert local.fates == remote.fates == {"used": drop.files}
    files = sorted(p.relative_to(tmp_path / "local") for p in (tmp_path / "local" / "cases").rglob("*") if p.is_file())
    assert files
    for rel in files:
        assert (tmp_path / "local" / rel).read_bytes() == (tmp_path / "remote" / rel).read_bytes()
