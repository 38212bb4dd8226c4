"""``toothmcl-models predict {cbct,ios}``: outputs in the input's geometry, errors a user can act on, ``--help``."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from torch import nn
from typer.testing import CliRunner

from tests.finetune.test_evaluate import LeftRight, Threshold
from toothmcl_data.io.meshwrite import write_obj, write_ply, write_stl
from toothmcl_data.io.volume import read_nifti, write_nifti
from toothmcl_data.synth.config import SynthConfig
from toothmcl_data.synth.dicom import write_series
from toothmcl_data.synth.identity import draw_identity
from toothmcl_data.synth.meshbytes import emptied_mesh_bytes
from toothmcl_data.synth.patient import SyntheticPatient, make_patient
from toothmcl_data.types import LPS_FROM_RAS, Volume
from toothmcl_models import evaluate as evaluate_module
from toothmcl_models import predict as predict_module
from toothmcl_models.cli import app
from toothmcl_models.evaluate import predict_mesh, predict_volume
from toothmcl_models.finetune import finetune, load_finetuned
from toothmcl_models.predict import pad_one_voxel
from toothmcl_models.segconfig import FinetuneConfig
from toothmcl_models.segmentation import classes_to_fdi

runner = CliRunner()
THRESHOLD = 1000  # Threshold's: FDI 11 above it (bone, dentin, enamel, metal), background below


@pytest.fixture(scope="module")
def patient() -> SyntheticPatient:
    """One synthetic patient: CBCT (81, 63, 59) at 1.2 mm, jaw scans of ~10k vertices."""
    return make_patient(SynthConfig(spacing_mm=1.2, ios_resolution_mm=1.0), np.random.default_rng(3))


@pytest.fixture(scope="module")
def cbct_run(seg_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CBCT fine-tuning run folder of the tiny preset after 1 step (a real checkpoint, not a useful model)."""
    out = tmp_path_factory.mktemp("predict") / "cbct_run"
    finetune(str(seg_store), "latest", FinetuneConfig.from_yaml(Path("tiny"), "cbct"), out, max_steps=1)
    return out


