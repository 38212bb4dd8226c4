"""read_series: geometry and Rescale from hand-built DICOM slices, and every refusal pinned by message."""

from __future__ import annotations

import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from numpy.typing import NDArray
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian

from toothmcl_data.errors import SeriesError
from toothmcl_data.io.dicom import read_series

CT = "1.2.840.10008.5.1.4.1.1.2"


def _slice(
    path: Path,
    pixels: NDArray[np.generic],
    *,
    ipp: tuple[float, float, float],
    iop: tuple[float, ...] = (1, 0, 0, 0, 1, 0),
    spacing: tuple[float, float] | None = (0.5, 0.4),
    series: str = "2.25.1",
    intercept: float = -1024.0,
    slope: float = 1.0,
    **extra: Any,
) -> Path:
    """One CT slice: ``pixels`` (rows, cols) stored values, uint16."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = UID(CT)
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = UID(f"2.25.{zlib.crc32(str(path).encode())}")
    ds.SOPClassUID = CT
    ds.Modality = "CT"
    ds.SeriesInstanceUID = series
    ds.Rows, ds.Columns = pixels.shape
    ds.ImageOrientationPatient = [str(v) for v in iop]
    ds.ImagePositionPatient = [str(v) for v in ipp]
    if spacing is not None:
        ds.PixelSpacing = [str(v) for v in spacing]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.RescaleIntercept = str(intercept)
    ds.RescaleSlope = str(slope)
    for key, value in extra.items():
        setattr(ds, key, value)
    ds.PixelData = np.asarray(pixels, dtype="<u2").tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def _series(folder: Path, n: int = 4, rows: int = 3, cols: int = 5, step: float = 0.6) -> list[Path]:
    """Axial slices at z = 10 + k·step; stored value = 1000 + 100·k + 10·row + col."""
    folder.mkdir(parents=True, exist_ok=True)
    r, c = np.mgrid[0:rows, 0:cols]
    return [
        _slice(folder / f"IM{k:05d}", 1000 + 100 * k + 10 * r + c, ipp=(-5.0, 7.0, 10.0 + k * step)) for k in range(n)
    ]


def test_axial_series_geometry_values_and_rescale(tmp_path: Path) -> None:
    paths = _series(tmp_path / "s")
    vol = read_series(list(reversed(paths)))  # file order must not matter
    assert vol.shape == (5, 3, 4)  # (columns, rows, slices)
    assert vol.array.dtype == np.int16
    # array[i, j, k] = stored(row j, col i of slice k) + intercept
    assert vol.array[4, 2, 3] == 1000 + 300 + 20 + 4 - 1024
    assert vol.array[0, 0, 0] == 1000 - 1024
    expected = np.array([[0.4, 0, 0, -5.0], [0, 0.5, 0, 7.0], [0, 0, 0.6, 10.0], [0, 0, 0, 1]])
    np.testing.assert_allclose(vol.affine, expected, atol=1e-9)
    assert vol.spacing == pytest.approx((0.4, 0.5, 0.6))


def test_slope_and_float_values(tmp_path: Path) -> None:
    folder = tmp_path / "s"
    folder.mkdir()
    px = np.full((2, 2), 3)
    paths = [_slice(folder / f"{k}.dcm", px, ipp=(0, 0, k), slope=0.5, intercept=0.25) for k in range(2)]
    vol = read_series(paths)
    assert vol.array.dtype == np.float64
    assert np.all(vol.array == 1.75)


def test_integer_values_beyond_int16_and_mixed_rescales_stay_exact(tmp_path: Path) -> None:
    folder = tmp_path / "wide"
    folder.mkdir()
    px = np.array([[0, 1], [40000, 65533]])
    vol = read_series([_slice(folder / f"{k}.dcm", px + k, ipp=(0, 0, k), intercept=-1000) for k in range(3)])
    assert vol.array.dtype == np.float64  # 65535 - 1000 does not fit int16: every value kept, exactly
    assert vol.array[1, 1, 2] == 65533 + 2 - 1000
    assert vol.array[0, 0, 0] == -1000
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    paths = [_slice(mixed / "0.dcm", np.full((2, 2), 7), ipp=(0, 0, 0), slope=2.0, intercept=-3)]
    paths.append(_slice(mixed / "1.dcm", np.full((2, 2), 7), ipp=(0, 0, 1), intercept=-3))
    vol = read_series(paths)  # integral after Rescale (2·7 − 3, 7 − 3): int16 again
    assert vol.array.dtype == np.int16
    assert vol.array[:, :, 0].tolist() == [[11, 11], [11, 11]]
    assert vol.array[:, :, 1].tolist() == [[4, 4], [4, 4]]


def test_sagittal_orientation_sorts_along_normal(tmp_path: Path) -> None:
    """Rows along +y, columns along -z: normal = (0,1,0) × (0,0,-1) = (-1, 0, 0)."""
    folder = tmp_path / "sag"
    folder.mkdir()
    iop = (0, 1, 0, 0, 0, -1)
    paths = [_slice(folder / f"IM{k}", np.full((2, 3), 10 * k), ipp=(-2.0 * k, 1.0, 2.0), iop=iop) for k in range(3)]
    vol = read_series(paths[::-1])
    np.testing.assert_allclose(vol.affine[:3, 0], [0, 0.4, 0])
    np.testing.assert_allclose(vol.affine[:3, 1], [0, 0, -0.5])
    np.testing.assert_allclose(vol.affine[:3, 2], [-2.0, 0, 0])
    np.testing.assert_allclose(vol.affine[:3, 3], [0.0, 1.0, 2.0])
    assert [int(vol.array[0, 0, k]) for k in range(3)] == [-1024, -1014, -1004]


def test_single_slice_uses_spacing_between_slices(tmp_path: Path) -> None:
    path = _slice(tmp_path / "one.dcm", np.zeros((2, 2)), ipp=(0, 0, 5), SpacingBetweenSlices="1.5")
    vol = read_series([path])
    np.testing.assert_allclose(vol.affine[:3, 2], [0, 0, 1.5])


Corruptor = Callable[[Path, list[Path]], list[Path]]


def _mixed(folder: Path, paths: list[Path]) -> list[Path]:
    extra = _slice(folder / "SCOUT1", np.zeros((3, 5)), ipp=(0, 0, 50), series="2.25.999")
    return [*paths, extra]


def _odd_size(folder: Path, paths: list[Path]) -> list[Path]:
    _slice(paths[2], np.zeros((4, 5)), ipp=(-5.0, 7.0, 11.2))
    return paths


def _missing(folder: Path, paths: list[Path]) -> list[Path]:
    paths[2].unlink()
    return [p for p in paths if p.exists()]


def _duplicate(folder: Path, paths: list[Path]) -> list[Path]:
    copy = folder / "IM00001 (1)"
    copy.write_bytes(paths[1].read_bytes())
    return [*paths, copy]


def _garbage(folder: Path, paths: list[Path]) -> list[Path]:
    paths[1].write_bytes(b"not a dicom file at all" * 10)
    return paths


def _empty(folder: Path, paths: list[Path]) -> list[Path]:
    paths[3].write_bytes(b"")
    return paths


def _truncated(folder: Path, paths: list[Path]) -> list[Path]:
    data = paths[2].read_bytes()
    paths[2].write_bytes(data[:-10])
    return paths


def _no_spacing(folder: Path, paths: list[Path]) -> list[Path]:
    _slice(paths[0], np.zeros((3, 5)), ipp=(-5.0, 7.0, 10.0), spacing=None)
    return paths


def _zero_spacing(folder: Path, paths: list[Path]) -> list[Path]:
    _slice(paths[0], np.zeros((3, 5)), ipp=(-5.0, 7.0, 10.0), spacing=(0.0, 0.4))
    return paths


def _no_pixels(folder: Path, paths: list[Path]) -> list[Path]:
    ds = pydicom.dcmread(paths[1])
    del ds.PixelData
    ds.save_as(paths[1], enforce_file_format=True)
    return paths


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (_mixed, r"s mixes 2 DICOM series: 2\.25\.1 \(4 files.*2\.25\.999 \(1 files, e\.g\. SCOUT1\)"),
        (_odd_size, r"DICOM file .*IM00002 has 4×5 pixels but IM00000 has 3×5"),
        (_missing, r"uniform slice spacing in .*s: 1\.2000 mm between IM00001 and IM00003, expected 0\.6"),
        (_duplicate, r"DICOM files .*IM00001 and .*IM00001 \(1\) lie at the same slice position"),
        (_garbage, r"cannot read DICOM file .*IM00001: .*truncated, empty or not DICOM"),
        (_empty, r"cannot read DICOM file .*IM00003: .*truncated, empty or not DICOM"),
        (
            _truncated,
            r"DICOM file .*IM00002 declares 1 frame\(s\) of 3×5 pixels \(30 bytes\) but its Pixel Data holds 20 ",
        ),
        (_no_spacing, r"DICOM file .*IM00000 has PixelSpacing None, expected two positive values"),
        (_zero_spacing, r"DICOM file .*IM00000 has PixelSpacing .*0\.0.*expected two positive values"),
        (_no_pixels, r"DICOM file .*IM00001 lacks PixelData; expected an image slice"),
    ],
    ids=lambda v: v.__name__.strip("_") if callable(v) else "",
)
def test_refusals_name_the_file(tmp_path: Path, corrupt: Corruptor, message: str) -> None:
    folder = tmp_path / "s"
    paths = corrupt(folder, _series(folder))
    with pytest.raises(SeriesError, match=message):
        read_series(paths)


def test_no_files() -> None:
    with pytest.raises(SeriesError, match="read_series got no files"):
        read_series([])


def test_series_error_is_a_value_error(tmp_path: Path) -> None:
    paths = _garbage(tmp_path, _series(tmp_path))
    with pytest.raises(ValueError, match="IM00001"):
        read_series(paths)
