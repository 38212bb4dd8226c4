"""The byte-level encoder gives, element for element, what the pydicom path gives, on files no one here wrote."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, validate_file_meta
from pydicom.uid import ImplicitVRLittleEndian

from toothmcl_data.deid.dicom import DeidContext
from toothmcl_data.deid.files import deidentify_dicom_bytes, deidentify_with_pydicom
from toothmcl_data.deid.part10 import deidentify_part10
from toothmcl_data.deid.part10parse import UnsupportedError
from toothmcl_data.deid.pseudonym import day_shift
from toothmcl_data.deid.table import DeidOptions
from toothmcl_data.errors import DeidError
from toothmcl_data.synth.dicom import PRIVATE_CREATOR_ACQ, PRIVATE_CREATOR_PATIENT, write_series
from toothmcl_data.synth.identity import draw_identity
from toothmcl_data.types import Volume

KEY = b"part10-test-key-0123456789abcdef"
OPTIONS = {
    "basic": DeidOptions(),
    "all-options": DeidOptions(
        retain_longitudinal_modified_dates=False,
        retain_patient_characteristics=True,
        retain_device_identity=True,
        retain_safe_private=True,
        clean_descriptors=True,
        safe_private=(
            (PRIVATE_CREATOR_PATIENT, 0x01),
            (PRIVATE_CREATOR_ACQ, 0x10),
            ("GEMS_IDEN_01", 0x05),
            ("SIEMENS CSA HEADER", 0x08),
        ),
    ),
}
BYTE_LEVEL = (
    "CT_small.dcm",  # explicit VR LE, GE private groups, Latin-1
    "MR_small.dcm",
    "MR_small_implicit.dcm",  # implicit VR LE
    "MR_small_padded.dcm",
    "MR_small_RLE.dcm",  # encapsulated: RLE
    "SC_rgb_rle.dcm",
    "JPEG2000.dcm",  # encapsulated: JPEG 2000, private tags
    "GDCMJ2K_TextGBR.dcm",
    "693_J2KI.dcm",
    "priv_SQ.dcm",  # private sequence, implicit VR
    "reportsi.dcm",  # structured reports: deeply nested sequences
    "test-SR.dcm",
    "waveform_ecg.dcm",
    "examples_overlay.dcm",  # overlay group (60xx)
    "liver_1frame.dcm",
)
FALLBACK = (
    "image_dfl.dcm",  # deflated
    "MR_small_bigendian.dcm",  # big endian
    "rtplan.dcm",  # file meta without Implementation Version Name (pydicom adds one)
    "UN_sequence.dcm",  # a sequence encoded as UN of undefined length (and no SOP Instance UID)
)


def _ctx(options: DeidOptions) -> DeidContext:
    return DeidContext(key=KEY, pseudonym="TM0123456789AB", day_shift=day_shift(KEY, "P"), options=options)


def _testfile(name: str) -> bytes:
    path = get_testdata_file(name)
    assert isinstance(path, str), f"pydicom test file {name} is not installed"
    return Path(path).read_bytes()


def _differences(a: Dataset, b: Dataset, where: str = "") -> list[str]:
    """Every tag present in one only, and every element whose VR or value differs, recursing into items."""
    found = [
        f"{where}{t} only in {'byte' if t in a else 'pydicom'} output" for t in sorted(set(a.keys()) ^ set(b.keys()))
    ]
    for tag in sorted(set(a.keys()) & set(b.keys())):
        x, y = a[tag], b[tag]
        if x.VR != y.VR:
            found.append(f"{where}{tag} VR {x.VR} != {y.VR}")
        elif x.VR == "SQ":
            if len(x.value) != len(y.value):
                found.append(f"{where}{tag} has {len(x.value)} != {len(y.value)} items")
            for n, (i, j) in enumerate(zip(x.value, y.value, strict=False)):
                found += _differences(i, j, f"{where}{tag}[{n}].")
        elif x.value != y.value:
            found.append(f"{where}{tag} {x.value!r:.60} != {y.value!r:.60}")
    return found


def _check_same(data: bytes, ctx: DeidContext) -> Dataset:
    sop, out = deidentify_part10(data, ctx)
    ref_sop, ref = deidentify_with_pydicom(data, ctx)
    assert sop == ref_sop
    ours, theirs = pydicom.dcmread(io.BytesIO(out)), pydicom.dcmread(io.BytesIO(ref))
    assert _differences(ours.file_meta, theirs.file_meta, "meta ") == []
    assert _differences(ours, theirs) == []
    # a valid Part 10 file: zero preamble, DICM, a complete file meta whose group length is right
    assert out[:132] == bytes(128) + b"DICM"
    validate_file_meta(ours.file_meta, enforce_standard=True)
    assert "SourceApplicationEntityTitle" not in ours.file_meta
    meta_end = 132 + 12 + ours.file_meta.FileMetaInformationGroupLength
    assert out[meta_end : meta_end + 2] != b"\x02\x00"
    if sop:  # priv_SQ.dcm has no SOP Instance UID (deidentify_dicom_bytes refuses it)
        assert ours.file_meta.MediaStorageSOPInstanceUID == ours.SOPInstanceUID == sop
    original = pydicom.dcmread(io.BytesIO(data))
    if "PixelData" in original:
        assert ours.PixelData == original.PixelData
    return ours


@pytest.mark.parametrize("options", OPTIONS.values(), ids=OPTIONS.keys())
@pytest.mark.parametrize("name", BYTE_LEVEL)
def test_pydicom_test_files_match_the_pydicom_path(name: str, options: DeidOptions) -> None:
    _check_same(_testfile(name), _ctx(options))


@pytest.mark.parametrize("name", FALLBACK)
def test_unusual_files_fall_back_to_pydicom(name: str) -> None:
    data = _testfile(name)
    with pytest.raises(UnsupportedError):
        deidentify_part10(data, _ctx(DeidOptions()))
    if "SOPInstanceUID" not in pydicom.dcmread(io.BytesIO(data)):
        with pytest.raises(DeidError, match=r"expected a remapped 2\.25\. UID"):
            deidentify_dicom_bytes(data, _ctx(DeidOptions()))
        return
    sop, out = deidentify_dicom_bytes(data, _ctx(DeidOptions()))
    assert pydicom.dcmread(io.BytesIO(out)).SOPInstanceUID == sop


def _series(tmp_path: Path) -> list[bytes]:
    rng = np.random.default_rng(3)
    volume = Volume(rng.integers(0, 3000, size=(12, 10, 3)).astype(np.int16), np.diag([0.4, 0.4, 0.4, 1.0]))
    written = write_series(tmp_path / "series", volume, draw_identity(rng, "P0007"), rng)
    return [p.read_bytes() for p in written.paths]


def _reencode(data: bytes, change: dict[str, str], implicit: bool) -> bytes:
    ds = pydicom.dcmread(io.BytesIO(data))
    for keyword, value in change.items():
        setattr(ds, keyword, value)
    ds.file_meta.SourceApplicationEntityTitle = "SMILE_PACS"  # names the sender: removed
    if implicit:
        ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


@pytest.mark.parametrize("options", OPTIONS.values(), ids=OPTIONS.keys())
def test_synthetic_series_matches_the_pydicom_path(tmp_path: Path, options: DeidOptions) -> None:
    files = _series(tmp_path)
    utf8 = {
        "SpecificCharacterSet": "ISO_IR 192",
        "PatientName": "MÜLLER^ZOË",
        "ImageComments": "Zoë MÜLLER, re-scan",
        "SeriesDescription": "Dental volume MÜLLER",
    }
    variants = [*files, _reencode(files[0], {}, implicit=True), _reencode(files[1], utf8, implicit=False)]
    for data in variants:
        ds = _check_same(data, _ctx(options))
        assert ds.PatientName == "TM0123456789AB"
        assert "MÜLLER" not in str(ds.get("ImageComments", ""))
