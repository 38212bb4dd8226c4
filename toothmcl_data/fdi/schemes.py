"""Label schemes: other tooth numberings ↔ FDI, and FDI ↔ colour, driven by ``catalogs/labelmaps/*.yaml``.

Inside the library teeth are always FDI (0 = gingiva/background, -1 = unknown). Readers and writers convert at
the edges through one registry: each scheme is a YAML file (format in ``catalogs/labelmaps/README.md``, found
and read by :mod:`toothmcl_data.fdi.catalog`) loaded by :func:`load_scheme`; nothing here hard-codes a scheme's
numbers. Conversions are vectorised lookup tables, -1 passes through every converter unchanged, and unknown
codes raise :class:`LabelSchemeError` naming them.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray

from toothmcl_data.errors import LabelSchemeError
from toothmcl_data.fdi.catalog import catalog_folder, read_catalog_file, scheme_names
from toothmcl_data.fdi.teeth import (
    ALL_TEETH,
    DECIDUOUS_FDI,
    EXPECTED_CODES,
    GINGIVA,
    INVALID_LABEL,
    apply_label_lut,
    as_label_array,
    deciduous_problem,
    format_codes,
    tooth,
)
from toothmcl_data.types import JAWS, Jaw

__all__ = [
    "MAX_CODE",
    "LabelScheme",
    "format_ranges",
    "from_fdi",
    "load_scheme",
    "to_fdi",
]

MAX_CODE = 32767
"""Largest code a scheme may use (converters return int16)."""
_FDI_LUT_SIZE = max(ALL_TEETH) + 1
_DECIDUOUS = frozenset(DECIDUOUS_FDI)


def format_ranges(codes: Iterable[int]) -> str:
    """Compress integers into ranges for messages: ``[0, 11, 12, 13, 21]`` → ``"0, 11–13, 21"``."""
    values = sorted(set(codes))
    parts: list[str] = []
    start = prev = values[0] if values else 0
    for v in [*values[1:], None]:
        if v is not None and v == prev + 1:
            prev = v
            continue
        parts.append(str(start) if start == prev else f"{start}–{prev}")
        if v is not None:
            start = prev = v
    return ", ".join(parts) if values else "(none)"


@dataclass(frozen=True)
class LabelScheme:
    """One tooth numbering and its lookup tables to and from FDI.

    to_fdi_map: code → FDI per jaw; key ``None`` for schemes that do not depend on the jaw, keys ``"upper"``
        and ``"lower"`` for per-jaw schemes. Exactly one code per table maps to FDI 0 (gingiva/background),
        targets are unique, so :meth:`from_fdi` inverts it.
    anatomy: code → name of non-tooth structures (jaw bones, canals …); they convert to FDI 0.
    merged: code → (FDI tooth, name) for codes that convert into a tooth but are never produced by
        :meth:`from_fdi` (e.g. ToothFairy3's per-tooth pulp).
    deciduous_note: sentence added when deciduous FDI codes have no code in this scheme.
    path: the YAML file it came from (named in error messages), or None.
    """

    name: str
    description: str
    to_fdi_map: Mapping[Jaw | None, Mapping[int, int]]
    anatomy: Mapping[int, str] = field(default_factory=dict)
    merged: Mapping[int, tuple[int, str]] = field(default_factory=dict)
    source: str = ""
    deciduous_note: str = ""
    path: Path | None = field(default=None, compare=False)
    _to_lut: dict[Jaw | None, NDArray[np.int16]] = field(init=False, repr=False, compare=False)
    _from_lut: dict[Jaw | None, NDArray[np.int16]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        origin = str(self.path) if self.path else f"label scheme {self.name!r}"
        if set(self.to_fdi_map) not in ({None}, set(JAWS)):
            raise LabelSchemeError(f"{origin}: to_fdi must be one code map or one per jaw (upper, lower)")
        both = sorted(set(self.anatomy) & set(self.merged))
        if both:
            raise LabelSchemeError(f"{origin}: codes {format_codes(both)} are both anatomy and merged")
        extra = {**{c: GINGIVA for c in self.anatomy}, **{c: f for c, (f, _) in self.merged.items()}}
        for code, fdi in extra.items():
            if not 0 <= code <= MAX_CODE:
                raise LabelSchemeError(f"{origin}: code {code} is outside 0–{MAX_CODE} (-1 is reserved)")
            if code in self.merged and fdi not in ALL_TEETH:
                raise LabelSchemeError(f"{origin}: merged code {code} → {fdi} is not an FDI tooth")
        size = max([*extra, *(c for t in self.to_fdi_map.values() for c in t), 0]) + 1
        to_lut, from_lut = {}, {}
        for jaw, table in self.to_fdi_map.items():
            where = f"to_fdi.{jaw}" if jaw else "to_fdi"
            _check_table(table, jaw, origin, where)
            clash = sorted(set(table) & set(extra))
            if clash:
                raise LabelSchemeError(
                    f"{origin}: codes {format_codes(clash)} are both in {where} and in anatomy/merged; "
                    "each code must mean one thing"
                )
            to_lut[jaw] = np.full(size, INVALID_LABEL, dtype=np.int16)
            from_lut[jaw] = np.full(_FDI_LUT_SIZE, INVALID_LABEL, dtype=np.int16)
            for code, fdi in [*table.items(), *extra.items()]:
                to_lut[jaw][code] = fdi
            for code, fdi in table.items():
                from_lut[jaw][fdi] = code
        object.__setattr__(self, "_to_lut", to_lut)
        object.__setattr__(self, "_from_lut", from_lut)

    @property
    def per_jaw(self) -> bool:
        """True when a code means a different tooth in each jaw, so conversions need ``jaw``."""
        return None not in self.to_fdi_map

    def codes(self, jaw: Jaw | None = None) -> tuple[int, ...]:
        """Every code :meth:`to_fdi` accepts (teeth, gingiva, anatomy, merged), sorted."""
        table = self.to_fdi_map[self._jaw_key(jaw, "list codes")]
        return tuple(sorted({*table, *self.anatomy, *self.merged}))

    def anatomy_code(self, name: str) -> int:
        """The code of a non-tooth structure by its name (case-insensitive), e.g. ``"Lower Jawbone"`` → 1."""
        for code, label in self.anatomy.items():
            if label.lower() == name.lower():
                return code
        raise LabelSchemeError(
            f"label scheme {self.name!r} has no anatomy named {name!r}; "
            f"known: {', '.join(self.anatomy.values()) or '(none)'}"
        )

    def to_fdi(
        self, codes: ArrayLike, jaw: Jaw | None = None, *, allow_deciduous: bool = False, what: str = "labels"
    ) -> NDArray[np.int16]:
        """Convert this scheme's codes to FDI.

        codes: any-shape integer array of scheme codes (per vertex, per voxel …); -1 (unknown) passes through.
        jaw: ``"upper"`` or ``"lower"``; required by per-jaw schemes, ignored by the others.
        allow_deciduous: keep deciduous FDI codes instead of raising (they are never mapped to permanent).
        what: names the array (e.g. its file) in error messages.
        Returns int16 FDI codes of the same shape (anatomy → 0).
        """
        key = self._jaw_key(jaw, "convert to FDI")
        arr = as_label_array(codes, what)
        out = apply_label_lut(arr, self._to_lut[key])
        bad = out == INVALID_LABEL
        if np.any(bad):
            raise LabelSchemeError(self._unknown_codes_message(arr[bad], key, what))
        if not allow_deciduous:
            dec = out >= min(_DECIDUOUS)
            if np.any(dec):
                raise LabelSchemeError(f"{what} (scheme {self.name!r}): {deciduous_problem(out[dec])}")
        return out

    def from_fdi(
        self, fdi: ArrayLike, jaw: Jaw | None = None, *, allow_deciduous: bool = False, what: str = "labels"
    ) -> NDArray[np.int16]:
        """Convert FDI codes to this scheme (inverse of :meth:`to_fdi` on tooth and gingiva codes).

        fdi: any-shape integer array of FDI codes (0 gingiva/background, -1 unknown passes through).
        jaw: required by per-jaw schemes, ignored by the others. Returns int16 scheme codes, same shape.
        """
        key = self._jaw_key(jaw, "convert from FDI")
        arr = as_label_array(fdi, what)
        out = apply_label_lut(arr, self._from_lut[key])
        bad_values = np.unique(arr[out == INVALID_LABEL]).tolist()
        not_fdi = [c for c in bad_values if c not in ALL_TEETH and c != GINGIVA]
        if not_fdi:
            raise LabelSchemeError(
                f"{what}: {len(not_fdi)} value(s) are not FDI codes: {format_codes(not_fdi)}; "
                f"{EXPECTED_CODES}, 0 (gingiva) or -1 (unknown). Convert scheme labels to FDI first with "
                "to_fdi(labels, scheme=...)"
            )
        present_dec = np.unique(arr[(arr >= min(_DECIDUOUS)) & (arr <= max(_DECIDUOUS))])
        if present_dec.size and not allow_deciduous:
            raise LabelSchemeError(f"{what} (to scheme {self.name!r}): {deciduous_problem(present_dec)}")
        if bad_values:
            jaw_txt = f" with jaw={key!r}" if key else ""
            encodable = sorted(f for f in self.to_fdi_map[key].values() if f != GINGIVA)
            msg = (
                f"{what}: label scheme {self.name!r}{jaw_txt} has no code for FDI "
                f"{format_codes(bad_values)}; it encodes FDI {format_ranges(encodable)} and 0."
            )
            if any(c in _DECIDUOUS for c in bad_values):
                msg += f" Deciduous teeth have no code in this scheme. {self.deciduous_note}".rstrip()
            if key and any(tooth(c).jaw != key for c in bad_values if c not in _DECIDUOUS):
                msg += " Some of these teeth are in the other jaw: split the labels by jaw first."
            raise LabelSchemeError(msg)
        return out

    def _jaw_key(self, jaw: Jaw | None, doing: str) -> Jaw | None:
        if jaw is not None and jaw not in JAWS:
            raise LabelSchemeError(f"jaw must be 'upper', 'lower' or None, got {jaw!r}")
        if not self.per_jaw:
            return None
        if jaw is None:
            up, low = self.to_fdi_map["upper"], self.to_fdi_map["lower"]
            example = min(c for c in up if up[c] != GINGIVA)
            raise LabelSchemeError(
                f"label scheme {self.name!r} numbers each jaw separately (code {example} is FDI "
                f"{up[example]} in the upper jaw, FDI {low.get(example)} in the lower), so it cannot {doing} "
                'without the jaw: pass jaw="upper" or jaw="lower"'
            )
        return jaw

    def _unknown_codes_message(self, bad: NDArray[np.int64], jaw: Jaw | None, what: str) -> str:
        distinct = sorted(set(np.unique(bad).tolist()))
        jaw_txt = f" (jaw={jaw!r})" if jaw else ""
        others = _schemes_accepting(distinct, jaw, self)
        if others:
            fix = " or ".join(f"scheme={n!r}" for n in others)
            hint = f"These are valid codes of {', '.join(others)}: pass {fix} if the source uses that one."
        else:
            hint = "Check which numbering the source uses (catalogs/labelmaps/README.md), pass that scheme."
        return (
            f"{what}: {bad.size} value(s) are not codes of label scheme {self.name!r}{jaw_txt}: "
            f"{format_codes(distinct)}. Valid codes: {format_ranges(self.codes(jaw))} "
            f"(-1 = unknown passes through). {hint}"
        )


def _check_table(table: Mapping[int, int], jaw: Jaw | None, origin: str, where: str) -> None:
    seen: dict[int, int] = {}
    for code, fdi in table.items():
        if not 0 <= code <= MAX_CODE:
            raise LabelSchemeError(f"{origin}: {where}: code {code} is outside 0–{MAX_CODE} (-1 is reserved)")
        if fdi != GINGIVA and fdi not in ALL_TEETH:
            raise LabelSchemeError(f"{origin}: {where}: code {code} → {fdi} is not FDI 0 or a tooth")
        if jaw and fdi != GINGIVA and tooth(fdi).jaw != jaw:
            raise LabelSchemeError(f"{origin}: {where}: code {code} → FDI {fdi} is not an {jaw} tooth")
        if fdi in seen:
            raise LabelSchemeError(
                f"{origin}: {where}: codes {seen[fdi]} and {code} both map to FDI {fdi}; targets must be "
                "unique so FDI converts back (put extra codes under `merged:`)"
            )
        seen[fdi] = code
    if GINGIVA not in seen:
        raise LabelSchemeError(f"{origin}: {where}: no code maps to FDI 0 (gingiva/background); add `0: 0`")


def _schemes_accepting(codes: list[int], jaw: Jaw | None, exclude: LabelScheme) -> list[str]:
    """Names of other schemes (in ``exclude``'s folder) whose codes include all ``codes``."""
    folder = exclude.path.parent if exclude.path else None
    found = []
    for name in scheme_names(folder):
        if name == exclude.name:
            continue
        try:
            other = load_scheme(name, folder)
        except LabelSchemeError:  # handled: only a hint for the error being raised; a broken neighbour must not hide it
            continue
        for j in ((jaw,) if jaw else JAWS) if other.per_jaw else (None,):
            if set(codes) <= set(other.codes(j)):
                found.append(name)
                break
    return found


def _int(value: object, path: Path, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise LabelSchemeError(f"{path}: {where}: {value!r} is not an integer; codes and FDI are integers")
    return value


def _code_map(raw: object, path: Path, where: str) -> dict[int, int]:
    if not isinstance(raw, dict):
        raise LabelSchemeError(f"{path}: {where} must be a mapping of integer code → FDI, got {raw!r}")
    return {_int(k, path, where): _int(v, path, f"{where}.{k}") for k, v in raw.items()}


def _scheme_from_file(path: Path) -> LabelScheme:
    data = read_catalog_file(path, "label_scheme")
    per_jaw, raw = data.get("per_jaw", False), data["to_fdi"]
    if per_jaw is True:
        if not isinstance(raw, dict) or set(raw) != set(JAWS):
            raise LabelSchemeError(f"{path}: per_jaw scheme needs to_fdi with exactly `upper:` and `lower:`")
        tables: dict[Jaw | None, Mapping[int, int]] = {j: _code_map(raw[j], path, f"to_fdi.{j}") for j in JAWS}
    elif per_jaw is False:
        tables = {None: _code_map(raw, path, "to_fdi")}
    else:
        raise LabelSchemeError(f"{path}: per_jaw must be true or false, got {per_jaw!r}")
    anatomy = data.get("anatomy") or {}
    merged = data.get("merged") or {}
    if not isinstance(anatomy, dict) or not isinstance(merged, dict):
        raise LabelSchemeError(f"{path}: anatomy and merged must be mappings keyed by integer code")
    merged_pairs = {}
    for k, v in merged.items():
        if not (isinstance(v, list) and len(v) == 2 and isinstance(v[1], str)):
            raise LabelSchemeError(f"{path}: merged.{k} must be [FDI tooth, name], got {v!r}")
        merged_pairs[_int(k, path, "merged")] = (_int(v[0], path, f"merged.{k}"), v[1])
    return LabelScheme(
        name=data["name"],
        description=str(data["description"]),
        to_fdi_map=tables,
        anatomy={_int(k, path, "anatomy"): str(v) for k, v in anatomy.items()},
        merged=merged_pairs,
        source=str(data["source"]),
        deciduous_note=str(data.get("deciduous_note", "")),
        path=path,
    )


def load_scheme(name: str, directory: str | Path | None = None) -> LabelScheme:
    """Load (once, then cached) the scheme ``<directory>/<name>.yaml``; malformed files raise naming it."""
    return _load_scheme(name, catalog_folder(directory))


@functools.lru_cache(maxsize=64)
def _load_scheme(name: str, folder: Path) -> LabelScheme:
    path = folder / f"{name}.yaml"
    if not path.is_file():
        raise LabelSchemeError(
            f"unknown label scheme {name!r}: no file {path}; known schemes: "
            f"{', '.join(scheme_names(folder))}. Pass one of these, or add a YAML file there (see README.md)"
        )
    return _scheme_from_file(path)


def _resolve(scheme: str | LabelScheme, directory: str | Path | None) -> LabelScheme:
    return scheme if isinstance(scheme, LabelScheme) else load_scheme(scheme, directory)


def to_fdi(
    codes: ArrayLike,
    scheme: str | LabelScheme,
    jaw: Jaw | None = None,
    *,
    allow_deciduous: bool = False,
    what: str = "labels",
    directory: str | Path | None = None,
) -> NDArray[np.int16]:
    """Convert ``codes`` (any-shape int array) of ``scheme`` to int16 FDI; see :meth:`LabelScheme.to_fdi`."""
    return _resolve(scheme, directory).to_fdi(codes, jaw, allow_deciduous=allow_deciduous, what=what)


def from_fdi(
    fdi: ArrayLike,
    scheme: str | LabelScheme,
    jaw: Jaw | None = None,
    *,
    allow_deciduous: bool = False,
    what: str = "labels",
    directory: str | Path | None = None,
) -> NDArray[np.int16]:
    """Convert FDI codes (any-shape int array) to int16 ``scheme`` codes; see :meth:`LabelScheme.from_fdi`."""
    return _resolve(scheme, directory).from_fdi(fdi, jaw, allow_deciduous=allow_deciduous, what=what)
