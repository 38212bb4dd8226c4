"""The CT series a segmentation references: rebuilt from a volume, or read, and placed on the volume's grid.

A frame of a SEG belongs to the source slice at the same position. :func:`slice_indices` maps each
single-frame dataset's ImagePositionPatient through the volume's affine to its slice index ``k`` (it must land
on the grid, with ImageOrientationPatient, PixelSpacing, Rows and Columns matching); the slice shows
``array[:, :, k].T``, the transpose :mod:`toothmcl_data.io.dicom` applies when it reads a series (``i`` =
column, ``j`` = row). :func:`series_from_volume` writes the same convention in reverse.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pydicom
from numpy.typing import NDArray
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian

from toothmcl_data.errors import InputError
from toothmcl_data.types import Volume

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
_GRID_TOLERANCE = 1e-3
"""Largest distance (in voxels) of a source slice's position from the volume grid, and of direction cosines."""


def derived_uid(*parts: str) -> str:
    """A ``2.25.<decimal>`` UID (≤ 64 characters) from sha256 of ``parts``: the same parts give the same UID."""
    digest = hashlib.sha256("\x00".join(("toothmcl-export", *parts)).encode()).digest()
    return f"2.25.{int.from_bytes(digest[:16], 'big')}"


def _geometry(volume: Volume) -> tuple[list[float], list[float]]:
    """(ImageOrientationPatient (6,), PixelSpacing [row, column] mm) of slices ``array[:, :, k].T``."""
    a = volume.affine[:3, :3]
    di, dj = np.linalg.norm(a[:, 0]), np.linalg.norm(a[:, 1])
    x, y = a[:, 0] / di, a[:, 1] / dj
    if abs(float(x @ y)) > _GRID_TOLERANCE:
        raise InputError(
            f"cannot write DICOM slices of this volume: its i and j axes are not orthogonal (cos {float(x @ y):.3g})"
        )
    return [float(v) for v in (*x, *y)], [float(dj), float(di)]


def series_from_volume(
    volume: Volume, *, pseudonym: str, uid_seed: str, description: str = "toothmcl CBCT"
) -> list[Dataset]:
    """A de-identified CT series of ``volume`` ((I, J, K) integer values, LPS affine): one dataset per slice k.

    Pixel data are ``array[:, :, k].T`` as int16 (PixelRepresentation 1, Rescale 1/0: the stored values
    exactly); PatientName and PatientID are ``pseudonym``; dates and times are empty (Type 2); UIDs are
    :func:`derived_uid` of ``uid_seed``. Returns the datasets (with file meta) in order of ``k``.
    """
    values = np.asarray(volume.array)
    if not np.issubdtype(values.dtype, np.integer) or values.min() < -32768 or values.max() > 32767:
        raise InputError(f"case {pseudonym}: a CT series needs int16 values, got dtype {values.dtype}")
    iop, spacing = _geometry(volume)
    study, series, frame = (derived_uid(uid_seed, role) for role in ("study", "series", "frame"))
    thickness = float(abs(np.linalg.det(volume.affine[:3, :3])) / (spacing[0] * spacing[1]))
    out: list[Dataset] = []
    for k in range(volume.shape[2]):
        ds = Dataset()
        sop = derived_uid(uid_seed, "sop", str(k))
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = UID(CT_IMAGE_STORAGE)
        ds.file_meta.MediaStorageSOPInstanceUID = UID(sop)
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID, ds.SOPInstanceUID = CT_IMAGE_STORAGE, sop
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.PatientName, ds.PatientID = f"{pseudonym}^", pseudonym
        ds.PatientBirthDate = ds.PatientSex = ds.StudyDate = ds.StudyTime = ""
        ds.ReferringPhysicianName = ds.StudyID = ds.AccessionNumber = ds.PositionReferenceIndicator = ""
        ds.PatientIdentityRemoved = "YES"
        ds.DeidentificationMethod = "toothmcl: rebuilt from a de-identified published volume"
        ds.Modality, ds.Manufacturer, ds.SeriesDescription = "CT", "", description
        ds.SeriesNumber, ds.InstanceNumber = 1, k + 1
        ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL"]
        ds.ImageOrientationPatient = iop
        ds.ImagePositionPatient = [float(v) for v in (volume.affine @ [0.0, 0.0, float(k), 1.0])[:3]]
        ds.PixelSpacing = spacing
        ds.SliceThickness = round(thickness, 6)
        ds.Rows, ds.Columns = volume.shape[1], volume.shape[0]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = 0, 1, "HU"
        ds.BurnedInAnnotation = "NO"
        ds.PixelData = np.ascontiguousarray(values[:, :, k].T).astype("<i2").tobytes()
        out.append(ds)
    return out


def read_series_headers(folder: Path) -> list[Dataset]:
    """The headers (no pixel data) of every DICOM file directly in ``folder``, in file-name order."""
    files = sorted(p for p in Path(folder).iterdir() if p.is_file())
    out: list[Dataset] = []
    for path in files:
        try:
            out.append(pydicom.dcmread(path, stop_before_pixels=True))
        except pydicom.errors.InvalidDicomError as err:
            raise InputError(f"{path}: not a DICOM file; a source series folder holds only its slices") from err
    if not out:
        raise InputError(f"{folder}: no DICOM files; expected the slices of one CT series")
    return out


def slice_indices(datasets: Sequence[Dataset], volume: Volume, where: str) -> NDArray[np.int64]:
    """The slice index ``k`` of ``volume`` each single-frame dataset shows; raises where geometry disagrees."""
    iop, spacing = _geometry(volume)
    inverse = np.linalg.inv(volume.affine)
    out = np.empty(len(datasets), dtype=np.int64)
    for n, ds in enumerate(datasets):
        rows, cols = int(ds.Rows), int(ds.Columns)
        got_iop = np.asarray(ds.ImageOrientationPatient, dtype=np.float64)
        ijk = (inverse @ [*map(float, ds.ImagePositionPatient), 1.0])[:3]
        k = round(float(ijk[2]))
        ok = (rows, cols) == (volume.shape[1], volume.shape[0])
        ok &= bool(np.allclose(got_iop, iop, atol=_GRID_TOLERANCE))
        ok &= bool(np.allclose(np.asarray(ds.PixelSpacing, dtype=np.float64), spacing, rtol=_GRID_TOLERANCE))
        ok &= bool(np.all(np.abs(ijk - [0.0, 0.0, k]) < _GRID_TOLERANCE)) and 0 <= k < volume.shape[2]
        if not ok:
            raise InputError(
                f"{where}: DICOM slice {ds.get('SOPInstanceUID', n)} does not lie on the volume grid (position "
                f"{ijk.round(3).tolist()} in voxels, {rows}×{cols} pixels, orientation {got_iop.round(4).tolist()}; "
                f"expected slice k of {volume.shape[1]}×{volume.shape[0]}, orientation {np.round(iop, 4).tolist()})"
                "; pass the series the label map was made on"
            )
        out[n] = k
    if len(set(out.tolist())) != len(out):
        raise InputError(f"{where}: two DICOM slices sit at the same position; expected one series")
    return out
