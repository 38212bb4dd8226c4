"""DICOM-SEG + NIfTI export, checked with highdicom and pydicom themselves (not with our readers)."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

from tests.export import onecase
from toothmcl_data.errors import InputError
from toothmcl_data.export.seg import export_seg, series_from_volume, write_case
from toothmcl_data.export.toothcodes import tooth_code, tooth_codes
from toothmcl_data.io.volume import LPS_FROM_RAS
from toothmcl_data.store import CaseRecord
from toothmcl_data.types import Volume

record = onecase.record  # fixtures shared by the seg and slicer tests
store = onecase.store

hd = pytest.importorskip("highdicom", reason="DICOM-SEG export needs highdicom (pip install 'toothmcl[dicomseg]')")

# not symmetric: permuted axes, a left-handed grid and unequal spacing, so a transposed frame fails
AFFINE = np.array([[0.0, 0.5, 0.0, 10.0], [0.4, 0.0, 0.0, -5.0], [0.0, 0.0, -0.6, 30.0], [0.0, 0.0, 0.0, 1.0]])


REQUIRED_SEG_ATTRIBUTES = (  # Type 1 attributes of the Segmentation IOD's modules (PS3.3 A.51)
    "SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID",
    "Modality", "SeriesNumber", "InstanceNumber", "Manufacturer", "ManufacturerModelName", "DeviceSerialNumber",
    "SoftwareVersions", "ImageType", "ContentLabel", "SegmentationType", "SegmentSequence", "SamplesPerPixel",
    "PhotometricInterpretation", "Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit", "PixelData",
    "NumberOfFrames", "SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence", "ContentDate",
    "ContentTime", "DimensionOrganizationSequence", "DimensionIndexSequence", "ReferencedSeriesSequence",
    "PatientID",
)  # fmt: skip


def _case() -> tuple[Volume, Volume]:
    rng = np.random.default_rng(0)
    cbct = Volume(rng.integers(-1000, 3000, (7, 5, 4)).astype(np.int16), AFFINE)
    labels = np.zeros((7, 5, 4), np.int16)
    labels[1:3, 1:4, 0] = 16
    labels[3:6, 2:4, 2] = 26
    labels[0, 0, 3] = 36
    labels[6, 4, 3] = 46
    return cbct, Volume(labels, AFFINE)


def _read_back(seg_path: Path, series: Path) -> tuple[np.ndarray, dict[int, int]]:
    """(I, J, K) FDI label map read with highdicom from the SEG, frames placed by the source files' order."""
    seg = hd.seg.segread(seg_path)
    sources = sorted((pydicom.dcmread(p) for p in series.iterdir()), key=lambda d: int(d.InstanceNumber))
    uids = [str(d.SOPInstanceUID) for d in sources]
    frames = seg.get_pixels_by_source_instance(uids, combine_segments=True, skip_overlap_checks=True)
    fdi = {n: int(seg.get_segment_description(n).tracking_id.split()[1]) for n in seg.segment_numbers}
    lut = np.zeros(max(fdi) + 1, np.int16)
    for n, code in fdi.items():
        lut[n] = code
    # each frame is (rows, cols) = array[:, :, k].T; the sources' InstanceNumber is k + 1 here
    return np.stack([lut[f].T for f in frames], axis=-1), fdi


def test_snomed_codes_left_right_upper_lower() -> None:
    assert len(tooth_codes()) == 52  # DICOM CID 4018 (32 permanent) + CID 4019 (20 deciduous)
    expected = {
        16: ("865995000", "Permanent maxillary right first molar tooth"),
        26: ("865988009", "Permanent maxillary left first molar tooth"),
        36: ("866006002", "Mandibular left first molar tooth"),
        46: ("866005003", "Mandibular right first molar tooth"),
        32: ("423331005", "Mandibular left lateral tooth"),
        55: ("27855007", "Deciduous maxillary right second molar tooth"),
    }
    for fdi, (value, meaning) in expected.items():
        code = tooth_code(fdi)
        assert (code.value, code.scheme_designator, code.meaning) == (value, "SCT", meaning)


