"""The samples the stream datasets return: typed dicts with documented shapes, dtypes, units and frames.

One shape of sample per dataset, all sharing :class:`Sample` (``case``, ``index``, ``applied``):

=================  =============================================  ==========================================
dataset            sample                                         frame of its coordinates
=================  =============================================  ==========================================
``PairDataset``    :class:`PairSample` (one paired tooth)         LPS world mm (the CBCT's)
``CaseDataset``    :class:`CaseSample` (one patient, both jaws)   LPS world mm (the CBCT's)
``VolumeDataset``  :class:`VolumeSample` (one labelled CBCT)      LPS world mm
``JawDataset``     :class:`JawSample` (one labelled jaw scan)     the dataset's ``frame``: world, ios or canonical
=================  =============================================  ==========================================

They are ``TypedDict`` s: plain dicts at run time (``sample["cbct"]``; :func:`~toothmcl_data.stream.collate.collate`
batches them unchanged), typed for a checker. Crops are indexed ``[i, j, k]`` along +x, +y, +z of their grid;
``world_from_crop`` (4, 4) float64 maps a crop index to LPS world mm (``x = T @ [i, j, k, 1]``). CBCT values are
the scanner's, unscaled. Points are ``xyz`` mm + unit normal.

``applied`` is the augmentation record (:class:`AugmentRecord`): what was drawn for this sample, enough to
reproduce it or to undo it (``motion``); an empty dict when the dataset's config has no augmentation.

:data:`FIELDS` holds the same documentation as data (dtype, shape, unit, frame per field) and
:func:`check_sample` checks a sample against it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypedDict

import torch

from toothmcl_data.errors import InputError


class AugmentRecord(TypedDict, total=False):
    """What augmentation was applied to one sample (JSON-able; empty: none).

    The geometric part is a motion ``M`` (4, 4) of the anatomy about ``centre_mm``: a point at ``x`` moved to
    ``M @ x`` (normals by ``M[:3, :3]``), the crop grid unchanged, the CBCT content resampled so that the voxel at
    ``y`` shows what was at ``M⁻¹ y``. ``M = T(centre + shift) · R · [mirror] · T(−centre)``, all in the frame of the
    sample's coordinates (LPS world mm; a :class:`JawSample`'s own frame). ``inv(motion)`` undoes it."""

    rotate_deg: float
    """Rotation angle (degrees, right-handed) about ``axis`` through ``centre_mm``."""
    axis: list[float]
    """(3,) unit rotation axis."""
    shift_mm: list[float]
    """(3,) translation added after the rotation (mm)."""
    mirror: bool
    """x (patient left ↔ right) mirrored before the rotation; FDI labels then swapped to their mirror teeth."""
    centre_mm: list[float]
    """(3,) centre of the rotation (mm)."""
    motion: list[list[float]]
    """(4, 4) the motion ``M`` above (float, row-major)."""
    intensity_scale: float
    """CBCT contrast factor about the crop mean (``PairDataset`` only)."""
    noise_std: float
    """Standard deviation of the Gaussian noise added to the CBCT, scanner units (``PairDataset`` only)."""


class Sample(TypedDict):
    """What every stream sample carries."""

    case: str
    """Pseudonym of the sample's patient."""
    index: int
    """Index of the sample in its dataset."""
    applied: AugmentRecord
    """The augmentation record (empty: no augmentation)."""


class PairSample(Sample):
    """One paired tooth (``PairDataset``): the tooth's published CBCT crop and its crown points.

    ``cbct`` float32 [1, X, Y, Z] scanner values; ``cbct_labels`` int16 [X, Y, Z] FDI (0 background);
    ``ios`` float32 [N, 6] xyz LPS mm + unit normal; ``ios_labels`` int64 [N] the tooth's FDI per point;
    ``world_from_crop`` float64 [4, 4]; ``fdi`` the tooth (mirrored with the sample when augmented)."""

    cbct: torch.Tensor
    cbct_labels: torch.Tensor
    ios: torch.Tensor
    ios_labels: torch.Tensor
    world_from_crop: torch.Tensor
    fdi: int


class CaseSample(Sample):
    """One patient (``CaseDataset``): a CBCT crop and each jaw's scan points in the CBCT's world.

    ``cbct`` float32 [1, X, Y, Z]; ``cbct_labels`` int16 [X, Y, Z] FDI (−1 everywhere when the case has no label
    map); ``ios`` {jaw: float32 [N, 6]} xyz LPS mm + unit normal (registered); ``ios_labels`` {jaw: int64 [N]}
    FDI (0 gingiva, −1 unlabelled scan); ``world_from_crop`` float64 [4, 4]."""

    cbct: torch.Tensor
    cbct_labels: torch.Tensor
    ios: dict[str, torch.Tensor]
    ios_labels: dict[str, torch.Tensor]
    world_from_crop: torch.Tensor


class VolumeSample(Sample):
    """One labelled CBCT crop (``VolumeDataset``): ``cbct`` float32 [1, X, Y, Z] scanner values; ``cbct_labels``
    int16 [X, Y, Z] FDI (0 background); ``world_from_crop`` float64 [4, 4]."""

    cbct: torch.Tensor
    cbct_labels: torch.Tensor
    world_from_crop: torch.Tensor


