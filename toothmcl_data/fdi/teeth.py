"""The FDI (ISO 3950) tooth model: which codes are teeth, and what each one is.

An FDI code is ``10 * quadrant + position``. Permanent quadrants 1–4 hold positions 1–8, deciduous (primary)
quadrants 5–8 hold positions 1–5. Quadrants are numbered clockwise from the patient's upper right as the
clinician faces the patient: 1/5 upper right, 2/6 upper left, 3/7 lower left, 4/8 lower right. "Right" and
"left" are always the **patient's** sides.

Label arrays everywhere in the library hold FDI codes with two reserved values: ``0`` = gingiva / background
and ``-1`` = unknown. The library works on permanent teeth; deciduous codes are recognised and reported
(never mapped onto permanent codes), and permanent-only paths refuse them with a :class:`LabelSchemeError`
naming them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from toothmcl_data.errors import LabelSchemeError
from toothmcl_data.types import Jaw, Side, ToothType

GINGIVA = 0
"""Label value for gingiva (meshes) or background (volumes)."""
UNKNOWN = -1
"""Label value for "not known": passes unchanged through every converter."""

PERMANENT_FDI: tuple[int, ...] = tuple(q * 10 + p for q in (1, 2, 3, 4) for p in range(1, 9))
"""The 32 permanent teeth in order 11..18, 21..28, 31..38, 41..48."""
UPPER_FDI: tuple[int, ...] = tuple(c for c in PERMANENT_FDI if c // 10 in (1, 2))
LOWER_FDI: tuple[int, ...] = tuple(c for c in PERMANENT_FDI if c // 10 in (3, 4))
DECIDUOUS_FDI: tuple[int, ...] = tuple(q * 10 + p for q in (5, 6, 7, 8) for p in range(1, 6))
"""The 20 deciduous teeth in order 51..55, 61..65, 71..75, 81..85."""
ALL_TEETH: frozenset[int] = frozenset(PERMANENT_FDI) | frozenset(DECIDUOUS_FDI)

EXPECTED_CODES = "expected 11–18, 21–28, 31–38, 41–48 (or deciduous 51–55, 61–65, 71–75, 81–85)"

_UPPER_QUADRANTS = frozenset({1, 2, 5, 6})
_RIGHT_QUADRANTS = frozenset({1, 4, 5, 8})
_MIRROR_QUADRANT = {1: 2, 2: 1, 3: 4, 4: 3, 5: 6, 6: 5, 7: 8, 8: 7}
_OPPOSING_QUADRANT = {1: 4, 4: 1, 2: 3, 3: 2, 5: 8, 8: 5, 6: 7, 7: 6}
_PERMANENT_TYPES: tuple[ToothType, ...] = (
    *("incisor", "incisor", "canine", "premolar", "premolar"),
    *("molar", "molar", "molar"),
)
_DECIDUOUS_TYPES: tuple[ToothType, ...] = ("incisor", "incisor", "canine", "molar", "molar")
_ORDINALS = ("central", "lateral", "", "first", "second", "first", "second", "third")
_MAX_FDI = 85


def format_codes(codes: ArrayLike, limit: int = 8) -> str:
    """Describe a set of offending codes for an error message: the first few distinct ones, then a count.

    codes: any-shape integer array (or sequence) of label codes.
    Returns e.g. ``"19, 49, 99"`` or ``"1, 2, 3, 4, 5, 6, 7, 8 … (12 distinct codes)"``.
    """
    distinct = np.unique(np.asarray(codes)).tolist()
    shown = ", ".join(str(int(c)) for c in distinct[:limit])
    if len(distinct) > limit:
        shown += f" … ({len(distinct)} distinct codes)"
    return shown


def deciduous_problem(fdi_codes: ArrayLike) -> str:
    """The sentence every permanent-only path uses to refuse deciduous FDI codes (any-shape int array)."""
    return (
        f"deciduous (primary) teeth found: FDI {format_codes(fdi_codes)} — this path handles permanent teeth "
        "only and never maps them onto permanent codes; pass allow_deciduous=True to keep them as deciduous "
        "FDI codes, or exclude this case"
    )


def _why_not_a_tooth(code: int) -> str:
    if code == GINGIVA:
        return "0 means gingiva/background"
    if code == UNKNOWN:
        return "-1 means unknown"
    quadrant, position = divmod(code, 10)
    if code < 0 or quadrant == 0 or quadrant > 8:
        return f"quadrant {quadrant} does not exist" if code > 0 else "codes are non-negative"
    if position == 0:
        return "position 0 does not exist"
    if quadrant >= 5:
        return f"position {position} does not exist in deciduous quadrant {quadrant} (1–5 only)"
    return f"position {position} does not exist in quadrant {quadrant} (1–8 only)"


@dataclass(frozen=True, order=True)
class Tooth:
    """One tooth, by its FDI code (permanent 11–48 or deciduous 51–85); validated on construction."""

    fdi: int

    def __post_init__(self) -> None:
        if isinstance(self.fdi, bool) or not isinstance(self.fdi, int | np.integer):
            raise LabelSchemeError(
                f"FDI code must be an integer, got {self.fdi!r} ({type(self.fdi).__name__}); {EXPECTED_CODES}"
            )
        code = int(self.fdi)
        if code not in ALL_TEETH:
            raise LabelSchemeError(
                f"FDI code {code} is not a tooth: {_why_not_a_tooth(code)}; {EXPECTED_CODES}. "
                "If this number comes from another scheme, convert it first with "
                "toothmcl_data.fdi.to_fdi(codes, scheme=...)"
            )
        object.__setattr__(self, "fdi", code)

    @property
    def quadrant(self) -> int:
        """1 upper right, 2 upper left, 3 lower left, 4 lower right (5–8 the same for deciduous)."""
        return self.fdi // 10

    @property
    def position(self) -> int:
        """1 (central incisor) to 8 (third molar) counted from the midline; 1–5 for deciduous teeth."""
        return self.fdi % 10

    @property
    def deciduous(self) -> bool:
        return self.quadrant >= 5

    @property
    def jaw(self) -> Jaw:
        return "upper" if self.quadrant in _UPPER_QUADRANTS else "lower"

    @property
    def side(self) -> Side:
        """The patient's side."""
        return "right" if self.quadrant in _RIGHT_QUADRANTS else "left"

    @property
    def type(self) -> ToothType:
        """``"incisor"``, ``"canine"``, ``"premolar"`` or ``"molar"`` (deciduous teeth have no premolars)."""
        types = _DECIDUOUS_TYPES if self.deciduous else _PERMANENT_TYPES
        return types[self.position - 1]

    @property
    def name(self) -> str:
        """Readable name, e.g. ``"upper right first molar"`` or ``"lower left deciduous canine"``."""
        ordinal = "" if self.type == "canine" else _ORDINALS[self.position - 1]
        if self.deciduous and self.type == "molar":
            ordinal = ("first", "second")[self.position - 4]
        parts = [self.jaw, self.side, "deciduous" if self.deciduous else "", ordinal, self.type]
        return " ".join(p for p in parts if p)

    def mirror(self) -> Tooth:
        """Same tooth on the patient's other side (11↔21, 36↔46, 53↔63)."""
        return Tooth(_MIRROR_QUADRANT[self.quadrant] * 10 + self.position)

    def opposing(self) -> Tooth:
        """Same side, other jaw (11↔41, 16↔46, 21↔31, 27↔37)."""
        return Tooth(_OPPOSING_QUADRANT[self.quadrant] * 10 + self.position)


