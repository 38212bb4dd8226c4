"""3D Slicer export: ITK transforms read back with SimpleITK map the scan onto the CBCT crowns; models, colours."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from tests.export import onecase
from tests.store.conftest import base_patient
from toothmcl_data.export.slicer import (
    export_slicer,
    read_transform,
    slicer_to_parent_ras,
    write_color_table,
    write_model_vtp,
    write_transform,
)
from toothmcl_data.fdi import load_color_table
from toothmcl_data.io.mesh import read_mesh
from toothmcl_data.io.volume import LPS_FROM_RAS
from toothmcl_data.io.vtp import read_vtp
from toothmcl_data.register.icp import Target
from toothmcl_data.register.qc import residuals
from toothmcl_data.register.surface import surface_from_labels
from toothmcl_data.store import CaseRecord
from toothmcl_data.types import Mesh, apply_transform

record = onecase.record  # fixtures shared by the seg and slicer tests
store = onecase.store

sitk = pytest.importorskip("SimpleITK", reason="Slicer transforms need SimpleITK (pip install 'toothmcl[itk]')")


def _rigid() -> np.ndarray:
    """A pose with no symmetry: 37° about a skew axis and a translation along all three axes."""
    g = np.eye(4)
    g[:3, :3] = Rotation.from_rotvec(np.deg2rad(37) * np.array([1.0, 2.0, 3.0]) / np.sqrt(14)).as_matrix()
    g[:3, 3] = [5.0, -7.0, 11.0]
    return g


def _rms(points: np.ndarray, target: Target) -> float:
    res, _ = residuals(target, points, None, 0.5)
    return float(np.sqrt(np.mean(res**2)))


@pytest.mark.parametrize("suffix", [".h5", ".tfm"])
def test_transform_read_by_simpleitk_maps_scan_onto_cbct(tmp_path: Path, suffix: str) -> None:
    p = base_patient(0)
    surface = surface_from_labels(p.cbct, p.cbct_labels)
    target = Target.of(surface.points, surface.normals)
    g = _rigid()
    crowns = p.ios["upper"].vertices[p.ios["upper"].labels > 0]  # the CBCT surface holds crowns, not gingiva
    scan = apply_transform(np.linalg.inv(g), crowns)  # the scan in a skewed scanner frame
    world_from_ios = p.world_from_ios["upper"] @ g
    path = write_transform(tmp_path / f"t{suffix}", world_from_ios)

    itk = sitk.ReadTransform(str(path))  # SimpleITK alone: fixed (CBCT) → moving (scan); invert for scan → CBCT
    inverse = itk.GetInverse()
    mapped = np.array([inverse.TransformPoint(tuple(float(c) for c in v)) for v in scan])
    np.testing.assert_allclose(mapped, apply_transform(world_from_ios, scan), atol=1e-6)
    rms = _rms(mapped, target)
    truth = _rms(apply_transform(p.world_from_ios["upper"], crowns), target)
    assert rms == pytest.approx(truth, abs=1e-6)
    print(f"crown residual rms {rms:.3f} mm")
    assert rms < 0.5 * min(p.cbct.spacing)  # on the crowns within half a voxel (the ground-truth pose gives the same)

    # the conventions a converter gets wrong all miss the crowns by centimetres
    forward = np.array([itk.TransformPoint(tuple(float(c) for c in v)) for v in scan])
    ras = apply_transform(slicer_to_parent_ras(world_from_ios), scan)
    assert _rms(forward, target) > 5.0
    assert _rms(ras, target) > 5.0
    np.testing.assert_allclose(read_transform(path), world_from_ios, atol=1e-9)
    np.testing.assert_allclose(LPS_FROM_RAS @ slicer_to_parent_ras(world_from_ios) @ LPS_FROM_RAS, world_from_ios)


def test_model_vtp_keeps_vertices_labels_and_space(tmp_path: Path) -> None:
    mesh = base_patient(0).ios["lower"]
    path = write_model_vtp(tmp_path / "lower.vtp", mesh)
    vtp = read_vtp(path)
    np.testing.assert_array_equal(vtp.points, mesh.vertices)
    np.testing.assert_array_equal(vtp.triangles, mesh.faces)
    np.testing.assert_array_equal(vtp.point_data["Label"], mesh.labels)
    assert vtp.field_data["SPACE"] == "LPS"
    back = read_mesh(path, scheme="fdi")  # our reader too: FDI labels of the point array "Label"
    np.testing.assert_array_equal(back.labels, mesh.labels)
    unlabelled = write_model_vtp(tmp_path / "bare.vtp", Mesh(mesh.vertices, mesh.faces, frame="ios:x"))
    assert set(read_vtp(unlabelled).point_data["Label"].tolist()) == {-1}


def test_color_table_ctbl(tmp_path: Path) -> None:
    table = load_color_table("fdi_colors")
    path = write_color_table(tmp_path / "fdi.ctbl", table)
    rows = [line.split() for line in path.read_text().splitlines() if not line.startswith("#")]
    by_code = {int(r[0]): r for r in rows}
    assert sorted(by_code) == [0, *sorted(c for c in table.colors if c > 0)]
    assert by_code[16][1] == "FDI_16_upper_right_first_molar"
    assert by_code[36][1] == "FDI_36_lower_left_first_molar"
    assert [int(v) for v in by_code[26][2:]] == [*table.colors[26], 255]
    assert by_code[0][-1] == "0"  # background transparent
    assert all(len(r) == 6 for r in rows)


def test_export_slicer_from_store(tmp_path: Path, store: Path, record: CaseRecord) -> None:
    done = export_slicer(store, "v1", tmp_path / "slicer", transform_suffix=".tfm")
    folder = tmp_path / "slicer" / record.pseudonym
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted(
        ["cbct.nii.gz", "labels.nii.gz", "registration.json"]
        + [f"ios_{j}.vtp" for j in record.case.ios]
        + [f"ios_{j}_to_cbct.tfm" for j in record.registrations]
    )
    assert (tmp_path / "slicer" / "fdi_colors.ctbl").is_file()
    for jaw, reg in record.registrations.items():
        np.testing.assert_allclose(read_transform(folder / f"ios_{jaw}_to_cbct.tfm"), reg.world_from_ios, atol=1e-9)
    assert done[0]["pseudonym"] == record.pseudonym


def test_model_vtp_reads_in_vtk_as_slicer_does(tmp_path: Path) -> None:
    """Slicer reads .vtp with VTK's vtkXMLPolyDataReader and takes the coordinate system from field data SPACE."""
    xml = pytest.importorskip("vtkmodules.vtkIOXML", reason="VTK (pip install vtk) reads the model as Slicer does")
    from vtkmodules.util.numpy_support import vtk_to_numpy

    mesh = base_patient(0).ios["upper"]
    reader = xml.vtkXMLPolyDataReader()
    reader.SetFileName(str(write_model_vtp(tmp_path / "upper.vtp", mesh)))
    reader.Update()
    data = reader.GetOutput()
    np.testing.assert_array_equal(vtk_to_numpy(data.GetPoints().GetData()), mesh.vertices)
    np.testing.assert_array_equal(vtk_to_numpy(data.GetPolys().GetConnectivityArray()).reshape(-1, 3), mesh.faces)
    np.testing.assert_array_equal(vtk_to_numpy(data.GetPointData().GetArray("Label")), mesh.labels)
    assert data.GetFieldData().GetAbstractArray("SPACE").GetValue(0) == "LPS"