class JawSample(Sample):
    """One labelled jaw scan (``JawDataset``): ``points`` float32 [N, 6] xyz mm + unit normal in the dataset's
    frame; ``labels`` int64 [N] FDI (0 gingiva); ``vertex_index`` int64 [N] the points' vertex indices in the
    stored mesh; ``jaw`` ``"upper"`` or ``"lower"``."""

    points: torch.Tensor
    labels: torch.Tensor
    vertex_index: torch.Tensor
    jaw: str


Kind = Literal["pair", "case", "volume", "jaw"]


@dataclass(frozen=True)
class FieldSpec:
    """One field of a sample: ``dtype`` (a torch dtype, or a Python type for scalars), ``shape`` (names for sizes
    that vary: X, Y, Z crop voxels, N points; ints fixed), ``unit`` and ``frame`` ("" when not spatial);
    ``per_jaw``: a dict of one such tensor per jaw."""

    dtype: torch.dtype | type
    shape: tuple[int | str, ...] = ()
    unit: str = ""
    frame: str = ""
    per_jaw: bool = False


_COMMON = {"case": FieldSpec(str), "index": FieldSpec(int), "applied": FieldSpec(dict)}
_CBCT = {
    "cbct": FieldSpec(torch.float32, (1, "X", "Y", "Z"), "scanner value", "crop grid"),
    "cbct_labels": FieldSpec(torch.int16, ("X", "Y", "Z"), "FDI", "crop grid"),
    "world_from_crop": FieldSpec(torch.float64, (4, 4), "mm", "LPS world from crop index"),
}
FIELDS: dict[Kind, dict[str, FieldSpec]] = {
    "pair": {
        **_CBCT,
        "ios": FieldSpec(torch.float32, ("N", 6), "mm + unit normal", "LPS world"),
        "ios_labels": FieldSpec(torch.int64, ("N",), "FDI"),
        "fdi": FieldSpec(int, (), "FDI"),
        **_COMMON,
    },
    "case": {
        **_CBCT,
        "ios": FieldSpec(torch.float32, ("N", 6), "mm + unit normal", "LPS world", per_jaw=True),
        "ios_labels": FieldSpec(torch.int64, ("N",), "FDI", per_jaw=True),
        **_COMMON,
    },
    "volume": {**_CBCT, **_COMMON},
    "jaw": {
        "points": FieldSpec(torch.float32, ("N", 6), "mm + unit normal", "dataset frame"),
        "labels": FieldSpec(torch.int64, ("N",), "FDI"),
        "vertex_index": FieldSpec(torch.int64, ("N",), "vertex"),
        "jaw": FieldSpec(str),
        **_COMMON,
    },
}
"""Per dataset kind, every field of its sample (the same as the classes' docstrings, as data)."""


def _check_tensor(where: str, value: Any, spec: FieldSpec, sizes: dict[str, int]) -> None:
    if not isinstance(value, torch.Tensor):
        raise InputError(f"{where}: expected a tensor, got {type(value).__name__}")
    if value.dtype != spec.dtype:
        raise InputError(f"{where}: expected dtype {spec.dtype}, got {value.dtype}")
    if value.dim() != len(spec.shape):
        raise InputError(f"{where}: expected shape {spec.shape}, got {tuple(value.shape)}")
    for name, size in zip(spec.shape, value.shape, strict=True):
        expected = sizes.setdefault(name, int(size)) if isinstance(name, str) else name
        if int(size) != expected:
            raise InputError(f"{where}: expected shape {spec.shape} with {name} = {expected}, got {tuple(value.shape)}")


def check_sample(sample: Mapping[str, Any], kind: Kind) -> dict[str, int]:
    """Check ``sample`` against :data:`FIELDS` ``[kind]``: exactly its fields, each of its type, dtype and shape, a
    named size (X, Y, Z, N) the same wherever it appears (per jaw for a case's scans: ``ios`` and ``ios_labels`` of
    one jaw share its N). Returns the named sizes found (a case's jaws' as ``N[upper]`` …). Raises
    :class:`InputError` naming the field, expected vs got."""
    specs = FIELDS[kind]
    if set(sample) != set(specs):
        raise InputError(f"{kind} sample: expected fields {sorted(specs)}, got {sorted(sample)}")
    sizes: dict[str, int] = {}
    jaw_sizes: dict[str, dict[str, int]] = {}
    for name, spec in specs.items():
        value, where = sample[name], f"{kind} sample[{name!r}]"
        if isinstance(spec.dtype, type):
            if not isinstance(value, spec.dtype):
                raise InputError(f"{where}: expected {spec.dtype.__name__}, got {type(value).__name__}")
        elif spec.per_jaw:
            if not isinstance(value, Mapping) or not value:
                raise InputError(f"{where}: expected a tensor per jaw, got {value!r}")
            for jaw, tensor in value.items():
                _check_tensor(f"{where}[{jaw!r}]", tensor, spec, jaw_sizes.setdefault(jaw, {}))
        else:
            _check_tensor(where, value, spec, sizes)
    return sizes | {f"{k}[{jaw}]": v for jaw, d in jaw_sizes.items() for k, v in d.items()}
