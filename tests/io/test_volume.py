"""NIfTI read/write: RAS on disk ↔ LPS in memory, header text, deterministic gzip, refusals."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from toothmcl_data.errors import InputNotFoundError, VolumeError
from toothmcl_data.io.volume import read_nifti, write_nifti
from toothmcl_data.types import LPS_FROM_RAS, Volume


def _load(path: Path) -> nib.Nifti1Image:
    img = nib.load(path)
    assert isinstance(img, nib.Nifti1Image)
    return img


def _volume() -> Volume:
    arr = np.arange(4 * 3 * 2, dtype=np.int16).reshape(4, 3, 2) - 7
    affine = np.array([[0.5, 0, 0, -20.0], [0, 0.4, 0, 10.0], [0, 0, 0.3, 5.0], [0, 0, 0, 1]])
    return Volume(arr, affine)


def test_ras_on_disk_lps_in_memory(tmp_path: Path) -> None:
    vol = _volume()
    path = write_nifti(tmp_path / "v.nii.gz", vol)
    img = _load(path)
    # A known voxel: nibabel's affine gives RAS; flipping x and y must give our LPS world point.
    ijk = np.array([3.0, 2.0, 1.0, 1.0])
    ras = img.affine @ ijk
    lps = vol.world_from_index(ijk[None, :3])[0]
    np.testing.assert_allclose(lps, [-20.0 + 1.5, 10.0 + 0.8, 5.3])
    np.testing.assert_allclose(ras[:3], [-lps[0], -lps[1], lps[2]], atol=1e-5)
    assert int(img.header["sform_code"]) == 1
    assert int(img.header["qform_code"]) == 1
    np.testing.assert_array_equal(np.asarray(img.dataobj), vol.array)  # data are not flipped
    back = read_nifti(path)
    assert back.array.dtype == np.int16
    np.testing.assert_array_equal(back.array, vol.array)
    np.testing.assert_allclose(back.affine, vol.affine, atol=1e-5)


def test_header_text_and_determinism(tmp_path: Path) -> None:
    vol = _volume()
    kwargs: dict[str, Any] = {"descrip": "John Doe DOB 1975-03-02", "aux_file": "DOE^JOHN", "intent_name": "MR0048213"}
    a = write_nifti(tmp_path / "a.nii.gz", vol, **kwargs)
    b = write_nifti(tmp_path / "b.nii.gz", vol, **kwargs)
    raw = a.read_bytes()
    assert hashlib.sha256(raw).digest() == hashlib.sha256(b.read_bytes()).digest()
    assert raw[:2] == b"\x1f\x8b"
    assert raw[4:8] == b"\0\0\0\0"
    assert raw[3] & 0x08 == 0  # no file name stored in the gzip header
    header = _load(a).header
    assert header["descrip"].item() == b"John Doe DOB 1975-03-02"
    assert header["aux_file"].item() == b"DOE^JOHN"
    assert header["intent_name"].item() == b"MR0048213"
    assert b"DOE^JOHN" in gzip.decompress(raw)


def test_uncompressed_nii(tmp_path: Path) -> None:
    path = write_nifti(tmp_path / "v.nii", _volume())
    assert path.read_bytes()[344:348] == b"n+1\0"
    np.testing.assert_array_equal(read_nifti(path).array, _volume().array)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("descrip", "x" * 81, r"descrip for .*v\.nii\.gz holds at most 80 bytes, got 81"),
        ("aux_file", "y" * 25, r"aux_file for .*holds at most 24 bytes, got 25"),
        ("intent_name", "M\u00fcller", r"intent_name for .*v\.nii\.gz must be ASCII"),
    ],
)
def test_header_text_refused(tmp_path: Path, field: str, value: str, message: str) -> None:
    text: dict[str, Any] = {field: value}
    with pytest.raises(VolumeError, match=message):
        write_nifti(tmp_path / "v.nii.gz", _volume(), **text)


def test_read_refusals(tmp_path: Path) -> None:
    with pytest.raises(InputNotFoundError, match=r"NIfTI file .*nope\.nii\.gz does not exist"):
        read_nifti(tmp_path / "nope.nii.gz")
    bad = tmp_path / "bad.nii.gz"
    bad.write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(VolumeError, match=r"cannot read NIfTI file .*bad\.nii\.gz: .*re-export it"):
        read_nifti(bad)
    noise = np.random.default_rng(0).integers(0, 1000, size=(20, 20, 20)).astype(np.int16)
    good = write_nifti(tmp_path / "good.nii.gz", Volume(noise, np.eye(4)))
    data = good.read_bytes()
    for name, damaged in (
        ("half", data[: len(data) // 2]),
        ("flipped", data[:200] + bytes(255 - x for x in data[200:])),
    ):
        (tmp_path / f"{name}.nii.gz").write_bytes(damaged)
        with pytest.raises(VolumeError, match=rf"cannot read NIfTI file .*{name}\.nii\.gz: "):
            read_nifti(tmp_path / f"{name}.nii.gz")
    four = tmp_path / "four.nii"
    nib.save(nib.Nifti1Image(np.zeros((2, 2, 2, 3), np.int16), np.eye(4)), four)
    with pytest.raises(VolumeError, match=r"four\.nii has shape \(2, 2, 2, 3\), expected a 3-D volume"):
        read_nifti(four)
    one = tmp_path / "one.nii"
    nib.save(nib.Nifti1Image(np.ones((2, 2, 2, 1), np.uint8), np.eye(4)), one)
    assert read_nifti(one).shape == (2, 2, 2)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    shape=st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(1, 4)),
    angles=st.tuples(*(st.floats(-180, 180, allow_nan=False),) * 3),
    spacing=st.tuples(*(st.floats(0.1, 2.0),) * 3),
    origin=st.tuples(*(st.floats(-100, 100),) * 3),
    seed=st.integers(0, 2**16),
)
def test_round_trip_any_affine(
    tmp_path: Path,
    shape: tuple[int, int, int],
    angles: tuple[float, float, float],
    spacing: tuple[float, float, float],
    origin: tuple[float, float, float],
    seed: int,
) -> None:
    affine = np.eye(4)
    affine[:3, :3] = Rotation.from_euler("xyz", angles, degrees=True).as_matrix() @ np.diag(spacing)
    affine[:3, 3] = origin
    arr = np.random.default_rng(seed).integers(-32768, 32767, size=shape, dtype=np.int16)
    path = write_nifti(tmp_path / "r.nii.gz", Volume(arr, affine))
    back = read_nifti(path)
    np.testing.assert_array_equal(back.array, arr)
    np.testing.assert_allclose(back.affine, affine, atol=1e-4)  # sform is float32 on disk
    np.testing.assert_allclose(_load(path).affine, LPS_FROM_RAS @ affine, atol=1e-4)


def test_gzipped_nifti_is_decompressed_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The header check and the voxels share one decompression (it was two: one to count the stream's bytes,
    one in nibabel): the bytes inflated stay about the file's own size."""
    import zlib

    arr = np.random.default_rng(1).integers(-1000, 3000, size=(40, 30, 20)).astype(np.int16)
    path = write_nifti(tmp_path / "v.nii.gz", Volume(arr, np.eye(4)))
    inflated = [0]
    real = zlib.decompressobj

    class Counting:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self._d = real(*args, **kwargs)

        def decompress(self, data: bytes, max_length: int = 0) -> bytes:
            out = self._d.decompress(data, max_length)
            inflated[0] += len(out)
            return out

        def __getattr__(self, name: str) -> object:
            return getattr(self._d, name)

    monkeypatch.setattr(zlib, "decompressobj", Counting)
    np.testing.assert_array_equal(read_nifti(path).array, arr)
    assert arr.nbytes <= inflated[0] < 1.1 * (arr.nbytes + 352)