def tooth(code: int | np.integer) -> Tooth:
    """Validate an FDI code and return its :class:`Tooth`; raises :class:`LabelSchemeError` if it is none."""
    return Tooth(int(code) if isinstance(code, np.integer) else code)


INVALID_LABEL = int(np.iinfo(np.int16).min)
"""Sentinel that lookup tables hold for codes they do not know (never a valid label)."""


def as_label_array(labels: ArrayLike, what: str = "labels") -> NDArray[np.int64]:
    """Return integer label codes as int64 (same shape); floats must hold whole numbers.

    labels: any-shape array of label codes. what: names the array in error messages.
    """
    arr = np.asarray(labels)
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64, copy=False)
    if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
        return arr.astype(np.int64)
    raise LabelSchemeError(
        f"{what}: labels must be integer codes, got dtype {arr.dtype}; "
        "cast label arrays to an integer type (e.g. labels.astype(np.int16)) before converting"
    )


def apply_label_lut(codes: NDArray[np.int64], lut: NDArray[np.int16]) -> NDArray[np.int16]:
    """Map ``codes`` through ``lut`` (``out = lut[code]``); -1 stays -1, codes outside the table give
    :data:`INVALID_LABEL`.

    codes: any-shape int64 label codes. lut: (m,) int16 indexed by code, INVALID_LABEL for unknown codes.
    Returns int16 of the same shape as ``codes``.
    """
    lo = int(codes.min()) if codes.size else 0
    hi = int(codes.max()) if codes.size else 0
    if lo >= 0 and hi < len(lut):
        return np.asarray(lut[codes], dtype=np.int16)
    in_range = (codes >= 0) & (codes < len(lut))
    out = np.full(codes.shape, INVALID_LABEL, dtype=np.int16)
    out[in_range] = lut[codes[in_range]]
    out[codes == UNKNOWN] = UNKNOWN
    return out


