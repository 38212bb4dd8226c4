"""Checked values of a DICOM header: every element decodable with a known VR, numbers finite with the expected
count, and a declared image size that the stored Pixel Data can hold (checked before anything is decoded).

Each failure is a :class:`~toothmcl_data.errors.SeriesError` naming the file and what was expected; values are
never quoted (they may be a patient's name, and reasons reach published tables).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from numpy.typing import NDArray
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.valuerep import VR

from toothmcl_data.errors import SeriesError
from toothmcl_data.io.discover import DICOM_ERRORS

_VRS = frozenset(str(v.value) for v in VR)


def check_elements(path: Path, ds: pydicom.Dataset, checked: dict[tuple[Any, ...], DataElement] | None = None) -> None:
    """Decode every element once (pydicom decodes lazily): an unknown VR or a value that cannot be decoded is
    an error now, naming its tag, not later in de-identification.

    checked: raw elements already decoded without error in other files of the same series, each with its decoded
    element (the caller keeps one dict per series). An element whose raw bytes, explicit VR, byte order and
    character set equal one of them decodes the same way, so it is not decoded again: ``ds`` gets the decoded
    element already made (the slices of a series repeat most of their header; read-only: the elements are shared
    between the series' datasets); those this call decodes are added. Elements of VR UN or implicit VR (their
    decoding may depend on the dataset's private creators) and values over 1 KiB (pixel data) are always decoded.
    """
    for elem in _unchecked(ds, checked):
        if elem.VR not in _VRS:
            raise SeriesError(
                f"DICOM file {path} has element {elem.tag} with VR {str(elem.VR)[:8]!r}, which is not a DICOM "
                "value representation; the file is corrupt — re-export it"
            )
        try:
            elem.value  # noqa: B018 - the access decodes the value
        except DICOM_ERRORS as err:
            raise SeriesError(
                f"DICOM file {path}: element {elem.tag} ({elem.VR}) cannot be decoded ({type(err).__name__}); "
                "the file is corrupt — re-export it"
            ) from err


_MEMO_MAX_BYTES = 1024


def _unchecked(ds: pydicom.Dataset, checked: dict[tuple[Any, ...], DataElement] | None) -> Iterator[DataElement]:
    """``ds.iterall()`` (every element, recursing into sequences, in tag order) without the raw elements found
    in ``checked`` (those are replaced in ``ds`` by their decoded element); an element yielded is added to
    ``checked`` once the consumer has checked it (asked for the next one)."""
    encoding = ds._character_set if checked is not None else ()
    charset = (encoding,) if isinstance(encoding, str) else tuple(encoding)
    for tag in sorted(ds._dict):
        raw = ds._dict[tag]
        key: tuple[Any, ...] | None = None
        if (
            checked is not None
            and isinstance(raw, RawDataElement)
            and raw.VR not in (None, "UN")
            and raw.value is not None
            and len(raw.value) <= _MEMO_MAX_BYTES
        ):
            key = (raw.tag, raw.VR, bytes(raw.value), raw.is_little_endian, charset)
            done = checked.get(key)
            if done is not None:
                ds._dict[tag] = done
                continue
        elem = ds[tag]
        yield elem
        if elem.VR == VR.SQ:
            for item in elem.value:
                yield from _unchecked(item, checked)
        if key is not None and checked is not None:
            checked[key] = elem


def number(path: Path, ds: pydicom.Dataset | None, keyword: str, default: float) -> float:
    """One finite number from ``ds`` (``default`` when absent or empty); SeriesError naming the file otherwise."""
    value = ds.get(keyword) if ds is not None else None
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except (TypeError, ValueError) as err:
        raise SeriesError(
            f"DICOM file {path} has a {keyword} that is not a number, expected one number; fix the header or re-export"
        ) from err
    if not math.isfinite(number):
        raise SeriesError(f"DICOM file {path} has {keyword} {number}, expected a finite number; fix the header")
    return int(number) if keyword == "NumberOfFrames" else number


def numbers(path: Path, ds: pydicom.Dataset, keyword: str, count: int) -> NDArray[np.float64]:
    """``count`` finite numbers of a multi-valued element (PixelSpacing, ImagePositionPatient …) as float64."""
    value: Any = ds.get(keyword)
    values = list(value) if isinstance(value, list | tuple | pydicom.multival.MultiValue) else [value]
    try:
        out = np.asarray([float(v) for v in values], dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise SeriesError(
            f"DICOM file {path} has a non-numeric {keyword}, expected {count} numbers; fix the header or re-export"
        ) from err
    if out.shape != (count,) or not np.all(np.isfinite(out)):
        raise SeriesError(
            f"DICOM file {path} has {keyword} with {out.size} values {out.tolist()[:6]}, expected {count} finite "
            "numbers; fix the header or re-export"
        )
    return out


def check_pixel_size(path: Path, ds: pydicom.Dataset, frames: int) -> None:
    """Refuse a declared image size that the stored Pixel Data cannot hold (checked before any decoding)."""
    rows, cols = number(path, ds, "Rows", 0), number(path, ds, "Columns", 0)
    bits, samples = number(path, ds, "BitsAllocated", 0), number(path, ds, "SamplesPerPixel", 1)
    if rows < 1 or cols < 1 or bits not in (8, 16, 32, 64) or samples not in (1, 3):
        raise SeriesError(
            f"DICOM file {path} declares {rows:g}×{cols:g} pixels of {bits:g} bits × {samples:g} samples, expected "
            "positive sizes, 8/16/32/64 bits and 1 or 3 samples; fix the header or re-export"
        )
    syntax = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    if is_compressed(syntax):
        return  # encapsulated frames: the decoder checks each frame's size against its header
    declared = int(rows) * int(cols) * int(bits // 8) * int(samples) * max(frames, 1)
    stored = len(ds.PixelData)
    if declared > stored:
        raise SeriesError(
            f"DICOM file {path} declares {frames} frame(s) of {rows:g}×{cols:g} pixels ({declared} bytes) but its "
            f"Pixel Data holds {stored} bytes; the file is truncated or its header is wrong — re-export it"
        )


def is_compressed(syntax: object) -> bool:
    return bool(getattr(syntax, "is_transfer_syntax", False) and getattr(syntax, "is_compressed", False))
