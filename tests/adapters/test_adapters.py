"""Public-dataset adapters: import tiny files in the exact public layouts, export predictions that read back."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.adapters.conftest import T3DS_IDS, TF2_CASES, patient, toothfairy2_labels
from toothmcl_data.adapters import teeth3ds, toothfairy2
from toothmcl_data.adapters.importing import load_source_card
from toothmcl_data.errors import ConfigError, InputNotFoundError, LabelSchemeError
from toothmcl_data.io.mesh import read_mesh
from toothmcl_data.io.teeth3ds import read_teeth3ds_json
from toothmcl_data.io.volume import read_volume
from toothmcl_data.store import open_version


def test_toothfairy2_import_keeps_geometry_and_maps_labels_to_fdi(toothfairy2_folder: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    info = toothfairy2.import_folder(toothfairy2_folder, store, tag="tf2")
    version = open_version(store, "tf2")
    assert version.id == info.id
    assert version.case_ids() == sorted(TF2_CASES)
    p = patient()
    cbct = version.cbct(TF2_CASES[0])
    labels = version.cbct_labels(TF2_CASES[0])
    assert cbct is not None
    assert labels is not None
    np.testing.assert_array_equal(cbct.array, p.cbct.array)
    np.testing.assert_allclose(cbct.affine, p.cbct.affine, atol=1e-6)
    np.testing.assert_array_equal(labels.array, p.cbct_labels.array)  # anatomy ids 1/2 became 0
    assert (toothfairy2_labels(p) == 2).any()
    rows = {r["pseudonym"]: r for r in version.table("cases").to_pylist()}
    assert rows[TF2_CASES[1]]["official_split"] == "train"
    assert rows[TF2_CASES[1]]["jaws"] == ""
    assert version.table("registrations").num_rows == 0
    prov = version.table("provenance").to_pylist()
    assert "CC-BY-SA-4.0" in json.dumps(prov)


def test_toothfairy2_prediction_round_trips(toothfairy2_folder: Path, tmp_path: Path) -> None:
    p = patient()
    path = toothfairy2.write_prediction(tmp_path / "pred", TF2_CASES[0], p.cbct_labels)
    assert path.name == f"{TF2_CASES[0]}.mha"
    back = read_volume(path)
    np.testing.assert_array_equal(back.array, p.cbct_labels.array)
    np.testing.assert_allclose(back.affine, p.cbct.affine, atol=1e-6)


def test_import_keeps_the_store_s_other_cases(toothfairy2_folder: Path, teeth3ds_folder: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    toothfairy2.import_folder(toothfairy2_folder, store, limit=1)
    teeth3ds.import_folder(teeth3ds_folder, store)
    assert open_version(store).case_ids() == sorted([TF2_CASES[0], *T3DS_IDS])


def test_teeth3ds_import_keeps_vertex_order_labels_and_official_splits(teeth3ds_folder: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    teeth3ds.import_folder(teeth3ds_folder, store)
    version = open_version(store)
    assert version.case_ids() == sorted(T3DS_IDS)
    p = patient()
    mesh = version.ios(T3DS_IDS[0], "upper")
    np.testing.assert_array_equal(mesh.vertices, p.ios["upper"].vertices)
    np.testing.assert_array_equal(mesh.faces, p.ios["upper"].faces)
    np.testing.assert_array_equal(mesh.labels, p.ios["upper"].labels)
    np.testing.assert_array_equal(mesh.instances, p.ios["upper"].instances)
    rows = {r["pseudonym"]: r for r in version.table("cases").to_pylist()}
    assert [rows[i]["official_split"] for i in T3DS_IDS] == ["train", "test", "train"]
    assert [rows[i]["jaws"] for i in T3DS_IDS] == ["upper,lower", "upper,lower", "upper"]
    assert not rows[T3DS_IDS[0]]["has_cbct"]


def test_teeth3ds_prediction_is_read_by_the_evaluation_reader(teeth3ds_folder: Path, tmp_path: Path) -> None:
    p = patient()
    mesh = p.ios["lower"]
    assert mesh.labels is not None
    assert mesh.instances is not None
    path = teeth3ds.write_prediction(tmp_path / "pred", T3DS_IDS[1], "lower", mesh.labels, mesh.instances)
    assert path.relative_to(tmp_path / "pred") == Path(T3DS_IDS[1]) / f"{T3DS_IDS[1]}_lower.json"
    back = read_teeth3ds_json(path)
    assert back.id_patient == T3DS_IDS[1]
    assert back.jaw == "lower"
    np.testing.assert_array_equal(back.labels, mesh.labels)
    scan = read_mesh(teeth3ds_folder / T3DS_IDS[1] / f"{T3DS_IDS[1]}_lower.obj")
    assert len(scan.vertices) == len(back.labels)


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        (lambda root: (root / "dataset.json").unlink(), InputNotFoundError, "holds dataset.json at its root"),
        (lambda root: next((root / "labelsTr").iterdir()).unlink(), InputNotFoundError, "needs labelsTr/<case>.mha"),
        (
            lambda root: (root / "dataset.json").write_text(json.dumps({"labels": {"x": 0, "y": 99}})),
            LabelSchemeError,
            "not a ToothFairy2/3 label table",
        ),
    ],
)
def test_toothfairy2_folder_errors(toothfairy2_folder: Path, change, error, message) -> None:
    change(toothfairy2_folder)
    with pytest.raises(error, match=message.replace("/", "/").replace("(", r"\(")):
        toothfairy2.scan_folder(toothfairy2_folder)


def test_teeth3ds_empty_folder_and_unknown_card(tmp_path: Path) -> None:
    with pytest.raises(InputNotFoundError, match="no Teeth3DS scans"):
        teeth3ds.scan_folder(tmp_path)
    with pytest.raises(ConfigError, match="no source dataset card 'nope'"):
        load_source_card("nope")
    assert load_source_card("teeth3ds")["label_scheme"] == "teeth3ds"


def test_cli_import_dry_run_writes_nothing_then_imports(
    teeth3ds_folder: Path, toothfairy2_folder: Path, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from toothmcl_data.cli.app import app

    store = tmp_path / "store"
    runner = CliRunner()
    dry = runner.invoke(app, ["import", "teeth3ds", str(teeth3ds_folder), "--store", str(store), "--dry-run", "--json"])
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.output)["ids"] == list(T3DS_IDS)
    assert not store.exists()
    done = runner.invoke(
        app, ["import", "toothfairy2", str(toothfairy2_folder), "--store", str(store), "--tag", "v1", "--json"]
    )
    assert done.exit_code == 0, done.output
    report = json.loads(done.output)
    assert report["cases"] == 2
    assert report["tags"] == ["v1"]
    assert report["n_cases"] == 2
