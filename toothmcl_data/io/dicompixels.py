"""The stored pixels of one DICOM image: uncompressed 16-bit grey images (the common CBCT slice) straight from
Pixel Data, everything else through pydicom's pixel handlers."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pydicom
from numpy.typing import NDArray

from toothmcl_data.errors import SeriesError
from toothmcl_data.io.dicomvalues import check_pixel_size, is_compressed, number
from toothmcl_data.io.discover import DICOM_ERRORS, safe_message

_NATIVE_LE = frozenset({"1.2.840.10008.1.2", "1.2.840.10008.1.2.1"})
"""Implicit and Explicit VR Little Endian: uncompressed pixels in the file's byte order."""


def _native16(ds: pydicom.Dataset, frames: int) -> NDArray[np.generic] | None:
    """The pixels of an uncompressed little-endian 16-bit grey image — the common CBCT slice — read straight from
    Pixel Data as pydicom's ``pixel_array`` gives them: (rows, cols), (frames, rows, cols) for several frames;
    unused high bits shifted out, sign-extended when signed. Without pydicom's decoder set-up, which costs as
    much as parsing the file. None for any other encoding (pydicom decodes those)."""
    syntax = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    if syntax not in _NATIVE_LE or ds.get("SamplesPerPixel", 1) != 1 or ds.get("BitsAllocated") != 16:
        return None
    data, stored, signed = ds.PixelData, ds.get("BitsStored", 16), ds.get("PixelRepresentation", 0)
    if not isinstance(data, bytes) or not isinstance(stored, int) or not 1 <= stored <= 16 or signed not in (0, 1):
        return None
    rows, cols = int(ds.Rows), int(ds.Columns)
    shape = (frames, rows, cols) if frames > 1 else (rows, cols)
    out = np.frombuffer(data, dtype="<i2" if signed else "<u2", count=math.prod(shape)).reshape(shape)
    if stored < 16:
        out = (out << (16 - stored)) >> (16 - stored)
    return out


def pixels(path: Path, ds: pydicom.Dataset) -> NDArray[np.generic]:
    """The stored pixel values of one DICOM image ``ds`` (read from ``path``): (rows, cols), or (frames, rows,
    cols) for a multi-frame image, before Rescale. The declared size is checked against the stored bytes first;
    SeriesError naming the file when they cannot be decoded (with the decoder to install for a compressed one)."""
    frames = int(number(path, ds, "NumberOfFrames", 1))
    check_pixel_size(path, ds, frames)
    native = _native16(ds, frames)
    if native is not None:
        return native
    try:
        return np.asarray(ds.pixel_array)
    except (*DICOM_ERRORS, RuntimeError) as err:
        syntax = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
        compressed = is_compressed(syntax)
        hint = (
            "if no decoder is installed: `pip install pylibjpeg pylibjpeg-libjpeg pylibjpeg-openjpeg "
            "pylibjpeg-rle`; else the file is truncated — re-export it"
            if compressed
            else "the file is truncated or uses an unsupported encoding — re-export it uncompressed"
        )
        raise SeriesError(
            f"cannot decode pixel data of DICOM file {path}: {safe_message(err)}; {hint} "
            f"(transfer syntax {syntax or '?'})"
        ) from err
