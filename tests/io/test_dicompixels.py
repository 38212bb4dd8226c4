"""pixels: uncompressed 16-bit images read straight from Pixel Data must give what pydicom decodes, bit for bit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from toothmcl_data.errors import SeriesError
from toothmcl_data.io.dicompixels import pixels

RAW = np.array([[0x0000, 0x0123, 0x07FF], [0x0800, 0x0FFF, 0xF123], [0xF800, 0x8001, 0xFFFF]], dtype="<u2")
"""Stored words with every high-bit pattern: junk above a 12-bit value, 12- and 16-bit sign bits."""


def _image(syntax: UID, bits: int, stored: int, signed: int, frames: int = 1) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = syntax
    ds.Rows, ds.Columns = RAW.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, stored, stored - 1, signed
    words = np.stack([RAW + k for k in range(frames)]).astype("<u2")
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.PixelData = words.tobytes() if bits == 16 else (words & 0xFF).astype(np.uint8).tobytes()
    return ds


@pytest.mark.parametrize(
    ("syntax", "bits", "stored", "signed", "frames"),
    [
        (ExplicitVRLittleEndian, 16, 16, 0, 1),
        (ExplicitVRLittleEndian, 16, 16, 1, 1),
        (ExplicitVRLittleEndian, 16, 12, 0, 1),  # junk in the 4 unused high bits: shifted out
        (ImplicitVRLittleEndian, 16, 12, 1, 1),  # 12-bit signed: sign-extended from bit 11
        (ExplicitVRLittleEndian, 16, 12, 1, 3),  # an enhanced multi-frame image: (frames, rows, cols)
        (ExplicitVRLittleEndian, 8, 8, 0, 1),  # not the 16-bit path: pydicom decodes it
    ],
)
def test_pixels_are_what_pydicom_decodes(syntax: UID, bits: int, stored: int, signed: int, frames: int) -> None:
    ds = _image(syntax, bits, stored, signed, frames)
    got = pixels(Path("IM1"), ds)
    expected = ds.pixel_array
    assert got.shape == expected.shape
    np.testing.assert_array_equal(got.astype(np.int64), expected.astype(np.int64))
    if stored == 12 and frames == 1:
        assert expected[1, 2] == 0x123  # what pydicom gives: the junk bits are not part of the value
        assert expected.max() <= (0x7FF if signed else 0xFFF)


def test_pixel_data_shorter_than_declared_names_the_file() -> None:
    ds = _image(ExplicitVRLittleEndian, 16, 16, 0)
    ds.PixelData = ds.PixelData[:-2]
    with pytest.raises(SeriesError, match=r"DICOM file IM1 declares 1 frame\(s\) of 3×3 pixels"):
        pixels(Path("IM1"), ds)