def test_seg_reads_back_equal_to_label_map(tmp_path: Path) -> None:
    cbct, labels = _case()
    result = write_case(tmp_path, "TMCASE", cbct, labels, uid_seed="seed")
    assert result.source == "rebuilt-from-store"
    assert result.fdi_by_segment == {1: 16, 2: 26, 3: 36, 4: 46}
    got, fdi = _read_back(result.seg, result.series)
    assert fdi == {1: 16, 2: 26, 3: 36, 4: 46}
    np.testing.assert_array_equal(got, labels.array)

    ds = pydicom.dcmread(result.seg)
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4"  # Segmentation Storage
    assert ds.Modality == "SEG"
    assert ds.SegmentationType == "BINARY"
    for keyword in REQUIRED_SEG_ATTRIBUTES:
        assert keyword in ds, keyword
        assert ds[keyword].value not in (None, ""), keyword
    assert ds.NumberOfFrames == len(ds.PerFrameFunctionalGroupsSequence)
    series_uids = {str(pydicom.dcmread(p).SOPInstanceUID) for p in result.series.iterdir()}
    for frame in ds.PerFrameFunctionalGroupsSequence:  # every frame names its source slice in the series
        source = frame.DerivationImageSequence[0].SourceImageSequence[0]
        assert str(source.ReferencedSOPInstanceUID) in series_uids
    assert ds.StudyInstanceUID == result.study_uid
    assert ds.PatientID == "TMCASE"
    refs = {
        str(item.ReferencedSOPInstanceUID) for s in ds.ReferencedSeriesSequence for item in s.ReferencedInstanceSequence
    }
    assert refs == {str(pydicom.dcmread(p).SOPInstanceUID) for p in result.series.iterdir()}
    assert ds.ReferencedSeriesSequence[0].SeriesInstanceUID == result.series_uid
    segments = {int(s.SegmentNumber): s for s in ds.SegmentSequence}
    for number, fdi_code in ((1, 16), (2, 26), (3, 36)):
        item = segments[number]
        assert item.SegmentLabel.startswith(f"FDI {fdi_code} ")
        assert item.SegmentedPropertyTypeCodeSequence[0].CodeValue == tooth_code(fdi_code).value
        assert item.SegmentedPropertyCategoryCodeSequence[0].CodeValue == "91723000"
        assert item.SegmentAlgorithmType == "MANUAL"
    assert segments[1].SegmentLabel == "FDI 16 upper right first molar"
    assert segments[2].SegmentLabel == "FDI 26 upper left first molar"
    assert segments[3].SegmentLabel == "FDI 36 lower left first molar"

    # the rebuilt source series holds the stored values and the de-identified identity only
    first = pydicom.dcmread(result.series / "CT00001.dcm")
    np.testing.assert_array_equal(first.pixel_array.T, cbct.array[:, :, 0])
    assert (str(first.PatientName), first.PatientIdentityRemoved, first.StudyDate) == ("TMCASE^", "YES", "")

    nii = nib.load(result.nifti)
    np.testing.assert_array_equal(np.asarray(nii.dataobj), labels.array)
    np.testing.assert_allclose(LPS_FROM_RAS @ nii.affine, AFFINE)


def test_deidentified_series_is_referenced_when_on_the_grid(tmp_path: Path) -> None:
    cbct, labels = _case()
    kept = tmp_path / "work" / "cbct"
    kept.mkdir(parents=True)
    series = series_from_volume(cbct, pseudonym="TMCASE", uid_seed="deid-run")
    for n, ds in enumerate(reversed(series)):  # file order ≠ slice order
        ds.save_as(kept / f"IM{n:03d}", enforce_file_format=True)
    result = write_case(tmp_path / "out", "TMCASE", cbct, labels, uid_seed="other", deidentified=kept)
    assert result.source == "deidentified-series"
    assert result.series_uid == str(series[0].SeriesInstanceUID)
    assert sorted(p.name for p in result.series.iterdir()) == sorted(p.name for p in kept.iterdir())
    got, _ = _read_back(result.seg, result.series)
    np.testing.assert_array_equal(got, labels.array)

    shifted = Volume(cbct.array, AFFINE + np.array([[0, 0, 0, 0.3], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]))
    moved = write_case(
        tmp_path / "out2", "TMCASE", shifted, Volume(labels.array, shifted.affine), uid_seed="x", deidentified=kept
    )
    assert moved.source == "rebuilt-from-store"  # off the grid by 0.3 mm: not the series of this volume


def test_labels_off_the_series_grid_are_refused(tmp_path: Path) -> None:
    cbct, labels = _case()
    from toothmcl_data.export.seg import build_segmentation

    series = series_from_volume(cbct, pseudonym="TMCASE", uid_seed="s")
    flipped = Volume(labels.array, AFFINE @ np.diag([-1.0, 1.0, 1.0, 1.0]))
    with pytest.raises(InputError, match="does not lie on the volume grid"):
        build_segmentation(series, flipped, uid_seed="s")


def test_export_seg_from_store(tmp_path: Path, store: Path, record: CaseRecord) -> None:
    done = export_seg(store, "v1", tmp_path / "seg")
    assert [d.pseudonym for d in done] == [record.pseudonym]
    assert done[0].source == "rebuilt-from-store"  # this store has no working folder
    assert (tmp_path / "seg" / "export.json").is_file()
    got, fdi = _read_back(done[0].seg, done[0].series)
    truth = record.case.cbct_labels
    assert truth is not None
    np.testing.assert_array_equal(got, truth.array)
    assert sorted(fdi.values()) == sorted(set(np.unique(truth.array).tolist()) - {0})
    again = export_seg(store, "v1", tmp_path / "seg2")
    assert again[0].seg_series_uid == done[0].seg_series_uid  # UIDs derive from the case content hash
