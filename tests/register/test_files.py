"""Registering files: the transform is written in the CBCT file's own world convention; inputs it cannot read
are refused with what to pass instead."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from toothmcl_data.errors import InputError, InputNotFoundError
from toothmcl_data.io.volume import write_nifti
from toothmcl_data.register.files import read_volume, registration_record
from toothmcl_data.types import LPS_FROM_RAS, Registration, Volume


def _registration() -> Registration:
    T = np.eye(4)
    T[:3, :3] = Rotation.from_rotvec([0.1, -0.2, 0.3]).as_matrix()
    T[:3, 3] = [5.0, -7.0, 11.0]
    return Registration("upper", T, 0.1, 0.2, 0.95, {21: 0.12, 11: 0.1}, "pass", ("unlabelled_cbct",))


def test_record_in_lps_and_ras() -> None:
    reg = _registration()
    lps = registration_record(reg, "LPS")
    ras = registration_record(reg, "RAS")
    np.testing.assert_array_equal(lps["ios_to_cbct"], reg.world_from_ios)
    np.testing.assert_allclose(ras["ios_to_cbct"], LPS_FROM_RAS @ reg.world_from_ios)
    np.testing.assert_allclose(np.asarray(ras["ios_to_cbct"])[:3, 3], [-5.0, 7.0, 11.0])  # x, y flipped
    assert list(lps["per_tooth_mm"]) == ["11", "21"]  # sorted, JSON keys
    assert (lps["verdict"], lps["flags"], ras["world"]) == ("pass", ["unlabelled_cbct"], "RAS")


def test_read_volume_reports_the_files_convention(tmp_path: Path) -> None:
    affine = np.diag([0.5, 0.5, 0.5, 1.0])
    affine[:3, 3] = [-10.0, 4.0, 2.0]
    volume = Volume(np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6), affine)
    back, world = read_volume(write_nifti(tmp_path / "v.nii.gz", volume))
    assert world == "RAS"
    np.testing.assert_array_equal(back.array, volume.array)
    np.testing.assert_allclose(back.affine, volume.affine)  # LPS inside, whatever the file holds
    with pytest.raises(InputNotFoundError, match="no such file or folder"):
        read_volume(tmp_path / "missing.nii.gz")
    (tmp_path / "v.mha").write_bytes(b"x")
    with pytest.raises(InputError, match="convert other formats \\(MHA, NRRD\\) to NIfTI first"):
        read_volume(tmp_path / "v.mha")
