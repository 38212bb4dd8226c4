"""Read what an evaluation compares: GT and predicted label files, checked to describe the same scan or grid.

- IOS: a mesh (STL/PLY/OBJ/VTP, for vertex positions) and two Teeth3DS JSON sidecars (GT, prediction) with one
  label and instance per mesh vertex.
- CBCT: two label volumes — NIfTI, MetaImage, NRRD files or DICOM series folders — converted to FDI through a
  label scheme (``fdi``, ``toothfairy2`` …) and required to share shape and affine.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from toothmcl_data.errors import InputError, InputNotFoundError, LabelSchemeError, MeshError
from toothmcl_data.fdi import to_fdi
from toothmcl_data.io.dicom import read_series
from toothmcl_data.io.mesh import read_mesh
from toothmcl_data.io.teeth3ds import Teeth3DSLabels, read_teeth3ds_json
from toothmcl_data.io.volume import read_volume
from toothmcl_data.metrics.cbct import CBCTScores, score_label_maps
from toothmcl_data.metrics.ios import IOSScores, score_scan
from toothmcl_data.types import Mesh, Volume

AFFINE_TOLERANCE_MM = 1e-3
"""GT and prediction affines may differ by this much per entry (float32 headers round)."""


def read_label_volume(path: str | Path, scheme: str = "fdi") -> Volume:
    """Read a label volume and convert its codes from ``scheme`` to FDI.

    path: a NIfTI / MetaImage / NRRD file, or a folder holding one DICOM series. Returns a :class:`Volume`
    whose array is (I, J, K) int16 FDI (0 = background) and whose affine maps voxels to LPS mm. Non-tooth
    anatomy of the scheme (jaw bones, canals …) becomes background.
    """
    path = Path(path)
    if not path.exists():
        raise InputNotFoundError(f"label volume {path} does not exist; check the path")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
        volume = read_series(files)
    else:
        volume = read_volume(path)
    try:
        fdi = to_fdi(volume.array, scheme, allow_deciduous=True, what=f"label volume {path}")
    except LabelSchemeError as err:
        raise LabelSchemeError(f"{err} (read with scheme {scheme!r}; pass --scheme to change it)") from err
    return Volume(array=np.asarray(fdi, dtype=np.int16), affine=volume.affine)


def check_same_grid(gt: Volume, pred: Volume, gt_name: str, pred_name: str) -> None:
    """Raise InputError unless ``pred`` has ``gt``'s shape and affine (within :data:`AFFINE_TOLERANCE_MM`)."""
    if gt.shape != pred.shape:
        raise InputError(
            f"prediction {pred_name} has shape {pred.shape} but ground truth {gt_name} has {gt.shape}; resample "
            "the prediction onto the ground truth's grid (same shape and affine) before scoring"
        )
    diff = float(np.max(np.abs(gt.affine - pred.affine)))
    if diff > AFFINE_TOLERANCE_MM:
        raise InputError(
            f"prediction {pred_name} and ground truth {gt_name} have different affines (largest difference "
            f"{diff:.4g} mm, tolerance {AFFINE_TOLERANCE_MM} mm): GT {np.round(gt.affine, 4).tolist()}, "
            f"prediction {np.round(pred.affine, 4).tolist()}; write the prediction with the GT image's geometry "
            "(e.g. copy its header) or resample it onto that grid"
        )


def score_cbct_files(
    gt_path: str | Path, pred_path: str | Path, *, scheme: str = "fdi", pred_scheme: str | None = None
) -> CBCTScores:
    """Score a predicted CBCT label volume against the GT (see :mod:`toothmcl_data.metrics.cbct`).

    scheme: numbering of the GT labels; pred_scheme: of the prediction's (default: ``scheme``).
    """
    gt = read_label_volume(gt_path, scheme)
    pred = read_label_volume(pred_path, pred_scheme or scheme)
    check_same_grid(gt, pred, str(gt_path), str(pred_path))
    return score_label_maps(gt.array, pred.array, gt.spacing, what=str(pred_path))


def score_cbct_missing(gt_path: str | Path, *, scheme: str = "fdi") -> CBCTScores:
    """Score a GT volume whose prediction is missing, as an empty prediction (Dice 0 on every GT tooth)."""
    gt = read_label_volume(gt_path, scheme)
    return score_label_maps(gt.array, np.zeros_like(gt.array), gt.spacing, what=str(gt_path))


def read_ios_ground_truth(
    mesh_path: str | Path, gt_path: str | Path
) -> tuple[Mesh, NDArray[np.int16], NDArray[np.int16]]:
    """The scan and its GT (n,) int16 FDI labels and (n,) int16 instances from the Teeth3DS sidecar ``gt_path``,
    checked against the mesh's vertices."""
    mesh = read_mesh(mesh_path, labels=gt_path)
    if mesh.labels is None or mesh.instances is None:  # read_mesh always fills both from a sidecar
        raise MeshError(f"ground truth {gt_path} gave no labels/instances for {mesh_path}")
    return mesh, mesh.labels, mesh.instances


def read_ios_prediction(pred_path: str | Path, mesh: Mesh, mesh_name: str = "the mesh") -> Teeth3DSLabels:
    """A predicted Teeth3DS sidecar, checked to hold one label per vertex of ``mesh`` and to be for its jaw."""
    pred = read_teeth3ds_json(pred_path)
    if len(pred.labels) != len(mesh.vertices):
        raise MeshError(
            f"prediction {pred_path} has {len(pred.labels)} labels but {mesh_name} has {len(mesh.vertices)} "
            "vertices; predict one label and instance per mesh vertex, in its vertex order"
        )
    if mesh.jaw is not None and pred.jaw != mesh.jaw:
        raise MeshError(
            f"prediction {pred_path} is for the {pred.jaw} jaw but the ground truth of {mesh_name} for the "
            f"{mesh.jaw}; pair each prediction with the scan it was made for"
        )
    return pred


def score_ios_files(mesh_path: str | Path, gt_path: str | Path, pred_path: str | Path) -> IOSScores:
    """Score one predicted Teeth3DS sidecar against the GT sidecar on the mesh's vertices (3DTeethSeg22 rules).

    mesh_path: the scan (its vertex order is the sidecars' order; positions in the file's own frame).
    """
    mesh, labels, instances = read_ios_ground_truth(mesh_path, gt_path)
    pred = read_ios_prediction(pred_path, mesh, str(mesh_path))
    return score_scan(mesh.vertices, labels, instances, pred.labels, pred.instances, f"ground truth {gt_path}")