def test_gzipped_nifti_without_its_end_is_refused(tmp_path: Path) -> None:
    """All voxels present but the gzip trailer (checksum, size) cut off: still refused, as before the voxels were
    read from the one decompression."""
    good = write_nifti(tmp_path / "good.nii.gz", _volume())
    cut = tmp_path / "cut.nii.gz"
    cut.write_bytes(good.read_bytes()[:-6])
    with pytest.raises(VolumeError, match=r"cannot read NIfTI file .*cut\.nii\.gz: EOFError"):
        read_nifti(cut)


def test_gzip_strategy_rle_is_valid_and_default_matches_gzip_module(tmp_path: Path) -> None:
    import zlib

    arr = np.random.default_rng(2).integers(-1000, 3000, size=(30, 20, 10)).astype(np.int16)
    arr[:, :, :4] = 0
    vol = Volume(arr, np.eye(4))
    plain = write_nifti(tmp_path / "v.nii", vol).read_bytes()
    default = write_nifti(tmp_path / "d.nii.gz", vol, compresslevel=1).read_bytes()
    rle = write_nifti(tmp_path / "r.nii.gz", vol, compresslevel=1, strategy=zlib.Z_RLE).read_bytes()
    assert default == gzip.compress(plain, compresslevel=1, mtime=0)
    assert rle != default
    assert gzip.decompress(rle) == plain
    np.testing.assert_array_equal(read_nifti(tmp_path / "r.nii.gz").array, arr)
