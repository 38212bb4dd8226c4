"""The synthetic DICOM series writer: read back exactly through read_series, valid CT files, determinism."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from scipy.spatial.transform import Rotation

from toothmcl_data.errors import InputError
from toothmcl_data.io.dicom import read_series
from toothmcl_data.synth.dicom import CT_IMAGE_STORAGE, draw_uid, write_series
from toothmcl_data.synth.identity import Identity, draw_identity
from toothmcl_data.types import Volume

UID = re.compile(r"2\.25\.(0|[1-9]\d*)")


def _identity() -> Identity:
    return draw_identity(np.random.default_rng(9), "P0009")


def _affine(angles: tuple[float, float, float], spacing: tuple[float, float, float]) -> NDArray[np.float64]:
    a = np.eye(4)
    a[:3, :3] = Rotation.from_euler("zyx", angles, degrees=True).as_matrix() @ np.diag(spacing)
    a[:3, 3] = [-31.7, 12.25, 48.0]
    return a


def _volume(rng: np.random.Generator, affine: NDArray[np.float64], shape: tuple[int, int, int] = (6, 5, 4)) -> Volume:
    return Volume(rng.integers(-1000, 6000, size=shape).astype(np.int16), affine)


def test_axis_aligned_round_trip_and_valid_ct_files(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    vol = _volume(rng, np.diag([0.4, 0.4, 0.4, 1.0]))
    written = write_series(tmp_path / "s", vol, _identity(), rng)
    assert [p.name for p in written.paths] == [f"IM{k:05d}" for k in range(1, 5)]
    back = read_series(written.paths)
    np.testing.assert_array_equal(back.array, vol.array)
    np.testing.assert_allclose(back.affine, vol.affine, atol=1e-9)
    assert back.spacing == pytest.approx(vol.spacing)
    sops = set()
    for k, path in enumerate(written.paths):
        ds = pydicom.dcmread(path)
        assert ds.SOPClassUID == CT_IMAGE_STORAGE == ds.file_meta.MediaStorageSOPClassUID
        assert ds.Modality == "CT"
        assert ds.InstanceNumber == k + 1
        assert [float(v) for v in ds.ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]
        assert [float(v) for v in ds.ImagePositionPatient] == pytest.approx([0, 0, 0.4 * k])
        assert float(ds.SliceThickness) == float(ds.SpacingBetweenSlices) == pytest.approx(0.4)
        intercept = float(ds.RescaleIntercept)
        assert intercept <= -1024
        # stored pixels are unsigned and off by the intercept: forgetting Rescale gives wrong values
        np.testing.assert_array_equal(ds.pixel_array.T.astype(np.int64) + int(intercept), vol.array[:, :, k])
        assert ds.pixel_array.min() >= 0
        for uid in (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID, ds.SOPInstanceUID):
            assert UID.fullmatch(uid)
            assert len(uid) <= 64
        sops.add(ds.SOPInstanceUID)
        assert "Dentavox" in ds.Manufacturer
        assert ds.PatientName == _identity().dicom_name
    assert len(sops) == 4
    assert sops == set(written.sop_uids)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    angles=st.tuples(*(st.floats(-180, 180, allow_nan=False),) * 3),
    spacing=st.tuples(*(st.floats(0.1, 1.5),) * 3),
    seed=st.integers(0, 1000),
)
def test_any_rotated_affine_round_trips(
    tmp_path_factory: pytest.TempPathFactory,
    angles: tuple[float, float, float],
    spacing: tuple[float, float, float],
    seed: int,
) -> None:
    rng = np.random.default_rng(seed)
    vol = _volume(rng, _affine(angles, spacing), shape=(3, 4, 3))
    written = write_series(tmp_path_factory.mktemp("rot"), vol, _identity(), rng, style="uid.dcm")
    back = read_series(written.paths[::-1])
    np.testing.assert_array_equal(back.array, vol.array)
    np.testing.assert_allclose(back.affine, vol.affine, atol=1e-6)


def test_negative_values_below_minus_1024_still_round_trip(tmp_path: Path) -> None:
    vol = Volume(np.array([[[-30000, 32767]]], dtype=np.int16).reshape(1, 1, 2), np.eye(4))
    written = write_series(tmp_path, vol, _identity(), np.random.default_rng(1))
    assert written.rescale_intercept == -30000
    np.testing.assert_array_equal(read_series(written.paths).array, vol.array)


@pytest.mark.parametrize(
    ("style", "pattern"),
    [("IM", r"IM0000[1-3]"), ("IM.dcm", r"IM0000[1-3]\.dcm"), ("uid.dcm", r"CT\.2\.25\.\d+\.dcm")],
)
def test_name_styles(tmp_path: Path, style: str, pattern: str) -> None:
    vol = Volume(np.zeros((2, 2, 3), np.int16), np.eye(4))
    written = write_series(tmp_path, vol, _identity(), np.random.default_rng(2), style=style)  # type: ignore[arg-type]
    assert all(re.fullmatch(pattern, p.name) for p in written.paths)


def test_deterministic_bytes(tmp_path: Path) -> None:
    vol = _volume(np.random.default_rng(3), _affine((10, 20, 30), (0.3, 0.3, 0.5)))
    digests = []
    for run in ("a", "b"):
        written = write_series(tmp_path / run, vol, _identity(), np.random.default_rng(4))
        digests.append([hashlib.sha256(p.read_bytes()).hexdigest() for p in written.paths])
    assert digests[0] == digests[1]


def test_draw_uid_is_valid_and_random() -> None:
    rng = np.random.default_rng(5)
    uids = {draw_uid(rng) for _ in range(200)}
    assert len(uids) == 200
    assert all(UID.fullmatch(u) and len(u) <= 64 for u in uids)


@pytest.mark.parametrize(
    ("volume", "message"),
    [
        (
            Volume(np.zeros((2, 2, 2), np.float32), np.eye(4)),
            r"DICOM series for .*: expected an integer volume, got dtype float32",
        ),
        (
            Volume(np.zeros((2, 2, 2), np.int16), np.array([[1, 0.5, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])),
            r"the affine's i and j axes are not orthogonal .*resample the volume first",
        ),
    ],
    ids=["float", "sheared"],
)
def test_refusals(tmp_path: Path, volume: Volume, message: str) -> None:
    with pytest.raises(InputError, match=message):
        write_series(tmp_path, volume, _identity(), np.random.default_rng(0))