@pytest.fixture(scope="module")
def ios_run(seg_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An IOS fine-tuning run folder of the tiny preset after 1 step."""
    out = tmp_path_factory.mktemp("predict") / "ios_run"
    finetune(str(seg_store), "latest", FinetuneConfig.from_yaml(Path("tiny"), "ios"), out, max_steps=1)
    return out


def _stub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, task: str, net: nn.Module, **data: object) -> Path:
    """A run folder whose checkpoint loads as ``net`` with the tiny ``task`` config (data fields from ``data``)."""
    config = FinetuneConfig.from_yaml(Path("tiny"), task)
    config = dataclasses.replace(config, data=dataclasses.replace(config.data, **data))  # type: ignore[arg-type]
    monkeypatch.setattr(predict_module, "load_finetuned", lambda checkpoint: (net, config))
    (tmp_path / "stub_run").mkdir()
    return tmp_path / "stub_run"


def _nifti(path: Path) -> nib.Nifti1Image:
    img = nib.load(path)
    assert isinstance(img, nib.Nifti1Image)
    return img


def _ok(args: list[str]) -> dict:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _cbct_args(checkpoint: Path, source: Path, out: Path) -> list[str]:
    return ["predict", "cbct", "--checkpoint", str(checkpoint), "--input", str(source), "--out", str(out)]


def _ios_args(checkpoint: Path, source: Path, out: Path) -> list[str]:
    return ["predict", "ios", "--checkpoint", str(checkpoint), "--input", str(source), "--out", str(out)]


@pytest.mark.parametrize("args", [[], ["predict"], ["predict", "cbct"], ["predict", "ios"]], ids=" ".join)
def test_help(args: list[str]) -> None:
    result = runner.invoke(app, [*args, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output
    assert {"predict": "predict", "cbct": "--checkpoint", "ios": "--jaw"}.get(args[-1] if args else "", "") in (
        result.output
    )


# ---- CBCT: the label map has the input's grid, and the labels sit where the network put them --------------------
def test_nifti_input_keeps_its_affine_with_permuted_and_flipped_axes(
    patient: SyntheticPatient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every voxel, edge planes included: the float32 affine read back (1.2000000477 mm) puts the planes i = 0 and
    k = 0 a few µm outside the inference grid, which lost 266 tooth voxels before ``pad_one_voxel``."""
    run = _stub(monkeypatch, tmp_path, "cbct", Threshold(), spacing_mm=1.2, crop_shape=(32, 32, 32))
    # odd values: no voxel ties with the threshold, so float32 rounding of the NIfTI affine cannot flip one
    array = np.ascontiguousarray(patient.cbct.array.transpose(1, 0, 2)[::-1, :, ::-1]) * 2 + 1
    affine = np.array(  # i → −P (A), j → +L, k → −S: neither LPS- nor RAS-aligned index order
        [[0.0, 1.2, 0.0, -30.0], [-1.2, 0.0, 0.0, 40.0], [0.0, 0.0, -1.2, 35.0], [0.0, 0.0, 0.0, 1.0]]
    )
    source = write_nifti(tmp_path / "scan.nii.gz", Volume(array, affine))
    report = _ok(_cbct_args(run, source, tmp_path / "out" / "seg.nii.gz"))
    assert report["shape"] == list(array.shape)
    written, given = _nifti(tmp_path / "out" / "seg.nii.gz"), _nifti(source)
    np.testing.assert_array_equal(written.affine, given.affine)
    assert written.header.get_sform(coded=True)[1] == 1
    labels = np.asarray(written.dataobj)
    assert labels.dtype == np.int16
    np.testing.assert_array_equal(labels, np.where(array > THRESHOLD, 11, 0))
    assert report["teeth"] == {"11": int((array > THRESHOLD).sum())}


def test_dicom_series_gives_a_ras_nifti_aligned_with_it(
    patient: SyntheticPatient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = _stub(monkeypatch, tmp_path, "cbct", Threshold(), spacing_mm=1.2, crop_shape=(32, 32, 32))
    rng = np.random.default_rng(0)
    write_series(tmp_path / "study" / "series", patient.cbct, draw_identity(rng, "P1"), rng)
    (tmp_path / "study" / "README.txt").write_text("not DICOM: skipped")
    _ok(_cbct_args(run, tmp_path / "study", tmp_path / "seg.nii"))
    written = _nifti(tmp_path / "seg.nii")
    np.testing.assert_allclose(written.affine, LPS_FROM_RAS @ patient.cbct.affine, atol=1e-4)
    assert nib.aff2axcodes(written.affine) == ("L", "P", "S")  # voxel axes run as the series' rows/columns/slices
    np.testing.assert_array_equal(np.asarray(written.dataobj), np.where(patient.cbct.array > THRESHOLD, 11, 0))


def test_trained_checkpoint_end_to_end(cbct_run: Path, patient: SyntheticPatient, tmp_path: Path) -> None:
    affine = patient.cbct.affine.copy()
    affine[:3, 3] += affine[:3, :3] @ np.array([25.0, 15.0, 20.0])
    small = Volume(patient.cbct.array[25:55, 15:45, 20:40], affine)  # 36 × 36 × 24 mm around the front teeth
    source = write_nifti(tmp_path / "scan.nii.gz", small)
    report = _ok(_cbct_args(cbct_run, source, tmp_path / "seg.nii.gz"))
    written = _nifti(tmp_path / "seg.nii.gz")
    np.testing.assert_array_equal(written.affine, _nifti(source).affine)
    net, config = load_finetuned(cbct_run)
    volume = read_nifti(source)
    padded = predict_volume(net, pad_one_voxel(volume), spacing_mm=0.6, roi=config.data.crop_shape)  # type: ignore[arg-type]
    np.testing.assert_array_equal(np.asarray(written.dataobj), padded.array[1:-1, 1:-1, 1:-1])
    assert report["window"] == list(config.data.crop_shape) == [64, 64, 32]
    assert report["model_spacing_mm"] == config.data.spacing_mm == 0.6
    assert set(np.unique(padded.array)) <= {0, *range(11, 19), *range(21, 29), *range(31, 39), *range(41, 49)}


# ---- IOS: one FDI label per vertex, in the file's vertex order ---------------------------------------------------
@pytest.mark.parametrize("suffix", [".obj", ".ply", ".stl"])
def test_labels_follow_the_files_vertex_order(
    patient: SyntheticPatient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    run = _stub(monkeypatch, tmp_path, "ios", LeftRight(), points=2048)
    # the stand-in labels by scanner x, not by anatomy: the arch-order post-processing (tested in test_iospost)
    # would renumber its two half-arch "teeth", so this test of vertex order reads the network's own argmax
    monkeypatch.setattr(evaluate_module, "postprocess_jaw", lambda probs, faces, xyz: probs.argmax(1))
    mesh = patient.ios["upper"]
    vertices = mesh.vertices - mesh.vertices.mean(0)
    perm = np.random.default_rng(1).permutation(len(vertices))  # a vertex order no reader could reconstruct
    inverse = np.argsort(perm)
    vertices, faces = vertices[perm], inverse[mesh.faces]
    source = tmp_path / f"P7_UpperJaw{suffix}"
    {".obj": write_obj, ".ply": write_ply, ".stl": write_stl}[suffix](source, vertices, faces)
    report = _ok(_ios_args(run, source, tmp_path / "labels.json"))
    doc = json.loads((tmp_path / "labels.json").read_text())
    assert set(doc) == {"id_patient", "jaw", "labels", "instances"}
    assert (doc["id_patient"], doc["jaw"], report["jaw_source"]) == ("P7_UpperJaw", "upper", "filename")
    if suffix == ".stl":  # corners merged in order of first appearance: the order read_mesh gives
        from toothmcl_data.io.meshwrite import renumber_by_first_appearance

        order, _ = renumber_by_first_appearance(faces)
        vertices = vertices[order]
    assert len(doc["labels"]) == len(doc["instances"]) == len(vertices)
    left, right = classes_to_fdi(np.array([1, 9]), "upper")
    expected = np.where(vertices[:, 0] < 0, left, right)
    assert (np.asarray(doc["labels"]) == expected).mean() > 0.97  # only near x = 0, between samples, may differ
    instances = {int(t): {i for lab, i in zip(doc["labels"], doc["instances"], strict=True) if lab == t} for t in
                 (left, right)}  # fmt: skip
    assert instances == {int(left): {1}, int(right): {2}}


def test_unreadable_labels_beside_the_scan_are_not_needed(
    patient: SyntheticPatient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = _stub(monkeypatch, tmp_path, "ios", LeftRight(), points=512)
    mesh = patient.ios["lower"]
    write_obj(tmp_path / "case_lower.obj", mesh.vertices, mesh.faces)
    (tmp_path / "case_lower.json").write_text('{"id_patient": "x", "jaw": "lower", "labels": [0], "instances": [0]}')
    report = _ok(_ios_args(run, tmp_path / "case_lower.obj", tmp_path / "out.json"))
    assert (report["jaw"], report["jaw_source"], report["vertices"]) == ("lower", "filename", len(mesh.vertices))
    assert len(json.loads((tmp_path / "out.json").read_text())["labels"]) == len(mesh.vertices)


def test_an_unnamed_scan_with_its_palate_is_predicted_as_an_upper_one(
    patient: SyntheticPatient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No --jaw, sidecar, labels or jaw in the name: an upper scan's palate names its jaw (``io.palate``)."""
    run = _stub(monkeypatch, tmp_path, "ios", LeftRight(), points=512)
    mesh = patient.ios["upper"]
    write_obj(tmp_path / "scan.obj", mesh.vertices, mesh.faces)
    report = _ok(_ios_args(run, tmp_path / "scan.obj", tmp_path / "out.json"))
    assert (report["jaw"], report["jaw_source"]) == ("upper", "palate")
    assert json.loads((tmp_path / "out.json").read_text())["jaw"] == "upper"


def test_trained_ios_checkpoint_end_to_end(ios_run: Path, patient: SyntheticPatient, tmp_path: Path) -> None:
    mesh = patient.ios["lower"]
    write_obj(tmp_path / "scan.obj", mesh.vertices, mesh.faces)
    args = _ios_args(ios_run, tmp_path / "scan.obj", tmp_path / "labels.json")
    report = _ok([*args, "--jaw", "lower", "--seed", "4", "--id-patient", "anon-7"])
    doc = json.loads((tmp_path / "labels.json").read_text())
    assert (doc["id_patient"], doc["jaw"], report["vertices"]) == ("anon-7", "lower", len(mesh.vertices))
    net, config = load_finetuned(ios_run)
    labels, instances = predict_mesh(
        net,  # type: ignore[arg-type]
        mesh,
        "lower",
        points=config.data.points,
        rng=np.random.default_rng(4),
    )
    np.testing.assert_array_equal(doc["labels"], labels)
    np.testing.assert_array_equal(doc["instances"], instances)


def test_dry_run_writes_nothing(ios_run: Path, patient: SyntheticPatient, tmp_path: Path) -> None:
    mesh = patient.ios["lower"]
    write_obj(tmp_path / "lower.obj", mesh.vertices, mesh.faces)
    report = _ok([*_ios_args(ios_run, tmp_path / "lower.obj", tmp_path / "labels.json"), "--dry-run"])
    assert report["output"] == ""
    assert report["vertices"] == len(mesh.vertices)
    assert not (tmp_path / "labels.json").exists()


# ---- errors: one line on stderr naming the file, what was expected and the fix; exit code 2 -----------------------
def _error(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ")
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.output
    return result.stderr.removeprefix("error: ").rstrip("\n")


@pytest.fixture(scope="module")
def inputs(patient: SyntheticPatient, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Valid and invalid inputs, written once."""
    folder = tmp_path_factory.mktemp("inputs")
    mesh = patient.ios["lower"]
    write_ply(folder / "lower.ply", mesh.vertices, mesh.faces)
    write_obj(folder / "scan.obj", mesh.vertices, mesh.faces)
    (folder / "empty_lower.ply").write_bytes(emptied_mesh_bytes(folder / "lower.ply"))
    (folder / "zero_lower.stl").write_bytes(b"")
    write_nifti(folder / "cbct.nii.gz", patient.cbct)
    rng = np.random.default_rng(5)
    small = Volume(patient.cbct.array[:20, :20, :6], patient.cbct.affine)
    write_series(folder / "dicom", small, draw_identity(rng, "P2"), rng)
    (folder / "notes").mkdir()
    (folder / "notes" / "a.txt").write_text("x")
    return {p.name: p for p in folder.iterdir()}


def test_mesh_given_to_predict_cbct(inputs: dict[str, Path], cbct_run: Path, tmp_path: Path) -> None:
    ply = inputs["lower.ply"]
    assert _error(_cbct_args(cbct_run, ply, tmp_path / "seg.nii.gz")) == (
        f"{ply}: is an intraoral scan mesh (PLY), not a CBCT volume; `predict cbct` expects a CBCT volume (NIfTI "
        ".nii/.nii.gz, MetaImage .mha, NRRD) or a folder holding one DICOM series — segment meshes with "
        "`toothmcl-models predict ios`"
    )


@pytest.mark.parametrize(("name", "fmt"), [("cbct.nii.gz", "NIFTI"), ("dicom", None)])
def test_volume_given_to_predict_ios(
    inputs: dict[str, Path], ios_run: Path, tmp_path: Path, name: str, fmt: str | None
) -> None:
    path = inputs[name]
    message = _error(_ios_args(ios_run, path, tmp_path / "labels.json"))
    if fmt is None:
        assert message == (
            f"{path}: is a folder; `predict ios` expects one jaw scan mesh (.stl, .ply, .obj or .vtp) — pass the "
            "scan file (a DICOM folder is a CBCT: use `toothmcl-models predict cbct`)"
        )
    else:
        assert message == (
            f"{path}: is a CBCT volume (NIFTI), not an intraoral scan; `predict ios` expects one jaw scan mesh "
            "(.stl, .ply, .obj or .vtp) — segment volumes with `toothmcl-models predict cbct`"
        )


def test_empty_meshes(inputs: dict[str, Path], ios_run: Path, tmp_path: Path) -> None:
    empty, zero = inputs["empty_lower.ply"], inputs["zero_lower.stl"]
    assert _error(_ios_args(ios_run, empty, tmp_path / "labels.json")) == (
        f"{empty}: mesh is empty (found 0 vertices and 0 faces, expected at least 3 vertices and 1 triangle); "
        "re-export the scan"
    )
    assert _error(_ios_args(ios_run, zero, tmp_path / "labels.json")) == (
        f"{zero}: mesh file is empty (0 bytes), expected one jaw scan mesh (.stl, .ply, .obj or .vtp) with at least "
        "one triangle; re-export the scan"
    )


def test_checkpoint_of_the_other_task(inputs: dict[str, Path], cbct_run: Path, ios_run: Path, tmp_path: Path) -> None:
    assert _error(_ios_args(cbct_run, inputs["lower.ply"], tmp_path / "labels.json")) == (
        f"{cbct_run}: is a CBCT fine-tuning checkpoint, expected an IOS one; use it with `toothmcl-models predict "
        "cbct`, or pass an IOS fine-tuning run"
    )
    assert _error(_cbct_args(ios_run, inputs["cbct.nii.gz"], tmp_path / "seg.nii.gz")) == (
        f"{ios_run}: is an IOS fine-tuning checkpoint, expected a CBCT one; use it with `toothmcl-models predict "
        "ios`, or pass a CBCT fine-tuning run"
    )
    assert not (tmp_path / "seg.nii.gz").exists()


@pytest.mark.parametrize("task", ["cbct", "ios"])
def test_pretraining_checkpoint(inputs: dict[str, Path], pretrain_checkpoint: Path, tmp_path: Path, task: str) -> None:
    args = (
        _cbct_args(pretrain_checkpoint, inputs["cbct.nii.gz"], tmp_path / "seg.nii.gz")
        if task == "cbct"
        else _ios_args(pretrain_checkpoint, inputs["lower.ply"], tmp_path / "labels.json")
    )
    assert _error(args) == (
        f"{pretrain_checkpoint}: is a ToothMCL pretraining checkpoint (contrastive encoders, no segmentation head), "
        "expected a fine-tuning checkpoint; fine-tune it first: `torchrun -m toothmcl_models.finetune {cbct,ios} "
        f"--init {pretrain_checkpoint} …`, then predict with that run's folder"
    )


def test_missing_files(inputs: dict[str, Path], cbct_run: Path, ios_run: Path, tmp_path: Path) -> None:
    gone = tmp_path / "gone.nii.gz"
    assert _error(_cbct_args(cbct_run, gone, tmp_path / "seg.nii.gz")) == (
        f"{gone}: no such file or folder; `predict cbct` expects a CBCT volume (NIfTI .nii/.nii.gz, MetaImage "
        ".mha, NRRD) or a folder holding one DICOM series"
    )
    assert _error(_ios_args(ios_run, tmp_path / "gone.stl", tmp_path / "labels.json")) == (
        f"{tmp_path / 'gone.stl'}: no such file; `predict ios` expects one jaw scan mesh (.stl, .ply, .obj or .vtp)"
    )
    assert _error(_ios_args(tmp_path / "no_run", inputs["lower.ply"], tmp_path / "labels.json")) == (
        f"{tmp_path / 'no_run'}: no such checkpoint; `predict ios` expects an IOS fine-tuning run folder, its "
        "checkpoints/ folder or a step-*.pt file — check the path"
    )


def test_other_bad_arguments(inputs: dict[str, Path], cbct_run: Path, ios_run: Path, tmp_path: Path) -> None:
    notes = inputs["notes"]
    assert _error(_cbct_args(cbct_run, notes, tmp_path / "seg.nii.gz")) == (
        f"{notes}: folder holds no DICOM file (1 other file(s)); `predict cbct` expects a CBCT volume (NIfTI "
        ".nii/.nii.gz, MetaImage .mha, NRRD) or a folder holding one DICOM series — pass the series folder, or the "
        "NIfTI file itself"
    )
    assert _error(_cbct_args(cbct_run, inputs["cbct.nii.gz"], tmp_path / "seg.mha")) == (
        f"--out {tmp_path / 'seg.mha'}: expected a NIfTI file name ending .nii.gz or .nii (e.g. seg.nii.gz)"
    )
    scan = inputs["scan.obj"]
    assert _error(_ios_args(ios_run, scan, tmp_path / "labels.json")) == (
        f"{scan}: cannot tell which jaw the scan is (no readable sidecar or labels, no upper/lower in the file name, "
        "no palate); pass --jaw upper or --jaw lower"
    )
    assert _error(_ios_args(inputs["cbct.nii.gz"], scan, tmp_path / "labels.json")) == (
        f"{inputs['cbct.nii.gz']}: is a data file (nifti), not a checkpoint; pass --checkpoint an IOS fine-tuning "
        "run folder or step-*.pt, and the data file as --input"
    )
