"""Overlay pictures and the ``register`` command (NIfTI in → RAS transform out; DICOM → LPS)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage
from typer.testing import CliRunner

from toothmcl_data.cli.app import app
from toothmcl_data.errors import InputError, InputNotFoundError
from toothmcl_data.io.meshwrite import write_ply
from toothmcl_data.io.teeth3ds import write_teeth3ds_json
from toothmcl_data.io.volume import write_nifti
from toothmcl_data.register import figures, register_jaw
from toothmcl_data.register.figures import plane_contour, registration_png
from toothmcl_data.register.surface import ToothSurface
from toothmcl_data.synth.patient import SyntheticPatient
from toothmcl_data.types import LPS_FROM_RAS, apply_transform

runner = CliRunner()


def test_plane_contour_of_a_tetrahedron() -> None:
    v = np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
    f = np.array([[0, 1, 2], [0, 1, 3], [0, 2, 3], [1, 2, 3]], dtype=np.int32)
    seg = plane_contour(v, f, axis=2, value=0.5)
    assert seg.shape == (3, 2, 3)
    np.testing.assert_allclose(seg[:, :, 2], 0.5)
    assert plane_contour(v, f, axis=2, value=2.0).shape == (0, 2, 3)


def test_registration_png(tmp_path: Path, coarse_patient: SyntheticPatient, labelled_surface: ToothSurface) -> None:
    p = coarse_patient
    reg = register_jaw(p.cbct, p.ios["upper"], cbct_labels=p.cbct_labels, surface=labelled_surface)
    out = registration_png(p.cbct, p.ios["upper"], reg, tmp_path / "sub" / "reg.png")
    assert out == tmp_path / "sub" / "reg.png"
    with Image.open(out) as img:
        assert img.size == (960, 800)
        pixels = np.asarray(img.convert("RGB"))
    cyan = (pixels[..., 0] < 60) & (pixels[..., 1] > 180) & (pixels[..., 2] > 200)
    assert cyan.sum() > 500  # the scan's contour is drawn


def test_registration_png_of_a_scan_registered_far_off(
    tmp_path: Path, coarse_patient: SyntheticPatient, labelled_surface: ToothSurface
) -> None:
    p = coarse_patient
    reg = register_jaw(p.cbct, p.ios["upper"], cbct_labels=p.cbct_labels, surface=labelled_surface)
    off = np.eye(4)
    off[:3, 3] = [0.0, 0.0, 500.0]  # half a metre above the volume: the views fall back to its whole extent
    far = replace(reg, world_from_ios=off @ reg.world_from_ios)
    with Image.open(registration_png(p.cbct, p.ios["upper"], far, tmp_path / "far.png")) as img:
        assert img.size == (960, 800)
        pixels = np.asarray(img.convert("RGB")).astype(int)
    assert pixels.std() > 20  # slices are drawn, not an empty frame


def test_registration_png_reads_as_before(
    tmp_path: Path, coarse_patient: SyntheticPatient, labelled_surface: ToothSurface
) -> None:
    """The picture drawn without matplotlib keeps its parts: title lines, four framed panels, letters, contour."""
    p = coarse_patient
    reg = register_jaw(p.cbct, p.ios["lower"], cbct_labels=p.cbct_labels, surface=labelled_surface)
    with Image.open(registration_png(p.cbct, p.ios["lower"], reg, tmp_path / "a.png", title="P001 · lower")) as img:
        px = np.asarray(img.convert("RGB")).astype(int)
    dark = np.all(px < 90, axis=2)
    assert dark[:40].sum() > 500  # two title lines above the panels
    yellow = (px[..., 0] > 200) & (px[..., 1] > 200) & (px[..., 2] < 80)
    assert yellow[:, :480].sum() > 100  # R, L, A, P on the left
    assert yellow[:, 480:].sum() > 40  # R, L on the right
    cyan = (px[..., 0] < 60) & (px[..., 1] > 180) & (px[..., 2] > 200)
    tinted = px[..., 2] - px[..., 0] > 60  # half-transparent cyan over grey
    assert tinted[400:, 480:].sum() > 100  # crown points on the panorama
    assert cyan[:400].sum() > 300  # contours on the slices
    rows = np.flatnonzero(dark.sum(axis=1) > 300)  # the panels' top and bottom edges
    assert len(rows) >= 4


def test_panorama_is_the_trilinear_maximum_across_the_arch(coarse_patient: SyntheticPatient) -> None:
    p = coarse_patient
    mesh = p.ios["upper"]
    assert mesh.labels is not None
    crown = apply_transform(p.world_from_ios["upper"], mesh.vertices)[mesh.labels > 0]
    off_grid = []
    for shift in (0.0, 25.0):  # further beyond the grid (x): more samples off it, which are WINDOW[0]
        c = crown + np.array([shift, 0.0, 0.0])
        heights = (float(c[:, 2].min() - 12), float(c[:, 2].max() + 12))
        got, xs, (z0, z1) = figures._panorama(p.cbct, c, heights)
        coef = np.polyfit(c[:, 0], c[:, 1], 2)
        slope = np.polyval(np.polyder(coef), xs)
        normal = np.stack([-slope, np.ones_like(slope)], axis=1) / np.hypot(slope, 1)[:, None]
        step = min(p.cbct.spacing)
        zs = np.linspace(z0, z1, got.shape[0])
        best = np.full(got.shape, -np.inf)
        for off in np.arange(-figures.PANORAMA_BAND_MM, figures.PANORAMA_BAND_MM + step / 2, step):
            x, z = np.meshgrid(xs + off * normal[:, 0], zs)
            y = np.broadcast_to(np.polyval(coef, xs) + off * normal[:, 1], x.shape)
            ijk = p.cbct.index_from_world(np.stack([x, y, z], axis=-1).reshape(-1, 3))
            vals = ndimage.map_coordinates(
                p.cbct.array, ijk.T, output=np.float64, order=1, mode="constant", cval=figures.WINDOW[0]
            ).reshape(got.shape)
            best = np.maximum(best, vals)
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, best, atol=0.01)
        off_grid.append(np.mean(got == figures.WINDOW[0]))
    assert off_grid[1] > off_grid[0] + 0.1


def _write_case(tmp_path: Path, p: SyntheticPatient) -> tuple[Path, Path, Path]:
    cbct = write_nifti(tmp_path / "cbct.nii.gz", p.cbct)
    labels = write_nifti(tmp_path / "labels.nii.gz", p.cbct_labels)
    mesh = p.ios["lower"]
    assert mesh.labels is not None
    assert mesh.instances is not None
    write_ply(tmp_path / "lower.ply", mesh.vertices, mesh.faces)
    write_teeth3ds_json(
        tmp_path / "lower.json", id_patient="x", jaw="lower", labels=mesh.labels, instances=mesh.instances
    )
    return cbct, labels, tmp_path / "lower.ply"


def test_register_command_writes_a_ras_transform_for_nifti(tmp_path: Path, coarse_patient: SyntheticPatient) -> None:
    cbct, labels, ios = _write_case(tmp_path, coarse_patient)
    out = tmp_path / "out"
    args = ["register", "--cbct", str(cbct), "--ios", str(ios), "--cbct-labels", str(labels), "--out", str(out)]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["verdict"] == "pass"
    assert report["world"] == "RAS"
    saved = json.loads((out / "transform.json").read_text())
    T = np.array(saved["ios_to_cbct"])
    truth_ras = LPS_FROM_RAS @ coarse_patient.world_from_ios["lower"]
    np.testing.assert_allclose(T[:3, :3], truth_ras[:3, :3], atol=2e-3)
    np.testing.assert_allclose(T[:3, 3], truth_ras[:3, 3], atol=0.15)
    assert saved["world"] == "RAS"
    assert saved["jaw"] == "lower"
    qc = json.loads((out / "qc.json").read_text())
    assert qc["config"]["ios_points"] == 3000
    assert qc["per_tooth_mm"]
    assert (out / "registration.png").stat().st_size > 10_000


def test_register_dry_run_writes_nothing(tmp_path: Path, coarse_patient: SyntheticPatient) -> None:
    cbct, labels, ios = _write_case(tmp_path, coarse_patient)
    out = tmp_path / "out"
    args = ["register", "--cbct", str(cbct), "--ios", str(ios), "--cbct-labels", str(labels), "--out", str(out)]
    result = runner.invoke(app, [*args, "--dry-run", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["dry_run"] is True
    assert not out.exists()


@pytest.mark.parametrize(
    ("cbct_name", "error", "message"),
    [
        ("missing.nii.gz", InputNotFoundError, "no such file or folder; pass a DICOM series folder or a NIfTI file"),
        ("volume.mha", InputError, "unsupported volume; expected a DICOM series folder or a NIfTI file"),
    ],
)
def test_register_command_errors(tmp_path: Path, cbct_name: str, error: type, message: str) -> None:
    if cbct_name.endswith(".mha"):
        (tmp_path / cbct_name).write_bytes(b"ObjectType = Image\n")
    result = runner.invoke(
        app, ["register", "--cbct", str(tmp_path / cbct_name), "--ios", str(tmp_path / "x.ply"), "--out", str(tmp_path)]
    )
    assert result.exit_code != 0
    assert isinstance(result.exception, error)
    assert message in str(result.exception)


def test_register_command_keeps_lps_for_a_dicom_series(tmp_path: Path, coarse_patient: SyntheticPatient) -> None:
    from toothmcl_data.synth.dicom import write_series
    from toothmcl_data.synth.identity import draw_identity

    rng = np.random.default_rng(0)
    write_series(tmp_path / "series", coarse_patient.cbct, draw_identity(rng, "k"), rng)
    _, labels, ios = _write_case(tmp_path, coarse_patient)
    out = tmp_path / "out"
    args = ["register", "--cbct", str(tmp_path / "series"), "--ios", str(ios), "--cbct-labels", str(labels)]
    result = runner.invoke(app, [*args, "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "transform.json").read_text())
    assert saved["world"] == "LPS"
    np.testing.assert_allclose(
        np.array(saved["ios_to_cbct"])[:3, 3], coarse_patient.world_from_ios["lower"][:3, 3], atol=0.15
    )
