"""Pictures a person looks at: CBCT slices with the label map over them, and IOS meshes coloured by FDI.

Slices follow the radiological convention (patient right on the viewer's left) and are marked with their
orientation letters, so a left/right or upper/lower mix-up is visible at a glance.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.collections import PolyCollection
from numpy.typing import NDArray

from toothmcl_data.fdi import load_color_table
from toothmcl_data.types import Mesh, Volume

WINDOW = (-200.0, 3200.0)
"""Display window of CBCT intensities (scanner units)."""


def _overlay(labels: NDArray[np.integer]) -> NDArray[np.float32]:
    """(…,) FDI labels → (…, 4) RGBA float32, transparent where the label is 0."""
    table = load_color_table()
    flat = labels.ravel()
    rgba = np.zeros((flat.size, 4), dtype=np.float32)
    teeth = flat > 0
    if teeth.any():
        rgba[teeth, :3] = table.colors_for(flat[teeth]).astype(np.float32) / 255.0
        rgba[teeth, 3] = 0.45
    return rgba.reshape(*labels.shape, 4)


def volume_slices_png(volume: Volume, labels: Volume | None, path: Path, *, title: str = "") -> Path:
    """Write axial, coronal and sagittal slices of an axis-aligned LPS ``volume`` with the label map overlaid;
    return ``path``. Slices pass where the label map has the most tooth voxels (sagittal: on the patient's
    right), or through the volume centre when there are no labels."""
    centre = np.array(volume.shape) // 2
    if labels is not None and np.any(labels.array > 0):
        teeth = labels.array > 0
        right_half = teeth[: int(np.argwhere(teeth)[:, 0].mean())]  # patient right (LPS: low i)
        centre = np.array(
            [
                int(np.argmax(right_half.sum(axis=(1, 2)))),
                int(np.argmax(teeth.sum(axis=(0, 2)))),
                int(np.argmax(teeth.sum(axis=(0, 1)))),
            ]
        )
    sx, sy, sz = volume.spacing
    ox, oy, oz = volume.affine[:3, 3]
    nx, ny, nz = volume.shape
    ext_x, ext_y, ext_z = (ox, ox + sx * nx), (oy, oy + sy * ny), (oz, oz + sz * nz)
    views = [
        (
            "axial",
            np.s_[:, :, centre[2]],
            (ext_x[0], ext_x[1], ext_y[1], ext_y[0]),
            ("R", "L", "A", "P"),
            "upper",
        ),
        (
            "coronal",
            np.s_[:, centre[1], :],
            (ext_x[0], ext_x[1], ext_z[0], ext_z[1]),
            ("R", "L", "S", "I"),
            "lower",
        ),
        (
            "sagittal",
            np.s_[centre[0], :, :],
            (ext_y[0], ext_y[1], ext_z[0], ext_z[1]),
            ("A", "P", "S", "I"),
            "lower",
        ),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(15, 5.4))
    for ax, (name, sl, extent, (left, right, top, bottom), origin) in zip(axes, views, strict=True):
        image = np.asarray(volume.array[sl], dtype=np.float32).T
        ax.imshow(
            image,
            cmap="gray",
            vmin=WINDOW[0],
            vmax=WINDOW[1],
            extent=extent,
            origin=origin,
            interpolation="nearest",
        )
        if labels is not None:
            ax.imshow(
                _overlay(np.asarray(labels.array[sl]).T),
                extent=extent,
                origin=origin,
                interpolation="nearest",
            )
        ax.set_title(f"{name} (mm, LPS)")
        for text, xy in (
            (left, (0.02, 0.5)),
            (right, (0.98, 0.5)),
            (top, (0.5, 0.97)),
            (bottom, (0.5, 0.03)),
        ):
            ax.text(
                *xy,
                text,
                transform=ax.transAxes,
                color="yellow",
                ha="center",
                va="center",
                fontsize=13,
                fontweight="bold",
            )
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def occlusal_frame(mesh: Mesh) -> NDArray[np.float64]:
    """(3, 3) rotation whose rows are the view axes (right, up, towards the viewer) looking at the occlusal
    surface: principal axes of the vertices, the viewer on the side where the crowns (labels > 0) stand."""
    v = mesh.vertices - mesh.vertices.mean(axis=0)
    _, _, axes = np.linalg.svd(v[:: max(1, len(v) // 20000)], full_matrices=False)
    view = axes[2]
    if mesh.labels is not None:
        teeth, gingiva = mesh.labels > 0, mesh.labels == 0
        if teeth.any() and gingiva.any() and (v[teeth] @ view).mean() < (v[gingiva] @ view).mean():
            view = -view
    right = axes[0]
    up = np.cross(view, right)
    return np.stack([right, up, view])


def mesh_png(mesh: Mesh, path: Path, *, title: str = "", max_faces: int = 120_000) -> Path:
    """Write an occlusal-view rendering of ``mesh`` coloured by FDI label (grey where unlabelled), Lambert
    shaded, drawn back to front; return ``path``."""
    frame = occlusal_frame(mesh)
    v = (mesh.vertices - mesh.vertices.mean(axis=0)) @ frame.T
    faces = mesh.faces[:: max(1, len(mesh.faces) // max_faces)]
    tri = v[faces]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-12)
    shade = 0.35 + 0.65 * np.abs(normal[:, 2])
    if mesh.labels is not None:
        face_label = mesh.labels[faces[:, 0]]
        colours = np.full((len(faces), 3), 0.85)
        teeth = face_label > 0
        if teeth.any():
            colours[teeth] = load_color_table().colors_for(face_label[teeth]) / 255.0
        colours[face_label == 0] = (0.93, 0.62, 0.62)
    else:
        colours = np.full((len(faces), 3), 0.85)
    order = np.argsort(tri[:, :, 2].mean(axis=1))
    fig, ax = plt.subplots(figsize=(7.5, 7.5))
    ax.add_collection(
        PolyCollection(tri[order, :, :2], facecolors=colours[order] * shade[order, None], edgecolors="none")
    )
    ax.set_xlim(v[:, 0].min() - 2, v[:, 0].max() + 2)
    ax.set_ylim(v[:, 1].min() - 2, v[:, 1].max() + 2)
    ax.set_aspect("equal")
    ax.set_title(title)
    ax.set_xlabel("mm")
    if mesh.labels is not None:
        for fdi in np.unique(mesh.labels[mesh.labels > 0]):
            c = v[mesh.labels == fdi].mean(axis=0)
            ax.text(c[0], c[1], str(int(fdi)), ha="center", va="center", fontsize=8, fontweight="bold")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
