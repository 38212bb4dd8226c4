"""FDI ↔ RGB colour tables (``catalogs/labelmaps/<name>.yaml`` with ``kind: color_table``).

Used to draw label maps and to read meshes whose tooth labels are stored as vertex or face colours: an exact
colour match wins, else the nearest table colour within a tolerance, else a :class:`LabelSchemeError`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray

from toothmcl_data.errors import LabelSchemeError
from toothmcl_data.fdi.catalog import catalog_folder, read_catalog_file
from toothmcl_data.fdi.teeth import ALL_TEETH, GINGIVA, INVALID_LABEL, UNKNOWN, as_label_array, format_codes

RGB = tuple[int, int, int]
_CHUNK = 65536


def _pack(rgb: NDArray[np.int64]) -> NDArray[np.int64]:
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


@dataclass(frozen=True)
class ColorTable:
    """FDI code (0 gingiva, -1 unknown, teeth) → RGB colour, and back.

    colors: FDI → (r, g, b), each 0–255; colours are distinct.
    tolerance: largest Euclidean RGB distance (0–255 units) at which a colour still reads as the nearest
        table colour; must be below half the smallest distance between two table colours (aliases and
        ambiguous colours included).
    aliases: extra colours that read as a code but are never written (e.g. the colour a producer leaves on
        uncoloured gingiva).
    ambiguous: colours a published palette gives to two or more teeth; they read as -1 (unknown), never
        as one of the teeth, and are never written.
    """

    name: str
    description: str
    colors: Mapping[int, RGB]
    tolerance: float
    path: Path | None = field(default=None, compare=False)
    aliases: Mapping[RGB, int] = field(default_factory=dict)
    ambiguous: Mapping[RGB, tuple[int, ...]] = field(default_factory=dict)
    _labels: NDArray[np.int16] = field(init=False, repr=False, compare=False)
    _rgb: NDArray[np.float64] = field(init=False, repr=False, compare=False)
    _packed: NDArray[np.int64] = field(init=False, repr=False, compare=False)
    _lut: NDArray[np.int16] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        origin = str(self.path) if self.path else f"colour table {self.name!r}"
        for code, col in self.colors.items():
            if code not in ALL_TEETH and code not in (GINGIVA, UNKNOWN):
                raise LabelSchemeError(f"{origin}: colour key {code} is not an FDI code, 0 or -1")
            if len(col) != 3 or not all(isinstance(v, int) and 0 <= v <= 255 for v in col):
                raise LabelSchemeError(f"{origin}: colour of {code} must be [r, g, b] integers 0–255: {col}")
        for col, codes in self.ambiguous.items():
            if len(codes) < 2 or any(c not in ALL_TEETH for c in codes) or len(col) != 3:
                raise LabelSchemeError(f"{origin}: ambiguous colour {col} must list two or more FDI teeth: {codes}")
        for col, code in self.aliases.items():
            if code not in self.colors or len(col) != 3:
                raise LabelSchemeError(f"{origin}: alias colour {col} reads as {code}, which has no table colour")
        primary = sorted(self.colors)
        labels = np.array([*primary, *self.aliases.values(), *([UNKNOWN] * len(self.ambiguous))], dtype=np.int16)
        colours = [self.colors[c] for c in primary] + list(self.aliases) + list(self.ambiguous)
        rgb = np.array(colours, dtype=np.int64).reshape(-1, 3)
        if rgb.size and (rgb.min() < 0 or rgb.max() > 255):
            raise LabelSchemeError(f"{origin}: alias and ambiguous colours must be [r, g, b] integers 0–255")
        dist = np.linalg.norm(rgb[:, None, :] - rgb[None, :, :], axis=-1) + np.diag(np.full(len(rgb), np.inf))
        if len(rgb) > 1:
            i, j = np.unravel_index(int(np.argmin(dist)), dist.shape)
            if dist[i, j] == 0:
                raise LabelSchemeError(
                    f"{origin}: FDI {labels[i]} and {labels[j]} have the same colour {colours[i]}; a colour a "
                    "palette gives to two teeth belongs under 'ambiguous'"
                )
            if not 0 <= self.tolerance < dist[i, j] / 2:
                raise LabelSchemeError(
                    f"{origin}: tolerance {self.tolerance} must be ≥ 0 and below half the smallest distance "
                    f"between two colours ({dist[i, j]:.1f}, FDI {labels[i]} vs {labels[j]}); lower it"
                )
        order = np.argsort(_pack(rgb))  # rows sorted by packed colour, for exact matching
        lut = np.full(max(ALL_TEETH) + 2, INVALID_LABEL, dtype=np.int16)  # label + 1 → row (table colours only)
        rows = np.arange(len(labels), dtype=np.int16)
        is_primary = order < len(primary)
        lut[labels[order][is_primary].astype(np.int64) + 1] = rows[is_primary]
        object.__setattr__(self, "_labels", labels[order])
        object.__setattr__(self, "_rgb", rgb[order].astype(np.float64))
        object.__setattr__(self, "_packed", _pack(rgb[order]))
        object.__setattr__(self, "_lut", lut)

    def colors_for(self, labels: ArrayLike, *, what: str = "labels") -> NDArray[np.uint8]:
        """Colour each FDI label.

        labels: any-shape integer FDI codes (0 gingiva, -1 unknown).
        Returns uint8 RGB of shape ``labels.shape + (3,)``. Raises on codes without a colour.
        """
        arr = as_label_array(labels, what)
        idx = np.full(arr.shape, INVALID_LABEL, dtype=np.int16)
        ok = (arr >= -1) & (arr < len(self._lut) - 1)
        idx[ok] = self._lut[arr[ok] + 1]
        missing = idx == INVALID_LABEL
        if np.any(missing):
            raise LabelSchemeError(
                f"{what}: colour table {self.name!r} has no colour for code(s) {format_codes(arr[missing])}; "
                f"it colours {format_codes(sorted(self.colors))}. Convert labels to FDI first, or add the codes to "
                f"{self.path or 'the table'}"
            )
        return self._rgb.astype(np.uint8)[idx]

    def labels_from_colors(
        self, rgb: ArrayLike, tol: float | None = None, *, what: str = "colors"
    ) -> NDArray[np.int16]:
        """Read FDI labels from colours.

        rgb: (n, 3) or (n, 4) integer colours 0–255 (uint8, as trimesh stores vertex/face colours); an alpha
            column is ignored.
        tol: largest RGB distance accepted for a non-exact match (default: the table's tolerance).
        Returns (n,) int16 FDI codes. Raises naming the colours that match no table colour within ``tol``.
        """
        arr = np.asarray(rgb)
        if arr.ndim != 2 or arr.shape[1] not in (3, 4) or arr.dtype.kind not in "iu":
            raise LabelSchemeError(
                f"{what}: expected (n, 3) or (n, 4) integer colours 0–255, got shape {arr.shape} dtype "
                f"{arr.dtype}; convert 0–1 float colours with (rgb * 255).round().astype(np.uint8)"
            )
        c = arr[:, :3].astype(np.int64)
        if c.size and (c.min() < 0 or c.max() > 255):
            raise LabelSchemeError(f"{what}: colour values must be 0–255, got {c.min()}–{c.max()}")
        tol = self.tolerance if tol is None else float(tol)
        uniq, inverse = np.unique(_pack(c), return_inverse=True)
        pos = np.clip(np.searchsorted(self._packed, uniq), 0, len(self._packed) - 1)
        exact = self._packed[pos] == uniq
        out = np.where(exact, self._labels[pos], INVALID_LABEL).astype(np.int16)
        todo = np.flatnonzero(~exact)
        for start in range(0, len(todo), _CHUNK):
            part = todo[start : start + _CHUNK]
            cols = np.stack([(uniq[part] >> s) & 255 for s in (16, 8, 0)], axis=-1).astype(np.float64)
            d = np.linalg.norm(cols[:, None, :] - self._rgb[None, :, :], axis=-1)
            nearest = np.argmin(d, axis=1)
            dmin = d[np.arange(len(part)), nearest]
            far = dmin > tol
            if np.any(far):
                far_rgb = cols[far][:5].astype(int).tolist()
                shown = ", ".join(
                    f"({r}, {g}, {b}) nearest FDI {self._labels[k]} at {dd:.1f}"
                    for (r, g, b), k, dd in zip(far_rgb, nearest[far], dmin[far], strict=False)
                )
                count = int(np.isin(inverse, part[far]).sum())
                raise LabelSchemeError(
                    f"{what}: {count} colour(s) match no label of colour table {self.name!r} within "
                    f"tolerance {tol:g}: {shown}{' …' if far.sum() > 5 else ''}. If the mesh uses another "
                    "palette, load its colour table (catalogs/labelmaps/<name>.yaml) or pass a larger tol"
                )
            out[part] = self._labels[nearest]
        return out[inverse.reshape(-1)]


def _rgb(value: object, path: Path, where: str) -> RGB:
    if not isinstance(value, list) or len(value) != 3 or not all(isinstance(v, int) for v in value):
        raise LabelSchemeError(f"{path}: {where}: expected [r, g, b] integers 0–255, got {value!r}")
    return (value[0], value[1], value[2])


def _color_table_from_file(path: Path) -> ColorTable:
    data = read_catalog_file(path, "color_table")
    raw, tol = data["colors"], data["tolerance"]
    if not isinstance(raw, dict) or isinstance(tol, bool) or not isinstance(tol, int | float):
        raise LabelSchemeError(f"{path}: colors must map FDI → [r, g, b] and tolerance must be a number")
    colors: dict[int, RGB] = {}
    for k, v in raw.items():
        if isinstance(k, bool) or not isinstance(k, int) or not isinstance(v, list) or len(v) != 3:
            raise LabelSchemeError(f"{path}: colors.{k}: expected integer FDI key → [r, g, b], got {v!r}")
        colors[k] = (v[0], v[1], v[2])
    aliases: dict[RGB, int] = {}
    for n, item in enumerate(data.get("aliases") or []):
        if not isinstance(item, dict) or not isinstance(item.get("fdi"), int):
            raise LabelSchemeError(f"{path}: aliases[{n}]: expected {{color: [r, g, b], fdi: code}}, got {item!r}")
        aliases[_rgb(item.get("color"), path, f"aliases[{n}].color")] = item["fdi"]
    ambiguous: dict[RGB, tuple[int, ...]] = {}
    for n, item in enumerate(data.get("ambiguous") or []):
        codes = item.get("fdi") if isinstance(item, dict) else None
        if not isinstance(codes, list) or not all(isinstance(c, int) for c in codes):
            raise LabelSchemeError(f"{path}: ambiguous[{n}]: expected {{color: [r, g, b], fdi: [a, b]}}, got {item!r}")
        ambiguous[_rgb(item.get("color"), path, f"ambiguous[{n}].color")] = tuple(codes)
    return ColorTable(
        data["name"], str(data["description"]), colors, float(tol), path=path, aliases=aliases, ambiguous=ambiguous
    )


def load_color_table(name: str = "fdi_colors", directory: str | Path | None = None) -> ColorTable:
    """Load (once, then cached) the colour table ``<directory>/<name>.yaml`` (default: the catalog)."""
    folder = catalog_folder(directory)
    return _load_color_table(name, folder)


@functools.lru_cache(maxsize=16)
def _load_color_table(name: str, folder: Path) -> ColorTable:
    path = folder / f"{name}.yaml"
    if not path.is_file():
        raise LabelSchemeError(f"unknown colour table {name!r}: no file {path}")
    return _color_table_from_file(path)