def _apply_tooth_lut(labels: ArrayLike, lut: NDArray[np.int16], what: str) -> NDArray[np.int16]:
    arr = as_label_array(labels, what)
    out = apply_label_lut(arr, lut)
    bad = out == INVALID_LABEL
    if np.any(bad):
        raise LabelSchemeError(
            f"{what}: {int(bad.sum())} label(s) are not FDI codes: {format_codes(arr[bad])}; "
            f"{EXPECTED_CODES}, 0 (gingiva) or -1 (unknown). Convert scheme-specific labels first with "
            "toothmcl_data.fdi.to_fdi(labels, scheme=...)"
        )
    return out


def _build_lut(op: str) -> NDArray[np.int16]:
    lut = np.full(_MAX_FDI + 1, INVALID_LABEL, dtype=np.int16)
    lut[GINGIVA] = GINGIVA
    for code in ALL_TEETH:
        t = Tooth(code)
        lut[code] = (t.mirror() if op == "mirror" else t.opposing()).fdi
    return lut


_MIRROR_LUT = _build_lut("mirror")
_OPPOSING_LUT = _build_lut("opposing")


def mirror_labels(labels: ArrayLike) -> NDArray[np.int16]:
    """Swap every tooth code for its mirror (11→21, 46→36); 0 and -1 stay.

    labels: any-shape integer array of FDI codes (per vertex, per voxel …).
    Returns the same shape, int16. Raises :class:`LabelSchemeError` on codes that are not FDI teeth.
    """
    return _apply_tooth_lut(labels, _MIRROR_LUT, "mirror_labels")


def opposing_labels(labels: ArrayLike) -> NDArray[np.int16]:
    """Swap every tooth code for the same-side tooth in the other jaw (11→41, 27→37); 0 and -1 stay.

    labels: any-shape integer array of FDI codes. Returns the same shape, int16.
    """
    return _apply_tooth_lut(labels, _OPPOSING_LUT, "opposing_labels")


@dataclass(frozen=True)
class LabelReport:
    """What a label array holds; ``counts`` maps every code present (incl. 0, -1) to its element count."""

    permanent: tuple[int, ...]
    deciduous: tuple[int, ...]
    has_gingiva: bool
    has_unknown: bool
    counts: dict[int, int] = field(default_factory=dict, compare=False)

    @property
    def teeth(self) -> tuple[int, ...]:
        """All tooth codes present, permanent then deciduous, each sorted."""
        return self.permanent + self.deciduous


def check_labels(labels: ArrayLike, *, allow_deciduous: bool = False, what: str = "labels") -> LabelReport:
    """Report which FDI codes a label array holds, refusing codes that are not teeth.

    labels: any-shape integer array of FDI codes (0 gingiva/background, -1 unknown).
    allow_deciduous: if False (the default, for permanent-only paths) deciduous codes raise.
    what: names the array in error messages (e.g. the file it came from).
    Raises :class:`LabelSchemeError` listing unknown codes and, separately, the deciduous codes found.
    """
    arr = as_label_array(labels, what)
    codes, counts = np.unique(arr, return_counts=True)
    present = [int(c) for c in codes]
    bad = [c for c in present if c not in ALL_TEETH and c not in (GINGIVA, UNKNOWN)]
    deciduous = tuple(c for c in present if c in DECIDUOUS_FDI)
    problems = []
    if bad:
        problems.append(f"{len(bad)} code(s) are not FDI teeth: {format_codes(bad)} ({EXPECTED_CODES})")
    if deciduous and not allow_deciduous:
        problems.append(deciduous_problem(deciduous))
    if problems:
        raise LabelSchemeError(f"{what}: " + "; ".join(problems))
    return LabelReport(
        permanent=tuple(c for c in present if c in PERMANENT_FDI),
        deciduous=deciduous,
        has_gingiva=GINGIVA in present,
        has_unknown=UNKNOWN in present,
        counts=dict(zip(present, (int(n) for n in counts), strict=True)),
    )
