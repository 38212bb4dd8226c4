"""Registration results, scans and FDI colours as files 3D Slicer loads as they are.

Conventions, precisely (Slicer works in RAS internally and converts files on load):

- **Transform** (``.h5`` or ``.tfm``, ITK's format, written with SimpleITK): ITK files are LPS and hold the
  *resampling* direction, fixed → moving. With the CBCT as fixed and the scan as moving, the file holds
  ``ios_from_world`` (the inverse of the library's ``world_from_ios``), so ``sitk.ReadTransform(f).GetInverse()
  .TransformPoint(x_ios)`` is the scan vertex in CBCT LPS world. Slicer reads the same file as the
  transform node whose *to parent* matrix, in RAS, is :func:`slicer_to_parent_ras` (``F · world_from_ios · F``
  with ``F = diag(-1, -1, 1, 1)``): put the scan model under it and it lands on the CBCT.
- **Model** (``.vtp``, VTK XML PolyData): the scan in its own frame, coordinates as stored, with a field-data
  string array ``SPACE = "LPS"`` (how Slicer's model reader learns the file's coordinate system) and point
  arrays ``Label`` (FDI per vertex, 0 gingiva, -1 unknown) and ``Instance``; vertex order kept.
- **Colour table** (``.ctbl``, Slicer's colour-table text format ``value name R G B A``): FDI code → colour of
  a ``catalogs/labelmaps`` colour table, 0 as transparent background, names without spaces.
- **Volumes**: the CBCT and its label map as NIfTI (RAS on disk, :func:`toothmcl_data.io.volume.write_nifti`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import numpy as np
from numpy.typing import NDArray

from toothmcl_data.errors import DependencyError, InputError
from toothmcl_data.fdi.colors import ColorTable
from toothmcl_data.fdi.teeth import ALL_TEETH, tooth
from toothmcl_data.io.meshwrite import write_atomic
from toothmcl_data.io.volume import LPS_FROM_RAS, write_nifti
from toothmcl_data.types import JAWS, Mesh

log = logging.getLogger(__name__)

TRANSFORM_SUFFIXES = (".h5", ".tfm")


def _sitk() -> Any:
    try:
        import SimpleITK
    except ModuleNotFoundError as err:
        raise DependencyError("Slicer transforms need SimpleITK; install it with pip install 'toothmcl[itk]'") from err
    return SimpleITK


def _rigid_check(world_from_ios: NDArray[np.float64], where: str) -> NDArray[np.float64]:
    t = np.asarray(world_from_ios, dtype=np.float64)
    if t.shape != (4, 4) or not np.allclose(t[3], [0, 0, 0, 1]) or abs(np.linalg.det(t[:3, :3])) < 1e-9:
        raise InputError(f"{where}: expected an invertible 4×4 affine world_from_ios, got {t.tolist()}")
    return t


def slicer_to_parent_ras(world_from_ios: NDArray[np.float64]) -> NDArray[np.float64]:
    """The (4, 4) RAS matrix Slicer shows as the transform node's *to parent* for ``world_from_ios`` (LPS)."""
    return np.asarray(LPS_FROM_RAS @ world_from_ios @ LPS_FROM_RAS, dtype=np.float64)


def write_transform(path: str | Path, world_from_ios: NDArray[np.float64]) -> Path:
    """Write ``world_from_ios`` (4, 4 LPS, ``x_world = T @ x_ios``) as an ITK affine transform file.

    The file holds the inverse, ``ios_from_world`` (ITK's fixed → moving resampling direction); ``.h5`` or
    ``.tfm`` by suffix. Returns the path.
    """
    path = Path(path)
    if path.suffix.lower() not in TRANSFORM_SUFFIXES:
        raise InputError(f"{path}: a Slicer transform file ends {' or '.join(TRANSFORM_SUFFIXES)}")
    inverse = np.linalg.inv(_rigid_check(world_from_ios, str(path)))
    sitk = _sitk()
    transform = sitk.AffineTransform(3)
    transform.SetMatrix([float(v) for v in inverse[:3, :3].ravel()])
    transform.SetTranslation([float(v) for v in inverse[:3, 3]])
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteTransform(transform, str(path))
    return path


