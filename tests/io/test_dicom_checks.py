"""Series checks added for ingest: gantry tilt, multi-frame (enhanced) images, compressed transfer syntaxes,
and agreement with SimpleITK on the same files."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from toothmcl_data.errors import SeriesError
from toothmcl_data.io.dicom import read_series
from toothmcl_data.io.volume import read_volume
from toothmcl_data.synth.dicom import write_series
from toothmcl_data.synth.identity import draw_identity
from toothmcl_data.types import Volume


def _volume() -> Volume:
    rng = np.random.default_rng(0)
    array = rng.integers(-1000, 3000, size=(6, 5, 4)).astype(np.int16)
    affine = np.diag([0.5, 0.6, 0.7, 1.0])
    affine[:3, 3] = [-10.0, 20.0, 5.0]
    return Volume(array, affine)


def _series(folder: Path, volume: Volume) -> list[Path]:
    rng = np.random.default_rng(1)
    return list(write_series(folder, volume, draw_identity(rng, "P0000"), rng).paths)


def test_gantry_tilt_is_refused(tmp_path: Path) -> None:
    paths = _series(tmp_path, _volume())
    for k, path in enumerate(paths):
        ds = pydicom.dcmread(path)
        ipp = [float(v) for v in ds.ImagePositionPatient]
        ds.ImagePositionPatient = [ipp[0], ipp[1] + 0.3 * k, ipp[2]]  # shear along y: a tilted gantry
        ds.save_as(path)
    with pytest.raises(SeriesError, match=r"gantry tilt in .*: slice positions advance 0.3000 mm sideways"):
        read_series(paths)


def test_multiframe_enhanced_equals_single_frames(tmp_path: Path) -> None:
    volume = _volume()
    paths = _series(tmp_path / "single", volume)
    first = pydicom.dcmread(paths[0])
    frames = [pydicom.dcmread(p) for p in paths]
    ds = copy.deepcopy(first)
    ds.NumberOfFrames = len(frames)
    for keyword in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "RescaleIntercept"):
        del ds[keyword]
    shared = Dataset()
    orient, measures, transform = Dataset(), Dataset(), Dataset()
    orient.ImageOrientationPatient = first.ImageOrientationPatient
    measures.PixelSpacing = first.PixelSpacing
    measures.SliceThickness = first.SliceThickness
    transform.RescaleIntercept = first.RescaleIntercept
    transform.RescaleSlope = 1
    shared.PlaneOrientationSequence = Sequence([orient])
    shared.PixelMeasuresSequence = Sequence([measures])
    shared.PixelValueTransformationSequence = Sequence([transform])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    per_frame = []
    for f in reversed(frames):  # frame order must not matter: positions decide
        group, position = Dataset(), Dataset()
        position.ImagePositionPatient = f.ImagePositionPatient
        group.PlanePositionSequence = Sequence([position])
        per_frame.append(group)
    ds.PerFrameFunctionalGroupsSequence = Sequence(per_frame)
    ds.PixelData = b"".join(f.PixelData for f in reversed(frames))
    path = tmp_path / "enhanced.dcm"
    ds.save_as(path)
    got = read_series([path])
    np.testing.assert_array_equal(got.array, volume.array)
    np.testing.assert_allclose(got.affine, volume.affine, atol=1e-6)


@pytest.mark.parametrize("name", ["MR_small_RLE.dcm", "MR_small_jpeg_ls_lossless.dcm", "MR_small_jp2klossless.dcm"])
def test_compressed_transfer_syntaxes_decode(name: str) -> None:
    pytest.importorskip("pylibjpeg")
    reference = read_series([Path(get_testdata_file("MR_small.dcm"))])
    got = read_series([Path(get_testdata_file(name))])
    np.testing.assert_array_equal(got.array, reference.array)
    np.testing.assert_allclose(got.affine, reference.affine)


def test_simpleitk_agrees_on_a_series(tmp_path: Path) -> None:
    sitk = pytest.importorskip("SimpleITK")
    volume = _volume()
    paths = _series(tmp_path, volume)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(tmp_path)))
    img = reader.Execute()
    ours = read_series(paths)
    theirs = sitk.GetArrayFromImage(img).transpose(2, 1, 0)
    np.testing.assert_array_equal(ours.array, theirs)
    np.testing.assert_allclose(ours.spacing, img.GetSpacing(), atol=1e-6)
    np.testing.assert_allclose(ours.affine[:3, 3], img.GetOrigin(), atol=1e-6)


@pytest.mark.parametrize("suffix", [".mha", ".nrrd"])
def test_read_volume_mha_nrrd_keeps_orientation(tmp_path: Path, suffix: str) -> None:
    sitk = pytest.importorskip("SimpleITK")
    volume = _volume()
    rotation = np.array([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]])
    affine = volume.affine.copy()
    affine[:3, :3] = rotation @ affine[:3, :3]
    img = sitk.GetImageFromArray(volume.array.transpose(2, 1, 0))
    img.SetSpacing((0.5, 0.6, 0.7))
    img.SetOrigin(tuple(affine[:3, 3]))
    img.SetDirection(tuple(rotation.ravel()))
    sitk.WriteImage(img, str(tmp_path / f"v{suffix}"))
    got = read_volume(tmp_path / f"v{suffix}")
    np.testing.assert_array_equal(got.array, volume.array)
    np.testing.assert_allclose(got.affine, affine, atol=1e-9)
