"""``toothmcl-data inspect``: read one mesh or volume through the library and report what it holds."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from toothmcl_data.cli.output import emit


def inspect(
    path: Annotated[Path, typer.Argument(help="A mesh (STL/PLY/OBJ/VTP), a NIfTI volume or a DICOM folder.")],
    scheme: Annotated[
        str | None,
        typer.Option(
            help="Label scheme of labels stored in the mesh file, or a colour table of catalogs/labelmaps "
            "(fdi_colors, teeth3ds_challenge_colors) for labels stored as face/vertex colours."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Report geometry and FDI labels of PATH as the library reads it."""
    import numpy as np

    from toothmcl_data.io.mesh import read_mesh
    from toothmcl_data.io.meshformats import READERS

    report: dict[str, Any] = {"path": str(path)}
    if path.suffix.lower() in READERS:
        mesh = read_mesh(path, scheme=scheme)
        report |= {
            "kind": "mesh",
            "vertices": len(mesh.vertices),
            "faces": len(mesh.faces),
            "jaw": mesh.jaw,
            "frame": mesh.frame,
            "bounds_mm": np.round(np.ptp(mesh.vertices, axis=0), 2).tolist(),
        }
        if mesh.labels is not None:
            codes, counts = np.unique(mesh.labels, return_counts=True)
            report["fdi_vertex_counts"] = {int(c): int(n) for c, n in zip(codes, counts, strict=True)}
    else:
        if path.is_dir():
            from toothmcl_data.io.dicom import read_series

            volume = read_series(sorted(p for p in path.iterdir() if p.is_file()))
        else:
            from toothmcl_data.io.volume import read_nifti

            volume = read_nifti(path)
        report |= {
            "kind": "volume",
            "shape": list(volume.shape),
            "spacing_mm": [round(s, 4) for s in volume.spacing],
            "affine_lps": np.round(volume.affine, 4).tolist(),
            "dtype": str(volume.array.dtype),
            "range": [float(volume.array.min()), float(volume.array.max())],
        }
    emit(report, as_json=as_json, title=str(path))
