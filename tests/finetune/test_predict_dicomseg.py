"""``toothmcl-models predict cbct --format dicom-seg``: a SEG that references the input's own DICOM slices."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from typer.testing import CliRunner

from tests.finetune import test_predict
from tests.finetune.test_evaluate import Threshold
from tests.finetune.test_predict import THRESHOLD, _cbct_args, _ok, _stub
from toothmcl_data.export.toothcodes import tooth_code
from toothmcl_data.io.volume import write_nifti
from toothmcl_data.synth.dicom import write_series
from toothmcl_data.synth.identity import draw_identity
from toothmcl_data.synth.patient import SyntheticPatient
from toothmcl_models.cli import app

patient = test_predict.patient  # the module-scoped fixture of test_predict

hd = pytest.importorskip("highdicom", reason="DICOM-SEG output needs highdicom (pip install 'toothmcl[dicomseg]')")


def _frames(seg_path: Path, series: Path) -> tuple[np.ndarray, list[str]]:
    """(I, J, K) segment numbers read by highdicom, frames placed by the source slices' own positions."""
    seg = hd.seg.segread(seg_path)
    sources = [pydicom.dcmread(p, stop_before_pixels=True) for p in sorted(series.iterdir())]
    sources.sort(key=lambda d: float(d.ImagePositionPatient[2]))
    uids = [str(d.SOPInstanceUID) for d in sources]
    frames = seg.get_pixels_by_source_instance(uids, combine_segments=True, skip_overlap_checks=True)
    return np.stack([f.T for f in frames], axis=-1), uids


def test_dicom_input_is_referenced(patient: SyntheticPatient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = _stub(monkeypatch, tmp_path, "cbct", Threshold(), spacing_mm=1.2, crop_shape=(32, 32, 32))
    rng = np.random.default_rng(0)
    written = write_series(tmp_path / "study" / "series", patient.cbct, draw_identity(rng, "P1"), rng)
    report = _ok([*_cbct_args(run, tmp_path / "study", tmp_path / "seg.dcm"), "--format", "dicom-seg"])
    assert report["seg_source"] == "input-series"
    assert report["segments"] == {"1": 11}
    ds = pydicom.dcmread(tmp_path / "seg.dcm")
    assert ds.Modality == "SEG"
    assert ds.StudyInstanceUID == written.uids.study
    assert ds.ReferencedSeriesSequence[0].SeriesInstanceUID == written.uids.series
    item = ds.SegmentSequence[0]
    assert (item.SegmentLabel, item.SegmentAlgorithmType) == ("FDI 11 upper right central incisor", "AUTOMATIC")
    assert item.SegmentedPropertyTypeCodeSequence[0].CodeValue == tooth_code(11).value
    frames, uids = _frames(tmp_path / "seg.dcm", tmp_path / "study" / "series")
    assert set(uids) == set(written.sop_uids)
    # slices sorted by z = the volume's k for this synthetic series (axial, +z)
    np.testing.assert_array_equal(frames, np.where(patient.cbct.array > THRESHOLD, 1, 0))


def test_nifti_input_gets_a_series_beside_the_seg(
    patient: SyntheticPatient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = _stub(monkeypatch, tmp_path, "cbct", Threshold(), spacing_mm=1.2, crop_shape=(32, 32, 32))
    source = write_nifti(tmp_path / "scan.nii.gz", patient.cbct)
    report = _ok([*_cbct_args(run, source, tmp_path / "out" / "seg.dcm"), "--format", "dicom-seg"])
    assert report["seg_source"] == "rebuilt-series"
    assert report["series"] == str(tmp_path / "out" / "seg_cbct")
    frames, _ = _frames(tmp_path / "out" / "seg.dcm", tmp_path / "out" / "seg_cbct")
    np.testing.assert_array_equal(frames, np.where(patient.cbct.array > THRESHOLD, 1, 0))


def test_dicom_seg_needs_a_dcm_name_and_fdi(tmp_path: Path, patient: SyntheticPatient) -> None:
    source = write_nifti(tmp_path / "scan.nii.gz", patient.cbct)
    args = ["predict", "cbct", "--checkpoint", str(tmp_path), "--input", str(source), "--format", "dicom-seg"]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "seg.nii.gz")])
    assert result.exit_code == 2
    assert "name it .dcm" in result.output
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "seg.dcm"), "--scheme", "toothfairy2"])
    assert result.exit_code == 2
    assert "DICOM-SEG segments are FDI teeth" in result.output
