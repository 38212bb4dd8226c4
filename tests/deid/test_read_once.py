"""Each raw input is read once: de-identification decodes a series from the bytes it de-identifies, hands the
decoded CBCT on, and curating the case (toothmcl_data.curate) never reads the series again — counted by wrapping
``pydicom.dcmread`` and ``Source.read_bytes``. The CBCT handed on equals the written copy read back."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest

from toothmcl_data.deid.case import deidentify_case
from toothmcl_data.deid.files import write_ios, written_mesh
from toothmcl_data.io.case import load_case
from toothmcl_data.io.fs import Source
from toothmcl_data.io.mesh import read_mesh
from toothmcl_data.io.plan import plan_files
from toothmcl_data.synth.config import SynthConfig
from toothmcl_data.synth.drop import write_drop
from toothmcl_data.types import Mesh

from .conftest import KEY

COARSE = SynthConfig(spacing_mm=0.8, ios_resolution_mm=0.6)


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> dict[str, Counter[str]]:
    """Full ``dcmread`` calls by SOPInstanceUID, header-only ones apart, and byte reads by drop path."""
    counts: dict[str, Counter[str]] = {"full": Counter(), "header": Counter(), "bytes": Counter()}
    real_dcmread, real_read_bytes = pydicom.dcmread, Source.read_bytes

    def dcmread(fp: Any, *args: Any, **kwargs: Any) -> Any:
        ds = real_dcmread(fp, *args, **kwargs)
        counts["header" if kwargs.get("stop_before_pixels") else "full"][str(ds.get("SOPInstanceUID", ""))] += 1
        return ds

    def read_bytes(self: Source, rel: str) -> bytes:
        counts["bytes"][rel] += 1
        return real_read_bytes(self, rel)

    monkeypatch.setattr(pydicom, "dcmread", dcmread)
    monkeypatch.setattr(Source, "read_bytes", read_bytes)
    return counts


def _drop(root: Path, nifti_fraction: float) -> Path:
    config = SynthConfig(spacing_mm=0.8, ios_resolution_mm=0.6, nifti_fraction=nifti_fraction)
    return write_drop(root / "synth", patients=1, seed=3, config=config).drop


def test_a_series_is_decoded_once_and_the_kept_cbct_equals_the_written_copy(
    tmp_path: Path, reads: dict[str, Counter[str]]
) -> None:
    plan = plan_files(_drop(tmp_path, nifti_fraction=0.0))
    (raw,) = plan.cases
    files = [r for u in raw.cbct if u.kind == "series" for r in u.files]
    assert len(files) > 10
    reads["full"].clear()
    reads["bytes"].clear()
    result = deidentify_case(raw, tmp_path / "out", key=KEY, keep_cbct=True)
    assert result.written
    assert result.cbct is not None
    assert [reads["full"][r.dicom.sop_uid] for r in files if r.dicom] == [1] * len(files)
    assert sum(reads["full"].values()) == len(files)  # nothing else decoded
    assert [reads["bytes"][r.path] for r in files] == [1] * len(files)
    case = load_case(tmp_path / "out" / "cases" / result.pseudonym, cbct=result.cbct)
    assert sum(reads["full"].values()) == len(files)  # handing the CBCT on reads no file
    assert case.cbct is result.cbct
    back = load_case(tmp_path / "out" / "cases" / result.pseudonym).cbct  # the de-identified copy, decoded
    assert back is not None
    assert back.array.dtype == result.cbct.array.dtype == np.int16
    np.testing.assert_array_equal(back.array, result.cbct.array)
    np.testing.assert_array_equal(back.affine, result.cbct.affine)
    assert set(result.seconds) == {"read", "deid"}
    assert result.seconds["read"] > 0


def test_a_nifti_cbct_kept_in_memory_equals_the_written_copy(tmp_path: Path) -> None:
    plan = plan_files(_drop(tmp_path, nifti_fraction=1.0))
    (raw,) = plan.cases
    assert [u.kind for u in raw.cbct] == ["volume"]
    result = deidentify_case(raw, tmp_path / "out", key=KEY, keep_cbct=True)
    assert result.cbct is not None
    back = load_case(tmp_path / "out" / "cases" / result.pseudonym).cbct
    assert back is not None
    np.testing.assert_array_equal(back.array, result.cbct.array)
    np.testing.assert_array_equal(back.affine, result.cbct.affine)


def test_curating_a_case_decodes_its_series_once(tmp_path: Path, reads: dict[str, Counter[str]]) -> None:
    from toothmcl_data.curate import STAGES, curate_case

    plan = plan_files(_drop(tmp_path, nifti_fraction=0.0))
    (raw,) = plan.cases
    n_files = sum(len(u.files) for u in raw.cbct if u.kind == "series")
    reads["full"].clear()
    work = tmp_path / "work"
    summary = curate_case(raw, work, tmp_path / "audit", key=KEY, figures=False)
    assert sum(reads["full"].values()) == n_files
    assert summary["written"]
    assert summary["record"] is not None, summary["reason"]
    assert set(summary["seconds"]) == set(STAGES)
    assert summary["seconds"]["register"] > 0
    assert summary["seconds"]["figures"] == 0
    assert set(summary["cpu_seconds"]) == set(STAGES)  # CPU of the stage's thread beside the wall
    assert 0 < summary["cpu_seconds"]["register"] <= summary["seconds"]["register"] + 0.05
    assert not (work / "figures").exists()


def _same_mesh(a: Mesh, b: Mesh) -> None:
    for name in ("vertices", "faces", "labels", "instances", "face_labels"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        if x is not None:
            assert x.dtype == y.dtype, name
            np.testing.assert_array_equal(x, y, err_msg=name)
    assert (a.frame, a.jaw, a.meta) == (b.frame, b.jaw, b.meta)


@pytest.mark.parametrize("fmt", ["stl", "ply", "obj"])
def test_kept_scans_equal_the_written_copies_read_back(tmp_path: Path, fmt: str) -> None:
    config = SynthConfig(spacing_mm=1.0, ios_resolution_mm=0.6, nifti_fraction=1.0, mesh_formats=(fmt,))
    (raw,) = plan_files(write_drop(tmp_path / "synth", patients=1, seed=4, config=config).drop).cases
    result = deidentify_case(raw, tmp_path / "out", key=KEY, keep_meshes=True)
    assert sorted(result.ios) == ["lower", "upper"]
    folder = tmp_path / "out" / "cases" / result.pseudonym
    back = load_case(folder)  # the written PLY + Teeth3DS files, parsed
    for jaw, mesh in result.ios.items():
        _same_mesh(mesh, back.ios[jaw])
    assert load_case(folder, ios=result.ios).ios == dict(result.ios)  # handed on: nothing parsed


def test_written_mesh_without_labels_or_instances_and_with_a_jaw_conflict(tmp_path: Path) -> None:
    v = np.array([[0.1, 0.2, 0.3], [1.0 / 3.0, 0, 0], [0, 1e-9, 1]])
    f = np.array([[0, 1, 2]], dtype=np.int32)
    cases = [
        Mesh(v, f, frame="ios:x"),  # no labels: no sidecar, nothing labelled
        Mesh(v, f, frame="ios:x", labels=np.array([0, 11, 11], dtype=np.int16)),  # no instances: zeros written
        Mesh(v, f, frame="ios:x", labels=np.array([0, 31, 31], dtype=np.int16), face_labels=np.array([31])),
    ]
    for n, mesh in enumerate(cases):
        folder = tmp_path / f"c{n}"
        folder.mkdir()
        write_ios(folder, "upper", mesh, "TMX")
        side = folder / "upper.json"
        back = read_mesh(
            folder / "upper.ply", labels=side if side.is_file() else None, jaw="upper", frame="ios:TMX:upper"
        )
        _same_mesh(written_mesh("upper", mesh, "TMX"), back)
