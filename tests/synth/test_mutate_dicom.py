"""DICOM mutators of the fuzzer: each edits a valid file where it says, seeded, and the result stays bytes."""

from __future__ import annotations

import io
import struct

import numpy as np
import pydicom
from pydicom.dataset import FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from toothmcl_data.synth.mutate_dicom import DICOM, dicom_huge_size, dicom_transfer_syntax


def _file() -> bytes:
    ds = pydicom.Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID = CTImageStorage
    ds.PatientName = "Doe^Jane"
    ds.Rows, ds.Columns, ds.BitsAllocated, ds.SamplesPerPixel = 4, 4, 16, 1
    ds.PixelData = b"\0" * 32
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def test_every_mutator_is_seeded_and_changes_the_file() -> None:
    data = _file()
    for name, mutate in DICOM.items():
        once = mutate(data, np.random.default_rng(3))
        again = mutate(data, np.random.default_rng(3))
        assert isinstance(once, bytes), name
        assert once == again, name
    changed = sum(mutate(data, np.random.default_rng(s)) != data for mutate in DICOM.values() for s in range(5))
    assert changed >= len(DICOM) * 3


def test_huge_size_edits_rows_or_columns_in_place() -> None:
    data = _file()
    seen = set()
    for seed in range(20):
        out = dicom_huge_size(data, np.random.default_rng(seed))
        ds = pydicom.dcmread(io.BytesIO(out), force=True)
        seen.add((int(ds.Rows), int(ds.Columns), int(ds.BitsAllocated)))
    assert any(r != 4 or c != 4 or b != 16 for r, c, b in seen)
    assert struct.pack("<H", 4) in data


def test_transfer_syntax_is_replaced_in_the_file_meta() -> None:
    out = dicom_transfer_syntax(_file(), np.random.default_rng(0))
    meta = pydicom.dcmread(io.BytesIO(out), force=True, stop_before_pixels=True).file_meta
    assert str(meta.TransferSyntaxUID) != ExplicitVRLittleEndian
