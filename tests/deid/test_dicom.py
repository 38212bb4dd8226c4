"""The PS3.15 walker on real DICOM files no one here wrote (pydicom's test data) and on built datasets."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file, get_testdata_files
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from toothmcl_data.deid.dicom import DeidContext, deidentify_dataset
from toothmcl_data.deid.files import deidentify_dicom_bytes
from toothmcl_data.deid.pseudonym import day_shift, remap_uid, shift_date
from toothmcl_data.deid.scan import phi_from_drop, scan_tree
from toothmcl_data.deid.table import DeidOptions, load_table

KEY = b"dicom-test-key-0123456789abcdef"
UID = re.compile(r"^2\.25\.(0|[1-9][0-9]*)$")


def _ctx(options: DeidOptions = DeidOptions(), patient: str = "X") -> DeidContext:
    return DeidContext(key=KEY, pseudonym="TMABCDEF123456", day_shift=day_shift(KEY, patient), options=options)


def test_table_is_the_standard_one() -> None:
    table = load_table()
    assert len(table.exact) >= 600
    expected = {
        0x00100010: "Z",  # Patient's Name
        0x00100020: "D",  # Patient ID (Z/D: replaced by the pseudonym)
        0x00080018: "U",  # SOP Instance UID
        0x00080080: "Z",  # Institution Name (X/Z/D)
        0x00081030: "X",  # Study Description
        0x00100030: "Z",  # Patient's Birth Date
    }
    assert {tag: table.action(tag) for tag in expected} == expected
    assert table.action(0x60004000) == "X"
    assert table.action(0x60024000) == "X"
    assert table.action(0x00280010) is None  # Rows: not in the table, kept


def test_ct_small_deidentifies_with_no_leaks(tmp_path: Path) -> None:
    src = Path(get_testdata_file("CT_small.dcm"))
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "IM1").write_bytes(src.read_bytes())
    phi = phi_from_drop(raw)
    original = pydicom.dcmread(src)
    assert str(original.PatientName) in phi or any(p in phi for p in str(original.PatientName).split("^"))
    sop, data = deidentify_dicom_bytes(src.read_bytes(), _ctx())
    out = tmp_path / "out"
    out.mkdir()
    (out / f"{sop}.dcm").write_bytes(data)
    hits, _ = scan_tree(out, phi)
    assert hits == []
    ds = pydicom.dcmread(io.BytesIO(data))
    assert ds.PatientIdentityRemoved == "YES"
    assert [i.CodeValue for i in ds.DeidentificationMethodCodeSequence] == ["113100", "113107"]
    assert ds.PatientName == "TMABCDEF123456"
    assert ds.PatientID == "TMABCDEF123456"
    assert UID.match(ds.SOPInstanceUID)
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert ds.StudyInstanceUID == remap_uid(KEY, original.StudyInstanceUID)
    assert ds.StudyDate == shift_date(original.StudyDate, day_shift(KEY, "X"))
    assert not any(e.tag.is_private for e in ds)
    assert ds.pixel_array.tolist() == original.pixel_array.tolist()


def test_dicomdir_series_keeps_references_consistent(tmp_path: Path) -> None:
    files = sorted(p for p in get_testdata_files("dicomdirtests/77654033/CT2/*"))
    assert len(files) >= 4
    raw = tmp_path / "raw"
    raw.mkdir()
    outs = []
    for n, f in enumerate(files):
        (raw / f"f{n}").write_bytes(Path(f).read_bytes())
        outs.append(pydicom.dcmread(io.BytesIO(deidentify_dicom_bytes(Path(f).read_bytes(), _ctx())[1])))
    assert len({d.SeriesInstanceUID for d in outs}) == 1
    assert len({d.SOPInstanceUID for d in outs}) == len(files)
    assert all(
        UID.match(d.SeriesInstanceUID) and UID.match(d.FrameOfReferenceUID) for d in outs if "FrameOfReferenceUID" in d
    )
    out = tmp_path / "out"
    out.mkdir()
    for d in outs:
        d.save_as(out / f"{d.SOPInstanceUID}.dcm")
    hits, _ = scan_tree(out, phi_from_drop(raw))
    assert hits == []


def _dataset() -> Dataset:
    ds = Dataset()
    ds.PatientName = "DOE^JOHN"
    ds.PatientID = "MR0048213"
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "M"
    ds.PatientAge = "052Y"
    ds.StudyDate = "20200102"
    ds.StudyTime = "101500"
    ds.StudyDescription = "CBCT of DOE^JOHN both jaws"
    ds.DeviceSerialNumber = "DVX12345678"
    ds.StudyInstanceUID = "1.2.3.4"
    ds.SOPInstanceUID = "1.2.3.4.5"
    ref = Dataset()
    ref.ReferencedSOPInstanceUID = "1.2.3.4.5"
    ref.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.ReferencedImageSequence = Sequence([ref])
    other = Dataset()
    other.PatientID = "NHS123456789"
    other.IssuerOfPatientID = "NHS"
    ds.OtherPatientIDsSequence = Sequence([other])
    code = Dataset()
    code.CodeValue = "D0367"
    code.CodeMeaning = "CBCT for MR0048213"
    ds.ProcedureCodeSequence = Sequence([code])
    ds.add_new(0x00091010, "LO", "SAFE VALUE 7")
    ds.add_new(0x00090010, "LO", "ACME 1.0")
    return ds


@pytest.mark.parametrize(
    ("options", "attribute", "expected"),
    [
        (DeidOptions(), "PatientSex", None),
        (DeidOptions(retain_patient_characteristics=True), "PatientSex", "M"),
        (DeidOptions(retain_patient_characteristics=True), "PatientAge", "052Y"),
        (DeidOptions(), "DeviceSerialNumber", None),
        (DeidOptions(retain_device_identity=True), "DeviceSerialNumber", "DVX12345678"),
        (DeidOptions(), "StudyDate", shift_date("20200102", day_shift(KEY, "X"))),
        (DeidOptions(retain_longitudinal_modified_dates=False), "StudyDate", None),
        (DeidOptions(), "StudyTime", "101500"),
        (DeidOptions(), "PatientBirthDate", None),
        (DeidOptions(), "StudyDescription", "absent"),
        (DeidOptions(clean_descriptors=True), "StudyDescription", "CBCT of both jaws"),
    ],
)
def test_options(options: DeidOptions, attribute: str, expected: str | None) -> None:
    ds = deidentify_dataset(_dataset(), _ctx(options))
    if expected == "absent":
        assert attribute not in ds
    else:
        assert (ds.get(attribute) or None) == expected


def test_walker_recurses_and_keeps_references() -> None:
    ds = deidentify_dataset(_dataset(), _ctx())
    assert ds.ReferencedImageSequence[0].ReferencedSOPInstanceUID == ds.SOPInstanceUID
    assert ds.ReferencedImageSequence[0].ReferencedSOPClassUID == "1.2.840.10008.5.1.4.1.1.2"
    assert "OtherPatientIDsSequence" not in ds
    assert "MR0048213" not in ds.ProcedureCodeSequence[0].CodeMeaning  # swept beyond the table
    assert (0x0009, 0x1010) not in ds
    assert (0x0009, 0x0010) not in ds


def test_safe_private_is_kept_only_when_listed() -> None:
    opts = DeidOptions(retain_safe_private=True, safe_private=(("ACME 1.0", 0x10),))
    ds = deidentify_dataset(_dataset(), _ctx(opts))
    assert ds[0x00091010].value == "SAFE VALUE 7"
    assert [i.CodeValue for i in ds.DeidentificationMethodCodeSequence] == ["113100", "113107", "113111"]


def test_options_round_trip_and_validate() -> None:
    opts = DeidOptions(clean_descriptors=True, safe_private=(("ACME", 1),))
    assert DeidOptions.from_dict(opts.to_dict()) == opts
    with pytest.raises(ValueError, match=r"unknown key\(s\) \[.retain_everything.\]; known keys: .* \(DeidOptions\)"):
        DeidOptions.from_dict({"retain_everything": True})
    with pytest.raises(ValueError, match="safe_private entries"):
        DeidOptions(safe_private=(("ACME", 300),))