def read_transform(path: str | Path) -> NDArray[np.float64]:
    """``world_from_ios`` (4, 4 LPS) from an ITK transform file written by :func:`write_transform` (or any
    linear ITK transform in the same fixed = CBCT, moving = scan convention), through SimpleITK."""
    sitk = _sitk()
    transform = sitk.ReadTransform(str(path))
    origin = np.asarray(transform.TransformPoint((0.0, 0.0, 0.0)))
    columns = [np.asarray(transform.TransformPoint(tuple(float(v) for v in e))) - origin for e in np.eye(3)]
    ios_from_world = np.eye(4)
    ios_from_world[:3, :3] = np.stack(columns, axis=1)
    ios_from_world[:3, 3] = origin
    return np.asarray(np.linalg.inv(ios_from_world), dtype=np.float64)


def _ascii_array(name: str, dtype: str, values: NDArray[Any], components: int = 1) -> str:
    text = " ".join(str(v) for v in np.asarray(values).ravel().tolist())
    return (
        f'<DataArray type="{dtype}" Name={quoteattr(name)} NumberOfComponents="{components}" format="ascii">'
        f"{text}</DataArray>"
    )


def write_model_vtp(path: str | Path, mesh: Mesh, *, space: str = "LPS") -> Path:
    """Write ``mesh`` as VTK XML PolyData (ASCII) for Slicer: vertices as stored, vertex order kept.

    Point arrays ``Label`` (int32 FDI; -1 where the mesh has no labels) and ``Instance`` (int32, when
    present); field data ``SPACE`` = ``space`` (``"LPS"``: Slicer reads the coordinates as LPS).
    """
    path = Path(path)
    if space not in ("LPS", "RAS"):
        raise InputError(f"{path}: space must be 'LPS' or 'RAS', got {space!r}")
    n, m = len(mesh.vertices), len(mesh.faces)
    labels = mesh.labels if mesh.labels is not None else np.full(n, -1, dtype=np.int16)
    arrays = [_ascii_array("Label", "Int32", labels.astype(np.int32))]
    if mesh.instances is not None:
        arrays.append(_ascii_array("Instance", "Int32", mesh.instances.astype(np.int32)))
    chars = " ".join(str(b) for b in space.encode("ascii")) + " 0"
    xml = "\n".join(
        [
            '<?xml version="1.0"?>',
            '<VTKFile type="PolyData" version="1.0" byte_order="LittleEndian" header_type="UInt64">',
            "<PolyData>",
            f'<FieldData><Array type="String" Name="SPACE" NumberOfTuples="1" format="ascii">{chars}</Array>'
            "</FieldData>",
            f'<Piece NumberOfPoints="{n}" NumberOfVerts="0" NumberOfLines="0" NumberOfStrips="0" NumberOfPolys="{m}">',
            f'<PointData Scalars="Label">{"".join(arrays)}</PointData>',
            "<Points>" + _ascii_array("Points", "Float64", mesh.vertices.astype(np.float64), 3) + "</Points>",
            "<Polys>"
            + _ascii_array("connectivity", "Int64", mesh.faces.astype(np.int64))
            + _ascii_array("offsets", "Int64", np.arange(1, m + 1, dtype=np.int64) * 3)
            + "</Polys>",
            "</Piece>",
            "</PolyData>",
            "</VTKFile>",
            "",
        ]
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, xml.encode("ascii"))
    return path


