"""Checked DICOM header values: numbers, counts and declared pixel sizes, each refused with the file named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, JPEG2000Lossless

from toothmcl_data.errors import SeriesError
from toothmcl_data.io.dicomvalues import check_elements, check_pixel_size, is_compressed, number, numbers
from toothmcl_data.io.discover import DICOM_ERRORS

PATH = Path("drop/p1/IM0001.dcm")


def _slice(rows: int = 4, cols: int = 5, stored: int | None = None) -> pydicom.Dataset:
    ds = pydicom.Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = CTImageStorage
    ds.Rows, ds.Columns, ds.BitsAllocated, ds.SamplesPerPixel = rows, cols, 16, 1
    ds.PixelSpacing = [0.4, 0.5]
    ds.PixelData = b"\0" * (rows * cols * 2 if stored is None else stored)
    return ds


def test_numbers_are_read_and_defaults_apply() -> None:
    ds = _slice()
    assert number(PATH, ds, "Rows", 0) == 4
    assert number(PATH, ds, "RescaleSlope", 1.0) == 1.0  # absent
    assert np.array_equal(numbers(PATH, ds, "PixelSpacing", 2), [0.4, 0.5])


def test_bad_numbers_name_the_file_and_keyword() -> None:
    ds = _slice()
    ds.PixelSpacing = [0.4]
    with pytest.raises(SeriesError, match=r"IM0001\.dcm.*PixelSpacing.*expected 2"):
        numbers(PATH, ds, "PixelSpacing", 2)
    ds.RescaleSlope = "nan"
    with pytest.raises(SeriesError, match=r"IM0001\.dcm.*finite"):
        number(PATH, ds, "RescaleSlope", 1.0)


def test_declared_size_is_checked_against_the_stored_pixel_data() -> None:
    check_pixel_size(PATH, _slice(), frames=1)
    with pytest.raises(SeriesError, match=r"IM0001\.dcm declares 1 frame.*40 bytes.*holds 39"):
        check_pixel_size(PATH, _slice(stored=39), frames=1)
    with pytest.raises(SeriesError, match="expected positive sizes"):
        check_pixel_size(PATH, _slice(rows=0), frames=1)
    huge = _slice()
    huge.Rows = huge.Columns = 65535
    with pytest.raises(SeriesError, match="truncated or its header is wrong"):
        check_pixel_size(PATH, huge, frames=1)


def test_compressed_syntaxes_are_recognised() -> None:
    assert is_compressed(JPEG2000Lossless)
    assert not is_compressed(ExplicitVRLittleEndian)
    assert not is_compressed(None)


def _raw_slice(uid: bytes, rows: bytes = b"\x04\x00") -> pydicom.Dataset:
    """A dataset of undecoded (raw, explicit VR little endian) elements, as dcmread leaves them."""
    ds = pydicom.Dataset()
    ds.set_original_encoding(False, True)
    for tag, vr, value in (
        (0x00080060, "CS", b"CT"),
        (0x00080018, "UI", uid),
        (0x00280010, "US", rows),
        (0x00280030, "DS", b"0.4\\0.5 "),
    ):
        t = pydicom.tag.Tag(tag)
        ds._dict[t] = RawDataElement(t, vr, len(value), value, 0, False, True)
    return ds


def test_series_headers_are_decoded_once_and_failures_are_not_remembered() -> None:
    checked: dict[tuple[object, ...], DataElement] = {}
    first = _raw_slice(b"1.2.3.1\0")
    check_elements(PATH, first, checked)
    assert len(checked) == 4
    second = _raw_slice(b"1.2.3.2\0")
    check_elements(PATH, second, checked)
    assert len(checked) == 5  # only the new SOP Instance UID was decoded and added
    assert not [e for e in second._dict.values() if isinstance(e, RawDataElement)]
    # the shared elements are the first file's decoded ones, not decoded again; the UID is the second's own
    assert second._dict[pydicom.tag.Tag(0x00280030)] is first._dict[pydicom.tag.Tag(0x00280030)]
    assert second.PixelSpacing == [0.4, 0.5]
    assert second.Rows == 4
    assert second.SOPInstanceUID == "1.2.3.2"
    bad = _raw_slice(b"1.2.3.3\0", rows=b"\x04\x00\x00")  # 3 bytes cannot hold a US value
    for _ in range(2):  # refused each time: a failed element is never taken for checked
        with pytest.raises((SeriesError, *DICOM_ERRORS)):
            check_elements(PATH, bad, checked)
    assert not [k for k in checked if k[2] == b"\x04\x00\x00"]
    check_elements(PATH, _raw_slice(b"1.2.3.4\0"))  # without a memo: every element decoded, as before