def write_color_table(path: str | Path, table: ColorTable) -> Path:
    """Write ``table`` as a Slicer ``.ctbl`` colour table: one line ``value name R G B A`` per FDI code.

    0 is ``background`` (alpha 0, so a label map shows only teeth); -1 (unknown) has no place in a label map
    and is left out; names are ``FDI_16_upper_right_first_molar``.
    """
    path = Path(path)
    lines = [f"# Slicer colour table from toothmcl colour table {table.name!r}", "# value name R G B A"]
    for code in sorted(c for c in table.colors if c >= 0):
        r, g, b = table.colors[code]
        if code == 0:
            lines.append(f"0 background {r} {g} {b} 0")
        elif code in ALL_TEETH:
            name = "FDI_" + f"{code} {tooth(code).name}".replace(" ", "_")
            lines.append(f"{code} {name} {r} {g} {b} 255")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, ("\n".join(lines) + "\n").encode("ascii"))
    return path


def export_slicer(
    store: str | Path,
    version: str,
    out: str | Path,
    *,
    cases: Sequence[str] | None = None,
    colors: str = "fdi_colors",
    transform_suffix: str = ".h5",
    dry_run: bool = False,
    progress: Callable[[], object] | None = None,
) -> list[dict[str, Any]]:
    """Write a Slicer folder per case of ``version``: ``cbct.nii.gz``, ``labels.nii.gz`` (when present), per
    jaw ``ios_<jaw>.vtp`` + ``ios_<jaw>_to_cbct<suffix>`` (+ the RAS matrix in ``registration.json``), and one
    ``<colors>.ctbl`` at the top. Returns one entry per case (what was, or with ``dry_run`` would be, written).
    ``progress`` is called once per case.
    """
    from toothmcl_data.fdi import load_color_table
    from toothmcl_data.store import open_version

    if transform_suffix not in TRANSFORM_SUFFIXES:
        raise InputError(f"--transform-suffix must be one of {TRANSFORM_SUFFIXES}, got {transform_suffix!r}")
    if not dry_run:
        _sitk()  # a missing SimpleITK fails before anything is written
    reader = open_version(store, version)
    table = load_color_table(colors)
    known = reader.case_ids()
    wanted = list(cases) if cases else known
    missing = sorted(set(wanted) - set(known))
    if missing:
        raise InputError(f"store {store} version {version}: no case(s) {missing}; see `toothmcl-data version show`")
    out = Path(out)
    done: list[dict[str, Any]] = []
    for pn in wanted:
        if progress is not None:
            progress()
        record = reader.record(pn)
        folder = out / pn
        entry: dict[str, Any] = {"pseudonym": pn, "files": [], "registrations": {}}
        files: list[Path] = []
        if record.case.cbct is not None:
            files.append(folder / "cbct.nii.gz")
        if record.case.cbct_labels is not None:
            files.append(folder / "labels.nii.gz")
        for jaw in JAWS:
            if jaw in record.case.ios:
                files.append(folder / f"ios_{jaw}.vtp")
            if jaw in record.registrations:
                files.append(folder / f"ios_{jaw}_to_cbct{transform_suffix}")
                t = record.registrations[jaw].world_from_ios
                entry["registrations"][jaw] = {
                    "world_from_ios_lps": np.asarray(t).tolist(),
                    "slicer_to_parent_ras": slicer_to_parent_ras(t).tolist(),
                }
        entry["files"] = [str(f) for f in files]
        done.append(entry)
        if dry_run:
            continue
        folder.mkdir(parents=True, exist_ok=True)
        if record.case.cbct is not None:
            write_nifti(folder / "cbct.nii.gz", record.case.cbct, descrip=f"toothmcl {pn} CBCT")
        if record.case.cbct_labels is not None:
            labels = record.case.cbct_labels
            write_nifti(folder / "labels.nii.gz", type(labels)(labels.array.astype(np.int16), labels.affine))
        for jaw, mesh in record.case.ios.items():
            write_model_vtp(folder / f"ios_{jaw}.vtp", mesh)
        for jaw, reg in record.registrations.items():
            write_transform(folder / f"ios_{jaw}_to_cbct{transform_suffix}", reg.world_from_ios)
        (folder / "registration.json").write_text(json.dumps(entry["registrations"], indent=1) + "\n")
    if not dry_run:
        write_color_table(out / f"{colors}.ctbl", table)
    return done
